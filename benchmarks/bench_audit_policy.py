#!/usr/bin/env python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cost per inventory host of playbooks/audit_policy.yml and playbooks/verify_backups.yml, and how it grows.

Builds N inventory hosts (default 100). Each is an alias with a local connection (`ansible_connection=local`) and
its own directory, holding its own borg repository (append-only, one archive, key exported), its own restic
repository (one snapshot; retention with prune and an enabled timer), an escrowed key, passphrase files, unit files
to scan, an rsnapshot configuration, and the checksum manifest that backup_context records at backup time. Each
alias also has its own verifier paths (script, configuration, state, temporary parent, metrics), so
restoreops.dr.backup_verify installs and runs one verifier per alias.

Then, for each host count (default 10, 25, 50, 100: the first N aliases), it runs
  audit   ansible-playbook restoreops.dr.audit_policy --check                 (every host compliant)
  verify  ansible-playbook restoreops.dr.verify_backups -e verify_backups_hosts=all
                                                    (a sample restore of both repositories per host: PASS)
with the same forks (default 10) and controller settings (pipelining; ANSIBLE_INTERNAL_POLL_INTERVAL 0.05 unless
the environment sets it), and prints wall time and CPU time (user + system of ansible-playbook and
everything it ran) per host, the load average around each run, and the growth: per-host cost at each count over
that at the smallest count (1.0 = linear, below = better than linear). A warm-up run over all hosts comes first (it
installs the verifiers, fills borg's and restic's caches: the state of a fleet on its second night), and is
reported apart. --rounds 2 runs the counts again in reverse order, so that a change in the machine's load during
the run shows as a difference between the rounds instead of as growth.

Targets (issue 17): at most 1 s wall per host at 100 hosts with forks 10; growth linear or better.

Usage: bench_audit_policy.py [--hosts 100] [--counts 10,25,50,100] [--forks 10] [--rounds 1]
                             [--playbooks audit,verify] [--keep DIR]
"""

from __future__ import annotations

import argparse
import concurrent.futures
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
PLAYBOOKS = {
    "audit": ["restoreops.dr.audit_policy", "--check"],
    "verify": ["restoreops.dr.verify_backups", "-e", "verify_backups_hosts=all"],
}
TARGET_S_PER_HOST = 1.0


def sh(*argv: str, env: dict | None = None, cwd: str | None = None) -> None:
    proc = subprocess.run(list(argv), env=dict(os.environ, **(env or {})), cwd=cwd, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {proc.stderr[-800:]}")


def write(path: str, text: str, mode: int = 0o644) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def build_host(work: str, index: int) -> dict:
    """One inventory alias: its own repositories, keys, files and verifier paths under WORK/hNNN."""
    base = os.path.join(work, f"h{index:03d}")
    src = os.path.join(base, "src")
    for sub in ("secrets", "escrow", "systemd/timers.target.wants", "snaps/daily.0", "verify/tmp"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    conf_text = f"host {index}\n"
    write(os.path.join(src, "srv", "app", "app.conf"), conf_text)
    # The manifest restoreops.dr.backup_context records at backup time: absolute paths as on the host.
    write(os.path.join(src, "srv", "app", "context", "manifest.json"),
          json.dumps({"files": {"/srv/app/app.conf": hashlib.sha256(conf_text.encode()).hexdigest()}}))
    passfile = write(os.path.join(base, "secrets", "borg.pass"), os.urandom(8).hex(), 0o600)
    with open(passfile, encoding="utf-8") as handle:
        borg_env = {"BORG_PASSPHRASE": handle.read(), "BORG_BASE_DIR": os.path.join(base, "borg-base")}
    borg = os.path.join(base, "borg")
    sh("borg", "init", "--encryption=repokey", "--append-only", borg, env=borg_env)
    sh("borg", "create", f"{borg}::n1", "srv", cwd=src, env=borg_env)
    key = os.path.join(base, "escrow", "borg.key")
    sh("borg", "key", "export", borg, key, env=borg_env)
    os.chmod(key, 0o600)
    restic = os.path.join(base, "restic")
    restic_cache = os.path.join(base, "restic-cache")
    restic_env = {"RESTIC_PASSWORD_FILE": passfile, "RESTIC_CACHE_DIR": restic_cache}
    sh("restic", "init", "--repo", restic, env=restic_env)
    sh("restic", "backup", "--repo", restic, os.path.join(src, "srv"), env=restic_env)
    write(os.path.join(base, "systemd", "timers.target.wants", "restic-forget.timer"), "[Timer]\nOnCalendar=daily\n")
    write(os.path.join(base, "systemd", "backup.service"), f"[Service]\nEnvironment=BORG_PASSCOMMAND=cat {passfile}\n")
    kms = write(os.path.join(base, "escrow", "kms.json"), '{"k": 1}\n', 0o600)
    conf = write(os.path.join(base, "rsnapshot.conf"),
                 f"config_version\t1.2\nsnapshot_root\t{base}/snaps/\ncmd_rsync\t/usr/bin/rsync\n"
                 f"retain\tdaily\t7\nbackup\t{src}/\tlocalhost/\n")
    verify = os.path.join(base, "verify")
    return {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        # audit_policy.yml
        "audit_systemd_dir": os.path.join(base, "systemd"),
        "audit_secret_scan_paths": [os.path.join(base, "systemd")],
        "audit_borg_repositories": [{"name": "borg", "repo": borg, "passphrase_file": passfile,
                                     "base_dir": borg_env["BORG_BASE_DIR"], "key_export": key}],
        "audit_restic_repositories": [{"name": "restic", "repository": restic, "password_file": passfile,
                                       "env": {"RESTIC_CACHE_DIR": restic_cache},
                                       "retention": {"keep_daily": 7}, "prune": True,
                                       "retention_timer": "restic-forget.timer"}],
        "audit_key_escrow_items": [{"name": "kms", "kind": "file", "key_file": kms,
                                    "sha256": hashlib.sha256(b'{"k": 1}\n').hexdigest()}],
        "audit_secret_files": [passfile],
        "audit_rsnapshot_configs": [conf],
        # verify_backups.yml (restoreops.dr.backup_verify): this alias's own verifier, no systemd units
        "backup_verify_manage_systemd": False,
        "backup_verify_script_path": os.path.join(verify, "libexec", "backup-verify"),
        "backup_verify_config_path": os.path.join(verify, "etc", "backup-verify.json"),
        "backup_verify_state_dir": os.path.join(verify, "state"),
        "backup_verify_tmp_dir": os.path.join(verify, "tmp"),
        "backup_verify_metrics_file": os.path.join(verify, "metrics", "restoreops_backup_verify.prom"),
        "backup_verify_repositories": [
            {"name": "borg", "type": "borg", "repository": borg, "passphrase_file": passfile,
             "env": {"BORG_BASE_DIR": borg_env["BORG_BASE_DIR"]}, "critical_files": ["srv/app/app.conf"],
             "manifest_path": "srv/app/context/manifest.json"},
            {"name": "restic", "type": "restic", "repository": restic, "password_file": passfile,
             "env": {"RESTIC_CACHE_DIR": restic_cache},
             "critical_files": [os.path.join(src, "srv", "app", "app.conf")],
             "manifest_path": os.path.join(src, "srv", "app", "context", "manifest.json"), "manifest_base": src},
        ],
    }


def run(work: str, hosts: dict, names: list, playbook: str, forks: int, label: str) -> dict:
    inventory = os.path.join(work, f"inventory-{len(names)}.json")
    if not os.path.exists(inventory):
        with open(inventory, "w", encoding="utf-8") as handle:
            json.dump({"all": {"hosts": {n: hosts[n] for n in names}}}, handle)
    out = os.path.join(work, f"report-{label}")
    # The controller waits for its workers in a loop that sleeps ANSIBLE_INTERNAL_POLL_INTERVAL between rounds
    # (default 0.001 s): over a run of minutes that loop alone costs seconds of CPU, taken from the hosts' work on a
    # small controller. 0.05 s is what docs/benchmarks/audit_policy.md recommends for large inventories.
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_FORKS=str(forks),
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_PIPELINING="True",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               ANSIBLE_INTERNAL_POLL_INTERVAL=os.environ.get("ANSIBLE_INTERNAL_POLL_INTERVAL", "0.05"))
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory, *PLAYBOOKS[playbook],
            "-e", f"audit_output_dir={out}"]
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    with open(os.path.join(work, f"{label}.log"), "w", encoding="utf-8") as handle:
        handle.write(proc.stdout + proc.stderr)
    if playbook == "audit":
        with open(os.path.join(out, "audit.json"), encoding="utf-8") as handle:
            doc = json.load(handle)
        ok = proc.returncode == 0 and doc["ok"] and len(doc["hosts"]) == len(names)
        result = f"{doc['violations']} violations, {len(doc['hosts'])} hosts reported"
    else:
        passed = proc.stdout.count(": PASS")
        ok = proc.returncode == 0 and passed == 2 * len(names)
        result = f"{passed} repositories PASS"
    if not ok:
        raise SystemExit(f"{label}: the {playbook} of {len(names)} hosts did not pass (rc {proc.returncode}); "
                         f"see {work}/{label}.log\n{proc.stdout[-3000:]}")
    return {"hosts": len(names), "wall": elapsed, "cpu": cpu, "load_before": load_before,
            "load_after": os.getloadavg()[0], "result": result}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--counts", default="10,25,50,100")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--playbooks", default="audit,verify")
    parser.add_argument("--setup-workers", type=int, default=4)
    parser.add_argument("--keep", help="build the hosts in this directory and keep it (reused when it exists)")
    args = parser.parse_args()
    playbooks = [p for p in args.playbooks.split(",") if p]
    counts = sorted({int(c) for c in args.counts.split(",") if int(c) <= args.hosts})
    for tool in ("borg", "restic", "rsnapshot"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    work = args.keep or tempfile.mkdtemp(prefix="bench-fleet-", dir="/var/tmp")
    hosts_file = os.path.join(work, "hosts.json")
    try:
        start = time.monotonic()
        if os.path.exists(hosts_file):
            with open(hosts_file, encoding="utf-8") as handle:
                hosts = json.load(handle)
            print(f"setup: reusing {len(hosts)} hosts in {work}")
        else:
            os.makedirs(work, exist_ok=True)
            with concurrent.futures.ThreadPoolExecutor(args.setup_workers) as pool:
                built = pool.map(lambda i: (f"host{i:03d}", build_host(work, i)), range(args.hosts))
                hosts = dict(built)
            with open(hosts_file, "w", encoding="utf-8") as handle:
                json.dump(hosts, handle)
            print(f"setup: {args.hosts} aliases (local connection), each with its own borg and restic repository, "
                  f"escrowed key, secrets, unit files, rsnapshot configuration and verifier paths, in "
                  f"{time.monotonic() - start:.0f} s")
        names = sorted(hosts)[:args.hosts]
        print(f"{os.cpu_count()} CPUs; forks {args.forks}; load average now {os.getloadavg()[0]:.1f}")
        for playbook in playbooks:
            warm = run(work, hosts, names, playbook, args.forks, f"{playbook}-warmup")
            print(f"warm-up {playbook} over {warm['hosts']} hosts: {warm['wall']:.1f} s wall, {warm['cpu']:.1f} s CPU "
                  f"(load {warm['load_before']:.1f} -> {warm['load_after']:.1f}); {warm['result']}")
        results: dict = {p: {c: [] for c in counts} for p in playbooks}
        order = []
        for rnd in range(args.rounds):
            order += [(rnd, c) for c in (counts if rnd % 2 == 0 else list(reversed(counts)))]
        print(f"\n{'playbook':8}  {'round':>5}  {'hosts':>5}  {'wall s':>7}  {'s/host':>6}  {'CPU s':>7}  "
              f"{'CPU/host':>8}  {'load':>11}  result")
        for rnd, count in order:
            for playbook in playbooks:
                r = run(work, hosts, names[:count], playbook, args.forks, f"{playbook}-{count}-r{rnd + 1}")
                results[playbook][count].append(r)
                print(f"{playbook:8}  {rnd + 1:>5}  {count:>5}  {r['wall']:7.1f}  {r['wall'] / count:6.2f}  "
                      f"{r['cpu']:7.1f}  {r['cpu'] / count:8.2f}  {r['load_before']:4.1f} -> {r['load_after']:4.1f}  "
                      f"{r['result']}", flush=True)
        print()
        for playbook in playbooks:
            per_host = {c: sum(r["wall"] for r in results[playbook][c]) / len(results[playbook][c]) / c for c in counts}
            cpu_host = {c: sum(r["cpu"] for r in results[playbook][c]) / len(results[playbook][c]) / c for c in counts}
            low, top = counts[0], counts[-1]
            growth = ", ".join(f"{c}: {per_host[c] / per_host[low]:.2f}" for c in counts)
            cpu_growth = ", ".join(f"{c}: {cpu_host[c] / cpu_host[low]:.2f}" for c in counts)
            marginal = ((per_host[top] * top - per_host[low] * low) / (top - low)) if top != low else per_host[top]
            verdict = "met" if per_host[top] <= TARGET_S_PER_HOST else "NOT met"
            print(f"{playbook}: {per_host[top]:.2f} s wall per host at {top} hosts "
                  f"(target <= {TARGET_S_PER_HOST:.0f} s: {verdict}); {cpu_host[top]:.2f} s CPU per host; "
                  f"marginal wall per added host {low} -> {top}: {marginal:.2f} s")
            print(f"  per-host wall relative to {low} hosts: {growth}")
            print(f"  per-host CPU relative to {low} hosts: {cpu_growth}  (<= 1.0: linear or better)")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
