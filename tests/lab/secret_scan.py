# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The drill's secret scan: no passphrase, password, key or token the drill uses may appear in anything it printed,
logged or reported, nor on any process's command line while it ran.

    secret_scan.py sample OUT STOP_FILE [--interval S]
        read every process's argv (/proc/*/cmdline: this machine's processes and every lab container's, which share
        the kernel) until STOP_FILE exists; write each distinct argv once to OUT (one line, NULs as spaces) and the
        number of samples to OUT.count
    secret_scan.py scan SECRETS PATH...
        every line of the SECRETS file is a secret (at least 8 characters; "LABEL<tab>SECRET" names it); every
        regular file under the PATHs (gzip read through) is searched for each, also in its base64, URL-quoted and
        JSON-escaped spellings. Prints the count of files, bytes and secrets, one line per hit (the file and the
        secret's label, never the secret itself) and exits 1 on any hit.

Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import sys
import time
import urllib.parse

MIN_SECRET = 8


def sample(out: str, stop: str, interval: float) -> int:
    seen: set[bytes] = set()
    samples = 0
    me = os.getpid()
    while not os.path.exists(stop):
        samples += 1
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == me:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as handle:
                    argv = handle.read()
            except OSError:
                continue
            if argv:
                seen.add(argv.rstrip(b"\0").replace(b"\0", b" "))
        time.sleep(interval)
    with open(out, "wb") as handle:
        for argv in sorted(seen):
            handle.write(argv.replace(b"\n", b" ") + b"\n")
    with open(out + ".count", "w", encoding="utf-8") as handle:
        handle.write(f"{samples} {len(seen)}\n")
    return 0


def load_secrets(path: str) -> dict[str, str]:
    """secret -> a label naming its line (the label is printed, the secret never)."""
    secrets: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            label, _tab, secret = line.rstrip("\n").rpartition("\t")
            if len(secret.strip()) >= MIN_SECRET:
                secrets[secret.strip()] = label or f"{os.path.basename(path)} line {number}"
    return secrets


def spellings(secret: str) -> set[bytes]:
    raw = secret.encode()
    forms = {raw, base64.b64encode(raw), urllib.parse.quote(secret, safe="").encode(),
             json.dumps(secret)[1:-1].encode()}
    return {form for form in forms if len(form) >= MIN_SECRET}


def read(path: str) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError):
            return data
    return data


def files_under(paths: list[str]) -> list[str]:
    found = []
    for top in paths:
        if os.path.isfile(top):
            found.append(top)
            continue
        for root, _dirs, names in os.walk(top):
            for name in names:
                path = os.path.join(root, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    found.append(path)
    return found


def scan(secret_file: str, paths: list[str]) -> int:
    secrets = load_secrets(secret_file)
    if not secrets:
        print("secret scan: no secrets to look for (the drill's secret files are empty?)")
        return 1
    forms = {form: label for secret, label in secrets.items() for form in spellings(secret)}
    files = files_under(paths)
    hits = 0
    size = 0
    for path in files:
        data = read(path)
        size += len(data)
        for form, label in forms.items():
            if form in data:
                hits += 1
                print(f"secret scan: HIT {label} in {path}")
    print(f"secret scan: {len(secrets)} secrets, {len(files)} files ({size / 1048576:.1f} MiB): {hits} hits")
    return 1 if hits else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("out")
    s.add_argument("stop")
    s.add_argument("--interval", type=float, default=0.05)
    c = sub.add_parser("scan")
    c.add_argument("secrets")
    c.add_argument("paths", nargs="+")
    args = parser.parse_args()
    if args.cmd == "sample":
        return sample(args.out, args.stop, args.interval)
    return scan(args.secrets, args.paths)


if __name__ == "__main__":
    sys.exit(main())
