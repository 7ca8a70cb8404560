# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hash what a test must find unchanged: trees and files, their names, types, modes, owners, sizes, contents
(SHA-256), link targets and file modification times.

    tree_hash.py --save STATE PATH...       record the state of PATHs in STATE (JSON), print {"digest": ...}
    tree_hash.py --compare STATE PATH...    print {"digest", "equal", "changed": [up to 20 paths]}, always exit 0

A path that does not exist is recorded as absent (so creating it is a change). Directory modification times are not
recorded: a tool that takes a lock file and removes it again leaves no trace a reader could act on, while any entry
that stays, changes or goes is seen. ``--ignore NAME`` (repeatable) skips entries with that base name (for example
a tool's own cache directory inside a scratch tree). ``--same-content PATH`` (repeatable) records that file's
contents but not its modification time, for a file a tool is known to rewrite with the same bytes (borg check rewrites
a repository's ``config``); the caller names each such file and why. Standard library only: it runs on test hosts
and containers.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import stat
import sys


def entry(path: str, same_content: frozenset[str] = frozenset()) -> str:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    head = f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid}"
    if stat.S_ISLNK(st.st_mode):
        return f"{head} -> {os.readlink(path)}"
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        mtime = "same-content" if path in same_content else st.st_mtime_ns
        return f"{head} {st.st_size} {mtime} {digest.hexdigest()}"
    return head


def state(paths: list[str], ignore: list[str], same_content: frozenset[str] = frozenset()) -> dict[str, str]:
    out: dict[str, str] = {}
    for root in paths:
        out[root] = entry(root, same_content)
        if not os.path.isdir(root) or os.path.islink(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not any(fnmatch.fnmatch(d, pat) for pat in ignore))
            for name in sorted(dirnames + filenames):
                if any(fnmatch.fnmatch(name, pat) for pat in ignore):
                    continue
                path = os.path.join(dirpath, name)
                out[path] = entry(path, same_content)
    return out


def digest_of(entries: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", metavar="STATE")
    mode.add_argument("--compare", metavar="STATE")
    parser.add_argument("--ignore", action="append", default=[])
    parser.add_argument("--same-content", action="append", default=[])
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    now = state([os.path.abspath(p) for p in args.paths], args.ignore,
                frozenset(os.path.abspath(p) for p in args.same_content))
    if args.save:
        with open(args.save, "w", encoding="utf-8") as handle:
            json.dump(now, handle)
        print(json.dumps({"digest": digest_of(now), "entries": len(now)}))
        return 0
    with open(args.compare, encoding="utf-8") as handle:
        before = json.load(handle)
    changed = sorted(p for p in set(before) | set(now) if before.get(p) != now.get(p))
    print(json.dumps({"digest": digest_of(now), "digest_before": digest_of(before), "equal": not changed,
                      "entries": len(now), "changed": changed[:20]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
