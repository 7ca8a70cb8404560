#!/usr/bin/env bash
# The suites that need real tools and containers, run inside one lab session (see tests/run-all.sh).
# Each part runs to its end even after a failure; its output is also kept in .lab/logs/<part>.log. The parts'
# outcome, with the first error lines of a failed part, goes to $LAB_SUMMARY (when set) for the final summary: CI
# often shows only the end of the output, and the failure must be readable there.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=.lab/logs
mkdir -p "$logs"
summary=${LAB_SUMMARY:-/dev/null}
: > "$summary"
rc=0
# The lines that say why a part failed: the verdicts of the drill, Molecule and ansible-test first, then, for each
# play whose recap counts a failure, its last failed task that was not ignored (earlier ones may have been rescued).
first_errors() { # LOG
  grep -E '^DRILL FAILED|^=== molecule .* FAILED|^FATAL|^CRITICAL' "$1"
  awk '/^TASK \[/ { task = $0; next }
       pending != "" { if ($0 !~ /^\.\.\.ignoring/) last = pending; pending = "" }
       /^(fatal|failed): / { pending = task " " $0; next }
       /^PLAY RECAP/ { recap = 1; next }
       recap && /failed=[1-9]/ { if (last != "") print last; last = ""; recap = 0; next }
       recap && /^$/ { last = ""; recap = 0 }' "$1"
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
cat "$summary" 2>/dev/null
exit $rc
