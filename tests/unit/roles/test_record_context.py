from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "backup_context" / "files" / "record-context"


def load():
    loader = importlib.machinery.SourceFileLoader("record_context", str(SCRIPT))
    spec = importlib.util.spec_from_loader("record_context", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_manifest_skips_the_context_dir(tmp_path):
    rc = load()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a").write_bytes(b"alpha")
    ctx = tmp_path / "data" / "ctx"
    ctx.mkdir()
    (ctx / "manifest.json").write_text("{}")
    result = rc.manifest([str(tmp_path / "data")], str(ctx) + "/")
    assert result == {"files": {str(tmp_path / "data" / "a"): hashlib.sha256(b"alpha").hexdigest()}}


def test_write_if_changed_ignores_the_stamp(tmp_path):
    rc = load()
    path = tmp_path / "host.json"
    assert rc.write_if_changed(str(path), {"h": 1, "recorded": "t1"}, ("recorded",)) is True
    assert rc.write_if_changed(str(path), {"h": 1, "recorded": "t2"}, ("recorded",)) is False
    assert json.loads(path.read_text())["recorded"] == "t1"
    assert rc.write_if_changed(str(path), {"h": 2, "recorded": "t3"}, ("recorded",)) is True
    assert path.stat().st_mode & 0o777 == 0o600


def test_cli_records_then_reports_unchanged(tmp_path):
    data = tmp_path / "srv"
    data.mkdir()
    (data / "f").write_text("x")
    args = [sys.executable, str(SCRIPT), "--dir", str(tmp_path / "ctx"), "--path", str(data),
            "--copy-to", str(tmp_path / "offsite")]
    env = {"BORG_HOST_ID": "lost-server@42", "PATH": "/usr/bin:/bin"}
    first = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    second = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    assert first.stdout.strip() == "updated" and second.stdout.strip() == "unchanged"
    host = json.loads((tmp_path / "offsite" / "host.json").read_text())
    assert host["borg_host_id"] == "lost-server@42"
    accounts = json.loads((tmp_path / "ctx" / "accounts.json").read_text())
    assert accounts["users"]["root"]["uid"] == 0


def test_random_node_is_flagged_unstable(monkeypatch):
    rc = load()
    monkeypatch.delenv("BORG_HOST_ID", raising=False)
    monkeypatch.setattr(rc.uuid, "getnode", lambda: (1 << 40) | 12345)
    assert rc.borg_host_id()[1] is False
    monkeypatch.setattr(rc.uuid, "getnode", lambda: 0x0242AC110002)
    assert rc.borg_host_id()[1] is True
    monkeypatch.setenv("BORG_HOST_ID", "db1@1")
    assert rc.borg_host_id() == ("db1@1", True)
