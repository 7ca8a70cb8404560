#!/usr/bin/env bash
# The DR drill on the lab: build "production" (PostgreSQL with WAL archiving + an application with its own user and
# data), back it up with the collection's roles (restic and borg, both repositories append-only on the offsite
# store; keys escrowed on the controller, on their own filesystem), destroy it, start a fresh replacement, run
# playbooks/restore_server.yml, verify from outside, print the report.
#
#   drill.sh                  the demo: 64 MiB of application data, one straight restore from restic
#   drill.sh --tool borg      the same, restored from borg (or DRILL_TOOL=borg; default restic)
#   drill.sh --small          for `make test`: 8 MiB, and the faults first (production target refused, dependency
#                             cycle, missing escrowed key, restore killed in the data phase, missing WAL segment) on
#                             restic, then the resumed restic restore must PASS; then the replacement is destroyed and
#                             a fresh one is restored from borg, which must PASS the same verification (both tools
#                             every time, so --tool does not apply)
# KEEP=1 leaves the containers running. Expects the lab to be up (tests/lab/lab with-lab).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB="$HERE/lab"
D="$ROOT/.lab/drill"
PROD=rdr-prod
NEW=rdr-new
usage() { echo "usage: drill.sh [--small] [--tool restic|borg]   (or DRILL_TOOL=restic|borg)" >&2; exit 2; }
SMALL=0; TOOL=${DRILL_TOOL:-restic}
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SMALL=1 ;;
    --tool) [ $# -ge 2 ] || usage; TOOL=$2; shift ;;
    --tool=*) TOOL=${1#--tool=} ;;
    *) usage ;;
  esac
  shift
done
case "$TOOL" in restic|borg) ;; *) echo "drill.sh: the tool is restic or borg, not '$TOOL'" >&2; usage ;; esac
if [ "$SMALL" = 1 ]; then DATA_MIB=${DRILL_DATA_MIB:-8}; else DATA_MIB=${DRILL_DATA_MIB:-64}; fi
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$ROOT/.cache/collections}"
export ANSIBLE_INJECT_FACT_VARS=False ANSIBLE_DEPRECATION_WARNINGS=False ANSIBLE_LOCALHOST_WARNING=False
# One docker exec per task instead of four (temp dir, copy, run, clean up): most of a drill is per-task overhead.
export ANSIBLE_PIPELINING="${ANSIBLE_PIPELINING:-True}"
PLAY=(ansible-playbook -i "$D/inventory.yml")
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\nDRILL FAILED: %s\n' "$*" >&2; exit 1; }
drill_start=$SECONDS

cleanup() {
  local rc=$?
  if [ "${KEEP:-0}" != 1 ]; then
    "$LAB" rm "$PROD" "$NEW"
    if mountpoint -q "$D/escrow"; then umount "$D/escrow"; fi
  fi
  exit $rc
}
trap cleanup EXIT INT TERM

say "setting up the offsite store and the escrow (its own tmpfs: keys never share a filesystem with the data)"
mountpoint -q "$D/escrow" 2>/dev/null && umount "$D/escrow"
rm -rf "$D"; mkdir -p "$D/offsite" "$D/escrow" "$D/hidden"
mount -t tmpfs -o size=16m,mode=0700 restoreops-escrow "$D/escrow"
umask 077; head -c 24 /dev/urandom | base64 > "$D/restic.secret"; head -c 24 /dev/urandom | base64 > "$D/borg.secret"
umask 022
cat > "$D/inventory.yml" <<YML
all:
  vars:
    drill_dir: $D
    drill_offsite: $D/offsite
    drill_escrow: $D/escrow
    drill_secret_file: $D/restic.secret
    drill_borg_secret_file: $D/borg.secret
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: $(command -v python)
  children:
    production:
      hosts:
        $PROD:
          ansible_connection: community.docker.docker
          ansible_python_interpreter: /usr/bin/python3
    replacement:
      hosts:
        $NEW:
          ansible_connection: community.docker.docker
          ansible_python_interpreter: /usr/bin/python3
YML

say "production: $PROD (PostgreSQL 15 + application, ${DATA_MIB} MiB of data, backed up with restic and borg, keys escrowed)"
"$LAB" run "$PROD" restoreops-dr/tools:current -v "$D/offsite:/offsite"
"${PLAY[@]}" "$ROOT/playbooks/lab/drill_production.yml" -e "drill_data_mib=$DATA_MIB"
expected_orders=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["orders"])' "$D/expected.json")
setup_seconds=$((SECONDS - drill_start))

say "incident: $PROD is destroyed"
incident=$(date -u +%Y-%m-%dT%H:%M:%S+0000)
docker rm -f "$PROD" >/dev/null
echo "production destroyed at $incident; it held $expected_orders orders"

fresh_replacement() {
  say "replacement: $NEW, a fresh host whose UID 1500 already belongs to another user"
  "$LAB" rm "$NEW"
  "$LAB" run "$NEW" restoreops-dr/tools:current -v "$D/offsite:/offsite"
  docker exec "$NEW" useradd --uid 1500 --no-create-home --shell /usr/sbin/nologin builder
}
restore_cmd() { # TOOL -> RESTORE (the restore command; borg's settings are an overlay on the common ones), REPORT
  RESTORE=("${PLAY[@]}" "$ROOT/playbooks/restore_server.yml" -e "@$ROOT/playbooks/lab/drill_restore_vars.yml")
  [ "$1" = restic ] || RESTORE+=(-e "@$ROOT/playbooks/lab/drill_restore_vars_$1.yml")
  RESTORE+=(-e "drill_expected_orders=$expected_orders" -e "restore_server_incident_time=$incident")
  REPORT="$D/reports/$1/$NEW/report.json"
}
declare -A RTO=()
restore_and_verify() { # TOOL: the restore, the independent verification, the report; records the wall-clock RTO
  local tool=$1 start
  restore_cmd "$tool"
  say "restore from $tool: ansible-playbook playbooks/restore_server.yml (replacement group: $NEW)"
  start=$SECONDS
  "${RESTORE[@]}"
  RTO[$tool]=$((SECONDS - start))

  say "independent verification ($tool)"
  "${PLAY[@]}" "$ROOT/playbooks/lab/drill_verify.yml" | grep -E "msg|ok=|failed=" || fail "$tool: verification failed"
  grep -q '"result": "PASS"' "$REPORT" || fail "$tool: the report does not say PASS"

  say "drill report ($tool)"
  python3 - "$REPORT" "${RTO[$tool]}" "$tool" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rpo = r["rpo"]
print(f"tool:            {sys.argv[3]}")
print(f"result:          {r['result']}")
print(f"RTO (measured):  {r['rto_seconds']} s to service (sanity passed); protected again after "
      f"{r['protected_seconds']} s; {sys.argv[2]} s wall clock for the restore play")
print(f"restore point:   {r['restore_point'].get('name')} taken {rpo['restore_point_time']}")
print(f"RPO files:       {rpo['files_seconds']} s before the incident ({rpo['incident']})")
print(f"RPO database:    {rpo['postgresql_seconds']} s (last transaction {rpo['postgresql_last_transaction']} UTC, "
      f"WAL {rpo['postgresql_last_wal']})")
print("phases:")
for p in r["phases"]:
    print(f"  {p['name']:<11} {p['seconds']:>7.1f} s  {p['status']}")
print("checks:")
for c in r["checks"]:
    mark = "ok " if c["ok"] else ("FAIL" if c.get("required", True) else "warn")
    print(f"  [{mark}] {c['phase']}: {c['name']}" + (f" - {c['detail']}" if c.get("detail") else ""))
PY
  echo "report: $(dirname "$REPORT")/report.md (timeline: timeline.svg)"
}

fresh_replacement
restore_cmd restic
expect_failure() { # NAME PATTERN CMD... : the command must fail and print PATTERN
  local name=$1 pattern=$2; shift 2
  local log="$D/fault-$name.log"
  if "$@" >"$log" 2>&1; then fail "fault '$name': the restore succeeded but must not"; fi
  grep -Eq "$pattern" "$log" || { tail -40 "$log"; fail "fault '$name': '$pattern' not in the output"; }
  echo "fault '$name': refused as expected ($(grep -Eo "$pattern" "$log" | head -1))"
}
nothing_moved() {
  docker exec "$NEW" test ! -e /var/lib/restoreops/staging || fail "$1: data moved (staging exists)"
  docker exec "$NEW" test ! -e /srv/app || fail "$1: /srv/app exists"
}

if [ "$SMALL" = 1 ]; then
  say "fault 1: a target marked as production is refused and untouched"
  expect_failure production "marked as production" "${RESTORE[@]}" -e restore_server_target_is_production=true
  nothing_moved production

  say "fault 2: a dependency cycle among the services is a clear error, before anything moves"
  expect_failure cycle "dependency cycle among [a-z]+ -> [a-z]+ -> [a-z]+" "${RESTORE[@]}" \
    -e '{"restore_server_services": [{"name": "a", "after": ["b"]}, {"name": "b", "after": ["a"]}]}'
  nothing_moved cycle

  say "fault 3: a missing escrowed key aborts before any data moves"
  mv "$D/escrow/keys/$PROD/files.restic.pass" "$D/hidden/"
  expect_failure key "Keys first: (files failed the escrow check|the escrowed password of files cannot be read)" "${RESTORE[@]}"
  mv "$D/hidden/files.restic.pass" "$D/escrow/keys/$PROD/"
  docker exec "$NEW" test ! -e /srv/app || fail "key: /srv/app exists"

  say "fault 4: the restore is killed in the data phase (restic dies mid-transfer)"
  slow=$(python3 -c 'import yaml,json,sys; v=yaml.safe_load(open(sys.argv[1]))["restore_server_source"]; v["limit_download"]=256; print(json.dumps({"restore_server_source": v}))' "$ROOT/playbooks/lab/drill_restore_vars.yml")
  "${RESTORE[@]}" -e "$slow" >"$D/fault-killed.log" 2>&1 &
  play=$!
  for _ in $(seq 1 600); do
    if docker exec "$NEW" sh -c 'ls /var/lib/restoreops/staging 2>/dev/null | grep -qv "^context" && pgrep -x restic' >/dev/null 2>&1; then
      sleep 2; docker exec "$NEW" pkill -KILL -x restic && break
    fi
    kill -0 "$play" 2>/dev/null || break
    sleep 0.2
  done
  if wait "$play"; then fail "fault 'killed': the restore succeeded although restic was killed"; fi
  # The restore's own message (restic's failure), not a later task tripping over a missing result.
  grep -Eq "Restore FAILED in phase data: .*(restic|rc=)" "$D/fault-killed.log" || { tail -30 "$D/fault-killed.log"; fail "killed: not reported as a data-phase failure of restic"; }
  grep -q '"result": "FAIL"' "$REPORT" || fail "killed: the report does not say FAIL"
  docker exec "$NEW" test ! -e /srv/app || fail "killed: partial data was put in place"
  echo "fault 'killed': data phase failed, report says FAIL, nothing half-restored in place"

  say "fault 5: a missing WAL segment stops the PostgreSQL phase, named; no service starts"
  segment=$(ls "$D/offsite/pg/wal" | grep -E '^[0-9A-F]{24}$' | sort | tail -n 2 | head -n 1)
  mv "$D/offsite/pg/wal/$segment" "$D/hidden/"
  # A target time after the gap: the run resumes the interrupted restore, whose recovery to the end of the archive
  # completed beside the killed file restore and would be kept; a new target makes it recover again, across the gap.
  expect_failure wal "WAL segment $segment is missing|$segment was never archived" "${RESTORE[@]}" \
    -e "restore_server_pg_target_time=$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  mv "$D/hidden/$segment" "$D/offsite/pg/wal/"
  state=$(docker exec "$NEW" systemctl is-active restoreops-demo-app.service || true)
  [ "$state" != active ] || fail "wal: the application was started on a partial database"
  grep -q '"result": "FAIL"' "$REPORT" || fail "wal: the report does not say FAIL"
  echo "the application was not started ($state); the report says FAIL"
  say "the re-run resumes the interrupted restore and must PASS"
  restore_and_verify restic

  # The same loss restored from the other backup: a fresh replacement, no faults, the same verification.
  say "second replacement: $NEW is destroyed; a fresh one is restored from borg"
  fresh_replacement
  restore_and_verify borg
else
  restore_and_verify "$TOOL"
fi

say "drill timings"
echo "setup (production built and backed up): ${setup_seconds} s"
for tool in restic borg; do
  [ -z "${RTO[$tool]:-}" ] || printf 'restore from %-6s (wall clock):   %s s\n' "$tool" "${RTO[$tool]}"
done
echo "drill total:                            $((SECONDS - drill_start)) s"
