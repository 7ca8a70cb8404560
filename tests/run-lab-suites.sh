#!/usr/bin/env bash
# The suites that need real tools and containers, run inside one lab session (see tests/run-all.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
make --no-print-directory integration || rc=1
make --no-print-directory molecule || rc=1
if [ -x tests/lab/drill.sh ]; then tests/lab/drill.sh --small || rc=1; fi
exit $rc
