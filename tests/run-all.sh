#!/usr/bin/env bash
# `make test`: run every suite, even after a failure, then print one summary line and exit non-zero on any failure.
# The lab (Debian packages, one dockerd, stopped at the end if we started it) comes up first. The ansible-core 2.21
# line (tests/controller-2.21.sh: its image builds, unit, sanity, integration against Debian 13's tools, a small
# drill on Debian 13) then runs in the background, in its own containers and lab addresses, beside the host suites and
# the host's lab suites (integration, Molecule, the small drill with faults on Debian 12): much of either side waits
# on the network, the disk or a sleeping service, so the two share the two cores well.
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
mkdir -p .lab/logs
lab_summary=$(mktemp); summary_221=$(mktemp)
started_dockerd=0; bg=
cleanup() {
  if [ -n "$bg" ] && kill -0 "$bg" 2>/dev/null; then kill -TERM "$bg" 2>/dev/null; wait "$bg" 2>/dev/null; fi
  if [ "$started_dockerd" = 1 ]; then
    ids=$(docker ps -aq --filter label=io.restoreops.lab=1 2>/dev/null || true)
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
    tests/lab/lab dockerd-stop
  fi
  rm -f "$lab_summary" "$summary_221"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lab_up() {
  tests/lab/lab deps || return 1
  if ! timeout 5 docker info >/dev/null 2>&1; then
    tests/lab/lab dockerd-start || return 1
    started_dockerd=1
  fi
}
lab_start=$SECONDS
if lab_up; then lab_ok=1; else lab_ok=0; fi
timings+=("lab start $((SECONDS - lab_start))s")

start_221=$SECONDS
if [ "$lab_ok" = 1 ]; then
  LAB_SUMMARY="$summary_221" tests/controller-2.21.sh > .lab/logs/2.21.log 2>&1 &
  bg=$!
  echo "ansible-core 2.21 line started in the background (output: .lab/logs/2.21.log)"
fi

suite ruff        make --no-print-directory ruff
suite docs-check  make --no-print-directory docs-check
suite changelog   make --no-print-directory changelog-lint
suite unit        make --no-print-directory unit
suite sanity      make --no-print-directory sanity
suite lint        make --no-print-directory lint
suite build       make --no-print-directory build
if [ "$lab_ok" = 1 ]; then
  suite lab       env LAB_SUMMARY="$lab_summary" tests/run-lab-suites.sh
  echo; echo "################ ansible-core 2.21 (waiting for the background line)"
  if wait "$bg"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("ansible-core-2.21"); fi
  bg=
  timings+=("ansible-core-2.21 $((SECONDS - start_221))s (in the background from the start)")
  tail -n 40 .lab/logs/2.21.log
else
  failed=$((failed + 1)); failures+=("lab (could not start: see above)")
fi
echo
echo "################ summary"
printf '  %s\n' "${timings[@]}"
[ ! -s "$lab_summary" ] || sed 's/^/    lab: /' "$lab_summary"
[ ! -s "$summary_221" ] || sed 's/^/    ansible-core 2.21: /' "$summary_221"
[ ${#failures[@]} -eq 0 ] || echo "  failed: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
