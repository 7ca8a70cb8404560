#!/usr/bin/env bash
# await_jobs: two background jobs on this host, one writing a progress file as the collection's modules do, one
# failing; the default output must show progress lines while they run, and the results must come back.
set -eu -o pipefail
WORKDIR="$(mktemp -d /tmp/restoreops-await-jobs.XXXXXX)"
trap 'rm -rf "${WORKDIR}"' EXIT
ansible-playbook -i "${INVENTORY_PATH}" runme.yml -e "workdir=${WORKDIR}" "$@" | tee "${WORKDIR}/out.log"
# At least three lines for the writer while it ran (one every 2 s over about 10 s), with percent, amounts and rate.
count=$(grep -cE '^copy data [0-9]+% [0-9.]+ (B|KiB|MiB) / 12\.0 MiB( [0-9.]+ (B|KiB|MiB)/s)?( ETA [0-9hms]+)? \(testhost\)$' \
  "${WORKDIR}/out.log" || true)
if [ "${count}" -lt 3 ]; then
    echo "expected at least 3 progress lines, found ${count}" >&2
    exit 1
fi
grep -qE '^copy data [0-9]+% .* MiB/s ETA [0-9]+s \(testhost\)$' "${WORKDIR}/out.log" \
  || { echo "no progress line with a rate and an ETA" >&2; exit 1; }
echo "await_jobs: ${count} progress lines"
