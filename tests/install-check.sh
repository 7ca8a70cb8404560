#!/usr/bin/env bash
# Install the built collection tarball into an empty collections path and prove its content resolves by FQCN.
set -euo pipefail
out=${1:-build}
tarball=$(ls -1 "$out"/restoreops-dr-*.tar.gz | tail -n 1)
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
ANSIBLE_COLLECTIONS_PATH="$dest" ansible-galaxy collection install --offline --force -p "$dest" "$tarball" >/dev/null
ANSIBLE_COLLECTIONS_PATH="$dest" ansible-galaxy collection list restoreops.dr -p "$dest" | grep "restoreops.dr" >/dev/null
roles=$(cd roles && ls -d */ | tr -d /)
for r in $roles; do
  test -f "$dest/ansible_collections/restoreops/dr/roles/$r/meta/argument_specs.yml" \
    || { echo "role $r missing from the installed collection"; exit 1; }
done
modules=$(cd plugins/modules && ls *.py 2>/dev/null | grep -v '^__' | sed 's/\.py$//' || true)
for m in $modules; do
  ANSIBLE_COLLECTIONS_PATH="$dest" ansible-doc -t module "restoreops.dr.$m" >/dev/null \
    || { echo "module restoreops.dr.$m does not resolve from the installed collection"; exit 1; }
done
# A playbook that uses a role by FQCN parses against the installed copy (and nothing else).
cat > "$dest/probe.yml" <<'YML'
- name: Probe
  hosts: localhost
  gather_facts: false
  roles:
    - role: restoreops.dr.backup_tools
YML
ANSIBLE_COLLECTIONS_PATH="$dest" ansible-playbook --syntax-check -i localhost, "$dest/probe.yml" >/dev/null
echo "installed $(basename "$tarball"): roles [$(echo $roles)] modules [$(echo $modules)] resolve by FQCN"
