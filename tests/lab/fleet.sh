# The fleet drill (DRILL_SCENARIO=fleet), sourced by drill.sh once the lab is set up and the PostgreSQL host (rdr-prod:
# PostgreSQL with WAL archiving and the application that counts the orders) is built, backed up and its append-only
# protection proven. It uses drill.sh's variables and functions.
#
# 1. two more production hosts: an application host (rdr-app) whose health needs the database host, and a worker
#    (rdr-worker) whose health needs the application; each backed up with restic to its own S3 repository, its key
#    escrowed (playbooks/lab/fleet_production.yml). They reach each other by service name (db.fleet.lab,
#    app.fleet.lab), as through the site's name service;
# 2. all three are lost together; three fresh replacements start, whose names point at each other; the database
#    host is restored from restic on the backend given, or with --tool borg from borg over SSH;
# 3. --small (make test): a dependency cycle across hosts is refused before anything moves; then the database
#    host's sanity fails (a wrong expected order count): its services and cut-over stop there, and the application
#    host and the worker start none of their services, each naming the host it waits for;
# 4. playbooks/restore_server.yml restores the three at once over SSH (restore_server_after_hosts orders their
#    services: database, application, worker) and must PASS; the fleet report (JSON, Markdown, timeline) is checked,
#    the start order is read back from systemd on the hosts, and each host is verified from outside.
APP=rdr-app; WORKER=rdr-worker; APP_NEW=rdr-app-new; WORKER_NEW=rdr-worker-new
APP_ADDR=$(addr 5); WORKER_ADDR=$(addr 6); APP_NEW_ADDR=$(addr 7); WORKER_NEW_ADDR=$(addr 8)
FLEET_CONTAINERS=("$C-app" "$C-worker" "$C-app-new" "$C-worker-new")
fleet_exit() { local rc=$?; [ "${KEEP:-0}" = 1 ] || "$LAB" rm "${FLEET_CONTAINERS[@]}"; (exit $rc); cleanup; }
trap fleet_exit EXIT INT TERM
"$LAB" rm "${FLEET_CONTAINERS[@]}"
s3_repo() { echo "s3:http://$S3_ADDR:$S3_PORT/$BUCKET/$1"; }
fleet_host() { # NAME ADDRESS ROLE UPSTREAM REPOSITORY-OF [LOST AFTER]
  ssh_host "$1" "$2"
  printf '          fleet_role: %s\n          fleet_upstream: %s\n          fleet_s3_repository: %s\n' "$3" "$4" "$(s3_repo "$5")"
  [ $# -lt 6 ] || printf '          fleet_lost_host: %s\n          fleet_after: [%s]\n' "$6" "$7"
}
cat >> "$D/inventory.yml" <<YML
    fleet_production:
      hosts:
$(fleet_host "$APP" "$APP_ADDR" app db.fleet.lab "$APP")
$(fleet_host "$WORKER" "$WORKER_ADDR" worker app.fleet.lab "$WORKER")
    fleet_replacement:
      hosts:
$(fleet_host "$APP_NEW" "$APP_NEW_ADDR" app db.fleet.lab "$APP" "$APP" "$NEW")
$(fleet_host "$WORKER_NEW" "$WORKER_NEW_ADDR" worker app.fleet.lab "$WORKER" "$WORKER" "$APP_NEW")
YML

say "fleet: the application host ($APP, needs the database host $PROD) and the worker ($WORKER, needs the application)"
host "$C-app" "$APP" "$APP_ADDR" --add-host "db.fleet.lab:$PROD_ADDR"
host "$C-worker" "$WORKER" "$WORKER_ADDR" --add-host "app.fleet.lab:$APP_ADDR"
"${PLAY[@]}" "$ROOT/playbooks/lab/fleet_production.yml" || fail "the fleet's production hosts"
FLEET_SETUP_SECONDS=$((SECONDS - drill_start))

# The rest runs once drill.sh has destroyed the database host and defined its helpers (expect_failure, ...).
fleet_drill() {
say "incident: the rack is lost: $APP and $WORKER are destroyed with $PROD"
destroy "$C-app" "$APP_ADDR"; destroy "$C-worker" "$WORKER_ADDR"
echo "lost at $incident; the database held $expected_orders orders"

say "three fresh replacements: $NEW (database, from $TOOL), $APP_NEW (application), $WORKER_NEW (worker)"
fleet_replacements() {
  destroy "$C-new" "$NEW_ADDR"; destroy "$C-app-new" "$APP_NEW_ADDR"; destroy "$C-worker-new" "$WORKER_NEW_ADDR"
  host "$C-new" "$NEW" "$NEW_ADDR" -v "$D/offsite:/offsite"
  docker exec "$C-new" useradd --uid 1500 --no-create-home --shell /usr/sbin/nologin builder
  host "$C-app-new" "$APP_NEW" "$APP_NEW_ADDR" --add-host "db.fleet.lab:$NEW_ADDR"
  host "$C-worker-new" "$WORKER_NEW" "$WORKER_NEW_ADDR" --add-host "app.fleet.lab:$APP_NEW_ADDR"
}
fleet_replacements
# Each replacement's settings: the database host keeps the drill's own (drill_restore_vars.yml), the two others
# fleet_restore_vars.yml; all three write to one report directory, where the fleet report goes too.
mkdir -p "$D/host_vars/$NEW" "$D/group_vars/fleet_replacement"
cp "$ROOT/playbooks/lab/drill_restore_vars.yml" "$D/host_vars/$NEW/restore.yml"
echo 'restore_server_report_dir: "{{ drill_dir }}/reports/fleet"' > "$D/host_vars/$NEW/zz-fleet.yml"
cp "$ROOT/playbooks/lab/fleet_restore_vars.yml" "$D/group_vars/fleet_replacement/restore.yml"
if [ "$TOOL" = borg ]; then
  # --tool borg: the database host from borg over SSH (drill_restore_vars_borg.yml on top of the drill's settings:
  # the files of a host_vars directory load in name order), with its own key on the backup server first.
  cp "$ROOT/playbooks/lab/drill_restore_vars_borg.yml" "$D/host_vars/$NEW/tool-borg.yml"
  "${PLAY[@]}" "$ROOT/playbooks/lab/drill_replacement.yml" >"$D/replacement.log" 2>&1 \
    || { tail -30 "$D/replacement.log"; fail "the database host's replacement: its access to the borg server"; }
fi
FLEET=("${PLAY[@]}" "$ROOT/playbooks/restore_server.yml" -e restore_server_group=replacement:fleet_replacement
       -e "restore_server_incident_time=$incident")
FR="$D/reports/fleet"
unit_active() { # CONTAINER UNIT: is-active
  docker exec "$1" systemctl is-active "$2" 2>/dev/null || true
}

if [ "$SMALL" = 1 ]; then
  say "fault: a dependency cycle across hosts ($NEW after $WORKER_NEW) is refused before anything moves"
  echo "restore_server_after_hosts: [$WORKER_NEW]" > "$D/host_vars/$NEW/zz-cycle.yml"
  expect_failure fleet-cycle "dependency cycle across hosts [a-z-]+ -> [a-z-]+ -> [a-z-]+ -> [a-z-]+" \
    "${FLEET[@]}" -e "drill_expected_orders=$expected_orders"
  rm "$D/host_vars/$NEW/zz-cycle.yml"
  for c in "$C-new" "$C-app-new" "$C-worker-new"; do
    docker exec "$c" test ! -e /srv/app || fail "fleet-cycle: /srv/app exists on $c"
  done
  echo "RELIABILITY fault drill-fleet-dependency-cycle-refused-before-data-moves"

  say "fault: the database host fails its sanity checks: the hosts after it start no service"
  expect_failure fleet-dependency "$APP_NEW restores after $NEW, which is not in service \\(its restore stopped in phase sanity\\)" \
    "${FLEET[@]}" -e "drill_expected_orders=$((expected_orders + 1))"
  grep -q "$WORKER_NEW restores after $APP_NEW, which is not in service (its restore stopped in phase services)" \
    "$D/fault-fleet-dependency.log" || fail "fleet-dependency: the worker does not say it waits for the application"
  [ "$(unit_active "$C-app-new" restoreops-fleet-app.service)" != active ] || fail "fleet-dependency: the application started"
  [ "$(unit_active "$C-worker-new" restoreops-fleet-worker.service)" != active ] || fail "fleet-dependency: the worker started"
  [ "$(dig_app)" = "$PROD_ADDR" ] || fail "fleet-dependency: the database host cut over although its sanity failed"
  python3 - "$FR/fleet.json" <<'PY' || fail "fleet-dependency: the fleet report"
import json, sys
f = json.load(open(sys.argv[1]))
assert f["result"] == "FAIL" and f["passed"] == 0 and f["time_to_service_seconds"] is None, f
failed = {x["host"]: x["phase"] for x in f["failed"]}
assert failed == {"rdr-new": "sanity", "rdr-app-new": "services", "rdr-worker-new": "services"}, failed
print(f"fleet report: FAIL, {failed}")
PY
  echo "the application and the worker were not started; app.$ZONE still points at $PROD_ADDR"
  echo "RELIABILITY fault drill-fleet-dependency-failed-dependants-not-started"
  say "the re-run resumes the three restores and must PASS"
fi

say "restore the fleet: ansible-playbook playbooks/restore_server.yml (3 hosts at once, services in dependency order)"
start=$SECONDS
"${FLEET[@]}" -e "drill_expected_orders=$expected_orders"
FLEET_SECONDS=$((SECONDS - start))

say "independent verification (the three hosts, from outside)"
"${PLAY[@]}" "$ROOT/playbooks/lab/drill_verify.yml" -e "drill_expected_orders=$expected_orders" \
  -e "drill_holes_expected=$(holes_expected "$FR/$NEW/report.json")" \
  | grep -E "msg|ok=|failed=" || fail "the database host's verification failed"
"${PLAY[@]}" "$ROOT/playbooks/lab/fleet_verify.yml" -e "drill_expected_orders=$expected_orders" \
  | grep -E "msg|ok=|failed=" || fail "the application host's or the worker's verification failed"
[ "$(dig_app)" = "$NEW_ADDR" ] || fail "app.$ZONE does not point at the database host's replacement ($(dig_app))"
echo "cut-over: app.$ZONE -> $(dig_app), read back from BIND with dig"
# The start order, read from systemd on each host (one monotonic clock: the containers share the kernel).
started() { docker exec "$1" systemctl show -p ActiveEnterTimestampMonotonic --value "$2"; }
db_t=$(started "$C-new" restoreops-demo-app.service)
app_t=$(started "$C-app-new" restoreops-fleet-app.service)
worker_t=$(started "$C-worker-new" restoreops-fleet-worker.service)
[ "$db_t" -gt 0 ] && [ "$app_t" -gt "$db_t" ] && [ "$worker_t" -gt "$app_t" ] \
  || fail "the services did not start in dependency order (database $db_t, application $app_t, worker $worker_t µs)"
echo "start order from systemd: database app, then application +$(( (app_t - db_t) / 1000 )) ms, then worker +$(( (worker_t - app_t) / 1000 )) ms"
python3 - "$FR" <<'PY' || fail "the fleet report"
import json, os, sys
d = sys.argv[1]
f = json.load(open(os.path.join(d, "fleet.json")))
hosts = {h["host"]: h for h in f["hosts"]}
assert f["result"] == "PASS" and f["passed"] == 3 and f["levels"] == 3, f
assert [p["host"] for p in f["critical_path"]] == ["rdr-new", "rdr-app-new", "rdr-worker-new"], f["critical_path"]
assert f["time_to_service_seconds"] == hosts["rdr-worker-new"]["in_service_offset"], f
# Each host's services started only once the host it restores after was in service.
for host, dep in (("rdr-app-new", "rdr-new"), ("rdr-worker-new", "rdr-app-new")):
    assert hosts[host]["services_offset"] >= hosts[dep]["in_service_offset"], (host, hosts[host], hosts[dep])
svg = open(os.path.join(d, "fleet-timeline.svg")).read()
assert svg.startswith("<svg") and all(f'id="host-{h}"' in svg for h in hosts), "timeline: a row group per host"
for h in hosts:
    assert json.load(open(os.path.join(d, h, "report.json")))["result"] == "PASS", h
print(open(os.path.join(d, "fleet.md")).read().split("\n## Phases")[0])
PY
echo "fleet report: $FR/fleet.md (JSON: fleet.json, timeline: fleet-timeline.svg; each host's own beside it)"

if [ "$SCAN" = 1 ]; then secret_scan; fi

say "fleet drill timings (Debian ${OS#debian}, controller $CONTROLLER)"
echo "setup (lab, three production hosts built and backed up, append-only proofs): ${FLEET_SETUP_SECONDS} s"
echo "fleet restore (wall clock, three hosts):  ${FLEET_SECONDS} s"
echo "drill total:                            $((SECONDS - drill_start)) s"
exit 0
}
