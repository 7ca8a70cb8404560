#!/usr/bin/env bash
# borg_repo against the real borg 1.2: the four-step runs, the lock faults, append-only, bad input; and, while all
# of that runs, a sampler that reads every process's argv and proves the passphrase never appears there.
set -eu -o pipefail

WORKDIR="$(mktemp -d /tmp/restoreops-borg-repo.XXXXXX)"
SAMPLER_PID=""
cleanup() {
    touch "${WORKDIR}/stop-sampler"
    if [ -n "${SAMPLER_PID}" ]; then
        wait "${SAMPLER_PID}" || true
    fi
    rm -rf "${WORKDIR}"
}
trap cleanup EXIT

# A passphrase that cannot occur by chance; it reaches the playbook through a vars file, not through argv.
PASSPHRASE="rops-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-pass"
printf '%s' "${PASSPHRASE}" > "${WORKDIR}/secret"
chmod 0600 "${WORKDIR}/secret"
printf 'workdir: "%s"\nborg_passphrase: "%s"\n' "${WORKDIR}" "${PASSPHRASE}" > "${WORKDIR}/vars.yml"

python3 files/argv_sampler.py "${WORKDIR}/secret" "${WORKDIR}/stop-sampler" "${WORKDIR}/argv-report.json" &
SAMPLER_PID=$!

ansible-playbook -i "${INVENTORY_PATH}" runme.yml -e "@${WORKDIR}/vars.yml" "$@" | tee "${WORKDIR}/playbook.log"

touch "${WORKDIR}/stop-sampler"
wait "${SAMPLER_PID}"
SAMPLER_PID=""
python3 - "${WORKDIR}/argv-report.json" "${WORKDIR}/secret" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
secret = open(sys.argv[2]).read().strip()
leaks = sorted({leak.replace(secret, "<PASSPHRASE>")[:300] for leak in report["leaks"]})
print(f"argv sampler: {report['samples']} samples, {report['borg_processes']} borg processes, "
      f"{len(report['leaks'])} argv samples with the passphrase")
for leak in leaks[:5]:
    print("  leak:", leak)
assert report["samples"] > 100, "the sampler hardly ran"
assert report["borg_processes"] >= 10, "the sampler saw too few borg processes to mean anything"
assert not leaks, "the passphrase appeared in a process argv"
PY
# Nor in anything Ansible printed.
if grep -qF "${PASSPHRASE}" "${WORKDIR}/playbook.log"; then
    echo "the passphrase appeared in the playbook output" >&2
    exit 1
fi
