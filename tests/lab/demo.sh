#!/usr/bin/env bash
# `make demo`: the lab drill. Until restore_server lands this does what exists for real, and says exactly that:
# it starts a fresh replacement container, converges the collection's roles onto it through the docker connection,
# verifies them, and prints a summary. KEEP=1 leaves the container running.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB="$HERE/lab"
NAME=rdr-replacement
WORK="$ROOT/.lab/demo"
mkdir -p "$WORK"
start=$SECONDS

cleanup() {
  local rc=$?
  if [ "${KEEP:-0}" != 1 ]; then "$LAB" rm "$NAME"; fi
  exit $rc
}
trap cleanup EXIT INT TERM

echo "== 1. fresh replacement host: container $NAME from restoreops-dr/systemd:current (host network for apt)"
"$LAB" run "$NAME" restoreops-dr/systemd:current --network host

cat > "$WORK/inventory.yml" <<YML
all:
  children:
    replacement:
      hosts:
        $NAME:
          ansible_connection: community.docker.docker
          ansible_python_interpreter: /usr/bin/python3
YML

echo "== 2. converge the collection's roles onto it (playbooks/lab/demo.yml)"
ANSIBLE_INJECT_FACT_VARS=false ansible-playbook -i "$WORK/inventory.yml" "$ROOT/playbooks/lab/demo.yml" \
  -e "demo_summary_file=$WORK/summary.json"

echo
echo "== summary"
python3 - "$WORK/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"host:            {s['host']}")
print(f"roles converged: {', '.join(s['roles'])}")
for tool, version in sorted(s["versions"].items()):
    print(f"  {tool:<18} {version}")
print("not yet in the demo: backup, destroy, restore_server.yml, drill report (restore_server is not built yet)")
PY
echo "total: $((SECONDS - start)) s"
