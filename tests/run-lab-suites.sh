#!/usr/bin/env bash
# The suites that need real tools and containers, with the lab up (see tests/run-all.sh; alone:
# tests/lab/lab with-lab tests/run-lab-suites.sh).
# Each part runs to its end even after a failure; its output is also kept in .lab/logs/<part>.log. The parts'
# outcome, with the first error lines of a failed part, goes to $LAB_SUMMARY (when set) for the final summary: CI
# often shows only the end of the output, and the failure must be readable there.
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/parts.sh
source tests/parts.sh
# The images these parts use (cached ones cost a label lookup): Molecule's, and the drill's Debian 12 hosts.
part images tests/lab/lab images bookworm host-bookworm
part integration make --no-print-directory integration
part molecule make --no-print-directory molecule
# The small drill with its faults on Debian 12, from this machine (ansible-core 2.19); tests/controller-2.21.sh runs
# the other release (Debian 13) from the ansible-core 2.21 controller. --runner: its final restic restore runs
# through ansible-runner on a private data directory, as AWX runs it, checked from the runner's artifacts.
part drill-debian12 tests/lab/drill.sh --small --os debian12 --controller host --slot 1 --runner
# The ransomware response's small drill (8 MiB, Debian 12, the secret scan with the rotated secrets), slot 1 again
# once the drill above has ended (about 11 minutes on a loaded 2-core machine, docs/lab.md; RANSOMWARE_DRILL=0
# leaves it out of a local run).
if [ "${RANSOMWARE_DRILL:-1}" = 1 ]; then
  part drill-ransomware env DRILL_SCENARIO=ransomware tests/lab/drill.sh --small --os debian12 --controller host --slot 1
fi
# The reliability figures (docs/reliability.md), read from the parts' logs: bad inputs per module, check-mode runs
# whose hashed trees stayed equal (modules and roles), faults survived (the drill's too), the drill's secret scan.
# Too few, or one secret found, is a failure.
if ! python3 tests/tools/reliability.py --require \
    "$logs/integration.log" "$logs/molecule.log" "$logs/drill-debian12.log" | tee "$logs/reliability.log" >> "$summary"; then
  rc=1
fi
exit $rc
