#!/usr/bin/env bash
# `make test`: run every suite, even after a failure, then print one summary line and exit non-zero on any failure.
# Suites that need containers run inside one lab session (one dockerd, stopped at the end if we started it).
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0; failed=0; failures=(); timings=()
suite() { # NAME CMD...
  local name=$1; shift
  local start=$SECONDS
  echo; echo "################ $name"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
  timings+=("$name $((SECONDS - start))s")
}
suite ruff        make --no-print-directory ruff
suite docs-check  make --no-print-directory docs-check
suite changelog   make --no-print-directory changelog-lint
suite unit        make --no-print-directory unit
suite sanity      make --no-print-directory sanity
suite lint        make --no-print-directory lint
suite build       make --no-print-directory build
lab_summary=$(mktemp)
trap 'rm -f "$lab_summary"' EXIT
suite lab         env LAB_SUMMARY="$lab_summary" tests/lab/lab with-lab tests/run-lab-suites.sh
echo
echo "################ summary"
printf '  %s\n' "${timings[@]}"
[ ! -s "$lab_summary" ] || sed 's/^/    lab: /' "$lab_summary"
[ ${#failures[@]} -eq 0 ] || echo "  failed: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
