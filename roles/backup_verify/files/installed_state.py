# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print, as JSON, "mode:uid:gid:sha256" of each path given (no digest for a directory; missing paths left out).

Run by the backup_verify role (tasks/probe.yml) with the verifier's Python, to learn in one read whether the
installed verifier, its library and its configuration are what the role would write. Reads only.
"""
import hashlib
import json
import os
import stat
import sys

out = {}
for path in sys.argv[1:]:
    try:
        st = os.lstat(path)
    except OSError:
        continue
    digest = ""
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    elif not stat.S_ISDIR(st.st_mode):
        digest = "not-a-regular-file"
    out[path] = "%o:%d:%d:%s" % (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, digest)
print(json.dumps(out, sort_keys=True))
