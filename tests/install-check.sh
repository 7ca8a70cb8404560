#!/usr/bin/env bash
# Install the built collection tarball into an empty collections path, with the dependencies that galaxy.yml declares
# resolved by ansible-galaxy from local artifacts (Galaxy is unreachable here), and prove that every role and module
# resolves by FQCN from that path alone.
#   tests/install-check.sh [OUT]      OUT: the directory `make build` wrote the tarball to (default build)
# The dependency artifacts are built from the copies the `ansible` bundle installed in this venv
# (tests/tools/collection_artifact.py). Ansible is told not to look at Python's sys.path, so nothing resolves from the
# bundle itself.
set -euo pipefail
out=${1:-build}
tarball=$(ls -1 "$out"/restoreops-dr-*.tar.gz | tail -n 1)
work=$(mktemp -d)
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
dest="$work/collections"
artifacts="$work/artifacts"
mkdir -p "$dest" "$artifacts"
export ANSIBLE_COLLECTIONS_PATH="$dest" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=False

# The declared dependencies (name and range) from galaxy.yml, and an artifact of each from the bundle's copy.
mapfile -t deps < <(python3 - <<'PY'
import yaml
for name, spec in (yaml.safe_load(open("galaxy.yml")).get("dependencies") or {}).items():
    print(f"{name} {spec}")
PY
)
bundle=$(python3 -c 'import ansible, os; print(os.path.dirname(os.path.dirname(ansible.__file__)))')
for dep in "${deps[@]}"; do
  name=${dep%% *}
  src="$bundle/ansible_collections/${name/.//}"
  [ -f "$src/MANIFEST.json" ] || { echo "dependency $name is not in the ansible bundle ($src)"; exit 1; }
  python3 tests/tools/collection_artifact.py "$src" "$artifacts" >/dev/null
done
# A requirements file that names the collection and every dependency artifact: ansible-galaxy's resolver checks each
# artifact's version against the range the collection declares, offline.
python3 - "$tarball" "$artifacts" "${deps[@]}" > "$work/requirements.yml" <<'PY'
import glob, sys
tarball, artifacts = sys.argv[1], sys.argv[2]
print("collections:")
print(f"  - name: {tarball}\n    type: file")
for path in sorted(glob.glob(f"{artifacts}/*.tar.gz")):
    print(f"  - name: {path}\n    type: file")
PY
ansible-galaxy collection install --offline -p "$dest" -r "$work/requirements.yml" > "$work/install.log" 2>&1 \
  || { cat "$work/install.log"; exit 1; }
installed=$(ansible-galaxy collection list -p "$dest" 2>/dev/null)
for dep in "restoreops.dr" "${deps[@]}"; do
  name=${dep%% *}
  grep -q "^$name " <<< "$installed" || { echo "$name is not installed in $dest"; echo "$installed"; exit 1; }
done
# The resolver really reads the ranges: the same collection declaring a range that no artifact meets is refused.
bad="$work/bad"
mkdir -p "$bad/src"
tar -xzf "$tarball" -C "$bad/src"
python3 - "$bad/src/MANIFEST.json" "${deps[0]%% *}" <<'PY2'
import json, sys
path, name = sys.argv[1], sys.argv[2]
manifest = json.load(open(path))
manifest["collection_info"]["dependencies"][name] = ">=999.0.0"
json.dump(manifest, open(path, "w"), indent=4)
PY2
(cd "$bad/src" && ls -A | tar -czf "$bad/$(basename "$tarball")" -T -)
sed "s|$tarball|$bad/$(basename "$tarball")|" "$work/requirements.yml" > "$bad/requirements.yml"
if ANSIBLE_COLLECTIONS_PATH="$bad/path" ansible-galaxy collection install --offline -p "$bad/path" -r "$bad/requirements.yml" \
     > "$bad/install.log" 2>&1; then
  echo "a dependency range no artifact meets (${deps[0]%% *} >=999.0.0) was not refused"; exit 1
fi
grep -q "${deps[0]%% *}" "$bad/install.log" || { cat "$bad/install.log"; exit 1; }

roles=$(cd roles && ls -d */ | tr -d /)
for r in $roles; do
  test -f "$dest/ansible_collections/restoreops/dr/roles/$r/meta/argument_specs.yml" \
    || { echo "role $r missing from the installed collection"; exit 1; }
  ansible-doc -t role "restoreops.dr.$r" >/dev/null \
    || { echo "role restoreops.dr.$r does not resolve from the installed collection"; exit 1; }
done
modules=$(cd plugins/modules && ls *.py 2>/dev/null | grep -v '^__' | sed 's/\.py$//' || true)
for m in $modules; do
  ansible-doc -t module "restoreops.dr.$m" >/dev/null \
    || { echo "module restoreops.dr.$m does not resolve from the installed collection"; exit 1; }
done
# Every role by FQCN in a playbook, and one module of each dependency the roles call, parse against the installed
# copies and nothing else.
{
  echo "- name: Probe"
  echo "  hosts: localhost"
  echo "  gather_facts: false"
  echo "  roles:"
  for r in $roles; do echo "    - role: restoreops.dr.$r"; done
} > "$work/probe.yml"
ansible-playbook --syntax-check -i localhost, "$work/probe.yml" >/dev/null
for m in community.postgresql.postgresql_query community.crypto.openssh_keypair ansible.posix.authorized_key \
         amazon.aws.s3_bucket; do
  ansible-doc -t module "$m" >/dev/null || { echo "dependency module $m does not resolve"; exit 1; }
done
echo "installed $(basename "$tarball") with $(for d in "${deps[@]}"; do printf '%s ' "${d%% *}"; done)from local" \
  "artifacts into an empty path: roles [$(echo $roles)] modules [$(echo $modules)] resolve by FQCN"
