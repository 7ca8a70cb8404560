# Sourced by the runme.sh of targets that prove a secret never reaches a process argv or Ansible's output
# (aliases: needs/target/setup_argv_sampler). Usage:
#   argv_sampler_start WORKDIR SECRET_FILE TOOL       start sampling every process's argv in the background
#   argv_sampler_stop_and_check MIN_PROCESSES LOG     stop; fail if the secret was in an argv or in LOG, or if fewer
#                                                     than MIN_PROCESSES processes of TOOL were seen
#   argv_sampler_cleanup                              for the caller's EXIT trap: stop a sampler still running
#   argv_sampler_workdir PREFIX                       a private WORKDIR under /tmp (removed, with the sampler
#                                                     stopped, on exit) holding a random PASSWORD in WORKDIR/password
ARGV_SAMPLER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ARGV_SAMPLER_PID=""

argv_sampler_start() {
    ARGV_SAMPLER_WORK="$1"
    ARGV_SAMPLER_SECRET="$2"
    python3 "${ARGV_SAMPLER_DIR}/argv_sampler.py" "${ARGV_SAMPLER_SECRET}" "${ARGV_SAMPLER_WORK}/stop-sampler" \
        "${ARGV_SAMPLER_WORK}/argv-report.json" "$3" &
    ARGV_SAMPLER_PID=$!
}

argv_sampler_workdir() {
    WORKDIR="$(mktemp -d "/tmp/$1.XXXXXX")"
    chmod 0700 "${WORKDIR}"
    trap 'argv_sampler_cleanup; rm -rf "${WORKDIR}"' EXIT
    PASSWORD="rops-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-pw"
    printf '%s\n' "${PASSWORD}" > "${WORKDIR}/password"
    chmod 0600 "${WORKDIR}/password"
}

argv_sampler_cleanup() {
    if [ -n "${ARGV_SAMPLER_PID}" ]; then
        touch "${ARGV_SAMPLER_WORK}/stop-sampler"
        wait "${ARGV_SAMPLER_PID}" || true
        ARGV_SAMPLER_PID=""
    fi
}

argv_sampler_stop_and_check() {
    touch "${ARGV_SAMPLER_WORK}/stop-sampler"
    wait "${ARGV_SAMPLER_PID}"
    ARGV_SAMPLER_PID=""
    python3 - "${ARGV_SAMPLER_WORK}/argv-report.json" "${ARGV_SAMPLER_SECRET}" "$1" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
secret = open(sys.argv[2], "rb").readline().rstrip(b"\n").decode()
leaks = sorted({leak.replace(secret, "<SECRET>") for leak in report["leaks"]})
print(f"argv sampler: {report['samples']} samples, {report['processes']} {report['tool']} processes, "
      f"{len(report['leaks'])} argv samples with the secret")
for leak in leaks[:5]:
    print("  leak:", leak)
assert report["samples"] > 100, "the sampler hardly ran"
assert report["processes"] >= int(sys.argv[3]), f"the sampler saw too few {report['tool']} processes to mean anything"
assert not leaks, "the secret appeared in a process argv"
PY
    if grep -qF "$(head -n 1 "${ARGV_SAMPLER_SECRET}")" "$2"; then
        echo "the secret appeared in the playbook output" >&2
        return 1
    fi
    echo "the secret did not appear in the playbook output"
}
