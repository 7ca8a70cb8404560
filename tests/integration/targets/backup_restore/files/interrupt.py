# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run restoreops.dr.backup_restore as a process of its own and kill it (and the tool under it) part-way.

    interrupt.py ARGS_JSON COLLECTIONS_ROOT TOTAL_BYTES FRACTION MEASURE STAGING

The module runs from ARGS_JSON (``{"ANSIBLE_MODULE_ARGS": {...}}``) in a session of its own; every 10 ms the bytes
restored so far are measured, and at FRACTION of TOTAL_BYTES the whole session gets SIGKILL, as a power cut or an
OOM kill would do it. MEASURE ``tree`` sums the sizes of the files below STAGING (borg, rsync); ``wchar`` sums what
the module's processes wrote (restic preallocates its files, so their sizes say nothing). Prints one JSON line:
killed (false when the restore ended first), the bytes measured then, and the fraction.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time


def tree_bytes(root):
    total = 0
    for base, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_size
    return total


def children():
    tree = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[-1].split()
            tree.setdefault(int(fields[1]), []).append(int(name))
        except (OSError, IndexError, ValueError):
            continue
    return tree


def wchar(pid):
    try:
        with open(f"/proc/{pid}/io", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def main():
    args_file, collections_root, total, fraction, measure, staging = sys.argv[1:7]
    total, fraction = int(total), float(fraction)
    env = dict(os.environ, PYTHONPATH=collections_root)
    proc = subprocess.Popen([sys.executable, "-m", "ansible_collections.restoreops.dr.plugins.modules.backup_restore",
                             args_file], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    seen = {}
    done = 0
    killed = False
    while proc.poll() is None:
        if measure == "tree":
            done = tree_bytes(staging)
        else:
            tree = children()
            stack = list(tree.get(proc.pid, []))
            while stack:
                pid = stack.pop()
                seen[pid] = max(seen.get(pid, 0), wchar(pid))
                stack.extend(tree.get(pid, []))
            done = sum(count for pid, count in seen.items() if pid != proc.pid)
        if done >= fraction * total:
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    out, err = proc.communicate()
    print(json.dumps({"killed": killed, "measured": done, "total": total,
                      "fraction": round(done / total, 3) if total else None,
                      "rc": proc.returncode, "stdout": out.decode(errors="replace")[-2000:],
                      "stderr": err.decode(errors="replace")[-2000:]}))


if __name__ == "__main__":
    main()
