from __future__ import annotations

import gzip
import hashlib
import importlib.machinery
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "roles" / "backup_context" / "files" / "record-context"
LIBRARY = ROOT / "plugins" / "module_utils" / "_manifest.py"


def load():
    loader = importlib.machinery.SourceFileLoader("record_context", str(SCRIPT))
    spec = importlib.util.spec_from_loader("record_context", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def install(tmp_path: Path) -> Path:
    """Lay the recorder out as the role installs it: the script and the manifest library side by side."""
    libexec = tmp_path / "libexec"
    libexec.mkdir()
    shutil.copy(SCRIPT, libexec / "record-context")
    lib = libexec / "restoreops-lib" / "ansible_collections" / "restoreops" / "dr" / "plugins" / "module_utils"
    lib.mkdir(parents=True)
    shutil.copy(LIBRARY, lib / "_manifest.py")
    shutil.copy(LIBRARY.parent / "__init__.py", lib / "__init__.py")
    return libexec / "record-context"


def run(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"BORG_HOST_ID": "lost-server@42", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, check=True, env=env)


def read_manifest(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="ascii") as handle:
        rows = [json.loads(line) for line in handle]
    return {row["path"]: row["sha256"] for row in rows if "path" in row}


def test_manifest_skips_the_context_dir_and_the_copies(tmp_path):
    script = install(tmp_path)
    data = tmp_path / "data"
    (data / "ctx").mkdir(parents=True)
    (data / "offsite").mkdir()
    (data / "a").write_bytes(b"alpha")
    (data / "offsite" / "old").write_text("{}")
    run(script, "--dir", str(data / "ctx"), "--path", str(data), "--copy-to", str(data / "offsite"))
    assert read_manifest(data / "ctx" / "manifest.jsonl.gz") == {str(data / "a"): hashlib.sha256(b"alpha").hexdigest()}
    assert not list(tmp_path.joinpath("libexec").glob("__pycache__"))


def test_write_if_changed_ignores_the_stamp(tmp_path):
    rc = load()
    path = tmp_path / "host.json"
    assert rc.write_if_changed(str(path), {"h": 1, "recorded": "t1"}, ("recorded",)) is True
    assert rc.write_if_changed(str(path), {"h": 1, "recorded": "t2"}, ("recorded",)) is False
    assert json.loads(path.read_text())["recorded"] == "t1"
    assert rc.write_if_changed(str(path), {"h": 2, "recorded": "t3"}, ("recorded",)) is True
    assert path.stat().st_mode & 0o777 == 0o600


def test_cli_records_then_reports_unchanged(tmp_path):
    script = install(tmp_path)
    data = tmp_path / "srv"
    data.mkdir()
    (data / "f").write_text("x")
    (data / "g").write_text("y")
    args = ["--dir", str(tmp_path / "ctx"), "--path", str(data), "--copy-to", str(tmp_path / "offsite"), "--stats"]
    time.sleep(2.1)  # a file changed within a second of a recording is read again by the next one
    first = run(script, *args)
    second = run(script, *args)
    assert [p.stdout.strip() for p in (first, second)] == ["updated", "unchanged"]
    assert [json.loads(p.stderr)["hashed"] for p in (first, second)] == [2, 0]
    copy, own = tmp_path / "offsite" / "manifest.jsonl.gz", tmp_path / "ctx" / "manifest.jsonl.gz"
    assert copy.read_bytes() == own.read_bytes()
    assert set(read_manifest(copy)) == {str(data / "f"), str(data / "g")}
    host = json.loads((tmp_path / "offsite" / "host.json").read_text())
    assert host["borg_host_id"] == "lost-server@42"
    accounts = json.loads((tmp_path / "ctx" / "accounts.json").read_text())
    assert accounts["users"]["root"]["uid"] == 0
    assert (tmp_path / "ctx" / "manifest.jsonl.gz").stat().st_mode & 0o777 == 0o600


def test_upgrade_replaces_the_format_1_manifest(tmp_path):
    script = install(tmp_path)
    data = tmp_path / "srv"
    data.mkdir()
    (data / "f").write_text("x")
    for place in ("ctx", "offsite"):
        (tmp_path / place).mkdir()
        (tmp_path / place / "manifest.json").write_text(json.dumps({"files": {str(data / "f"): "0" * 64}}))
    out = run(script, "--dir", str(tmp_path / "ctx"), "--path", str(data), "--copy-to", str(tmp_path / "offsite"))
    assert out.stdout.strip() == "updated"
    for place in ("ctx", "offsite"):
        assert not (tmp_path / place / "manifest.json").exists()
        assert read_manifest(tmp_path / place / "manifest.jsonl.gz") == {
            str(data / "f"): hashlib.sha256(b"x").hexdigest()}


def test_rehash_days_and_full_reach_the_manifest(tmp_path):
    script = install(tmp_path)
    data = tmp_path / "srv"
    data.mkdir()
    (data / "f").write_text("x")
    args = ["--dir", str(tmp_path / "ctx"), "--path", str(data), "--stats"]
    time.sleep(2.1)
    run(script, *args)
    assert json.loads(run(script, *args, "--rehash-days", "0").stderr)["hashed"] == 0
    full = run(script, *args, "--full")
    assert json.loads(full.stderr)["full"] is True and json.loads(full.stderr)["hashed"] == 1


def test_random_node_is_flagged_unstable(monkeypatch):
    rc = load()
    monkeypatch.delenv("BORG_HOST_ID", raising=False)
    monkeypatch.setattr(rc.uuid, "getnode", lambda: (1 << 40) | 12345)
    assert rc.borg_host_id()[1] is False
    monkeypatch.setattr(rc.uuid, "getnode", lambda: 0x0242AC110002)
    assert rc.borg_host_id()[1] is True
    monkeypatch.setenv("BORG_HOST_ID", "db1@1")
    assert rc.borg_host_id() == ("db1@1", True)
