#!/usr/bin/env bash
# Run Molecule scenarios (all of molecule/*, or the ones named) one after another; stop at the first failure.
# Expects the lab to be up (run through `tests/lab/lab with-lab`, as `make molecule` does).
set -euo pipefail
cd "$(dirname "$0")/.."
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for d in molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$d")")"); done
fi
for s in "${scenarios[@]}"; do
  echo "=== molecule test -s $s"
  start=$(date +%s)
  molecule test -s "$s"
  echo "=== molecule $s passed in $(( $(date +%s) - start )) s"
done
