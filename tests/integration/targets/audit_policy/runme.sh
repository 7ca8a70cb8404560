#!/usr/bin/env bash
# playbooks/audit_policy.yml in check mode against three local hosts (compliant, broken, waived) built from real
# borg, restic, PostgreSQL and rsnapshot data (files/check_audit.py); then the same audit through ansible-runner on a
# private data directory, as AWX runs it, checked from the runner's artifacts and job events (files/runner_checks.py).
set -eu -o pipefail

WORKDIR="$(mktemp -d /tmp/restoreops-audit.XXXXXX)"
trap 'rm -rf "${WORKDIR}"' EXIT

# The hosts use the interpreter ansible-test chose for testhost (it has the collection's Python requirements).
AUDIT_PYTHON="$(ansible-inventory -i "${INVENTORY_PATH}" --host testhost \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["ansible_python_interpreter"])')"
export AUDIT_PYTHON
# The collection root (ansible-test runs the target from a copy below tests/output/.tmp/integration/ of the tree):
# files/runner_checks.py imports the ansible-runner job helpers it shares with the lab drill from tests/lab/.
root="$(pwd)"
while [ "${root}" != / ] && [ ! -f "${root}/galaxy.yml" ]; do root="$(dirname "${root}")"; done
[ -f "${root}/tests/lab/runner_job.py" ] || { echo "no tests/lab/runner_job.py above $(pwd)" >&2; exit 1; }
export PYTHONPATH="${root}/tests/lab${PYTHONPATH:+:${PYTHONPATH}}"
python3 files/check_audit.py "${WORKDIR}" restoreops.dr.audit_policy
