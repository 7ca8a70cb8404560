#!/usr/bin/env bash
# ansible-test's first sanity run downloads a pip bootstrap script from the internet, which this lab cannot reach.
# Put an offline stand-in where ansible-test caches it: it upgrades pip with ensurepip and installs what it is asked
# for through the configured package index. Idempotent.
set -euo pipefail
cache="${HOME}/.ansible/test/cache"
mkdir -p "$cache"
for name in get_pip_25_2.py get_pip_25_1.py get_pip_25_0.py get_pip_24_2.py get_pip_24_0.py get_pip_23_1_2.py; do
  cat > "$cache/$name" <<'PY'
"""Offline stand-in for get-pip.py (restoreops.dr tests/sanity-bootstrap.sh)."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
PY
done
