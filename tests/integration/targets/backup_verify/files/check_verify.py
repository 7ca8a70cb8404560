#!/usr/bin/env python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup-verify against real borg 1.2 and restic 0.14.

Usage: check_verify.py SCRIPT WORKDIR

Builds small repositories with a checksum manifest inside each backup, starts a webhook receiver on 127.0.0.1,
and runs the installed script for each outcome: PASS (borg, restic), FAIL on flipped bytes in a borg segment
(alert received), STALE for old backups (borg --timestamp, restic --time), FAIL naming a missing critical file,
FAIL on a checksum mismatch, PASS against a format 2 manifest (manifest.jsonl.gz, written with the manifest library
the role installed beside the script), PASS by default against the manifest.json of a backup recorded before format
2, a refused world-readable configuration, and FAIL with an alert on damaged restic packs. After every run the
private temporary directory is gone. The receiver is stopped by its PID in every case. The damaged borg segment and
the damaged restic packs print a RELIABILITY fault line each when all their checks passed.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time

SCRIPT, WORK = sys.argv[1], sys.argv[2]
PASSPHRASE = "verify-test-" + os.urandom(6).hex()
HOOK_PATH = "/services/T000/B000/" + os.urandom(8).hex()
MANIFEST = "var/lib/restoreops/manifest.json"
FAILURES: list = []


def sh(*argv, cwd=None, env=None, check=True):
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run(list(argv), cwd=cwd, env=full_env, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed rc={proc.returncode}: {proc.stderr[-800:]}")
    return proc


def free_port() -> int:
    for port in range(25080, 25999):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port in 25080-25998")


def make_source(root: str, files: dict) -> dict:
    """Write files (relative path -> bytes) and a manifest of their sha256 under root; return the manifest."""
    manifest = {}
    for path, data in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
        manifest[path] = hashlib.sha256(data).hexdigest()
    return manifest


def write_manifest(root: str, manifest: dict) -> None:
    full = os.path.join(root, MANIFEST)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w", encoding="utf-8") as handle:
        json.dump({"created": time.time(), "files": manifest}, handle)


def check(name: str, condition: bool, detail: object = "") -> None:
    print(("ok   " if condition else "FAIL ") + name)
    if not condition:
        print(f"     {str(detail)[:3000]}")
        FAILURES.append(f"{name}: {detail}")


BORG_ENV = {"BORG_PASSPHRASE": PASSPHRASE, "BORG_BASE_DIR": os.path.join(WORK, "borg-base")}


def borg_repo(name: str, src: str, timestamp: str | None = None) -> str:
    repo = os.path.join(WORK, "repos", name)
    sh("borg", "init", "--encryption=repokey", repo, env=BORG_ENV)
    argv = ["borg", "create"]
    if timestamp:
        argv += ["--timestamp", timestamp]
    sh(*argv, f"{repo}::nightly-1", "etc", "var", cwd=src, env=BORG_ENV)
    return repo


def restic_repo(name: str, src: str, when: str | None = None) -> str:
    repo = os.path.join(WORK, "repos", name)
    env = {"RESTIC_PASSWORD_FILE": PASSFILE, "RESTIC_CACHE_DIR": os.path.join(WORK, "restic-cache")}
    sh("restic", "init", "--repo", repo, env=env)
    argv = ["restic", "backup", "--repo", repo, "--host", "db1"]
    if when:
        argv += ["--time", when]
    sh(*argv, src, env=env)
    return repo


def run_verify(label: str, repos: list, mode: int = 0o600) -> tuple:
    config = {
        "max_age_hours": 25,
        "webhook_url": f"http://127.0.0.1:{PORT}{HOOK_PATH}",
        "webhook_timeout": 5,
        "metrics_file": os.path.join(WORK, "metrics", f"{label}.prom"),
        "state_dir": os.path.join(WORK, "state", label),
        "tmp_dir": TMP_PARENT,
        "host": "db1",
        "repositories": repos,
    }
    path = os.path.join(WORK, f"{label}.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    os.chmod(path, mode)
    before = received()
    proc = subprocess.run([sys.executable, SCRIPT, "--config", path], capture_output=True, text=True, check=False)
    hooks = received()[len(before):]
    report = json.loads(proc.stdout) if proc.stdout.strip() else {"repositories": [], "stderr": proc.stderr}
    check(f"{label}: the webhook URL appears in no output", HOOK_PATH not in proc.stdout + proc.stderr)
    check(f"{label}: the temporary directory parent is empty", os.listdir(TMP_PARENT) == [],
          os.listdir(TMP_PARENT))
    for rep in report.get("repositories", []):
        if rep.get("tmp_dir"):
            check(f"{label}/{rep['name']}: its temporary directory is gone", not os.path.exists(rep["tmp_dir"])
                  and rep["tmp_removed"] is True, rep["tmp_dir"])
    return proc, report, hooks


def received() -> list:
    try:
        with open(HOOK_LOG, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except FileNotFoundError:
        return []


def borg_entry(name: str, repo: str, critical: list | None = None) -> dict:
    return {"name": name, "type": "borg", "repository": repo, "passphrase_file": PASSFILE,
            "env": {"BORG_BASE_DIR": BORG_ENV["BORG_BASE_DIR"]},
            "critical_files": critical or ["etc/app.conf", "var/lib/app/db.dump"], "manifest_path": MANIFEST}


def restic_entry(name: str, repo: str, src: str, critical: list | None = None) -> dict:
    return {"name": name, "type": "restic", "repository": repo, "password_file": PASSFILE,
            "env": {"RESTIC_CACHE_DIR": os.path.join(WORK, "restic-cache")},
            "critical_files": [os.path.join(src, p) for p in (critical or ["etc/app.conf"])],
            "manifest_path": os.path.join(src, MANIFEST), "manifest_base": src, "read_data_subset": "1/2"}


def load_manifest_library():
    """The manifest library the role installed beside the script (the collection's module_utils/_manifest.py)."""
    path = os.path.join(os.path.dirname(SCRIPT), "restoreops-lib", "ansible_collections", "restoreops", "dr",
                        "plugins", "module_utils", "_manifest.py")
    spec = importlib.util.spec_from_file_location("installed_manifest", path)
    module = sys.modules["installed_manifest"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fault(name: str, failures_before: int) -> None:
    """Count a fault survived (tests/tools/reliability.py) when none of its checks failed."""
    if len(FAILURES) == failures_before:
        print(f"RELIABILITY fault {name}")


def metrics(label: str) -> str:
    with open(os.path.join(WORK, "metrics", f"{label}.prom"), encoding="utf-8") as handle:
        return handle.read()


def main() -> int:
    global PORT, HOOK_LOG, TMP_PARENT, PASSFILE
    PORT = free_port()
    HOOK_LOG = os.path.join(WORK, "hooks.jsonl")
    TMP_PARENT = os.path.join(WORK, "tmp")
    os.makedirs(TMP_PARENT)
    os.makedirs(os.path.join(WORK, "repos"))
    PASSFILE = os.path.join(WORK, "passphrase")
    with open(PASSFILE, "w", encoding="utf-8") as handle:
        handle.write(PASSPHRASE + "\n")
    os.chmod(PASSFILE, 0o600)

    files = {"etc/app.conf": b"listen 127.0.0.1\n", "var/lib/app/db.dump": os.urandom(256 * 1024)}
    src = os.path.join(WORK, "src")
    write_manifest(src, make_source(src, files))
    # a source whose manifest was recorded before the file changed (a checksum mismatch)
    src_bad = os.path.join(WORK, "src-bad")
    manifest = make_source(src_bad, files)
    make_source(src_bad, {"etc/app.conf": b"listen 0.0.0.0\n"})
    write_manifest(src_bad, manifest)

    receiver = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "receiver.py"),
                                 str(PORT), HOOK_LOG, HOOK_PATH], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout.readline().strip() == "ready"
        run_cases(src, src_bad, files)
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    with socket.socket() as sock:
        check("the receiver is stopped (port free again)", sock.connect_ex(("127.0.0.1", PORT)) != 0)
    if FAILURES:
        print("\n".join(FAILURES), file=sys.stderr)
        return 1
    print("backup-verify: all outcomes as expected")
    return 0


def run_cases(src: str, src_bad: str, files: dict) -> None:
    borg_ok = borg_repo("borg-ok", src)
    restic_ok = restic_repo("restic-ok", src)

    proc, report, hooks = run_verify("pass", [borg_entry("db1-borg", borg_ok),
                                              restic_entry("db1-restic", restic_ok, src)])
    check("pass: exit 0 and PASS", proc.returncode == 0 and report["result"] == "PASS", proc.stderr)
    check("pass: files match the manifest", all(
        f["match"] for rep in report["repositories"] for f in rep["files"].values()), report)
    check("pass: both repository checks ran and passed",
          [r["repository_check"]["ok"] for r in report["repositories"]] == [True, True], report)
    check("pass: no alert sent", hooks == [] and report["alert"] is None, hooks)
    text = metrics("pass")
    check("pass: metrics report PASS, last success, age",
          'restoreops_backup_verify_result{repository="db1-borg",result="PASS"} 1' in text
          and 'restoreops_backup_verify_last_success_timestamp_seconds{repository="db1-restic"}' in text
          and 'restoreops_backup_verify_backup_age_seconds{repository="db1-borg"}' in text
          and 'restoreops_backup_verify_last_run_timestamp_seconds{repository=""}' in text, text)
    check("pass: the passphrase is in no output", PASSPHRASE not in proc.stdout + proc.stderr)

    # missing critical file
    proc, report, hooks = run_verify("missing", [borg_entry("db1-borg", borg_ok,
                                                            ["etc/app.conf", "etc/ssl/private/app.key"])])
    rep = report["repositories"][0]
    check("missing: exit 1 and FAIL", proc.returncode == 1 and report["result"] == "FAIL", proc.stderr)
    check("missing: the problem names the file",
          any("etc/ssl/private/app.key" in p and "missing" in p for p in rep["problems"]), rep["problems"])
    check("missing: the alert names it too", len(hooks) == 1
          and "etc/ssl/private/app.key" in hooks[0]["body"]["text"], hooks)

    # checksum mismatch
    borg_bad = borg_repo("borg-badsum", src_bad)
    proc, report, hooks = run_verify("checksum", [borg_entry("db1-borg", borg_bad)])
    rep = report["repositories"][0]
    check("checksum: FAIL naming etc/app.conf", proc.returncode == 1 and any(
        "etc/app.conf does not match" in p for p in rep["problems"]), rep["problems"])
    check("checksum: the other file still matches", rep["files"]["var/lib/app/db.dump"]["match"] is True, rep)

    # stale borg (created with --timestamp) and stale restic (--time)
    borg_old = borg_repo("borg-old", src, timestamp="2020-01-01T00:00:00")
    restic_old = restic_repo("restic-old", src, when="2020-01-01 00:00:00")
    proc, report, hooks = run_verify("stale", [borg_entry("old-borg", borg_old),
                                               restic_entry("old-restic", restic_old, src)])
    check("stale: exit 2 and STALE for both", proc.returncode == 2 and report["result"] == "STALE"
          and [r["result"] for r in report["repositories"]] == ["STALE", "STALE"], proc.stderr)
    check("stale: the restore itself passed", all(
        f["match"] for rep in report["repositories"] for f in rep["files"].values()), report)
    check("stale: an alert was received", len(hooks) == 1 and "STALE" in hooks[0]["body"]["text"]
          and hooks[0]["content_type"] == "application/json", hooks)
    check("stale: metrics say STALE", 'restoreops_backup_verify_result{repository="old-borg",result="STALE"} 1'
          in metrics("stale"))

    # flipped bytes in a borg segment
    failures = len(FAILURES)
    borg_corrupt = borg_repo("borg-corrupt", src)
    segments = [p for p in glob.glob(os.path.join(borg_corrupt, "data", "*", "*")) if os.path.basename(p).isdigit()]
    biggest = max(segments, key=os.path.getsize)
    with open(biggest, "r+b") as handle:
        handle.seek(os.path.getsize(biggest) // 2)
        chunk = handle.read(64)
        handle.seek(os.path.getsize(biggest) // 2)
        handle.write(bytes(b ^ 0xFF for b in chunk))
    proc, report, hooks = run_verify("corrupt", [borg_entry("db1-borg", borg_corrupt)])
    rep = report["repositories"][0]
    check("corrupt: exit 1 and FAIL", proc.returncode == 1 and rep["result"] == "FAIL", proc.stderr)
    check("corrupt: borg check --repository-only failed", rep["repository_check"]["ok"] is False, rep)
    check("corrupt: the webhook was received with a Slack-compatible body", len(hooks) == 1
          and hooks[0]["path"] == HOOK_PATH and "db1-borg" in hooks[0]["body"]["text"]
          and hooks[0]["body"]["attachments"][0]["color"] == "danger", hooks)
    check("corrupt: metrics say FAIL, no last success",
          'restoreops_backup_verify_result{repository="db1-borg",result="FAIL"} 1' in metrics("corrupt")
          and "last_success_timestamp_seconds{" not in metrics("corrupt"))
    fault("backup-verify-alerts-on-corrupted-borg-segment", failures)

    # damaged restic packs: bytes overwritten in every pack of the repository (trees and data)
    failures = len(FAILURES)
    restic_corrupt = restic_repo("restic-corrupt", src)
    for pack in glob.glob(os.path.join(restic_corrupt, "data", "*", "*")):
        os.chmod(pack, 0o600)
        with open(pack, "r+b") as handle:
            handle.seek(60)
            handle.write(b"damaged")
    entry = restic_entry("db1-restic", restic_corrupt, src)
    entry["read_data_subset"] = "100%"
    entry["env"] = {"RESTIC_CACHE_DIR": os.path.join(WORK, "restic-cache-corrupt")}  # no tree from a cache
    proc, report, hooks = run_verify("restic-corrupt", [entry])
    rep = report["repositories"][0] if report["repositories"] else {}
    check("restic-corrupt: exit 1 and FAIL", proc.returncode == 1 and rep.get("result") == "FAIL", proc.stderr)
    check("restic-corrupt: restic check --read-data-subset 100% failed",
          (rep.get("repository_check") or {}).get("ok") is False, rep)
    check("restic-corrupt: a problem names restic's check failure",
          any(p.startswith("restic check failed") for p in rep.get("problems", [])), rep.get("problems"))
    check("restic-corrupt: the webhook was received, naming the repository and its problems", len(hooks) == 1
          and "db1-restic" in hooks[0]["body"]["text"] and "restic check failed" in json.dumps(hooks[0]["body"])
          and hooks[0]["body"]["attachments"][0]["color"] == "danger", hooks)
    check("restic-corrupt: metrics say FAIL",
          'restoreops_backup_verify_result{repository="db1-restic",result="FAIL"} 1' in metrics("restic-corrupt"))
    fault("backup-verify-alerts-on-corrupted-restic-pack", failures)

    # format 2 (manifest.jsonl.gz, as backup_context records it now): absolute keys, restic stores full paths
    lib = load_manifest_library()
    src2 = os.path.join(WORK, "src-v2")
    make_source(src2, files)
    context = os.path.join(src2, "var/lib/restoreops/context")
    os.makedirs(context)
    lib.record([src2], os.path.join(context, lib.NAME), exclude=[context])
    restic_v2 = restic_repo("restic-v2", src2)
    entry = restic_entry("v2-restic", restic_v2, src2, list(files))
    entry["manifest_path"] = os.path.join(context, lib.NAME)
    entry.pop("manifest_base")
    proc, report, _hooks = run_verify("format2", [entry])
    rep = report["repositories"][0] if report["repositories"] else {}
    check("format2: PASS, both files match the streamed manifest", proc.returncode == 0 and all(
        f["match"] for f in rep.get("files", {}).values()) and len(rep.get("files", {})) == 2, report)
    check("format2: the report names the manifest and its format",
          rep.get("manifest", {}).get("format") == 2, rep.get("manifest"))

    # no manifest_path configured: the default is the format 2 manifest, and a backup recorded before it carries
    # only manifest.json there, which is read instead
    src_v1 = os.path.join(WORK, "src-v1")
    legacy = make_source(src_v1, files)
    os.makedirs(os.path.join(src_v1, "var/lib/restoreops/context"))
    with open(os.path.join(src_v1, "var/lib/restoreops/context/manifest.json"), "w", encoding="utf-8") as handle:
        json.dump({"files": legacy}, handle)
    entry = borg_entry("v1-borg", borg_repo("borg-v1", src_v1))
    entry.pop("manifest_path")
    proc, report, _hooks = run_verify("default-v1", [entry])
    rep = report["repositories"][0] if report["repositories"] else {}
    check("default-v1: PASS against the manifest.json of an older backup", proc.returncode == 0
          and rep.get("manifest", {}).get("path") == "var/lib/restoreops/context/manifest.json", report)

    # a configuration readable by others is refused (it holds the webhook URL)
    proc, _report, hooks = run_verify("loose", [borg_entry("db1-borg", borg_ok)], mode=0o644)
    check("loose: exit 3, refused for its mode", proc.returncode == 3 and "0600" in proc.stderr and hooks == [],
          proc.stderr)


if __name__ == "__main__":
    sys.exit(main())
