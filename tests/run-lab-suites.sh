#!/usr/bin/env bash
# The suites that need real tools and containers, run inside one lab session (see tests/run-all.sh).
# Each part runs to its end even after a failure; its output is also kept in .lab/logs/<part>.log. The parts'
# outcome, with the first error lines of a failed part, goes to $LAB_SUMMARY (when set) for the final summary: CI
# often shows only the end of the output, and the failure must be readable there.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=.lab/logs
mkdir -p "$logs"
# Run alone, this script prints the outcome itself; run-all.sh passes LAB_SUMMARY and prints it in its summary.
summary=${LAB_SUMMARY:-}
[ -n "$summary" ] || { summary=$(mktemp); trap 'cat "$summary"; rm -f "$summary"' EXIT; }
: > "$summary"
rc=0
# The lines that say why a part failed: the verdicts of the drill, Molecule and ansible-test first, then, for each
# play whose recap counts a failure, its last failed task that was not ignored (the failure that ended the play).
# Molecule colours Ansible's output, frames each line with "│" and wraps long ones: colours and frame are removed
# first, so one reading serves both.
first_errors() { # LOG
  sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^ *│ \{0,1\}//' "$1" \
    | awk '/^DRILL FAILED|^=== molecule .* FAILED|^FATAL/ { print; next }
           /^TASK \[/ { task = $0; next }
           /^(fatal|failed): / { last = task " " $0; next }
           /^\.\.\.ignoring/ { last = ""; next }
           /^PLAY RECAP/ { recap = 1; next }
           recap && /failed=[1-9]/ { if (last != "") tasks = tasks last "\n"; last = ""; recap = 0; next }
           recap && /^$/ { last = ""; recap = 0 }
           END { printf "%s", tasks }'
}
part() { # NAME CMD...
  local name=$1; shift
  local start=$SECONDS
  if "$@" 2>&1 | tee "$logs/$name.log"; then
    echo "$name passed ($((SECONDS - start)) s)" >> "$summary"
  else
    rc=1
    echo "$name FAILED ($((SECONDS - start)) s); first errors (all in $logs/$name.log):" >> "$summary"
    first_errors "$logs/$name.log" | cut -c1-400 | head -n 8 | sed 's/^/    /' >> "$summary"
  fi
}
part integration make --no-print-directory integration
part molecule make --no-print-directory molecule
if [ -x tests/lab/drill.sh ]; then part drill tests/lab/drill.sh --small; fi
# The reliability figures (docs/reliability.md), read from the parts' logs: bad inputs per module, check-mode runs
# whose hashed trees stayed equal (modules and roles), faults survived. Too few is a failure.
if ! python3 tests/tools/reliability.py --require "$logs/integration.log" "$logs/molecule.log" \
    | tee "$logs/reliability.log" >> "$summary"; then
  rc=1
fi
exit $rc
