# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print the reliability figures of a test run from its logs (docs/reliability.md explains each one).

The integration targets and Molecule scenarios print one line per proof that passed, as the success message of the
assertion that proves it (tests/integration/targets/setup_reliability, extensions/molecule/shared):

    RELIABILITY bad-input <module> <case>          a bad input refused: failed, named, no traceback, changed=false,
                                                   no secret in the result, the scratch tree's hash unchanged
    RELIABILITY check-mode <module> <run> (...)    a module's check-mode run left the hashed trees unchanged
    RELIABILITY role-check-mode <role> <host> (...)  a role's Molecule check step left the hashed paths unchanged
    RELIABILITY fault <name>                       a fault the collection survived (named)
    RELIABILITY secret-scan <where> <N> hits       the drill's scan of every output, report, journal and sampled
                                                   command line for its secrets (tests/lab/secret_scan.py)

A bad input that is also a fault survived says both on one line, separated by "; ".

    reliability.py [--require] LOG...

With --require, exit 1 unless every module (plugins/modules/*.py) has at least MIN_BAD_INPUTS bad inputs and a
check-mode proof, every role (roles/*) a check-mode proof, and every secret scan in the logs 0 hits: the figures
`make test` promises.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

MIN_BAD_INPUTS = 8
ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r'RELIABILITY (bad-input|check-mode|role-check-mode|fault|secret-scan) ([^\s";]+)(?: ([^";]*))?')
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def read(logs: list[str]) -> dict[str, dict[str, set[str]]]:
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for log in logs:
        path = Path(log)
        if not path.is_file():
            continue
        for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = ANSI.sub("", raw).strip().lstrip("│").strip()
            if '"msg": "RELIABILITY' not in line and not line.startswith("RELIABILITY"):
                continue
            for match in LINE.finditer(line):  # a bad input that is also a fault says both, split by ';'
                kind, subject, rest = match.group(1), match.group(2), (match.group(3) or "").strip()
                found[kind][subject].add(rest)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description="Print the reliability figures of a test run.")
    parser.add_argument("--require", action="store_true", help="fail when a module or role lacks its proofs")
    parser.add_argument("logs", nargs="+")
    args = parser.parse_args()
    found = read(args.logs)
    modules = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
    roles = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())
    bad, checks, role_checks, faults = (found["bad-input"], found["check-mode"], found["role-check-mode"],
                                        found["fault"])
    total = sum(len(cases) for cases in bad.values())
    print(f"reliability: bad inputs refused with nothing changed: {total} in all, per module:")
    for module in modules:
        count = len(bad.get(module, ()))
        flag = "" if count >= MIN_BAD_INPUTS else f"  (below {MIN_BAD_INPUTS})"
        print(f"  {module:22} {count:3}{flag}")
    proven_modules = [m for m in modules if checks.get(m)]
    proven_roles = [r for r in roles if role_checks.get(r)]
    print(f"reliability: check mode wrote nothing (tree hashes equal): {len(proven_modules)} of {len(modules)} "
          f"modules ({sum(len(checks[m]) for m in proven_modules)} runs), {len(proven_roles)} of {len(roles)} roles")
    missing = [m for m in modules if m not in proven_modules] + [r for r in roles if r not in proven_roles]
    if missing:
        print(f"  without a check-mode proof in these logs: {', '.join(missing)}")
    print(f"reliability: faults survived: {sum(len(v) for v in faults.values())}"
          + (f" ({', '.join(sorted(faults))})" if faults else ""))
    scans = found["secret-scan"]
    if scans:
        lines = [f"{where} {', '.join(sorted(results))}" for where, results in sorted(scans.items())]
        print("reliability: secret scans: " + "; ".join(lines))
    leaked = [where for where, v in scans.items() if any(not r.startswith("0 hits") for r in v)]
    if args.require:
        if leaked:
            print(f"reliability: FAILED: a secret scan found secrets: {', '.join(leaked)}")
            return 1
        short = [m for m in modules if len(bad.get(m, ())) < MIN_BAD_INPUTS]
        if short or missing:
            print(f"reliability: FAILED: fewer than {MIN_BAD_INPUTS} bad inputs: {', '.join(short) or 'none'}; "
                  f"no check-mode proof: {', '.join(missing) or 'none'}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
