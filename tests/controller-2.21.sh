#!/usr/bin/env bash
# The ansible-core 2.21 line of `make test` (or `make test-2.21` alone), run from the Debian 13 controller container
# (restoreops-dr/controller-2.21, Python 3.13, the venv of requirements-2.21.txt): the unit tests, ansible-test sanity
# (the ignore files stay empty), the integration targets against Debian 13's tools (borg 1.4, restic 0.18,
# PostgreSQL 17, rsnapshot 1.5) and the fleet drill's small version on Debian 13 hosts (DRILL_SCENARIO=fleet: the
# database host from borg over SSH, the application host and the worker from restic on S3). Unit and integration run
# with `--network none`: the container has a loopback of its own, so the targets' fixed ports never meet the host's. Sanity needs the package index (below); the drill uses host
# networking, as every lab host does.
# Each part runs to its end even after a failure; output in .lab/logs/2.21-<part>.log; the outcome goes to
# $LAB_SUMMARY (see tests/run-lab-suites.sh). Expects the lab to be up (tests/lab/lab with-lab).
# PARTS="unit sanity integration drill" (the default) chooses parts; TARGETS narrows the integration targets.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=tests/parts.sh
source tests/parts.sh

VENV=/opt/restoreops/venv-2.21
ATROOT=$ROOT/.cache/ansible-test-2.21
TREE=$ATROOT/ansible_collections/restoreops/dr
start=$SECONDS
if ! tests/lab/lab images controller host-trixie > "$logs/2.21-images.log" 2>&1; then
  cat "$logs/2.21-images.log"
  echo "2.21-images FAILED ($((SECONDS - start)) s): the controller image could not be built" >> "$summary"
  exit 1
fi
echo "2.21-images ready ($((SECONDS - start)) s)" >> "$summary"
IMAGE=$(tests/lab/lab image-name controller)
# ansible-test wants a copy of the collection with a git repository of its own: made here, where the worktree's git
# is (the container sees only the working tree).
make --no-print-directory test-tree ATROOT="$ATROOT" > "$logs/2.21-test-tree.log" 2>&1 \
  || { cat "$logs/2.21-test-tree.log"; echo "2.21-test-tree FAILED" >> "$summary"; exit 1; }

in_controller() { # CMD...: in a throw-away controller container without network, the worktree at the same path.
  # --init reaps the processes the targets kill; SYS_ADMIN lets key_escrow_check mount its tmpfs, as on the host.
  # A link with a (documentation-range) MAC and a loopback-range address in the container's own network namespace
  # gives borg a stable host id (<hostname>@<MAC>) across processes, as on a real host: borg_repo's stale-lock tests
  # rely on it. Nothing is routed anywhere: the namespace has no other link.
  docker run --rm --init --network none --cap-add SYS_ADMIN --cap-add NET_ADMIN --label io.restoreops.lab=1 \
    -v "$ROOT:$ROOT" -w "$ROOT" "$IMAGE" sh -c '
      ip link add restoreops0 address 00:00:5e:00:53:01 type veth peer name restoreops1 &&
      ip addr add 127.0.0.77/32 dev restoreops0 && ip link set restoreops0 up && ip link set restoreops1 up &&
      exec "$@"' in_controller "$@"
}
# ansible-test sanity installs each test's pinned requirements into a venv of its own with pip, so it needs the
# package index: host networking (it serves nothing), the machine's pip CA bundle and index in a pip.conf (ansible-test
# passes no PIP_* variables on), and a cache of those venvs in .cache/controller-2.21 that later runs reuse.
pip_setting() { # NAME: this machine's pip setting (environment first)
  local env_name; env_name="PIP_$(echo "$1" | tr 'a-z-' 'A-Z_')"
  if [ -n "${!env_name:-}" ]; then echo "${!env_name}"; else python3 -m pip config get "global.$1" 2>/dev/null || true; fi
}
sanity_in_controller() { # CMD...
  local cache="$ROOT/.cache/controller-2.21" cert index
  mkdir -p "$cache/ansible"
  local args=(--network host -v "$cache/ansible:/root/.ansible" -v "$cache/pip.conf:/etc/pip.conf:ro")
  cert=$(pip_setting cert); index=$(pip_setting index-url)
  echo "[global]" > "$cache/pip.conf"
  if [ -n "$cert" ] && [ -f "$cert" ]; then
    args+=(-v "$cert:/etc/restoreops-pip-ca.crt:ro")
    echo "cert = /etc/restoreops-pip-ca.crt" >> "$cache/pip.conf"
  fi
  case "$index" in http://*|https://*) echo "index-url = $index" >> "$cache/pip.conf" ;; esac
  docker run --rm --init "${args[@]}" --label io.restoreops.lab=1 -v "$ROOT:$ROOT" -w "$ROOT" "$IMAGE" "$@"
}
want() { case " ${PARTS:-unit sanity integration drill} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
want unit && part 2.21-unit in_controller env PYTEST_ADDOPTS="-p no:cacheprovider" \
  make --no-print-directory -o "$VENV/.installed" VENV="$VENV" unit
want sanity && part 2.21-sanity sanity_in_controller bash -c "set -e; tests/sanity-bootstrap.sh; cd '$TREE'
  ansible-test sanity --local --python 3.13 --color no
  for f in tests/sanity/ignore-*.txt; do test ! -s \"\$f\" || { echo \"\$f is not empty\"; exit 1; }; done"
want integration && part 2.21-integration in_controller bash -c \
  "cd '$TREE' && ansible-test integration --local --python 3.13 --color no --continue-on-error ${TARGETS:-}"
# The fleet drill's small version (three Debian 13 hosts lost together, restored in dependency order; the database
# host from borg over SSH, the others from restic on S3; a cycle and a failed dependency first): the host line's
# drill covers the single-host restores from restic and borg on Debian 12.
want drill && part 2.21-drill-fleet-debian13 env DRILL_SCENARIO=fleet \
  tests/lab/drill.sh --small --tool borg --os debian13 --controller 2.21 --slot 2
exit $rc
