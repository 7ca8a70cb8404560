#!/usr/bin/env bash
# A BIND 9 server for the lab: one zone that accepts TSIG-signed dynamic updates, on a loopback address and an
# unusual port (never port 53 on all addresses), without the rndc control channel (so several run side by side).
# named listens only on addresses an interface holds: on this machine that is 127.0.0.1 (the rest of 127.0.0.0/8
# reaches lo by its route, not as an address of its own).
#
#   dns.sh start DIR ADDR PORT ZONE RECORD VALUE   zone ZONE with RECORD A VALUE; key in DIR/tsig.json (0600)
#   dns.sh stop DIR                                stop the named that `start` started (by PID)
#
# named runs in the foreground of its own session with the configuration, zone, journal and PID file in DIR.
set -euo pipefail
cmd=${1:-}; shift || true
case "$cmd" in
  start)
    [ $# -eq 6 ] || { echo "usage: dns.sh start DIR ADDR PORT ZONE RECORD VALUE" >&2; exit 2; }
    dir=$1 addr=$2 port=$3 zone=$4 record=$5 value=$6
    command -v named >/dev/null || { echo "dns.sh: named is not installed (Debian package bind9)" >&2; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    umask 077
    secret=$(head -c 32 /dev/urandom | base64)
    printf '{"key_name": "restoreops-lab", "key_algorithm": "hmac-sha256", "key_secret": "%s"}\n' "$secret" > "$dir/tsig.json"
    cat > "$dir/named.conf" <<CONF
options {
  directory "$dir";
  pid-file "$dir/named.pid";
  listen-on port $port { $addr; };
  listen-on-v6 { none; };
  recursion no;
  allow-query { 127.0.0.0/8; };
  dnssec-validation no;
};
controls { };
key "restoreops-lab" { algorithm hmac-sha256; secret "$secret"; };
zone "$zone" { type primary; file "$dir/$zone.db"; allow-update { key "restoreops-lab"; }; };
CONF
    cat > "$dir/$zone.db" <<ZONE
\$TTL 60
@ IN SOA ns.$zone. hostmaster.$zone. ( 1 60 60 3600 60 )
@ IN NS ns.$zone.
ns IN A $addr
$record IN A $value
ZONE
    named-checkconf "$dir/named.conf"
    setsid named -g -c "$dir/named.conf" > "$dir/named.log" 2>&1 < /dev/null &
    echo $! > "$dir/named.run.pid"
    for _ in $(seq 1 50); do
      if dig +short +time=1 +tries=1 -p "$port" "@$addr" "$record.$zone" A 2>/dev/null | grep -q .; then
        echo "dns.sh: named answers on $addr:$port (pid $(cat "$dir/named.run.pid"))"
        exit 0
      fi
      kill -0 "$(cat "$dir/named.run.pid")" 2>/dev/null || { tail -20 "$dir/named.log" >&2; exit 1; }
      sleep 0.2
    done
    tail -20 "$dir/named.log" >&2
    echo "dns.sh: named did not answer on $addr:$port" >&2
    exit 1
    ;;
  stop)
    dir=${1:?usage: dns.sh stop DIR}
    [ -f "$dir/named.run.pid" ] || exit 0
    pid=$(cat "$dir/named.run.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$dir/named.run.pid"
    ;;
  *) sed -n '2,9p' "$0"; exit 2 ;;
esac
