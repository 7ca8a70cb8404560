#!/usr/bin/env bash
# The execution-environment metadata (meta/execution-environment.yml, meta/ee-requirements.txt, meta/ee-bindep.txt)
# and the example definition for users (docs/ee/) checked with ansible-builder introspect and create; with
# EE_IMAGE_TEST=1 also an EE image built from a local Debian base image and the audit run in it by ansible-runner.
# See files/check_ee.py.
set -eu -o pipefail

WORKDIR="$(mktemp -d /tmp/restoreops-ee.XXXXXX)"
trap 'rm -rf "${WORKDIR}"' EXIT

# The collection root: the first directory above this one that holds galaxy.yml (ansible-test runs the target from
# a copy below tests/output/.tmp/integration/ of the collection tree).
root="$(pwd)"
while [ "${root}" != / ] && [ ! -f "${root}/galaxy.yml" ]; do root="$(dirname "${root}")"; done
[ -f "${root}/galaxy.yml" ] || { echo "no galaxy.yml above $(pwd)" >&2; exit 1; }

python3 files/check_ee.py "${WORKDIR}" "${root}"
