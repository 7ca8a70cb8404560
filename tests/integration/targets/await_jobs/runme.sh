#!/usr/bin/env bash
# await_jobs: two background jobs on this host, one writing a progress file as the collection's modules do, one
# failing; the default output must show progress lines while they run, and the results must come back.
set -eu -o pipefail
WORKDIR="$(mktemp -d /tmp/restoreops-await-jobs.XXXXXX)"
trap 'rm -rf "${WORKDIR}"' EXIT
ansible-playbook -i "${INVENTORY_PATH}" runme.yml -e "workdir=${WORKDIR}" "$@" | tee "${WORKDIR}/out.log"
# At least three lines for the writer while it ran (one every 2 s over about 10 s), with percent, amounts and rate.
count=$(grep -cE '^copy data [0-9]+% [0-9.]+ (B|KiB|MiB) / 12\.0 MiB( [0-9.]+ (B|KiB|MiB)/s)?( ETA [0-9hms]+)? \(testhost\)$' \
  "${WORKDIR}/out.log" || true)
if [ "${count}" -lt 3 ]; then
    echo "expected at least 3 progress lines, found ${count}" >&2
    exit 1
fi
grep -qE '^copy data [0-9]+% .* MiB/s ETA [0-9]+s \(testhost\)$' "${WORKDIR}/out.log" \
  || { echo "no progress line with a rate and an ETA" >&2; exit 1; }
echo "await_jobs: ${count} progress lines"

# The same play through ansible-runner, as AWX runs it: the progress lines must arrive as job events.
if command -v ansible-runner >/dev/null 2>&1; then
    pdd="${WORKDIR}/runner"
    mkdir -p "${pdd}/project" "${pdd}/inventory" "${pdd}/env"
    # The play with what it imports: its tasks/ and the sibling setup_reliability target.
    cp -r . "${pdd}/project"
    cp -r ../setup_reliability "${pdd}/setup_reliability"
    cp "${INVENTORY_PATH}" "${pdd}/inventory/hosts"
    printf 'workdir: "%s"\n' "${WORKDIR}/runner-play" > "${pdd}/env/extravars"
    mkdir -p "${WORKDIR}/runner-play"
    printf '{"ANSIBLE_COLLECTIONS_PATH": "%s"}\n' "${ANSIBLE_COLLECTIONS_PATH:-}" > "${pdd}/env/envvars"
    ansible-runner run "${pdd}" -p runme.yml --ident progress -q > "${WORKDIR}/runner.log" 2>&1 \
        || { tail -40 "${WORKDIR}/runner.log" "${pdd}/artifacts/progress/stdout" >&2; echo "ansible-runner run failed" >&2
             exit 1; }
    events=$(python3 - "${pdd}/artifacts/progress/job_events" <<'PY'
import json, os, re, sys
lines = []
for name in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], name), encoding="utf-8") as handle:
        event = json.load(handle)
    for line in (event.get("stdout") or "").splitlines():
        if re.match(r"^copy data [0-9]+% .* / 12\.0 MiB", line):
            lines.append(line)
print(len(lines))
PY
)
    if [ "${events}" -lt 3 ]; then
        echo "expected at least 3 progress lines among ansible-runner's job events, found ${events}" >&2
        exit 1
    fi
    echo "await_jobs: ${events} progress lines in ansible-runner job events"
fi
