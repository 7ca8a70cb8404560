#!/usr/bin/env bash
# restic_forget_prune against the real restic: exact retention decisions on snapshots with chosen times (four-step
# runs), the lock and password faults, an append-only REST server (rclone) and S3 (moto, with and without Object
# Lock). A sampler reads every process's argv during the whole run and proves the password never appears there.
set -eu -o pipefail

WORKDIR="$(mktemp -d /tmp/restoreops-restic.XXXXXX)"
chmod 0700 "${WORKDIR}"
SAMPLER_PID=""
cleanup() {
    touch "${WORKDIR}/stop-sampler"
    if [ -n "${SAMPLER_PID}" ]; then
        wait "${SAMPLER_PID}" || true
    fi
    rm -rf "${WORKDIR}"
}
trap cleanup EXIT

PASSWORD="rops-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-pw"
printf '%s\n' "${PASSWORD}" > "${WORKDIR}/password"
chmod 0600 "${WORKDIR}/password"
printf 'workdir: "%s"\nrestic_password: "%s"\n' "${WORKDIR}" "${PASSWORD}" > "${WORKDIR}/vars.yml"

python3 files/argv_sampler.py "${WORKDIR}/password" "${WORKDIR}/stop-sampler" "${WORKDIR}/argv-report.json" &
SAMPLER_PID=$!

ansible-playbook -i "${INVENTORY_PATH}" runme.yml -e "@${WORKDIR}/vars.yml" -v "$@" | tee "${WORKDIR}/playbook.log"

touch "${WORKDIR}/stop-sampler"
wait "${SAMPLER_PID}"
SAMPLER_PID=""
python3 - "${WORKDIR}/argv-report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["samples"] > 100, report
assert report["restic_processes"] >= 10, f"the sampler saw too few restic processes to mean anything: {report}"
assert report["leaks"] == [], f"the password appeared in a process argv: {report['leaks']}"
print("argv sampler: %(samples)d samples, %(restic_processes)d restic processes, no password in any argv" % report)
PY
if grep -qF "${PASSWORD}" "${WORKDIR}/playbook.log"; then
    echo "the password appeared in the playbook output" >&2
    exit 1
fi
echo "the password did not appear in the playbook output"
