# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read every process's argv (/proc/*/cmdline) until a stop file appears; report whether a secret was in one.

Usage: argv_sampler.py SECRET_FILE STOP_FILE REPORT_FILE TOOL

The secret is the first line of SECRET_FILE. The JSON report says how many samples were taken, how many distinct
processes of TOOL (argv[0]'s basename, or a Python interpreter running it) were seen, and every argv that held the
secret, cut to 300 characters (the list must be empty).
"""

from __future__ import annotations

import json
import os
import sys
import time


def runs_tool(argv: bytes, tool: bytes) -> bool:
    parts = argv.split(b"\0")
    if os.path.basename(parts[0]) == tool:
        return True
    # borg is a Python program: "/usr/bin/python3 /usr/bin/borg ..."
    return len(parts) > 1 and os.path.basename(parts[0]).startswith(b"python") and os.path.basename(parts[1]) == tool


def main() -> int:
    secret_file, stop_file, report_file, tool = sys.argv[1:5]
    with open(secret_file, "rb") as handle:
        secret = handle.readline().rstrip(b"\n")
    if not secret:
        raise SystemExit(f"{secret_file} holds no secret to look for")
    me = str(os.getpid())
    samples = 0
    seen: set[str] = set()
    leaks: list[str] = []
    while not os.path.exists(stop_file):
        samples += 1
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or entry == me:
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    argv = handle.read()
            except OSError:
                continue
            if not argv:
                continue
            if runs_tool(argv, tool.encode()):
                seen.add(entry)
            if secret in argv:
                leaks.append(argv.replace(b"\0", b" ").decode(errors="replace")[:300])
        time.sleep(0.005)
    with open(report_file, "w", encoding="utf-8") as handle:
        json.dump({"samples": samples, "tool": tool, "processes": len(seen), "leaks": leaks}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
