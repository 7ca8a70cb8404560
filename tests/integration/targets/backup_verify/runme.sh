#!/usr/bin/env bash
# backup_verify against real borg 1.2 and restic 0.14: the role and playbooks/verify_backups.yml on this host (no
# systemd here), then the script the role installed on every outcome, with a webhook receiver on 127.0.0.1.
set -eu -o pipefail

WORKDIR="$(mktemp -d /tmp/restoreops-backup-verify.XXXXXX)"
trap 'rm -rf "${WORKDIR}"' EXIT

mkdir -p "${WORKDIR}/play"
HOOK="http://127.0.0.1:9/services/$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
printf 'workdir: "%s"\nhook_url: "%s"\n' "${WORKDIR}/play" "${HOOK}" > "${WORKDIR}/vars.yml"
ansible-playbook -i "${INVENTORY_PATH}" runme.yml -e "@${WORKDIR}/vars.yml" "$@" | tee "${WORKDIR}/role.log"

# The on-demand playbook, by its FQCN, with the variables the role run left behind.
ansible-playbook -i "${INVENTORY_PATH}" restoreops.dr.verify_backups -e verify_backups_hosts=testhost \
    -e "@${WORKDIR}/play/verify-vars.yml" "$@" | tee "${WORKDIR}/playbook.log"
grep -q 'db1-borg: PASS' "${WORKDIR}/playbook.log"

if grep -qF "${HOOK}" "${WORKDIR}/role.log" "${WORKDIR}/playbook.log"; then
    echo "the webhook URL appeared in the play output" >&2
    exit 1
fi

# Every outcome of the installed script.
python3 files/check_verify.py "${WORKDIR}/play/libexec/backup-verify" "${WORKDIR}/script"
echo "backup_verify: role, playbook and script as expected"
