#!/usr/bin/env bash
# playbooks/audit_policy.yml in check mode against three local hosts (compliant, broken, waived) built from real
# borg, restic, PostgreSQL and rsnapshot data; see files/check_audit.py.
set -eu -o pipefail

WORKDIR="$(mktemp -d /tmp/restoreops-audit.XXXXXX)"
trap 'rm -rf "${WORKDIR}"' EXIT

# The hosts use the interpreter ansible-test chose for testhost (it has the collection's Python requirements).
AUDIT_PYTHON="$(ansible-inventory -i "${INVENTORY_PATH}" --host testhost \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["ansible_python_interpreter"])')"
export AUDIT_PYTHON
python3 files/check_audit.py "${WORKDIR}" restoreops.dr.audit_policy
