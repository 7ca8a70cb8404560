# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sample every process's argv (/proc/*/cmdline) until a stop file appears.

Usage: argv_sampler.py SECRET_FILE STOP_FILE REPORT_FILE
Writes a JSON report: how many samples, how many distinct borg processes were seen, and every argv that held the
secret (which must be none).
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    secret_file, stop_file, report_file = sys.argv[1:4]
    with open(secret_file, "rb") as handle:
        secret = handle.read().strip()
    me = str(os.getpid())
    samples = 0
    borg_pids: set[str] = set()
    leaks: list[str] = []
    while not os.path.exists(stop_file):
        samples += 1
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    argv = handle.read()
            except OSError:
                continue
            if secret in argv:
                leaks.append(argv.replace(b"\0", b" ").decode(errors="replace"))
            if b"borg" in argv.split(b"\0")[0] or b"/borg\0" in argv or argv.startswith(b"borg\0"):
                borg_pids.add(pid)
        time.sleep(0.002)
    with open(report_file, "w", encoding="utf-8") as handle:
        json.dump({"samples": samples, "borg_processes": len(borg_pids), "leaks": leaks}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
