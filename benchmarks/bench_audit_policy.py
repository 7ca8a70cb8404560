#!/usr/bin/env python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cost of playbooks/audit_policy.yml per inventory host, and how it grows with the number of hosts.

Builds N hosts with local connections, each with its own borg repository (append-only, key exported), restic
repository (retention with prune and a timer), escrowed key, passphrase files, a directory of unit files to scan
and an rsnapshot configuration; then runs the audit in check mode over 1, 5, 10 and 20 hosts and prints the wall
time, the time per host and the ratio of the per-host cost at 20 hosts to that at 5 (1.0 = linear growth).
Target: at most 2 s per host.

Usage: bench_audit_policy.py [--hosts 20] [--forks 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")


def sh(*argv: str, env: dict | None = None, cwd: str | None = None) -> None:
    proc = subprocess.run(list(argv), env=dict(os.environ, **(env or {})), cwd=cwd, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {proc.stderr[-800:]}")


def build_host(work: str, index: int) -> dict:
    base = os.path.join(work, f"h{index:02d}")
    for sub in ("data", "secrets", "escrow", "systemd/timers.target.wants", "snaps/daily.0"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    with open(os.path.join(base, "data", "app.conf"), "w", encoding="utf-8") as handle:
        handle.write(f"host {index}\n")
    passfile = os.path.join(base, "secrets", "borg.pass")
    with open(passfile, "w", encoding="utf-8") as handle:
        handle.write(os.urandom(8).hex())
    os.chmod(passfile, 0o600)
    with open(passfile, encoding="utf-8") as handle:
        borg_env = {"BORG_PASSPHRASE": handle.read(), "BORG_BASE_DIR": os.path.join(base, "borg-base")}
    borg = os.path.join(base, "borg")
    sh("borg", "init", "--encryption=repokey", "--append-only", borg, env=borg_env)
    sh("borg", "create", f"{borg}::n1", "data", cwd=base, env=borg_env)
    key = os.path.join(base, "escrow", "borg.key")
    sh("borg", "key", "export", borg, key, env=borg_env)
    os.chmod(key, 0o600)
    restic = os.path.join(base, "restic")
    restic_env = {"RESTIC_PASSWORD_FILE": passfile, "RESTIC_CACHE_DIR": os.path.join(base, "restic-cache")}
    sh("restic", "init", "--repo", restic, env=restic_env)
    sh("restic", "backup", "--repo", restic, os.path.join(base, "data"), env=restic_env)
    with open(os.path.join(base, "systemd", "timers.target.wants", "restic-forget.timer"), "w",
              encoding="utf-8") as handle:
        handle.write("[Timer]\nOnCalendar=daily\n")
    with open(os.path.join(base, "systemd", "backup.service"), "w", encoding="utf-8") as handle:
        handle.write(f"[Service]\nEnvironment=BORG_PASSCOMMAND=cat {passfile}\n")
    kms = os.path.join(base, "escrow", "kms.json")
    with open(kms, "w", encoding="utf-8") as handle:
        handle.write('{"k": 1}\n')
    os.chmod(kms, 0o600)
    conf = os.path.join(base, "rsnapshot.conf")
    with open(conf, "w", encoding="utf-8") as handle:
        handle.write(f"config_version\t1.2\nsnapshot_root\t{base}/snaps/\ncmd_rsync\t/usr/bin/rsync\n"
                     f"retain\tdaily\t7\nbackup\t{base}/data/\tlocalhost/\n")
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "audit_systemd_dir": os.path.join(base, "systemd"),
        "audit_secret_scan_paths": [os.path.join(base, "systemd")],
        "audit_borg_repositories": [{"name": "borg", "repo": borg, "passphrase_file": passfile,
                                     "base_dir": os.path.join(base, "borg-base"), "key_export": key}],
        "audit_restic_repositories": [{"name": "restic", "repository": restic, "password_file": passfile,
                                       "env": {"RESTIC_CACHE_DIR": os.path.join(base, "restic-cache")},
                                       "retention": {"keep_daily": 7}, "prune": True,
                                       "retention_timer": "restic-forget.timer"}],
        "audit_key_escrow_items": [{"name": "kms", "kind": "file", "key_file": kms,
                                    "sha256": hashlib.sha256(b'{"k": 1}\n').hexdigest()}],
        "audit_secret_files": [passfile],
        "audit_rsnapshot_configs": [conf],
    }


def run_audit(work: str, hosts: dict, count: int, forks: int) -> tuple[float, float, dict]:
    names = sorted(hosts)[:count]
    inventory = os.path.join(work, f"inventory-{count}.json")
    with open(inventory, "w", encoding="utf-8") as handle:
        json.dump({"all": {"hosts": {n: hosts[n] for n in names}}}, handle)
    out = os.path.join(work, f"report-{count}")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_FORKS=str(forks),
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PIPELINING="True")
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
                           "restoreops.dr.audit_policy", "--check", "-e", f"audit_output_dir={out}"],
                          env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    with open(os.path.join(out, "audit.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    if proc.returncode != 0 or not doc["ok"]:
        raise SystemExit(f"the audit of {count} compliant hosts did not pass: {proc.stdout[-2000:]}")
    return elapsed, cpu, doc


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--forks", type=int, default=5)
    args = parser.parse_args()
    for tool in ("borg", "restic", "rsnapshot"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    work = tempfile.mkdtemp(prefix="bench-audit-")
    try:
        start = time.monotonic()
        hosts = {f"host{i:02d}": build_host(work, i) for i in range(args.hosts)}
        print(f"setup: {args.hosts} hosts with borg, restic, escrow, secrets, unit files, rsnapshot "
              f"in {time.monotonic() - start:.1f} s")
        counts = sorted({c for c in (1, 5, 10, args.hosts) if c <= args.hosts})
        per_host, cpu_per_host = {}, {}
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; forks {args.forks}")
        print(f"{'hosts':>5}  {'wall s':>7}  {'s/host':>6}  {'CPU s':>6}  {'CPU/host':>8}  result")
        for count in counts:
            elapsed, cpu, doc = run_audit(work, hosts, count, args.forks)
            per_host[count] = elapsed / count
            cpu_per_host[count] = cpu / count
            print(f"{count:>5}  {elapsed:7.2f}  {per_host[count]:6.2f}  {cpu:6.1f}  {cpu_per_host[count]:8.2f}  "
                  f"{doc['violations']} violations, {len(doc['hosts'])} hosts reported")
        top = max(counts)
        ref = 5 if 5 in per_host and top != 5 else min(counts)
        marginal = (per_host[top] * top - per_host[ref] * ref) / (top - ref) if top != ref else per_host[top]
        cpu_marginal = ((cpu_per_host[top] * top - cpu_per_host[ref] * ref) / (top - ref) if top != ref
                        else cpu_per_host[top])
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        print(f"wall time per host at {top} hosts: {per_host[top]:.2f} s (target <= 2 s): "
              f"{'met' if per_host[top] <= 2 else 'NOT met'}")
        print(f"marginal cost per added host ({ref} -> {top}): {marginal:.2f} s wall, {cpu_marginal:.2f} s CPU")
        print(f"ratio per-host({top}) / per-host({ref}): wall {per_host[top] / per_host[ref]:.2f}, "
              f"CPU {cpu_per_host[top] / cpu_per_host[ref]:.2f} (<= 1.0: linear or better)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
