#!/usr/bin/env bash
# Run Molecule scenarios (all of extensions/molecule/*, or the ones named) one after another; a failed scenario does
# not stop the others. Ends with one line per scenario and exits non-zero when any failed.
# The scenarios live where Molecule expects them in a collection (extensions/molecule/<scenario>/molecule.yml) and
# share extensions/molecule/config.yml, Molecule's base config for collections.
# Expects the lab to be up (run through `tests/lab/lab with-lab`, as `make molecule` does).
set -uo pipefail
cd "$(dirname "$0")/.."
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
  for d in extensions/molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$d")")"); done
fi
results=(); rc=0
for s in "${scenarios[@]}"; do
  echo "=== molecule test -s $s"
  start=$(date +%s)
  if molecule test -s "$s"; then
    results+=("=== molecule $s passed in $(( $(date +%s) - start )) s")
  else
    rc=1
    results+=("=== molecule $s FAILED after $(( $(date +%s) - start )) s")
  fi
  echo "${results[-1]}"
done
printf '%s\n' "${results[@]}"
exit $rc
