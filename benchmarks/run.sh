#!/usr/bin/env bash
# `make bench`: run every benchmark (or the ones named: bench_restic_forget_prune ...). Each prints what it measured
# and its ratio; record the numbers in docs/benchmarks/<name>.md. Benchmarks are never part of `make test`.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
names=("$@")
if [ ${#names[@]} -eq 0 ]; then for f in benchmarks/bench_*.py; do names+=("$(basename "$f" .py)"); done; fi
rc=0
for n in "${names[@]}"; do
  echo "=== $n (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
  python "benchmarks/$n.py" 2>&1 | tee "benchmarks/results/$n.txt" || rc=1
done
exit $rc
