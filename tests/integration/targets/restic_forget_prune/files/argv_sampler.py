# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read every process's argv until told to stop; report whether the secret ever appeared in one.

Usage: argv_sampler.py SECRET_FILE STOP_FILE REPORT_FILE
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> int:
    secret_file, stop_file, report_file = sys.argv[1:4]
    with open(secret_file, encoding="utf-8") as handle:
        secret = handle.readline().rstrip("\n").encode()
    samples = 0
    seen_restic: set[int] = set()
    leaks: list[str] = []
    while not os.path.exists(stop_file):
        samples += 1
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read()
            except OSError:
                continue
            parts = argv.split(b"\0")
            if parts and os.path.basename(parts[0]) == b"restic":
                seen_restic.add(int(entry))
            if secret in argv:
                leaks.append(argv.replace(b"\0", b" ").decode(errors="replace")[:300])
        time.sleep(0.01)
    with open(report_file, "w", encoding="utf-8") as handle:
        json.dump({"samples": samples, "restic_processes": len(seen_restic), "leaks": leaks}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
