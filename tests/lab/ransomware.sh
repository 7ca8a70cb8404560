# The ransomware drill (DRILL_SCENARIO=ransomware), sourced by drill.sh once the lab is set up, production built,
# backed up and its append-only protection proven. It uses drill.sh's variables and functions.
#
# 1. production gets documents and is backed up again (the clean point); the controller records each repository's
#    snapshot inventory (playbooks/backup_inventory.yml) and the pre-infection state;
# 2. the attack (playbooks/lab/ransomware_attack.yml): orders, then the documents encrypted and renamed, a note, the
#    catalogue encrypted in place, a table corrupted, a process of its own, the newest borg archive deleted with
#    production's key; the next backups capture the damage;
# 3. production's disk moves into a container with its own network namespace (docker commit, --network none,
#    NET_ADMIN): host-network containers share the machine's firewall, so nftables may only run there. The drill
#    starts the stand-in for the management connection there (a listener on 127.0.0.3:2222) and another service
#    (127.0.0.3:8081); both answer before the response;
# 4. a fresh replacement; playbooks/ransomware_response.yml runs end to end from this controller;
# 5. proofs from outside: the isolation table is loaded in the affected container, 127.0.0.2 still reaches the
#    management port, the other service and another source do not; the affected container still runs (never shut
#    down); the evidence bundle's checksums hold; then playbooks/lab/ransomware_verify.yml on the replacement.
AFFECTED_IMAGE="restoreops-dr/drill-affected-$SLOT:run"
AFFECTED="$C-affected"
ransomware_cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    docker rm -f "$AFFECTED" >/dev/null 2>&1 || true
    docker rmi "$AFFECTED_IMAGE" >/dev/null 2>&1 || true
  fi
}
ransomware_exit() { local rc=$?; ransomware_cleanup; (exit $rc); cleanup; }
trap ransomware_exit EXIT INT TERM

say "ransomware: documents, a second (clean) backup, the inventory recorded on the controller"
mkdir -p "$D/group_vars/all"
cp "$ROOT/playbooks/lab/drill_restore_vars.yml" "$D/group_vars/all/restore.yml"
cp "$ROOT/playbooks/lab/ransomware_vars.yml" "$D/group_vars/all/ransomware.yml"
"${PLAY[@]}" "$ROOT/playbooks/lab/ransomware_before.yml" >"$D/ransomware-before.log" 2>&1 \
  || { tail -30 "$D/ransomware-before.log"; fail "production before the attack"; }
"${PLAY[@]}" "$ROOT/playbooks/lab/ransomware_lab.yml" >"$D/ransomware-lab.log" 2>&1 \
  || { tail -30 "$D/ransomware-lab.log"; fail "the responder's borg key"; }
"${PLAY[@]}" "$ROOT/playbooks/backup_inventory.yml" >"$D/inventory.log" 2>&1 \
  || { tail -30 "$D/inventory.log"; fail "recording the snapshot inventory"; }
grep -h '"name"' "$D"/inventory/*.json | wc -l | xargs echo "snapshots recorded:"

say "ransomware: the attack on $PROD (encryption, a note, a corrupted table, a borg archive deleted); the next backups capture it"
sleep 2
"${PLAY[@]}" "$ROOT/playbooks/lab/ransomware_attack.yml" >"$D/ransomware-attack.log" 2>&1 \
  || { tail -30 "$D/ransomware-attack.log"; fail "the attack"; }
cat "$D/attack.json"; echo

say "ransomware: $PROD's disk moves into $AFFECTED (--network none, its own firewall); the host-network container goes"
docker commit "$C-prod" "$AFFECTED_IMAGE" >/dev/null
destroy "$C-prod" "$PROD_ADDR"
"$LAB" run "$AFFECTED" "$AFFECTED_IMAGE" --hostname "$PROD" --cap-add NET_ADMIN
docker exec "$AFFECTED" setsid -f bash -c 'exec -a restoreops-lab-cryptor sleep 86400' </dev/null
docker cp "$HERE/isolation_probe.py" "$AFFECTED:/usr/local/bin/isolation_probe.py"
docker exec -d "$AFFECTED" python3 /usr/local/bin/isolation_probe.py listen 127.0.0.3:2222 127.0.0.3:8081
probe() { docker exec "$AFFECTED" python3 /usr/local/bin/isolation_probe.py connect "$@"; }
for _ in $(seq 1 20); do probe 127.0.0.2 127.0.0.3:2222 >/dev/null 2>&1 && break; sleep 0.25; done
probe 127.0.0.2 127.0.0.3:2222 && probe 127.0.0.2 127.0.0.3:8081 && probe 127.0.0.4 127.0.0.3:2222 \
  || fail "before isolation every connection must succeed (else the proof after it proves nothing)"
cat > "$D/affected.yml" <<YML
affected:
  hosts:
    $PROD-affected:
      ansible_connection: community.docker.docker
      ansible_host: $AFFECTED
      ansible_python_interpreter: /usr/bin/python3
YML

fresh_replacement restic
orders_before=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["orders"])' "$D/orders-before-attack.json")

say "ransomware response: ansible-playbook playbooks/ransomware_response.yml (affected: $AFFECTED, replacement: $NEW)"
response_start=$SECONDS
"${PLAY[@]}" -i "$D/affected.yml" "$ROOT/playbooks/ransomware_response.yml" -e "drill_expected_orders=$orders_before" \
  2>&1 | tee "$D/response.log" | grep -E '^(TASK|PLAY|fatal|failed)|RANSOMWARE|^ +"  ' || true
RESPONSE_SECONDS=$((SECONDS - response_start))
grep -q 'RANSOMWARE RESPONSE PASS' "$D/response.log" || { tail -60 "$D/response.log"; fail "the response did not PASS"; }

say "proofs: isolation inside $AFFECTED, never shut down, the evidence checksums"
docker exec "$AFFECTED" nft list table inet restoreops_isolation > "$D/isolation.nft" || fail "isolation table not loaded"
grep -q 'policy drop' "$D/isolation.nft" || fail "the isolation table drops nothing"
echo "nftables table inet restoreops_isolation loaded (policy drop)"
probe 127.0.0.2 127.0.0.3:2222 || fail "the management connection was cut"
if probe 127.0.0.2 127.0.0.3:8081; then fail "another service is still reachable"; fi
if probe 127.0.0.4 127.0.0.3:2222; then fail "another source still reaches the management port"; fi
[ "$(docker inspect -f '{{.State.Running}}' "$AFFECTED")" = true ] || fail "the affected host was stopped"
docker exec "$AFFECTED" pgrep -f restoreops-lab-cryptor >/dev/null || fail "the affected host's processes are gone (rebooted?)"
echo "$AFFECTED still runs, its processes too (memory kept as evidence)"
bundle=$(ls -d "$D"/reports/ransomware/evidence/*-affected-* | head -1)
(cd "$bundle" && sha256sum -c --quiet SHA256SUMS) || fail "evidence checksums"
grep -q restoreops-lab-cryptor "$bundle/processes.txt" || fail "the evidence lacks the attacker's process"
echo "evidence: $(ls "$bundle" | wc -l) files in $bundle, sha256sum -c OK, the attacker's process recorded"

say "independent verification (replacement $NEW)"
"${PLAY[@]}" "$ROOT/playbooks/lab/ransomware_verify.yml" | grep -E "msg|ok=|failed=" || fail "ransomware verification failed"

# The small drill (--small): the run's secrets and the rotated ones must appear nowhere (tests/lab/secret_scan.py).
if [ "$SCAN" = 1 ]; then secret_scan "$D"/secrets/rotated/*.pass; fi

say "ransomware drill timings (Debian ${OS#debian}, controller $CONTROLLER)"
echo "setup (lab, production built and backed up, append-only proofs): ${setup_seconds} s"
echo "response playbook (all seven phases):  ${RESPONSE_SECONDS} s"
python3 - "$D/reports/ransomware/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for p in r["phases"]:
    print(f"  {p['name']:<15} {p['seconds'] if p['seconds'] is not None else '-':>7} s  {p['status']}")
PY
echo "drill total:                            $((SECONDS - drill_start)) s"
exit 0
