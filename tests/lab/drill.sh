#!/usr/bin/env bash
# The DR drill on the lab, as a real disaster: every host is a systemd container on host networking whose sshd
# listens only on its own loopback address, reached over SSH with a key made for this run. "Production" (PostgreSQL
# with WAL archiving + an application with its own user and data) is backed up by the collection's roles to three
# remote repositories it cannot destroy: restic to S3 (moto_server, a bucket with Object Lock), restic to the backup
# server's append-only REST server (rclone serve restic --append-only), borg over SSH to the backup server (forced
# `borg serve --append-only --restrict-to-path`). The keys go to the escrow host. The drill proves from outside that
# production's credentials cannot delete, destroys production, starts a fresh replacement, runs the monthly drill's
# playbook (playbooks/dr_drill.yml, which restores with the restore_server role) over SSH, verifies from outside and
# prints the report. Every run of dr_drill.yml appends to a drill history kept across drills (DRILL_HISTORY; default
# .lab/drill-history-<slot>.jsonl), and the drill checks it and the trend picture beside the report.
#
#   drill.sh                  the demo: 64 MiB of application data on Debian 13, one restore from restic on S3
#   --tool borg               restore from borg over SSH instead (or DRILL_TOOL=borg; default restic)
#   --backend rest            restic from the REST server instead of S3 (or DRILL_BACKEND=rest; default s3)
#   --os debian12             hosts on Debian 12 instead of 13 (or DRILL_OS=debian12; default debian13)
#   --controller 2.21         run Ansible in the Debian 13 controller container with ansible-core 2.21 (or
#                             DRILL_CONTROLLER=2.21; default host: this machine's venv, ansible-core 2.19)
#   --small                   for `make test`: 8 MiB, the faults first (production target refused, dependency cycle,
#                             missing escrowed key, a staging file system too small and then full, restore killed in
#                             the data phase, missing WAL segment, a required dependency probe refused: no
#                             cut-over, a restore point older than the RPO refused unless forced) on restic, then the
#                             resumed restic restore must PASS; then the replacement is destroyed and a fresh one is
#                             restored from borg, which must PASS the same verification (--tool does not apply). Ansible runs with -vvv, and at the
#                             end every output, report, journal and sampled command line is scanned for the drill's
#                             secrets (tests/lab/secret_scan.py): one hit fails the drill
#   --small --no-faults       8 MiB, one restore from restic (the backend given) and one from borg, no faults
#   --runner                  the restore that must PASS (borg's with --small; the tool's otherwise) runs through
#                             `ansible-runner run` on a private data directory, as AWX runs a job (or DRILL_RUNNER=1;
#                             controller host only): first two jobs without restore_server_report_dir (dr_drill.yml
#                             and restore_server.yml) that must be refused at their start, nothing changed; then the
#                             restore, checked from the runner's artifacts: status, rc, the report, the PASS lines and
#                             the progress lines in the job events, and none of the drill's secrets (given as extra
#                             variables) in any artifact file (tests/lab/runner_job.py)
#   DRILL_SCENARIO=ransomware the ransomware response instead of the server loss (tests/lab/ransomware.sh): the
#                             attack, then playbooks/ransomware_response.yml end to end and its proofs (restic,
#                             the backend given; --small gives 8 MiB of data, --tool does not apply)
#   DRILL_SCENARIO=fleet      a rack lost (tests/lab/fleet.sh): the PostgreSQL host, an application host that needs
#                             it and a worker that needs the application, restored together onto three fresh
#                             replacements by playbooks/restore_server.yml, services in dependency order across
#                             hosts (restore_server_after_hosts), the fleet report checked; --small adds a cycle
#                             across hosts and a failed dependency (--tool and --backend: the database host's
#                             source; the two others restore from restic on S3). It adds slot addresses +5 to +8
#   --slot N                  which set of lab addresses and container names, 0 to 9 (or DRILL_SLOT; default 1):
#                             drills with different slots run side by side. Slot N uses 127.0.0.(10N+10) to (10N+14).
# Every restore cuts over (DNS record app.lab.restoreops.test in the lab's BIND, updated with TSIG) only after its
# sanity checks passed, probes a third-party API with its token, notifies a webhook and a mail sink, and writes
# Prometheus metrics (checked with promtool).
# KEEP=1 leaves the containers, moto_server, named and the stubs running. Expects the lab to be up (tests/lab/lab with-lab).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB="$HERE/lab"
usage() {
  echo "usage: drill.sh [--small [--no-faults]] [--tool restic|borg] [--backend s3|rest] [--os debian12|debian13]" \
       "[--controller host|2.21] [--slot N] [--runner]" >&2
  exit 2
}
SMALL=0; FAULTS=1
TOOL=${DRILL_TOOL:-restic}; BACKEND=${DRILL_BACKEND:-s3}; OS=${DRILL_OS:-debian13}
CONTROLLER=${DRILL_CONTROLLER:-host}; SLOT=${DRILL_SLOT:-1}; RUNNER=${DRILL_RUNNER:-0}
while [ $# -gt 0 ]; do
  case "$1" in
    --small) SMALL=1 ;;
    --no-faults) FAULTS=0 ;;
    --runner) RUNNER=1 ;;
    --tool|--backend|--os|--controller|--slot)
      [ $# -ge 2 ] || usage
      case "$1" in --tool) TOOL=$2 ;; --backend) BACKEND=$2 ;; --os) OS=$2 ;; --controller) CONTROLLER=$2 ;;
                   --slot) SLOT=$2 ;; esac
      shift ;;
    --tool=*) TOOL=${1#--tool=} ;;
    --backend=*) BACKEND=${1#--backend=} ;;
    --os=*) OS=${1#--os=} ;;
    --controller=*) CONTROLLER=${1#--controller=} ;;
    --slot=*) SLOT=${1#--slot=} ;;
    *) usage ;;
  esac
  shift
done
case "$TOOL" in restic|borg) ;; *) echo "drill.sh: the tool is restic or borg, not '$TOOL'" >&2; usage ;; esac
case "$BACKEND" in s3|rest) ;; *) echo "drill.sh: the restic backend is s3 or rest, not '$BACKEND'" >&2; usage ;; esac
case "$OS" in debian12) RELEASE=bookworm ;; debian13) RELEASE=trixie ;;
  *) echo "drill.sh: the OS is debian12 or debian13, not '$OS'" >&2; usage ;; esac
case "$CONTROLLER" in host|2.19) CONTROLLER=host ;; 2.21) ;;
  *) echo "drill.sh: the controller is host (ansible-core 2.19) or 2.21, not '$CONTROLLER'" >&2; usage ;; esac
SCENARIO=${DRILL_SCENARIO:-restore}
case "$SCENARIO" in restore|ransomware|fleet) ;;
  *) echo "drill.sh: DRILL_SCENARIO is restore, ransomware or fleet, not '$SCENARIO'" >&2; usage ;; esac
case "$RUNNER" in 0|"") RUNNER=0 ;; 1) [ "$CONTROLLER" = host ] \
  || { echo "drill.sh: --runner runs ansible-runner on this machine (controller host), not in the 2.21 container" >&2; usage; } ;;
  *) echo "drill.sh: DRILL_RUNNER is 0 or 1, not '$RUNNER'" >&2; usage ;; esac
[[ "$SLOT" =~ ^[0-9]$ ]] || { echo "drill.sh: the slot is 0 to 9, not '$SLOT'" >&2; usage; }
if [ "$SMALL" = 1 ]; then DATA_MIB=${DRILL_DATA_MIB:-8}; SCAN=1; else DATA_MIB=${DRILL_DATA_MIB:-64}; SCAN=0; fi

# --- this run's lab: addresses, names, directories -------------------------------------------------------------
base=$((10 * SLOT + 10))
addr() { echo "127.0.0.$((base + $1))"; }
PROD_ADDR=$(addr 0); NEW_ADDR=$(addr 1); ESCROW_ADDR=$(addr 2); BACKUP_ADDR=$(addr 3); S3_ADDR=$(addr 4)
ssh_port() { echo $((22000 + ${1##*.})); }
REST_PORT=$((28000 + base + 3)); S3_PORT=$((29000 + base + 4))
# The cut-over's DNS server (named listens on 127.0.0.1 only: see dns.sh), the notification receivers and a
# third-party API beside S3, on its address.
DNS_ADDR=127.0.0.1; DNS_PORT=$((25300 + base))
HOOK_PORT=$((25400 + base)); SMTP_PORT=$((25500 + base)); API_PORT=$((25600 + base))
ZONE=lab.restoreops.test
C="rdl$SLOT"  # container names: rdl<slot>-prod, -new, -escrow, -backup, -ctl
PROD=rdr-prod; NEW=rdr-new; ESCROW=rdr-escrow; BACKUP=rdr-backup  # inventory and host names
if [ "$SLOT" = 1 ]; then D=${DRILL_DIR:-$ROOT/.lab/drill}; else D=${DRILL_DIR:-$ROOT/.lab/drill-$SLOT}; fi
HISTORY=${DRILL_HISTORY:-$(dirname "$D")/drill-history-$SLOT.jsonl}
IMAGE=$("$LAB" image-name "host-$RELEASE")
BUCKET=restoreops-drill
S3_REPO="s3:http://$S3_ADDR:$S3_PORT/$BUCKET/$PROD"
REST_REPO="rest:http://$BACKUP_ADDR:$REST_PORT/$PROD/"
BORG_PATH=/srv/borg/repos/$PROD
BORG_REPO="ssh://borg@$BACKUP_ADDR:$(ssh_port "$BACKUP_ADDR")$BORG_PATH"
ESCROW_DIR=/var/lib/restoreops/escrow
# The borg passphrases: on the escrow host too, but on a filesystem of their own (as a secrets agent keeps them),
# apart from the keys (key_escrow_check fails `apart` for a key and its passphrase on one host and filesystem).
ESCROW_PASS_DIR=/var/lib/restoreops/passphrases

export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$ROOT/.cache/collections}"
export ANSIBLE_INJECT_FACT_VARS=False ANSIBLE_DEPRECATION_WARNINGS=False ANSIBLE_LOCALHOST_WARNING=False
# One ssh session per task (pipelining) over one connection per host that outlives the tasks (ControlPersist).
export ANSIBLE_PIPELINING="${ANSIBLE_PIPELINING:-True}"
export ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s -o ServerAliveInterval=15"
export ANSIBLE_SSH_CONTROL_PATH_DIR="$D/ssh/cp" ANSIBLE_TIMEOUT=30
# Everything Ansible prints also goes to a log the secret scan reads; the small drill runs at -vvv.
export ANSIBLE_LOG_PATH="$D/ansible.log"
[ "$SCAN" = 0 ] || export ANSIBLE_VERBOSITY=3
ANSIBLE_ENV=(ANSIBLE_COLLECTIONS_PATH ANSIBLE_INJECT_FACT_VARS ANSIBLE_DEPRECATION_WARNINGS ANSIBLE_LOCALHOST_WARNING
             ANSIBLE_PIPELINING ANSIBLE_SSH_ARGS ANSIBLE_SSH_CONTROL_PATH_DIR ANSIBLE_TIMEOUT ANSIBLE_FORCE_COLOR
             ANSIBLE_LOG_PATH ANSIBLE_VERBOSITY)
if [ "$CONTROLLER" = 2.21 ]; then
  CTL="$C-ctl"
  CTL_PYTHON=/opt/restoreops/venv-2.21/bin/python
  PLAY=(docker exec -i -w "$ROOT")
  for v in "${ANSIBLE_ENV[@]}"; do [ -z "${!v+x}" ] || PLAY+=(-e "$v=${!v}"); done
  PLAY+=("$CTL" ansible-playbook -i "$D/inventory.yml")
else
  CTL_PYTHON=$(command -v python)
  PLAY=(ansible-playbook -i "$D/inventory.yml")
fi
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\nDRILL FAILED: %s\n' "$*" >&2; exit 1; }
drill_start=$SECONDS

stop_moto() {
  if [ -f "$D/moto.pid" ]; then
    kill "$(cat "$D/moto.pid")" 2>/dev/null || true
    rm -f "$D/moto.pid"
  fi
}
stop_services() { # named, the stubs and the argv sampler of this run, by PID
  local f
  [ ! -d "$D/dns" ] || "$HERE/dns.sh" stop "$D/dns"
  for f in "$D"/stub-*.pid "$D/sampler.pid"; do
    [ -f "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}
keep_journal() { # CONTAINER: its journal, for the secret scan, before the host goes
  [ "$SCAN" = 1 ] || return 0
  docker exec "$1" journalctl --no-pager -o short-iso > "$D/journals/$1-$(date +%s%N).log" 2>/dev/null || true
}
stop_ssh_masters() { # the ControlPersist connections of this run, by their sockets (a destroyed host's would hang)
  local s
  for s in "$D"/ssh/cp/*; do
    [ -S "$s" ] || continue
    ssh -o ControlPath="$s" -O exit placeholder >/dev/null 2>&1 || true
  done
}
destroy() { # CONTAINER ADDRESS: remove a lab host, its ssh connection and its host key (a new host there has another)
  if docker inspect "$1" >/dev/null 2>&1; then keep_journal "$1"; fi
  "$LAB" rm "$1"
  stop_ssh_masters
  ssh-keygen -q -f "$D/ssh/known_hosts" -R "[$2]:$(ssh_port "$2")" >/dev/null 2>&1 || true
}
cleanup() {
  local rc=$?
  if [ "${KEEP:-0}" != 1 ]; then
    stop_ssh_masters
    if [ -n "${CTL:-}" ]; then docker rm -f "$CTL" >/dev/null 2>&1 || true; fi
    "$LAB" rm "$C-prod" "$C-new" "$C-escrow" "$C-backup"
    stop_moto
    stop_services
  fi
  exit $rc
}
trap cleanup EXIT INT TERM

say "lab: Debian ${OS#debian} hosts ($RELEASE), ssh key, S3 (moto_server on $S3_ADDR:$S3_PORT), controller: $CONTROLLER"
"$LAB" images "host-$RELEASE" $([ "$CONTROLLER" = 2.21 ] && echo controller)
"$LAB" rm "$C-prod" "$C-new" "$C-escrow" "$C-backup" "$C-ctl"
stop_moto
stop_services
rm -rf "$D"; mkdir -p "$D/offsite" "$D/backup/borg" "$D/hidden" "$D/ssh/cp" "$D/secrets" "$D/journals" "$D/mail"
chmod 0700 "$D/ssh" "$D/secrets"
ssh-keygen -q -t ed25519 -N '' -C "restoreops-drill-$(date +%s)" -f "$D/ssh/id_ed25519"
: > "$D/ssh/known_hosts"
umask 077
for s in restic-s3 restic-rest borg; do head -c 24 /dev/urandom | base64 > "$D/secrets/$s.pass"; done
# The third-party API's token and the webhook's (the token is the last part of the webhook's URL).
for s in api webhook; do head -c 18 /dev/urandom | base64 | tr '+/' '-_' > "$D/secrets/$s.token"; done
python3 - "$D/secrets/s3.json" <<'PY'
import json, secrets, sys
json.dump({"AWS_ACCESS_KEY_ID": "AKIA" + secrets.token_hex(8).upper(),
           "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30)}, open(sys.argv[1], "w"))
PY
umask 022

# moto_server from the pinned venv of this machine (no real S3 server is packaged; see docs/lab.md).
moto=$(dirname "$(command -v python)")/moto_server
[ -x "$moto" ] || fail "moto_server is not in the venv ($moto): run make setup"
setsid "$moto" -H "$S3_ADDR" -p "$S3_PORT" </dev/null >"$D/moto.log" 2>&1 &
echo $! > "$D/moto.pid"
"$HERE/dns.sh" start "$D/dns" "$DNS_ADDR" "$DNS_PORT" "$ZONE" app "$PROD_ADDR"
stub() { # NAME ARGS...
  setsid python3 "$HERE/stubs.py" "$@" --seconds 3600 </dev/null >"$D/stub-$1.log" 2>&1 &
  echo $! > "$D/stub-$1.pid"
}
stub webhook "$S3_ADDR" "$HOOK_PORT" "$D/hooks.jsonl"
stub smtp "$S3_ADDR" "$SMTP_PORT" "$D/mail"
stub api "$S3_ADDR" "$API_PORT" "@$D/secrets/api.token"
# Every secret of this run, a line each with its name (the list the scan and the ansible-runner check look for; it
# stays in the 0700 secrets directory).
python3 - "$D/secrets" > "$D/secrets/all.txt" <<'PY'
import glob, json, os, sys
d = sys.argv[1]
for path in sorted(glob.glob(os.path.join(d, "*.pass")) + glob.glob(os.path.join(d, "*.token"))):
    print(f"{os.path.basename(path)}\t{open(path).read().strip()}")
print(f"S3 secret key\t{json.load(open(os.path.join(d, 's3.json')))['AWS_SECRET_ACCESS_KEY']}")
print(f"TSIG key\t{json.load(open(os.path.join(d, '..', 'dns', 'tsig.json')))['key_secret']}")
PY
if [ "$SCAN" = 1 ]; then
  setsid python3 "$HERE/secret_scan.py" sample "$D/argv.txt" "$D/sampler.stop" </dev/null >"$D/sampler.log" 2>&1 &
  echo $! > "$D/sampler.pid"
fi
dig_app() { dig +short +time=2 +tries=2 -p "$DNS_PORT" "@$DNS_ADDR" "app.$ZONE" A; }
secret_scan() { # EXTRA_SECRET_FILE...: the scan at the end of a drill (each extra file holds one more secret)
  local f
  say "secret scan: every output, report, journal and command line of this drill"
  for f in "$@"; do printf '%s\t%s\n' "$(basename "$f")" "$(cat "$f")" >> "$D/secrets/all.txt"; done
  touch "$D/sampler.stop"
  for _ in $(seq 1 100); do [ -s "$D/argv.txt.count" ] && break; sleep 0.1; done
  read -r samples argvs < "$D/argv.txt.count" || fail "the argv sampler wrote no count"
  echo "argv sampler: $samples samples of every process on this machine and in the lab containers, $argvs distinct command lines"
  for c in "$C-new" "$C-escrow" "$C-backup"; do keep_journal "$c"; done
  python3 "$HERE/secret_scan.py" scan "$D/secrets/all.txt" "$D/ansible.log" "$D/reports" "$D/journals" \
    "$D/argv.txt" "$D/hooks.jsonl" "$HISTORY" "$D/mail" "$D/dns/named.log" "$D/moto.log" "$D"/fault-*.log "$D"/*.log \
    $([ ! -d "$D/runner" ] || echo "$D/runner") \
    || fail "a secret of the drill appeared in its output (see the HIT lines)"
  echo "RELIABILITY secret-scan drill 0 hits"
}

host() { # CONTAINER HOSTNAME ADDRESS [docker args...]
  local c=$1 h=$2 a=$3; shift 3
  "$LAB" host "$c" "$IMAGE" "$a" "$(ssh_port "$a")" "$D/ssh/id_ed25519.pub" --hostname="$h" "$@"
}
host "$C-backup" "$BACKUP" "$BACKUP_ADDR" -v "$D/backup/borg:/srv/borg/repos"
# The escrow host proves the borg key against a read-only view of the server's repositories (as through a read-only
# network mount); its escrow directory is a filesystem of its own, apart from any data, and so is its passphrase
# directory, apart from the keys.
host "$C-escrow" "$ESCROW" "$ESCROW_ADDR" -v "$D/backup/borg:/srv/borg-readonly:ro" \
  --tmpfs "$ESCROW_DIR:size=16m,mode=0700" --tmpfs "$ESCROW_PASS_DIR:size=1m,mode=0700"
host "$C-prod" "$PROD" "$PROD_ADDR" -v "$D/offsite:/offsite"
PG_VERSION=$(docker exec "$C-prod" sh -c 'ls /usr/lib/postgresql | sort -V | tail -n 1')
if [ "$CONTROLLER" = 2.21 ]; then
  docker run -d --name "$CTL" --label io.restoreops.lab=1 --network host -v "$ROOT:$ROOT" -w "$ROOT" \
    "$("$LAB" image-name controller)" sleep infinity >/dev/null
fi
for _ in $(seq 1 40); do timeout 1 bash -c "exec 3<>/dev/tcp/$S3_ADDR/$S3_PORT" 2>/dev/null && break; sleep 0.25; done

if [ "$BACKEND" = s3 ]; then
  RESTIC_REPO=$S3_REPO; RESTIC_KEY=files; RESTIC_SECRET=$D/secrets/restic-s3.pass
  RESTIC_ENV="\"{{ drill_s3_credentials }}\""
else
  RESTIC_REPO=$REST_REPO; RESTIC_KEY=files-rest; RESTIC_SECRET=$D/secrets/restic-rest.pass; RESTIC_ENV="{}"
fi
ssh_host() { # NAME ADDRESS
  printf '        %s:\n          ansible_host: %s\n          ansible_port: %s\n' "$1" "$2" "$(ssh_port "$2")"
}
cat > "$D/inventory.yml" <<YML
all:
  vars:
    drill_dir: $D
    drill_escrow: $ESCROW_DIR
    drill_escrow_passphrases: $ESCROW_PASS_DIR
    drill_pg_version: "$PG_VERSION"
    drill_secret_file: $D/secrets/restic-s3.pass
    drill_rest_secret_file: $D/secrets/restic-rest.pass
    drill_borg_secret_file: $D/secrets/borg.pass
    drill_s3_credentials_file: $D/secrets/s3.json
    drill_s3_credentials: "{{ lookup('ansible.builtin.file', drill_s3_credentials_file) | from_json }}"
    drill_s3_endpoint: http://$S3_ADDR:$S3_PORT
    drill_s3_bucket: $BUCKET
    drill_s3_prefix: $PROD
    drill_s3_repository: $S3_REPO
    drill_rest_address: $BACKUP_ADDR:$REST_PORT
    drill_rest_repository: $REST_REPO
    drill_borg_repository: $BORG_REPO
    drill_borg_server_path: $BORG_PATH
    drill_borg_escrow_view: /srv/borg-readonly/$PROD
    drill_restic_repository: $RESTIC_REPO
    drill_restic_key: $RESTIC_KEY
    drill_restic_secret_file: $RESTIC_SECRET
    drill_restic_env: $RESTIC_ENV
    drill_dns_server: $DNS_ADDR
    drill_dns_port: $DNS_PORT
    drill_dns_zone: $ZONE
    drill_tsig_file: $D/dns/tsig.json
    drill_api_url: http://$S3_ADDR:$API_PORT/ping
    drill_api_token_file: $D/secrets/api.token
    drill_webhook_url: "http://$S3_ADDR:$HOOK_PORT/hooks/{{ lookup('ansible.builtin.file', '$D/secrets/webhook.token') }}"
    drill_smtp_host: $S3_ADDR
    drill_smtp_port: $SMTP_PORT
    ansible_connection: ssh
    ansible_user: root
    ansible_ssh_private_key_file: $D/ssh/id_ed25519
    ansible_ssh_common_args: >-
      -o UserKnownHostsFile=$D/ssh/known_hosts -o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes
    ansible_python_interpreter: /usr/bin/python3
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: $CTL_PYTHON
  children:
    production:
      hosts:
$(ssh_host "$PROD" "$PROD_ADDR")
    replacement:
      hosts:
$(ssh_host "$NEW" "$NEW_ADDR")
    escrow:
      hosts:
$(ssh_host "$ESCROW" "$ESCROW_ADDR")
    backup_server:
      hosts:
$(ssh_host "$BACKUP" "$BACKUP_ADDR")
YML

say "backup server ($BACKUP: borg over SSH, restic REST on $BACKUP_ADDR:$REST_PORT), escrow host ($ESCROW), S3 bucket with Object Lock"
"${PLAY[@]}" "$ROOT/playbooks/lab/drill_lab.yml"

say "production: $PROD on Debian ${OS#debian} (PostgreSQL $PG_VERSION + application, ${DATA_MIB} MiB of data; restic to S3 and REST, borg over SSH; keys escrowed)"
"${PLAY[@]}" "$ROOT/playbooks/lab/drill_production.yml" -e "drill_data_mib=$DATA_MIB"
expected_orders=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["orders"])' "$D/expected.json")

fresh_replacement() { # TOOL
  say "replacement: $NEW on Debian ${OS#debian}, a fresh host whose UID 1500 already belongs to another user"
  destroy "$C-new" "$NEW_ADDR"
  host "$C-new" "$NEW" "$NEW_ADDR" -v "$D/offsite:/offsite"
  docker exec "$C-new" useradd --uid 1500 --no-create-home --shell /usr/sbin/nologin builder
  if [ "$1" = borg ]; then
    "${PLAY[@]}" "$ROOT/playbooks/lab/drill_replacement.yml" >"$D/replacement.log" 2>&1 \
      || { tail -30 "$D/replacement.log"; fail "the replacement's access to the borg server"; }
  fi
}
say "production's own credentials cannot destroy its backups (borg over SSH, restic REST, S3 Object Lock)"
"${PLAY[@]}" "$ROOT/playbooks/lab/drill_append_only.yml" | tee "$D/append-only.log" \
  | grep -E '"msg"|^ok: \[localhost\] => |ok=|failed=' | sed 's/^ *//' || true
grep -q "failed=0" "$D/append-only.log" && ! grep -Eq "failed=[1-9]|unreachable=[1-9]" "$D/append-only.log" \
  || { tail -40 "$D/append-only.log"; fail "production's credentials could destroy a backup (see $D/append-only.log)"; }
setup_seconds=$((SECONDS - drill_start))
if [ "$SCENARIO" = ransomware ]; then
  # shellcheck source=ransomware.sh
  . "$HERE/ransomware.sh"
fi
if [ "$SCENARIO" = fleet ]; then
  # shellcheck source=fleet.sh
  . "$HERE/fleet.sh"
fi

say "incident: $PROD is destroyed"
incident=$(date -u +%Y-%m-%dT%H:%M:%S+0000)
destroy "$C-prod" "$PROD_ADDR"
echo "production destroyed at $incident; it held $expected_orders orders"

restore_cmd() { # TOOL -> RESTORE (the restore command; borg's settings are an overlay on the common ones), REPORT
  RESTORE=("${PLAY[@]}" "$ROOT/playbooks/dr_drill.yml" -e "@$ROOT/playbooks/lab/drill_restore_vars.yml")
  [ "$1" = restic ] || RESTORE+=(-e "@$ROOT/playbooks/lab/drill_restore_vars_$1.yml")
  RESTORE+=(-e "@$ROOT/playbooks/lab/drill_dr_drill_vars.yml" -e "dr_drill_history_file=$HISTORY")
  RESTORE+=(-e "drill_expected_orders=$expected_orders" -e "restore_server_incident_time=$incident")
  REPORT="$D/reports/$1/$NEW/report.json"
}
declare -A RTO=()
history_before=$( (grep -c . "$HISTORY" 2>/dev/null) || true)
history_check() { # TOOL RESULT ITEM: dr_drill.yml's newest history entry, and the trend beside the tool's report
  python3 - "$HISTORY" "$D/reports/$1/$NEW" "$2" "$3" <<'PY'
import json, os, sys
history, report_dir, result, item = sys.argv[1:]
entry = json.loads(open(history).read().splitlines()[-1])
assert entry["result"] == result and (entry["failed_item"] or "") == item, entry
assert result != "PASS" or (entry["rto_seconds"] and entry["rpo_seconds"] is not None), entry
assert open(os.path.join(report_dir, "trend.svg")).read().startswith("<svg"), "no trend.svg beside the report"
print(f"drill history: {entry['result']} {entry['failed_item'] or ''} RTO {entry['rto_seconds']} s, "
      f"RPO {entry['rpo_seconds']} s; trend: {report_dir}/trend.svg")
PY
}
# --runner: the restore of RUNNER_TOOL as AWX runs it, through ansible-runner on a private data directory.
# With --small it is the borg restore onto a fresh replacement (the restic one resumes after the faults, with
# little or nothing left to transfer, so no progress to show).
if [ "$SMALL" = 1 ]; then RUNNER_TOOL=borg; else RUNNER_TOOL=$TOOL; fi
runner_restore() { # TOOL: two jobs refused for want of a persistent report directory, then the restore; RTO[TOOL]
  local tool=$1 pdd="$D/runner" start vars=(--vars-file "$ROOT/playbooks/lab/drill_restore_vars.yml") v env=()
  say "restore from $tool through ansible-runner (as AWX runs a job): private data directory $pdd"
  [ "$tool" = restic ] || vars+=(--vars-file "$ROOT/playbooks/lab/drill_restore_vars_$tool.yml")
  vars+=(--vars-file "$ROOT/playbooks/lab/drill_dr_drill_vars.yml")
  for v in "${ANSIBLE_ENV[@]}"; do [ -z "${!v+x}" ] || env+=(--env "$v"); done
  # restore_server_progress_interval=1: the small drill's data phase lasts seconds; its progress must show.
  python3 "$HERE/runner_job.py" drill-prepare "$pdd" --inventory "$D/inventory.yml" "${vars[@]}" "${env[@]}" \
    --extra "dr_drill_history_file=$HISTORY" --extra "drill_expected_orders=$expected_orders" \
    --extra "restore_server_incident_time=$incident" --extra restore_server_progress_interval=1 \
    || fail "ansible-runner: the private data directory"
  # The replacement may hold an interrupted restore (the small drill's faults): the refused jobs must leave it as is.
  local before
  before=$(replacement_state)
  python3 "$HERE/runner_job.py" drill-refused "$pdd" no-report-dir dr_drill.yml restore_server_report_dir \
    --history "$HISTORY" >"$D/runner-refused.log" 2>&1 || { cat "$D/runner-refused.log"; fail "ansible-runner: dr_drill.yml"; }
  cat "$D/runner-refused.log"
  [ "$(replacement_state)" = "$before" ] || fail "runner-dr-drill: the refused job changed the replacement"
  python3 "$HERE/runner_job.py" drill-refused "$pdd" no-report-dir-role restore_server.yml restore_server_report_dir \
    >"$D/runner-refused-role.log" 2>&1 || { cat "$D/runner-refused-role.log"; fail "ansible-runner: restore_server.yml"; }
  cat "$D/runner-refused-role.log"
  [ "$(replacement_state)" = "$before" ] || fail "runner-restore-server: the refused job changed the replacement"
  echo "the replacement is unchanged after both refused jobs (every path under /srv and /var/lib/restoreops, sizes, mtimes)"
  echo "RELIABILITY fault drill-runner-report-dir-in-ee-refused-before-data-moves"
  start=$SECONDS
  python3 "$HERE/runner_job.py" drill-restore "$pdd" "restore-$tool" dr_drill.yml "$NEW" --secrets "$D/secrets/all.txt" \
    || fail "ansible-runner: the restore from $tool (artifacts: $pdd/artifacts/restore-$tool)"
  RTO[$tool]=$((SECONDS - start))
}
holes_expected() { # REPORT: false when the report says the tool does not restore holes (restic before 0.15)
  python3 - "$1" <<'PY'
import json, sys
lines = {f["attribute"]: f for f in json.load(open(sys.argv[1]))["data"]["fidelity"]}
print("false" if lines.get("sparse", {}).get("status") == "not supported by the tool" else "true")
PY
}
restore_and_verify() { # TOOL: the restore, the independent verification, the report; records the wall-clock RTO
  local tool=$1 start
  restore_cmd "$tool"
  if [ "$RUNNER" = 1 ] && [ "$tool" = "$RUNNER_TOOL" ]; then
    runner_restore "$tool"
  else
    say "restore from $tool: ansible-playbook playbooks/dr_drill.yml (standby: the replacement group, $NEW, over SSH)"
    start=$SECONDS
    "${RESTORE[@]}"
    RTO[$tool]=$((SECONDS - start))
  fi

  say "independent verification ($tool)"
  "${PLAY[@]}" "$ROOT/playbooks/lab/drill_verify.yml" -e "drill_holes_expected=$(holes_expected "$REPORT")" \
    | grep -E "msg|ok=|failed=" || fail "$tool: verification failed"
  grep -q '"result": "PASS"' "$REPORT" || fail "$tool: the report does not say PASS"
  [ "$(dig_app)" = "$NEW_ADDR" ] || fail "$tool: app.$ZONE does not point at the replacement ($(dig_app))"
  echo "cut-over: app.$ZONE -> $(dig_app) (the replacement), read back from BIND with dig"
  python3 - "$D/hooks.jsonl" "$tool" <<'PY' || fail "$tool: the webhook did not get the start and the PASS of this restore"
import json, sys
events = [json.loads(line)["body"] for line in open(sys.argv[1])]
last_start = max(i for i, e in enumerate(events) if e.get("event") == "start")
ends = [e for e in events[last_start:] if e.get("event") == "end"]
assert ends and ends[-1].get("result") == "PASS", events[last_start:]
print(f"notifications: {len(events)} webhook events so far; this restore: start, end {ends[-1]['result']}")
PY
  [ -n "$(ls -A "$D/mail")" ] || fail "$tool: no notification mail arrived"
  python3 - "$REPORT" <<'PY' || fail "$tool: an attribute the tool keeps differs, or the dataset lacks a kind"
import json, sys
lines = {f["attribute"]: f for f in json.load(open(sys.argv[1]))["data"]["fidelity"]}
kinds = ("mode", "mtime", "symlink", "hardlink", "acl", "xattr", "sparse")
assert set(kinds) <= set(lines), f"fidelity lines: {sorted(lines)}"
for kind in kinds:
    f = lines[kind]
    # An attribute the tool does not give back (holes with restic before 0.15) is said so, not counted against it.
    assert f.get("recorded", 0) > 0, f
    assert (f["status"] == "checked" and not f.get("differing")) or f["status"] == "not supported by the tool", f
print("fidelity: " + ", ".join(f"{k} {lines[k]['recorded']}" + ("" if lines[k]["status"] == "checked" else
                                " (not supported by the tool)") for k in kinds)
      + " carrying it; none that the tool keeps differs")
PY
  promtool check metrics < "$(dirname "$REPORT")/restore.prom" || fail "$tool: restore.prom is not valid metrics"
  echo "metrics: $(dirname "$REPORT")/restore.prom passes promtool check metrics"

  say "drill report ($tool)"
  python3 - "$REPORT" "${RTO[$tool]}" "$tool" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rpo, src, tgt = r["rpo"], r["source"], r["target"]
print(f"tool:            {sys.argv[3]}")
print(f"result:          {r['result']}")
print(f"source:          {src['tool']} {src['repository']} (backend {src['backend']})")
print(f"target:          {tgt['distribution']} {tgt['distribution_version']} over {tgt['connection']}")
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
  history_check "$tool" PASS "" || fail "$tool: the drill history does not end with this drill's PASS"
}

expect_failure() { # NAME PATTERN CMD... : the command must fail and print PATTERN
  local name=$1 pattern=$2; shift 2
  local log="$D/fault-$name.log"
  if "$@" >"$log" 2>&1; then fail "fault '$name': the restore succeeded but must not"; fi
  grep -Eq "$pattern" "$log" || { tail -40 "$log"; fail "fault '$name': '$pattern' not in the output"; }
  echo "fault '$name': refused as expected ($(grep -Eo "$pattern" "$log" | head -1 | cut -c1-160))"
}
nothing_moved() {
  docker exec "$C-new" test ! -e /var/lib/restoreops/staging || fail "$1: data moved (staging exists)"
  docker exec "$C-new" test ! -e /srv/app || fail "$1: /srv/app exists"
}
replacement_state() { # every path under the restore's places on the replacement, with its size and mtime, hashed
  docker exec "$C-new" sh -c 'find /srv /var/lib/restoreops -xdev -printf "%p %s %T@\n" 2>/dev/null | sort | sha256sum'
}
run_faults() { # the eight faults on restic, on the replacement just started
  local key="$ESCROW_DIR/keys/$PROD/$RESTIC_KEY.restic.pass"
  say "fault 1: a target marked as production is refused and untouched"
  expect_failure production "marked as production" "${RESTORE[@]}" -e restore_server_target_is_production=true \
    -e dr_drill_teardown=always -e "dr_drill_teardown_tasks=$ROOT/playbooks/lab/drill_teardown.yml"
  nothing_moved production
  history_check restic FAIL "standby empty and isolated" || fail "production: the failed drill is not in the history"
  [ -f "$D/teardown-$NEW.done" ] || fail "production: dr_drill_teardown=always did not run the teardown tasks"
  echo "RELIABILITY fault drill-production-target-refused-untouched"

  say "fault 2: a dependency cycle among the services is a clear error, before anything moves"
  expect_failure cycle "dependency cycle among [a-z]+ -> [a-z]+ -> [a-z]+" "${RESTORE[@]}" \
    -e '{"restore_server_services": [{"name": "a", "after": ["b"]}, {"name": "b", "after": ["a"]}]}'
  nothing_moved cycle
  echo "RELIABILITY fault drill-dependency-cycle-refused-before-data-moves"

  say "fault 3: a missing escrowed key aborts before any data moves"
  docker exec "$C-escrow" mv "$key" /root/hidden.pass
  expect_failure key "Keys first: ($RESTIC_KEY failed the escrow check|the escrowed password of $RESTIC_KEY cannot be read)" "${RESTORE[@]}"
  docker exec "$C-escrow" mv /root/hidden.pass "$key"
  docker exec "$C-new" test ! -e /srv/app || fail "key: /srv/app exists"
  echo "RELIABILITY fault drill-missing-escrowed-key-aborts-before-data-moves"

  say "fault 4: the staging file system is too small (2 MiB for ${DATA_MIB} MiB), then fills up in the data phase"
  docker exec "$C-new" sh -c 'mkdir -p -m 0700 /var/lib/restoreops/staging \
    && mount -t tmpfs -o size=2m,mode=0700 tmpfs /var/lib/restoreops/staging'
  expect_failure space "needs [0-9.]+ MiB, [0-9.]+ MiB are free" "${RESTORE[@]}"
  echo "RELIABILITY fault drill-staging-too-small-refused-before-data-moves"
  # The size check told to expect a hundredth (the sparse file's 64 MiB count in the estimate): the restore starts
  # and the file system fills up under restic.
  expect_failure nospace "FAILED in phase data: .*[Nn]o space left on device" "${RESTORE[@]}" \
    -e restore_server_space_factor=0.01
  grep -q '"result": "FAIL"' "$REPORT" || fail "nospace: the report does not say FAIL"
  docker exec "$C-new" test ! -e /srv/app || fail "nospace: partial data was put in place"
  echo "RELIABILITY fault drill-staging-full-in-data-phase-reported"
  # Space is freed (the file system grows); the runs below resume on it and the last one must PASS.
  docker exec "$C-new" mount -o remount,size=512m /var/lib/restoreops/staging

  say "fault 5: the restore is killed in the data phase once it has written part of the data (restic dies mid-transfer)"
  local slow play segment state done_share=0
  slow=$(python3 -c 'import yaml,json,sys; v=yaml.safe_load(open(sys.argv[1]))["restore_server_source"]; v["limit_download"]=256; print(json.dumps({"restore_server_source": v}))' "$ROOT/playbooks/lab/drill_restore_vars.yml")
  "${RESTORE[@]}" -e "$slow" >"$D/fault-killed.log" 2>&1 &
  play=$!
  for _ in $(seq 1 1500); do
    # restic restore itself (other restic runs, such as the preflight's size estimate, come before it), killed
    # once the data phase's progress file shows a first part written: restic writes a pack's files at once and the
    # sparse file's 64 MiB of zeros come in one step near the end, so the share moves in large steps (the integration
    # target backup_restore kills at 60% of many small files and measures the at-most-half figure).
    if docker exec "$C-new" pgrep -f "^[^ ]*restic restore" >/dev/null 2>&1; then
      done_share=$(docker exec "$C-new" cat /var/lib/restoreops/staging/data.progress 2>/dev/null | python3 -c \
        'import json,sys; d=json.load(sys.stdin); print(int(100 * d["done"] / d["total"]) if d.get("total") else 0)' \
        2>/dev/null || echo 0)
      if [ "$done_share" -ge 5 ] && [ "$done_share" -lt 95 ]; then
        docker exec "$C-new" pkill -KILL -f "^[^ ]*restic restore" && break
      fi
    fi
    kill -0 "$play" 2>/dev/null || break
    sleep 0.2
  done
  echo "restic restore killed at ${done_share}% of the bytes (the data phase's progress file)"
  if wait "$play"; then fail "fault 'killed': the restore succeeded although restic was killed"; fi
  # The restore's own message (restic's failure), not a later task tripping over a missing result.
  grep -Eq "Restore FAILED in phase data: .*(restic|rc=)" "$D/fault-killed.log" || { tail -30 "$D/fault-killed.log"; fail "killed: not reported as a data-phase failure of restic"; }
  grep -q '"result": "FAIL"' "$REPORT" || fail "killed: the report does not say FAIL"
  docker exec "$C-new" test ! -e /srv/app || fail "killed: partial data was put in place"
  echo "fault 'killed': data phase failed, report says FAIL, nothing half-restored in place"
  echo "RELIABILITY fault drill-restore-killed-mid-transfer-reported"

  say "fault 6: a missing WAL segment stops the PostgreSQL phase, named; no service starts"
  segment=$(ls "$D/offsite/pg/wal" | grep -E '^[0-9A-F]{24}$' | sort | tail -n 2 | head -n 1)
  mv "$D/offsite/pg/wal/$segment" "$D/hidden/"
  # A target time after the gap: the run resumes the interrupted restore, whose recovery to the end of the archive
  # completed beside the killed file restore and would be kept; a new target makes it recover again, across the gap.
  expect_failure wal "WAL segment $segment is missing|$segment was never archived" "${RESTORE[@]}" \
    -e "restore_server_pg_target_time=$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
  mv "$D/hidden/$segment" "$D/offsite/pg/wal/"
  # That run resumed the killed file restore (beside the failing recovery): its report has the resume figure.
  python3 - "$REPORT" <<'PY' || fail "resume: the re-run after the kill did not resume, or transferred everything again"
import json, sys
data = json.load(open(sys.argv[1]))["data"]
r = data["resume"]
assert data["resumed"] and r, data
print(f"resume figure: the re-run after the kill kept {r['kept_files']} files and transferred "
      f"{r['transferred_bytes'] / 1048576:.1f} of {r['total_bytes'] / 1048576:.1f} MiB "
      f"({100 * r['transferred_ratio']:.0f}% of the bytes, method {r['method']})")
assert r["kept_bytes"] > 0 and r["transferred_ratio"] < 1, r
PY
  state=$(docker exec "$C-new" systemctl is-active restoreops-demo-app.service || true)
  [ "$state" != active ] || fail "wal: the application was started on a partial database"
  grep -q '"result": "FAIL"' "$REPORT" || fail "wal: the report does not say FAIL"
  echo "the application was not started ($state); the report says FAIL"
  echo "RELIABILITY fault drill-wal-segment-missing-no-service-started"

  say "fault 7: a required dependency probe is refused (the lost server's revoked API token): no cut-over"
  expect_failure probe "partner API.*403|FAILED in phase sanity" "${RESTORE[@]}" -e drill_partner_token=revoked-token-0815
  history_check restic FAIL "integrity (row counts, checksums, sanity checks)" || fail "probe: the failed drill's item"
  grep -q '"result": "FAIL"' "$REPORT" || fail "probe: the report does not say FAIL"
  [ "$(dig_app)" = "$PROD_ADDR" ] || fail "probe: the DNS record changed although sanity failed ($(dig_app))"
  echo "the report says FAIL; app.$ZONE still points at $PROD_ADDR (the lost production)"
  echo "RELIABILITY fault drill-required-probe-refused-no-cut-over"

  say "fault 8: the newest backup is older than the RPO (one second here): the preflight refuses, unless forced"
  # Check mode (phases 1 to 3, read-only): the role passes the RPO to backup_restore as max_age_hours.
  expect_failure stale "FAILED in phase preflight: The restore point .* older than max_age_hours=[0-9.e-]+ \(the RPO\)" \
    "${RESTORE[@]}" --check -e restore_server_rpo=1
  "${RESTORE[@]}" --check -e restore_server_rpo=1 -e restore_server_allow_stale=true >"$D/fault-stale-forced.log" 2>&1 \
    || { tail -30 "$D/fault-stale-forced.log"; fail "stale: restore_server_allow_stale=true did not let the preflight pass"; }
  python3 - "$REPORT" <<'PY' || fail "stale: the report of the forced run does not record the stale restore point"
import json, sys
checks = [c for c in json.load(open(sys.argv[1]))["checks"] if c["name"] == "backup within RPO"]
assert checks and not checks[0]["ok"] and not checks[0]["required"] and "restored anyway" in checks[0]["detail"], checks
print("forced: " + checks[0]["detail"])
PY
  echo "RELIABILITY fault drill-stale-backup-refused-unless-forced"
  say "the re-run resumes the interrupted restore and must PASS"
}

[ "$SCENARIO" != fleet ] || fleet_drill
if [ "$SMALL" = 1 ]; then
  fresh_replacement restic
  restore_cmd restic
  say "dr_drill.yml --check: the read-only phases and the plan; nothing recorded"
  lines=$( (grep -c . "$HISTORY" 2>/dev/null) || true)
  "${RESTORE[@]}" --check >"$D/drill-check.log" 2>&1 || { tail -30 "$D/drill-check.log"; fail "dr_drill.yml --check failed"; }
  grep -q "DR drill CHECK on $NEW" "$D/drill-check.log" || fail "dr_drill.yml --check did not print its CHECK"
  [ "$( (grep -c . "$HISTORY" 2>/dev/null) || true)" = "$lines" ] || fail "dr_drill.yml --check wrote a history entry"
  nothing_moved check
  echo "check mode: DR drill CHECK, no history entry, nothing moved"
  if [ "$FAULTS" = 1 ]; then run_faults; fi
  restore_and_verify restic
  [ "$FAULTS" = 0 ] || echo "RELIABILITY fault drill-interrupted-restore-resumed-and-passed"
  # The same loss restored from the other backup: a fresh replacement, no faults, the same verification.
  say "second replacement: $NEW is destroyed; a fresh one is restored from borg over SSH"
  fresh_replacement borg
  restore_and_verify borg
  say "one more drill onto the standby that holds this completed restore: refused, and still recorded"
  expect_failure standby "DR drill FAILED at checklist item 'standby empty and isolated'" "${RESTORE[@]}"
  history_check borg FAIL "standby empty and isolated" || fail "standby: the refused drill is not in the history"
else
  fresh_replacement "$TOOL"
  restore_and_verify "$TOOL"
fi

say "drill history: every run of dr_drill.yml above, and the trend of the last drills ($HISTORY)"
python3 - "$HISTORY" "${history_before:-0}" "$SMALL" <<'PY' || fail "the drill history"
import json, sys
lines = [json.loads(line) for line in open(sys.argv[1]).read().splitlines() if line.strip()]
new = lines[int(sys.argv[2]):]
# The small drill runs dr_drill.yml for every fault and twice to PASS; the demo once, after the earlier demos' drills.
passed = [e for e in new if e["result"] == "PASS"]
assert len(new) >= (2 if sys.argv[3] == "1" else 1) and len(passed) >= (2 if sys.argv[3] == "1" else 1), new
if len(lines) < 2:
    print("the first drill of this history: the next run adds the second point of the trend")
print(f"{len(lines)} drill(s) in the history, {len(new)} from this run:")
for e in new:
    print(f"  {e['drill']} {e['result']:<4} RTO {e['rto_seconds']} s  RPO {e['rpo_seconds']} s  {e['failed_item'] or ''}")
PY
cat "$(dirname "$REPORT")/trend.md"
echo "trend picture: $(dirname "$REPORT")/trend.svg"

[ "$SCAN" = 0 ] || secret_scan

say "drill timings (Debian ${OS#debian}, controller $CONTROLLER)"
echo "setup (lab, production built and backed up, append-only proofs): ${setup_seconds} s"
for tool in restic borg; do
  [ -z "${RTO[$tool]:-}" ] || printf 'restore from %-6s (wall clock):   %s s\n' "$tool" "${RTO[$tool]}"
done
echo "drill total:                            $((SECONDS - drill_start)) s"
