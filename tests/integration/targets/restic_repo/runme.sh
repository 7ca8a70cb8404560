#!/usr/bin/env bash
# restic_repo against the real restic: four-step runs on a new local and a new REST repository (rclone), a stale lock
# of a killed restic removed, a live lock refused, a wrong password a clear error, a check. A sampler reads every
# process's argv during the whole run and proves the password never appears there.
set -eu -o pipefail
source ../setup_argv_sampler/files/argv_sampler.sh

argv_sampler_workdir restoreops-restic-repo
printf 'workdir: "%s"\n' "${WORKDIR}" > "${WORKDIR}/vars.yml"

argv_sampler_start "${WORKDIR}" "${WORKDIR}/password" restic

ansible-playbook -i "${INVENTORY_PATH}" runme.yml -e "@${WORKDIR}/vars.yml" -v "$@" | tee "${WORKDIR}/playbook.log"

argv_sampler_stop_and_check 10 "${WORKDIR}/playbook.log"
