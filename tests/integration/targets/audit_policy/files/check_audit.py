#!/usr/bin/env python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/audit_policy.yml against real borg, restic, PostgreSQL and rsnapshot, on three local "hosts".

Usage: check_audit.py WORKDIR PLAYBOOK_FQCN

``compliant`` follows every rule; ``broken`` breaks each rule once; ``waived`` breaks one rule under a waiver with
a written reason. The audit runs with --check; the repositories, configurations and data hash the same before
and after; the JSON and JUnit reports name every violation; the exit code is non-zero exactly when a violation
is not waived. Last, the compliant host's archive_command starts failing (/bin/false), and its audit alone fails on
the pg_archiving rule, naming the segment that failed (a RELIABILITY fault line).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

from runner_checks import runner_checks

WORK, PLAYBOOK = sys.argv[1], sys.argv[2]
# The newest PostgreSQL installed here: 15 on Debian 12, 17 on Debian 13.
PG_BIN = max(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
PG_PORT = 25432
FAILURES: list = []
HASHED = ("repos", "conf", "data", "escrow", "secrets", "systemd", "snaps")


def sh(*argv, env=None, cwd=None, check=True):
    proc = subprocess.run(list(argv), env=dict(os.environ, **(env or {})), cwd=cwd, capture_output=True, text=True,
                          check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed rc={proc.returncode}: {proc.stderr[-1500:]}")
    return proc


def check(name, condition, detail=""):
    print(("ok   " if condition else "FAIL ") + name)
    if not condition:
        print(f"     {str(detail)[:3000]}")
        FAILURES.append(name)


def path(*parts):
    return os.path.join(WORK, *parts)


def write(rel, text, mode=0o644):
    full = path(rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(full, mode)
    return full


def tree_hash() -> dict:
    """sha256 of every file (and the mode of every entry) under the audited directories."""
    digests = {}
    for top in HASHED:
        for root, dirs, files in os.walk(path(top)):
            dirs.sort()
            for name in [*sorted(files), ""]:
                full = os.path.join(root, name) if name else root
                st = os.lstat(full)
                entry = f"{st.st_mode:o}"
                if name and os.path.isfile(full) and not os.path.islink(full):
                    with open(full, "rb") as handle:
                        entry += ":" + hashlib.sha256(handle.read()).hexdigest()
                digests[os.path.relpath(full, WORK)] = entry
    return digests


BORG_ENV = {"BORG_BASE_DIR": path("borg-base")}
RESTIC_ENV = {"RESTIC_CACHE_DIR": path("restic-cache")}


def setup() -> dict:
    passphrase = write("secrets/borg.pass", os.urandom(12).hex(), 0o600)
    with open(passphrase, encoding="utf-8") as handle:
        BORG_ENV["BORG_PASSPHRASE"] = handle.read()
    restic_pass = write("secrets/restic.pass", os.urandom(12).hex(), 0o600)
    loose_pass = write("secrets/loose.pass", "loose", 0o644)
    write("data/app/app.conf", "listen 127.0.0.1\n")
    os.makedirs(path("repos"), exist_ok=True)
    os.makedirs(path("escrow"), exist_ok=True)

    def borg(name, append_only, timestamp=None, export=True):
        repo = path("repos", name)
        argv = ["borg", "init", "--encryption=repokey"] + (["--append-only"] if append_only else [])
        sh(*argv, repo, env=BORG_ENV)
        create = ["borg", "create"] + (["--timestamp", timestamp] if timestamp else [])
        sh(*create, f"{repo}::n1", "app", cwd=path("data"), env=BORG_ENV)
        if export:
            key = path("escrow", f"{name}.key")
            sh("borg", "key", "export", repo, key, env=BORG_ENV)
            os.chmod(key, 0o600)
        return repo

    def restic(name, when=None):
        repo = path("repos", name)
        env = dict(RESTIC_ENV, RESTIC_PASSWORD_FILE=restic_pass)
        sh("restic", "init", "--repo", repo, env=env)
        sh("restic", "backup", "--repo", repo, *(["--time", when] if when else []), path("data"), env=env)
        return repo

    repos = {
        "borg_ok": borg("borg-ok", True),
        "borg_bad": borg("borg-bad", False, timestamp="2020-01-01T00:00:00", export=False),
        "borg_waived": borg("borg-waived", False),
        "restic_ok": restic("restic-ok"),
        "restic_bad": restic("restic-bad", when="2020-01-01 00:00:00"),
    }
    write("systemd/timers.target.wants/restic-forget-app.timer", "[Timer]\nOnCalendar=daily\n")
    write("systemd/backup.service", "[Service]\nEnvironment=BORG_PASSCOMMAND=cat /etc/restoreops/borg.pass\n")
    write("systemd-bad/backup.service", "[Service]\nEnvironment=BORG_PASSPHRASE=hunter2hunter2\n")
    write("systemd-bad/restic.env", "RESTIC_PASSWORD_FILE=/etc/restoreops/restic.pass\n")
    kms = write("escrow/kms.json", '{"key": "k"}\n', 0o600)
    kms_loose = write("escrow/kms-loose.json", '{"key": "k"}\n', 0o644)
    digest = hashlib.sha256(b'{"key": "k"}\n').hexdigest()
    os.makedirs(path("snaps", "daily.0"))
    tabs = ("config_version\t1.2\nsnapshot_root\t{root}/\ncmd_rsync\t/usr/bin/rsync\nretain\tdaily\t7\n"
            "backup\t{data}/\tlocalhost/\n").format(root=path("snaps"), data=path("data"))
    write("conf/rsnapshot-ok.conf", tabs)
    write("conf/rsnapshot-bad.conf", tabs.replace("retain\tdaily\t7", "retain  daily  7"))
    return {"repos": repos, "passphrase": passphrase, "restic_pass": restic_pass, "loose_pass": loose_pass,
            "kms": kms, "kms_loose": kms_loose, "digest": digest}


def start_postgres() -> None:
    pg = path("pg")
    os.makedirs(path("pg-sock"))
    os.makedirs(pg)
    pw = pwd.getpwnam("postgres")
    for d in (pg, path("pg-sock")):
        os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chmod(WORK, 0o755)  # noqa: S103 (postgres must reach its directories below)
    sh("runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", f"{pg}/data", "-U", "postgres",
       "--auth-local=trust", "--no-sync")
    with open(f"{pg}/data/postgresql.conf", "a", encoding="utf-8") as handle:
        handle.write(f"listen_addresses = ''\nport = {PG_PORT}\nunix_socket_directories = '{path('pg-sock')}'\n"
                     "archive_mode = on\narchive_command = '/bin/true'\nfsync = off\nshared_buffers = 16MB\n")
    sh("runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", f"{pg}/data", "-l", f"{pg}/log", "-w",
       "-t", "60", "start")


def stop_postgres() -> None:
    if os.path.exists(path("pg", "data", "postmaster.pid")):
        sh("runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", path("pg", "data"), "-m", "fast", "-w",
           "stop", check=False)


def host_vars(s: dict, kind: str) -> dict:
    base = {
        "ansible_connection": "local",
        "ansible_python_interpreter": os.environ.get("AUDIT_PYTHON", sys.executable),
        "audit_rpo_hours": 25,
        "audit_systemd_dir": path("systemd"),
        "audit_secret_scan_paths": [path("systemd")],
    }
    ok_borg = {"name": "borg-ok", "repo": s["repos"]["borg_ok"], "passphrase_file": s["passphrase"],
               "base_dir": path("borg-base"), "key_export": path("escrow", "borg-ok.key")}
    ok_restic = {"name": "restic-ok", "repository": s["repos"]["restic_ok"], "password_file": s["restic_pass"],
                 "env": RESTIC_ENV, "retention": {"keep_daily": 7, "keep_weekly": 4}, "prune": True,
                 "retention_timer": "restic-forget-app.timer"}
    pg = {"login_unix_socket": path("pg-sock"), "port": PG_PORT, "login_user": "postgres"}
    escrow = [{"name": "kms", "kind": "file", "key_file": s["kms"], "sha256": s["digest"]}]
    if kind == "compliant":
        return dict(base, audit_borg_repositories=[ok_borg], audit_restic_repositories=[ok_restic],
                    audit_key_escrow_items=escrow, audit_postgres=pg,
                    audit_secret_files=[s["passphrase"], s["restic_pass"]],
                    audit_rsnapshot_configs=[path("conf", "rsnapshot-ok.conf")])
    if kind == "waived":
        return dict(base, audit_borg_repositories=[dict(ok_borg, name="borg-waived", repo=s["repos"]["borg_waived"],
                                                        key_export=path("escrow", "borg-waived.key"))],
                    audit_waivers=[{"rule": "borg_append_only", "target": "borg-waived",
                                    "reason": "INC-4711: pruned by the backup host until the March migration"}])
    return dict(
        base,
        audit_systemd_dir=path("systemd-bad"),
        audit_secret_scan_paths=[path("systemd-bad")],
        audit_borg_repositories=[{"name": "borg-bad", "repo": s["repos"]["borg_bad"], "base_dir": path("borg-base"),
                                  "passphrase_file": s["passphrase"]}],
        audit_restic_repositories=[{"name": "restic-bad", "repository": s["repos"]["restic_bad"],
                                    "password_file": s["restic_pass"], "env": RESTIC_ENV, "prune": False}],
        audit_key_escrow_items=[{"name": "kms-loose", "kind": "file", "key_file": s["kms_loose"],
                                 "sha256": s["digest"]}],
        audit_postgres=dict(pg, max_archive_age=0.001),
        audit_secret_files=[s["loose_pass"]],
        audit_rsnapshot_configs=[path("conf", "rsnapshot-bad.conf")],
    )


def run_audit(label: str, hosts: list, s: dict):
    inventory = {"all": {"hosts": {h: host_vars(s, h) for h in hosts}}}
    inv = write(f"inventory-{label}.json", json.dumps(inventory))
    out = path(f"report-{label}")
    proc = subprocess.run(["ansible-playbook", "-i", inv, PLAYBOOK, "--check", "-e", f"audit_output_dir={out}"],
                          capture_output=True, text=True, check=False)
    with open(path(f"audit-{label}.log"), "w", encoding="utf-8") as handle:
        handle.write(proc.stdout + proc.stderr)
    doc = None
    if os.path.exists(os.path.join(out, "audit.json")):
        with open(os.path.join(out, "audit.json"), encoding="utf-8") as handle:
            doc = json.load(handle)
    return proc, doc, out


def main() -> int:
    s = setup()
    start_postgres()
    try:
        run_checks(s)
    finally:
        stop_postgres()
    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        return 1
    print("audit_policy: every rule detected, compliant hosts pass, waiver reported, nothing changed")
    return 0


def run_checks(s: dict) -> None:
    before = tree_hash()
    proc, doc, out = run_audit("all", ["compliant", "broken", "waived"], s)
    after = tree_hash()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    check("the audit in check mode changed no repository, configuration or data file", changed == [], changed)
    check("violations make the run fail", proc.returncode != 0 and doc is not None, proc.stdout[-3000:])
    if doc is None:
        return
    hosts = doc["hosts"]
    check("compliant: no finding at all", hosts["compliant"]["findings"] == [], hosts["compliant"]["findings"])
    check("compliant: every rule was checked", set(hosts["compliant"]["checked"]) >= {
        "borg_append_only", "key_escrow", "restic_retention", "backup_rpo", "pg_archiving", "secret_file_mode",
        "secret_in_files", "rsnapshot_config"}, hosts["compliant"]["checked"])
    broken = {(f["rule"], f["target"]) for f in hosts["broken"]["findings"] if not f["waived"]}
    messages = " | ".join(f["message"] for f in hosts["broken"]["findings"])
    expected = {
        ("borg_append_only", "borg-bad"), ("key_escrow", "borg-bad"), ("backup_rpo", "borg-bad"),
        ("restic_retention", "restic-bad"), ("backup_rpo", "restic-bad"), ("key_escrow", "kms-loose"),
        ("pg_archiving", "postgresql"), ("secret_file_mode", s["loose_pass"]),
        ("secret_in_files", path("systemd-bad", "backup.service")),
        ("rsnapshot_config", path("conf", "rsnapshot-bad.conf")),
    }
    check("broken: every rule detects its violation", expected <= broken, sorted(expected - broken))
    check("broken: restic retention names no keep_*, no prune and no timer",
          all(t in messages for t in ("no retention policy", "without pruning", "no enabled retention schedule")),
          messages)
    check("broken: the rsnapshot finding names line 4", "line 4" in messages, messages)
    check("broken: the env file referencing a password file is not a hit",
          ("secret_in_files", path("systemd-bad", "restic.env")) not in broken, broken)
    check("broken: no probe failed", not any(r == "probe_failed" for r, _t in broken), broken)
    waived = hosts["waived"]
    check("waived: one waived finding with its reason, no violation", waived["violations"] == 0
          and [(f["rule"], f["waived"], f["reason"]) for f in waived["findings"]] == [
              ("borg_append_only", True, "INC-4711: pruned by the backup host until the March migration")],
          waived["findings"])
    check("the table shows the waiver and its reason", "WAIVED" in proc.stdout and "INC-4711" in proc.stdout,
          proc.stdout[-2000:])
    root = ET.parse(os.path.join(out, "junit.xml")).getroot()  # noqa: S314 (our own output)
    suites = {suite.get("name"): suite for suite in root}
    check("junit: one suite per host, failures only on broken",
          set(suites) == {"compliant", "broken", "waived"} and suites["compliant"].get("failures") == "0"
          and int(suites["broken"].get("failures")) == hosts["broken"]["violations"]
          and suites["waived"].get("skipped") == "1", {k: v.attrib for k, v in suites.items()})

    proc, doc, _out = run_audit("clean", ["compliant", "waived"], s)
    check("compliant and waived hosts only: the audit passes (exit 0)", proc.returncode == 0 and doc["ok"],
          proc.stdout[-3000:])

    # The same audit as an AWX job: ansible-runner, with credentials injected as AWX does (extra variables and
    # environment): the report, the verdict and the table must arrive in the job events, no secret in any artifact.
    hosts = {h: host_vars(s, h) for h in ("compliant", "broken", "waived")}
    hosts["compliant"]["audit_postgres"]["login_password"] = "{{ audit_pg_password }}"
    hosts["compliant"]["audit_restic_repositories"][0]["env"] = dict(
        RESTIC_ENV, AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="{{ audit_s3_secret }}")
    hosts["broken"]["audit_postgres"]["login_password"] = "{{ lookup('ansible.builtin.env', 'AUDIT_PG_PASSWORD') }}"
    with open(s["restic_pass"], encoding="utf-8") as handle:
        restic_password = handle.read()
    runner_checks(WORK, {"all": {"hosts": hosts}}, path("report-runner"),
                  [BORG_ENV["BORG_PASSPHRASE"], restic_password, "hunter2hunter2"], check)
    archive_command_failing(s)


def psql(*sql: str) -> list:
    argv = ["runuser", "-u", "postgres", "--", f"{PG_BIN}/psql", "-h", path("pg-sock"), "-p", str(PG_PORT), "-U",
            "postgres", "-d", "postgres", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for statement in sql:  # one -c each: ALTER SYSTEM cannot run in the transaction of a multi-statement -c
        argv += ["-c", statement]
    return sh(*argv).stdout.split()


def archive_command_failing(s: dict) -> None:
    """The compliant host's archive_command starts failing: the audit of that host alone must fail on it."""
    failures = len(FAILURES)
    psql("ALTER SYSTEM SET archive_command = '/bin/false'", "SELECT pg_reload_conf()",
         "CREATE TABLE IF NOT EXISTS audit_t (id int)")
    # The archiver reads the new command on its next round: a segment switched before that is archived by the old
    # one (seen under load in CI). New segments until PostgreSQL itself reports a failure, and the segment it names.
    segment = ""
    for _attempt in range(60):
        psql("INSERT INTO audit_t SELECT generate_series(1, 1000)", "SELECT pg_switch_wal()")
        time.sleep(0.5)
        count, _sep, last = psql("SELECT failed_count || '|' || coalesce(last_failed_wal, '') "
                                 "FROM pg_stat_archiver")[0].partition("|")
        if int(count) > 0 and last:
            segment = last
            break
    proc, doc, _out = run_audit("archive-failing", ["compliant"], s)
    findings = doc["hosts"]["compliant"]["findings"] if doc else []
    check("archive_command failing: the audit fails (exit non-zero, report not ok)",
          proc.returncode != 0 and doc is not None and not doc["ok"], proc.stdout[-3000:])
    check("archive_command failing: every finding is pg_archiving, one names the failing segment",
          findings and all((f["rule"], f["target"], f["waived"]) == ("pg_archiving", "postgresql", False)
                           for f in findings)
          and any("WAL archiving is failing" in f["message"] and segment in f["message"] for f in findings),
          findings)
    if len(FAILURES) == failures:
        print("RELIABILITY fault archive-command-failing-fails-the-audit")


if __name__ == "__main__":
    sys.exit(main())
