# shellcheck shell=bash
# Shared by tests/run-lab-suites.sh and tests/controller-2.21.sh: run a part of `make test` to its end, keep its output
# in $logs/<name>.log, and write its outcome (with the first error lines of a failed part) to $summary. CI often
# shows only the end of the output, and the failure must be readable there. Sets rc=1 when a part fails.
# Sourcing it sets up logs, summary and rc: the summary goes to $LAB_SUMMARY when run-all.sh gives one (it prints it
# in its own summary); run alone, the script prints it at its end.
logs=.lab/logs
mkdir -p "$logs"
summary=${LAB_SUMMARY:-}
if [ -z "$summary" ]; then
  summary=$(mktemp)
  trap 'cat "$summary"; rm -f "$summary"' EXIT
fi
: > "$summary"
rc=0

# The lines that say why a part failed: the verdicts of the drill, Molecule and ansible-test first, then, for each
# play whose recap counts a failure, its last failed task that was not ignored (the failure that ended the play).
# Molecule colours Ansible's output, frames each line with "│" and wraps long ones: colours and frame are removed
# first, so one reading serves both.
first_errors() { # LOG
  sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^ *│ \{0,1\}//' "$1" \
    | awk '/^DRILL FAILED|^=== molecule .* FAILED|^FATAL|^ERROR: / { print; next }
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
