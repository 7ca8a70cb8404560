#!/usr/bin/env bash
# The runbook's "complete server loss" restore as an operator would type it, for benchmarks/bench_restore_playbook.py.
# Runs on the replacement (docker exec), with the offsite store at /offsite and the repository password (fetched
# from the escrow) in $1. Same end state as playbooks/restore_server.yml: /srv/app in place and owned by app (by
# name), PostgreSQL recovered from the newest base backup + all archived WAL and running, the app service started
# and answering. No key check, no manifest verification, no sanity checks, no report: a script does not do them.
# Prints one "step SECONDS" line per step on stderr.
set -euo pipefail
PASSFILE=${1:?usage: restore-by-hand.sh PASSWORD_FILE}
REPO=/offsite/restic
BASE=/offsite/pg/base
WAL=/offsite/pg/wal
PGVERSION=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
PGDATA=/var/lib/postgresql/$PGVERSION/main
PGUNIT=postgresql@$PGVERSION-main.service
APPUNIT=restoreops-demo-app.service
# The application listens on this host's own address (lab hosts share the machine's network).
ADDR=$(getent hosts "$(hostname)" | awk '{ print $1; exit }')

t0=$(date +%s.%N)
# wait_for WHAT INTERVAL CMD...: poll for at most 600 s; a restore that never gets there fails instead of hanging.
wait_for() {
  local what=$1 every=$2 deadline=$((SECONDS + 600)); shift 2
  until "$@"; do [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $what" >&2; exit 1; }; sleep "$every"; done
}
recovered() { [ "$(runuser -u postgres -- psql -XtAc 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f ]; }
step() { local now; now=$(date +%s.%N); awk -v s="$1" -v a="$now" -v b="$t0" 'BEGIN { printf "step %s %.2f\n", s, a - b }' >&2; t0=$now; }

# 1. Files: restic restore straight into place.
RESTIC_PASSWORD_FILE=$PASSFILE restic -q -r "$REPO" restore latest --target / --include /srv/app
step files

# 2. Ownership by name: the app user (UID 1500 is taken here), then chown.
getent group app >/dev/null || groupadd --system app
id app >/dev/null 2>&1 || useradd --system --gid app --home-dir /srv/app --no-create-home --shell /usr/sbin/nologin app
chown -R app:app /srv/app
step ownership

# 3. PostgreSQL: newest base backup + WAL replay to the end of the archive.
systemctl stop "$PGUNIT"
mv "$PGDATA" "$PGDATA.before-restore"
install -d -o postgres -g postgres -m 0700 "$PGDATA"
latest=$(ls -1d "$BASE"/2*Z | sort | tail -n 1)
runuser -u postgres -- tar -xzf "$latest/base.tar.gz" -C "$PGDATA"
runuser -u postgres -- tar -xzf "$latest/pg_wal.tar.gz" -C "$PGDATA/pg_wal"
cat >> "$PGDATA/postgresql.auto.conf" <<CONF
restore_command = 'cp $WAL/%f %p'
recovery_target_timeline = 'latest'
recovery_target_action = 'promote'
CONF
runuser -u postgres -- touch "$PGDATA/recovery.signal"
step pg-unpack
systemctl start "$PGUNIT"
wait_for "the end of recovery" 0.5 recovered
step pg-replay

# 4. The application.
systemctl link /srv/app/$APPUNIT >/dev/null
systemctl enable --now "$APPUNIT" 2>/dev/null
wait_for "the application" 0.2 curl -fsS -o /dev/null "http://$ADDR:8080/health"
step services
