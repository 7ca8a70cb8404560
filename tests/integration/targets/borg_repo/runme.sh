#!/usr/bin/env bash
# borg_repo against the real borg 1.2: the four-step runs, the lock faults, append-only, bad input; and, while all
# of that runs, a sampler that reads every process's argv and proves the passphrase never appears there.
set -eu -o pipefail
source ../setup_argv_sampler/files/argv_sampler.sh

WORKDIR="$(mktemp -d /tmp/restoreops-borg-repo.XXXXXX)"
cleanup() {
    argv_sampler_cleanup
    rm -rf "${WORKDIR}"
}
trap cleanup EXIT

# A passphrase that cannot occur by chance; it reaches the playbook through a vars file, not through argv.
PASSPHRASE="rops-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-pass"
printf '%s' "${PASSPHRASE}" > "${WORKDIR}/secret"
chmod 0600 "${WORKDIR}/secret"
printf 'workdir: "%s"\nborg_passphrase: "%s"\n' "${WORKDIR}" "${PASSPHRASE}" > "${WORKDIR}/vars.yml"

argv_sampler_start "${WORKDIR}" "${WORKDIR}/secret" borg
ansible-playbook -i "${INVENTORY_PATH}" runme.yml -e "@${WORKDIR}/vars.yml" "$@" | tee "${WORKDIR}/playbook.log"
argv_sampler_stop_and_check 10 "${WORKDIR}/playbook.log"
