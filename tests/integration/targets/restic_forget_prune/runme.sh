#!/usr/bin/env bash
# restic_forget_prune against the real restic: exact retention decisions on snapshots with chosen times (four-step
# runs), the lock and password faults, an append-only REST server (rclone) and S3 (moto, with and without Object
# Lock). A sampler reads every process's argv during the whole run and proves the password never appears there.
set -eu -o pipefail
source ../setup_argv_sampler/files/argv_sampler.sh

argv_sampler_workdir restoreops-restic
printf 'workdir: "%s"\nrestic_password: "%s"\n' "${WORKDIR}" "${PASSWORD}" > "${WORKDIR}/vars.yml"

argv_sampler_start "${WORKDIR}" "${WORKDIR}/password" restic

ansible-playbook -i "${INVENTORY_PATH}" runme.yml -e "@${WORKDIR}/vars.yml" -v "$@" | tee "${WORKDIR}/playbook.log"

argv_sampler_stop_and_check 10 "${WORKDIR}/playbook.log"
