# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the one-run policy probe: its inputs, the file probes, failure isolation and the result shapes."""

from __future__ import annotations

import json
import os

import pytest
from conftest import FakeModule as _FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils import _audit as audit
from ansible_collections.restoreops.dr.plugins.module_utils import _policy_facts as pf
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._runner import ToolRunner

NOW_ISO = "2026-11-23T10:00:00Z"


BASE = {
    "borg_repositories": [], "restic_repositories": [], "key_escrow_items": [], "postgres": None,
    "secret_files": [], "systemd_dir": "/etc/systemd/system", "secret_scan_paths": [],
    "secret_scan_recurse": False, "rsnapshot_configs": [], "rsnapshot_max_age_hours": 25.0,
    "borg_binary": "borg", "restic_binary": "restic", "rsnapshot_binary": "rsnapshot", "workers": 1,
}


def FakeModule(answers=None, check_mode=False, **params):  # the conftest class, with these options
    """Options as the argument spec leaves them; run_command answers from a queue and records each call."""
    return _FakeModule({**BASE, **params}, answers=answers, check_mode=check_mode)


def borg_entry(**kw):
    entry = {"name": "b", "repo": "/srv/borg", "passphrase_file": "/etc/restoreops/borg.pass",
             "passcommand": None, "base_dir": None, "rsh": None, "remote_path": None,
             "key_export": "/srv/escrow/b.key"}
    entry.update(kw)
    return entry


def restic_entry(**kw):
    entry = {"name": "r", "repository": "/srv/restic", "password_file": "/etc/restoreops/restic.pass",
             "password_command": None, "env": {"AWS_SECRET_ACCESS_KEY": "not-for-output"},
             "retention": {"keep_last": None, "keep_hourly": None, "keep_daily": 7, "keep_weekly": None,
                           "keep_monthly": None, "keep_yearly": None, "keep_within": None},
             "prune": True, "retention_timer": "restic-forget.timer"}
    entry.update(kw)
    return entry


# --- the secret scan -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, hit", [
    ("Environment=BORG_PASSPHRASE=hunter2\n", True),
    ("export RESTIC_PASSWORD='s3cret'\n", True),
    ('PGPASSWORD="pw" pg_dump db\n', True),
    ("AWS_SECRET_ACCESS_KEY=abc\n", True),
    ("RCLONE_CONFIG_PASS=x\n", True),
    ("Environment=BORG_PASSCOMMAND=cat /etc/restoreops/borg.pass\n", False),
    ("RESTIC_PASSWORD_FILE=/etc/restoreops/restic.pass\n", False),
    ("BORG_PASSPHRASE=$SECRET\n", False),
    ('RESTIC_PASSWORD="$(cat /run/pass)"\n', False),
    ("BORG_PASSPHRASE=\n", False),
    ("MY_BORG_PASSPHRASE=x\n", False),
])
def test_secret_pattern(line, hit):
    assert pf.line_holds_secret(line) is hit


def test_scan_finds_files_never_lines(tmp_path):
    (tmp_path / "backup.service").write_text("[Service]\nEnvironment=BORG_PASSPHRASE=hunter2hunter2\n")
    (tmp_path / ".hidden.env").write_text("RESTIC_PASSWORD=abc\n")
    (tmp_path / "restic.env").write_text("RESTIC_PASSWORD_FILE=/etc/restoreops/restic.pass\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00BORG_PASSPHRASE=inbinary\n\xff")
    (tmp_path / "big.sh").write_text("#" * pf.SCAN_MAX_BYTES + "\nBORG_PASSPHRASE=toolate\n")
    os.symlink(tmp_path / "backup.service", tmp_path / "link.service")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.env").write_text("PGPASSWORD=deep\n")
    result = pf.scan_secrets([str(tmp_path), str(tmp_path / "missing")], recurse=False)
    found = sorted(os.path.basename(f["path"]) for f in result["files"])
    assert found == [".hidden.env", "backup.service", "binary"]
    assert all(set(f) == {"path"} for f in result["files"])
    assert "hunter2" not in json.dumps(result)
    assert list(result["skipped_paths"]) == [str(tmp_path / "missing")]
    deep = pf.scan_secrets([str(tmp_path)], recurse=True)
    assert str(tmp_path / "sub" / "deep.env") in [f["path"] for f in deep["files"]]


def test_watched_paths_and_read_watched(tmp_path):
    secret = tmp_path / "borg.pass"
    secret.write_text("x")
    secret.chmod(0o640)
    wants = tmp_path / "timers.target.wants"
    wants.mkdir()
    os.symlink("/lib/systemd/system/restic-forget.timer", wants / "restic-forget.timer")  # dangling is enabled
    restic = [restic_entry(), restic_entry(name="r2", retention_timer=None)]
    paths = pf.watched_paths([str(secret), str(tmp_path / "gone.pass"), str(secret)], restic, str(tmp_path))
    assert paths == [str(secret), str(tmp_path / "gone.pass"), str(wants / "restic-forget.timer")]
    files = {f["path"]: f for f in pf.read_watched(paths)["files"]}
    assert set(files) == {str(secret), str(wants / "restic-forget.timer")}
    assert files[str(secret)]["mode"] == "0640" and files[str(wants / "restic-forget.timer")]["islnk"] is True


# --- the inputs each module_utils main gets ----------------------------------------------------------------------

def test_borg_params_only_read():
    params = pf.borg_params(borg_entry(), "/usr/bin/borg")
    assert params["stale_lock"] == "ignore" and params["check"] == "none" and params["dead_hosts"] == []
    assert params["append_only"] is None and params["storage_quota"] is None and params["encryption"] is None
    assert params["key_export"] == {"dest": "/srv/escrow/b.key", "paper": False, "mode": "0600"}
    assert pf.borg_params(borg_entry(key_export=None), "borg")["key_export"] is None


def test_restic_params_preview_without_unlock():
    params = pf.restic_params(restic_entry(), "restic")
    assert params["keep_daily"] == 7 and params["keep_last"] is None and params["prune"] is True
    assert params["unlock_stale"] is False and params["check_after"] == "none"


@pytest.mark.parametrize("retention, expected", [
    (None, False), ({}, False), ({"keep_daily": None, "keep_within": None}, False), ({"keep_daily": 0}, True),
    ({"keep_within": "30d"}, True),
])
def test_has_retention(retention, expected):
    assert pf.has_retention(restic_entry(retention=retention)) is expected


def test_public_item_drops_env():
    assert "env" not in pf.public_item(restic_entry())


def test_probe_module_forces_check_mode():
    outer = FakeModule(check_mode=False)
    inner = pf.ProbeModule(outer, {"x": 1})
    assert inner.check_mode is True and inner._diff is False and inner.params == {"x": 1}
    inner.run_command(["true"])
    inner.warn("w")
    assert outer.calls[0]["cmd"] == ["true"] and outer.warnings == ["w"]


# --- failures stay with their probe ------------------------------------------------------------------------------

def test_attempt_turns_errors_into_failed_results():
    def tool_error():
        raise ToolError("restic forget failed: wrong password", cmd=["restic", "forget"], rc=12, stderr="x",
                        kind="wrong_password")

    result = pf.attempt(tool_error, {"name": "r"}, True)
    assert result["failed"] is True and result["msg"].startswith("restic forget failed")
    assert result["rc"] == 12 and result["kind"] == "wrong_password" and result["item"] == {"name": "r"}

    def bug():
        raise KeyError("repo")

    assert pf.attempt(bug)["msg"] == "KeyError: 'repo'"
    assert pf.attempt(lambda: {"ok": True}) == {"ok": True}


def test_validate_refuses_bad_input():
    with pytest.raises(InputError, match="names must be unique; repeated: b"):
        pf.validate(FakeModule(borg_repositories=[borg_entry(), borg_entry()]).params)
    with pytest.raises(InputError, match="secret_files must be absolute"):
        pf.validate(FakeModule(secret_files=["etc/pass"]).params)
    with pytest.raises(InputError, match="not a path"):
        pf.validate(FakeModule(restic_repositories=[restic_entry(retention_timer="/etc/x.timer")]).params)
    with pytest.raises(InputError, match="greater than 0"):
        pf.validate(FakeModule(rsnapshot_max_age_hours=0).params)
    with pytest.raises(InputError, match="workers"):
        pf.validate(FakeModule(workers=0).params)


@pytest.mark.parametrize(("params", "named"), [
    ({"borg_repositories": [borg_entry(repo="offsite/borg")]},
     r"borg_repositories\[\]\.repo \(entry b: 'offsite/borg'\)"),
    ({"borg_repositories": [borg_entry(passphrase_file="borg.pass")]}, r"borg_repositories\[\]\.passphrase_file"),
    ({"restic_repositories": [restic_entry(repository="offsite/restic")]}, r"restic_repositories\[\]\.repository"),
    ({"restic_repositories": [restic_entry(repository="local:restic")]}, r"restic_repositories\[\]\.repository"),
    ({"restic_repositories": [restic_entry(password_file="pw")]}, r"restic_repositories\[\]\.password_file"),
    ({"key_escrow_items": [{"name": "k", "kind": "restic", "repo": "r", "key_file": "/k"}]},
     r"key_escrow_items\[\]\.repo"),
    ({"key_escrow_items": [{"name": "k", "kind": "file", "key_file": "k"}]}, r"key_escrow_items\[\]\.key_file"),
    ({"postgres": {"login_unix_socket": "run/postgresql"}}, "postgres.login_unix_socket"),
])
def test_a_relative_path_fails_the_task_as_documented(params, named):
    with pytest.raises(InputError, match=named + ".*must be an absolute path"):
        pf.validate(FakeModule(**params).params)


def test_urls_and_absolute_paths_are_not_relative():
    params = FakeModule(borg_repositories=[borg_entry(repo="ssh://b@h/./r")],
                        restic_repositories=[restic_entry(repository="rest:http://127.0.0.1:8000/r"),
                                             restic_entry(name="s3", repository="s3:http://127.0.0.1:9000/b"),
                                             restic_entry(name="l", repository="local:/srv/r")]).params
    assert pf.relative_paths(params) == []


def fake_probes(monkeypatch, fail=()):
    """Replace the tool probes with canned check-mode results; names in ``fail`` raise instead."""
    calls = []

    def maker(name, value):
        def probe(*args):
            calls.append(name)
            if name in fail:
                raise RestoreOpsError(f"{name} could not run", reason="test")
            return value
        return probe

    borg = {"changed": False, "repo": {"append_only": True}, "key_export": {"dest": "/srv/escrow/b.key",
            "exported": False}, "archives": {"count": 1, "last": {"name": "n1", "start": NOW_ISO, "end": NOW_ISO}}}
    forget = {"changed": False, "kept": [{"time": NOW_ISO}], "removed": []}
    snapshots = {"changed": False, "rc": 0, "stdout": json.dumps([{"time": NOW_ISO}])}
    monkeypatch.setattr(pf, "probe_borg", maker("borg", borg))
    monkeypatch.setattr(pf, "probe_restic_forget", maker("restic_forget", forget))
    monkeypatch.setattr(pf, "probe_restic_snapshots", maker("restic_snapshots", snapshots))
    monkeypatch.setattr(pf, "probe_escrow", maker("escrow", {"changed": False, "ok": True, "results": []}))
    monkeypatch.setattr(pf, "probe_postgres", maker("postgres", {"changed": False, "ansible_facts": {
        "pg_archiver": {"healthy": True, "problems": []}}}))
    monkeypatch.setattr(pf, "probe_rsnapshot", maker("rsnapshot", {"changed": False, "path": "/etc/rsnapshot.conf",
                                                                   "ok": True, "problems": []}))
    return calls


def host(tmp_path, **kw):
    secret = tmp_path / "borg.pass"
    secret.write_text("x")
    secret.chmod(0o600)
    (tmp_path / "timers.target.wants").mkdir()
    (tmp_path / "timers.target.wants" / "restic-forget.timer").write_text("")
    params = dict(borg_repositories=[borg_entry()],
                  restic_repositories=[restic_entry(), restic_entry(name="plain", retention=None)],
                  key_escrow_items=[{"name": "k", "kind": "file", "key_file": "/k"}],
                  postgres={"login_unix_socket": "/run/postgresql"}, secret_files=[str(secret)],
                  systemd_dir=str(tmp_path), secret_scan_paths=[str(tmp_path)],
                  rsnapshot_configs=["/etc/rsnapshot.conf"])
    params.update(kw)
    return FakeModule(**params)


@pytest.mark.parametrize("workers", [1, 4])
def test_collect_shapes_are_what_audit_reads(tmp_path, monkeypatch, workers):
    calls = fake_probes(monkeypatch)
    result = pf.collect(host(tmp_path, workers=workers))
    assert result["changed"] is False
    assert sorted(calls) == ["borg", "escrow", "postgres", "restic_forget", "restic_snapshots", "rsnapshot"]
    assert [r["item"]["name"] for r in result["borg"]] == ["b"]
    forget, snaps = result["restic_forget"], result["restic_snapshots"]
    assert [r.get("skipped", False) for r in forget] == [False, True]
    assert [r.get("skipped", False) for r in snaps] == [True, False]
    assert [r["item"]["name"] for r in forget] == [r["item"]["name"] for r in snaps] == ["r", "plain"]
    assert "not-for-output" not in json.dumps(result)
    assert result["rsnapshot"][0]["item"] == "/etc/rsnapshot.conf"
    # compliant but for the repository without retention, which is what the rules say about it
    judged = audit.evaluate(audit.normalize(result), [], 25, audit.epoch_seconds(NOW_ISO) + 3600)
    assert {(f["rule"], f["target"]) for f in judged["findings"]} == {("restic_retention", "plain")}
    assert set(judged["checked"]) == set(audit.RULES) - {"probe_failed"}


def test_one_failed_probe_never_stops_the_others(tmp_path, monkeypatch):
    calls = fake_probes(monkeypatch, fail=("borg", "postgres"))
    result = pf.collect(host(tmp_path, workers=3))
    assert len(calls) == 6
    assert result["borg"][0]["failed"] is True and result["borg"][0]["msg"] == "borg could not run"
    assert result["borg"][0]["item"]["name"] == "b" and result["borg"][0]["reason"] == "test"
    assert result["postgres"]["failed"] is True and result["escrow"]["ok"] is True
    judged = audit.evaluate(audit.normalize(result), [], 25, audit.epoch_seconds(NOW_ISO) + 3600)
    assert {(f["rule"], f["target"]) for f in judged["findings"] if f["rule"] == "probe_failed"} == {
        ("probe_failed", "b"), ("probe_failed", "postgresql")}


def test_nothing_declared_skips_every_probe(tmp_path, monkeypatch):
    calls = fake_probes(monkeypatch)
    result = pf.collect(FakeModule(secret_scan_paths=[str(tmp_path)]))
    assert calls == []
    assert result["escrow"]["skipped"] and result["postgres"]["skipped"]
    assert result["borg"] == result["restic_forget"] == result["rsnapshot"] == []
    judged = audit.evaluate(audit.normalize(result), [], 25)
    assert judged["ok"] and judged["checked"] == ["secret_in_files"]


def test_inherited_borg_passphrase_is_dropped_and_escrow_refuses(tmp_path, monkeypatch):
    real_probe_escrow = pf.probe_escrow
    fake_probes(monkeypatch)
    monkeypatch.setenv("BORG_PASSPHRASE", "inherited")
    seen = {}

    def probe_escrow(module, items, inherited):
        seen["inherited"] = list(inherited)
        return {"changed": False, "ok": True, "results": []}

    monkeypatch.setattr(pf, "probe_escrow", probe_escrow)
    pf.collect(host(tmp_path))
    assert seen["inherited"] == ["BORG_PASSPHRASE"] and "BORG_PASSPHRASE" not in os.environ
    with pytest.raises(InputError, match="BORG_PASSPHRASE is set"):
        real_probe_escrow(FakeModule(), [], ["BORG_PASSPHRASE"])


# --- the restic listing: repository and password through the environment ----------------------------------------

def test_restic_snapshots_keep_secrets_off_argv(tmp_path, monkeypatch):
    monkeypatch.setattr(ToolRunner, "resolve", lambda self: "/usr/bin/restic")
    password = tmp_path / "restic.pass"
    password.write_text("s3cret\n")
    module = FakeModule(answers=[(0, '[{"time": "2026-11-23T10:00:00Z"}]', "")])
    entry = restic_entry(repository="rest:http://user:urlpw@127.0.0.1:8000/r", password_file=str(password))
    result = pf.probe_restic_snapshots(module, entry, "restic")
    call = module.calls[0]
    assert call["cmd"] == ["/usr/bin/restic", "snapshots", "--json", "--no-lock", "--no-cache"]
    assert call["environ_update"]["RESTIC_REPOSITORY"] == entry["repository"]
    assert call["environ_update"]["RESTIC_PASSWORD_FILE"] == str(password)
    assert result["rc"] == 0 and json.loads(result["stdout"])[0]["time"] == "2026-11-23T10:00:00Z"


def test_restic_snapshots_failure_is_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(ToolRunner, "resolve", lambda self: "/usr/bin/restic")
    password = tmp_path / "restic.pass"
    password.write_text("s3cret\n")
    module = FakeModule(answers=[(12, "", "Fatal: wrong password or no key found\n")])
    result = pf.attempt(lambda: pf.probe_restic_snapshots(module, restic_entry(password_file=str(password)),
                                                          "restic"))
    assert result["failed"] is True and "wrong password" in result["msg"] and result["rc"] == 12
    with pytest.raises(InputError, match="password_file or password_command"):
        pf.probe_restic_snapshots(module, restic_entry(password_file=None), "restic")


# --- the backup volumes (df and du) ------------------------------------------------------------------------------

def test_volumes_are_read_per_path_in_order(tmp_path):
    (tmp_path / "borg").mkdir()
    (tmp_path / "borg" / "seg").write_bytes(b"s" * 5000)
    result = pf.collect(FakeModule(volumes=[str(tmp_path / "borg"), str(tmp_path / "absent")], workers=2))
    first, second = result["volumes"]
    assert first["item"] == str(tmp_path / "borg") and first["exists"] and first["changed"] is False
    assert first["size"]["apparent_bytes"] == 5000 and first["filesystem"]["total"] > 0
    assert second == {"changed": False, "path": str(tmp_path / "absent"), "exists": False, "filesystem": None,
                      "size": None, "item": str(tmp_path / "absent")}
    only_df = pf.collect(FakeModule(volumes=[str(tmp_path / "borg")], volume_sizes=False))
    assert only_df["volumes"][0]["size"] is None and only_df["volumes"][0]["filesystem"]["used_percent"] >= 0


def test_relative_volume_refused():
    with pytest.raises(InputError, match="volumes must be absolute"):
        pf.validate({**BASE, "volumes": ["backup"]})
