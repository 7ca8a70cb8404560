from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _pitr
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError

UTC = dt.UTC


def backup(name, end, start_wal="000000010000000000000002"):
    return _pitr.BaseBackup(name=name, path=f"/b/{name}", start_wal=start_wal, start_time=end, end_time=end)


B1 = backup("20260301T020000Z", "2026-03-01 02:00:05+00")
B2 = backup("20260302T020000Z", "2026-03-02 02:00:07+00")
B3 = backup("20260303T020000Z", "2026-03-03 02:00:03+00")


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-14 15:30:00", dt.datetime(2026, 3, 14, 15, 30, tzinfo=UTC)),
    ("2026-03-14 15:30:00.25", dt.datetime(2026, 3, 14, 15, 30, 0, 250000, tzinfo=UTC)),
    ("2026-03-14T16:30:00+01:00", dt.datetime(2026, 3, 14, 15, 30, tzinfo=UTC)),
    ("2026-03-14T15:30:00Z", dt.datetime(2026, 3, 14, 15, 30, tzinfo=UTC)),
    ("2026-03-14 10:30:00-0500", dt.datetime(2026, 3, 14, 15, 30, tzinfo=UTC)),
    ("2026-03-14 15:30:00+00", dt.datetime(2026, 3, 14, 15, 30, tzinfo=UTC)),
])
def test_parse_target(text, expected):
    assert _pitr.parse_target(text) == expected


@pytest.mark.parametrize("text", [None, "", "latest", " latest "])
def test_parse_target_latest(text):
    assert _pitr.parse_target(text) is None


@pytest.mark.parametrize("text", ["yesterday", "2026-03-14", "2026-13-14 15:30:00", "14/03/2026 15:30"])
def test_parse_target_rejects_garbage_naming_the_option(text):
    with pytest.raises(InputError, match="target_time"):
        _pitr.parse_target(text)


def test_pg_time_round_trip():
    value = dt.datetime(2026, 3, 14, 15, 30, 0, 250000, tzinfo=UTC)
    assert _pitr.pg_time(value) == "2026-03-14 15:30:00.250000+00"
    assert _pitr.pg_time(value.replace(microsecond=0)) == "2026-03-14 15:30:00+00"
    assert _pitr.parse_label_time(_pitr.pg_time(value)) == value


def test_choose_latest_takes_the_newest():
    assert _pitr.choose_base_backup([B2, B3, B1], None) == B3


def test_choose_for_a_target_takes_the_newest_that_ended_before_it():
    target = dt.datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    assert _pitr.choose_base_backup([B1, B2, B3], target) == B2
    # a backup that ended exactly at the target serves it
    assert _pitr.choose_base_backup([B1, B2, B3], B2.end) == B2
    # a target inside B2 (before its end) falls back to B1
    assert _pitr.choose_base_backup([B1, B2, B3], B2.end - dt.timedelta(seconds=1)) == B1


def test_choose_before_every_backup_names_the_earliest():
    with pytest.raises(InputError, match="earliest ended at 2026-03-01 02:00:05"):
        _pitr.choose_base_backup([B2, B1], dt.datetime(2026, 2, 1, tzinfo=UTC))


def test_choose_by_name_and_its_refusals():
    assert _pitr.choose_base_backup([B1, B2], None, "20260301T020000Z") == B1
    with pytest.raises(InputError, match="no base backup named 'nope'"):
        _pitr.choose_base_backup([B1, B2], None, "nope")
    with pytest.raises(InputError, match="after the target"):
        _pitr.choose_base_backup([B1, B2], dt.datetime(2026, 3, 1, 12, tzinfo=UTC), B2.name)


def test_choose_with_no_backup():
    with pytest.raises(InputError, match="no base backup"):
        _pitr.choose_base_backup([], None)


def test_archive_segments_from_the_start_across_timelines():
    names = ["000000010000000000000001", "000000010000000000000002", "000000010000000000000003",
             "00000002.history", "000000020000000000000003", "000000020000000000000004", "junk",
             "000000010000000000000002.00000028.backup"]
    assert _pitr.archive_segments(names, "000000010000000000000002") == [
        "000000010000000000000002", "000000010000000000000003", "000000020000000000000003",
        "000000020000000000000004"]


def test_recovery_settings_quote_and_target():
    target = dt.datetime(2026, 3, 14, 15, 30, tzinfo=UTC)
    block = _pitr.recovery_settings("/usr/local/sbin/r '/a b' /s %f %p", target)
    assert "restore_command = '/usr/local/sbin/r ''/a b'' /s %f %p'" in block
    assert "recovery_target_time = '2026-03-14 15:30:00+00'" in block
    assert "recovery_target_action = 'promote'" in block
    assert "recovery_target_time =" not in _pitr.recovery_settings("x", None)


def test_strip_block_keeps_everything_else():
    text = "a = 1\n" + _pitr.recovery_settings("cmd", None) + "b = 2\n"
    assert _pitr.strip_block(text) == "a = 1\nb = 2\n"
    assert _pitr.strip_block("a = 1\n") == "a = 1\n"


def test_default_restore_command_quotes_paths():
    assert _pitr.default_restore_command("/s/r", "/arch ive", "/st") == "/s/r '/arch ive' /st %f %p"


def test_explain_gap_names_the_segment_and_window():
    state = {"gap": True, "missing": "000000010000000000000003", "next_available": "000000010000000000000004",
             "last_restored": "000000010000000000000002", "last_restored_time": "2026-03-14 15:00:00+00",
             "newest_time": "2026-03-14 16:00:00+00"}
    msg = _pitr.explain_failure(state, archive="/arch", target=None, backup=B1, previous_dir="/d.before-pitr-x",
                                server_note="")
    assert "WAL segment 000000010000000000000003 is missing from /arch" in msg
    assert "until 2026-03-14 16:00:00+00 are lost" in msg
    assert "kept at /d.before-pitr-x" in msg


def test_explain_never_archived_and_other():
    target = dt.datetime(2026, 3, 14, 17, tzinfo=UTC)
    state = {"missing": "000000010000000000000009", "last_restored": "000000010000000000000008"}
    msg = _pitr.explain_failure(state, archive="/a", target=target, backup=B1, previous_dir=None, server_note="")
    assert "000000010000000000000009 was never archived" in msg and "2026-03-14 17:00:00+00 UTC" in msg
    msg = _pitr.explain_failure({}, archive="/a", target=None, backup=B1, previous_dir=None,
                                server_note="stopped before the end of recovery")
    assert "PostgreSQL stopped before the end of recovery" in msg


def params(tmp_path, **over):
    p = {"data_dir": str(tmp_path / "data"), "basebackup_dir": str(tmp_path / "base"),
         "wal_archive_dir": str(tmp_path / "wal"), "target_time": "latest", "backup": "auto",
         "restore_script": "/usr/local/sbin/restoreops-wal-restore", "restore_command": None, "state_file": None,
         "control": "pg_ctl", "service": None, "bin_dir": "/usr/lib/postgresql/15/bin", "os_user": "postgres",
         "os_group": "postgres", "socket_dir": "/run/postgresql", "port": 5432, "timeout": 60,
         "progress_file": None, "force": False}
    p.update(over)
    return p


def test_options_defaults(tmp_path):
    opts = _pitr.options_from_params(params(tmp_path))
    assert opts.state_file == str(tmp_path / "data") + ".pitr-state.json"
    assert opts.restore_command.endswith(f"{tmp_path / 'wal'} {opts.state_file} %f %p")
    assert opts.restore_script == "/usr/local/sbin/restoreops-wal-restore"
    own = _pitr.options_from_params(params(tmp_path, restore_command="cp /x/%f %p"))
    assert own.restore_command == "cp /x/%f %p" and own.restore_script is None


@pytest.mark.parametrize(("over", "message"), [
    ({"data_dir": "relative/data"}, "data_dir must be an absolute path"),
    ({"data_dir": "/"}, "is not a PostgreSQL data directory"),
    ({"data_dir": "/var"}, "is not a PostgreSQL data directory"),
    ({"control": "systemd", "service": None}, "control=systemd needs service"),
    ({"timeout": 0}, "timeout must be at least 1"),
    ({"progress_file": "p.json"}, "progress_file must be an absolute path"),
    ({"target_time": "soon"}, "target_time"),
])
def test_options_refuse_bad_input(tmp_path, over, message):
    with pytest.raises(InputError, match=message):
        _pitr.options_from_params(params(tmp_path, **over))


def test_list_base_backups_skips_what_has_no_label(tmp_path):
    for name, label in (("20260301T020000Z", {"name": "20260301T020000Z", "start_wal": "A" * 24,
                                              "end_time": "2026-03-01 02:00:05+00"}),
                        ("20260302T020000Z", None), ("junk", {"nothing": 1})):
        (tmp_path / name).mkdir()
        if label is not None:
            (tmp_path / name / _pitr.LABEL_FILE).write_text(json.dumps(label))
    found = _pitr.list_base_backups(str(tmp_path))
    assert [b.name for b in found] == ["20260301T020000Z"]
    with pytest.raises(InputError, match="cannot be read"):
        _pitr.list_base_backups(str(tmp_path / "missing"))


def test_already_done_only_for_the_same_backup_and_target(tmp_path):
    opts = _pitr.options_from_params(params(tmp_path))
    os.makedirs(opts.data_dir)
    (tmp_path / "data" / "PG_VERSION").write_text("15\n")
    assert _pitr.already_done(opts, B1) is None
    with open(_pitr.done_marker(opts), "w") as handle:
        json.dump({"base_backup": B1.name, "target": "latest"}, handle)
    assert _pitr.already_done(opts, B1)["base_backup"] == B1.name
    assert _pitr.already_done(opts, B2) is None
    (tmp_path / "data" / "recovery.signal").write_text("")
    assert _pitr.already_done(opts, B1) is None  # still (or again) in recovery
    os.unlink(tmp_path / "data" / "recovery.signal")
    opts.force = True
    assert _pitr.already_done(opts, B1) is None


def test_script_install_and_currency(tmp_path):
    path = str(tmp_path / "sbin" / "restoreops-wal-restore")
    assert not _pitr.script_current(path)
    _pitr.install_script(path)
    assert _pitr.script_current(path)
    assert os.stat(path).st_mode & 0o777 == 0o755
    with open(path, "a") as handle:
        handle.write("# edited\n")
    assert not _pitr.script_current(path)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def recovery_with(tmp_path, ready=True, signal=True):
    opts = _pitr.options_from_params(params(tmp_path, timeout=30))
    os.makedirs(opts.data_dir, exist_ok=True)
    if signal:
        (tmp_path / "data" / "recovery.signal").write_text("")
    clock = FakeClock()
    rec = _pitr.Recovery(opts, lambda argv: (0 if ready else 2, "", ""), clock=clock, sleep=clock.sleep, poll=1)
    return rec, clock


def test_wait_promoted_when_the_signal_is_gone(tmp_path, monkeypatch):
    monkeypatch.setattr(_pitr, "postmaster_alive", lambda d: True)
    rec, _clock = recovery_with(tmp_path, signal=False)
    assert rec.wait() == "promoted"


def test_wait_not_promoted_while_the_server_still_says_it_recovers(tmp_path, monkeypatch):
    """PostgreSQL removes recovery.signal before the end-of-recovery checkpoint and a hot standby accepts
    connections: only pg_is_in_recovery() = false is promoted."""
    monkeypatch.setattr(_pitr, "postmaster_alive", lambda d: True)
    rec, clock = recovery_with(tmp_path, signal=False)
    answers = iter(["t", "t", "f"])
    asked = []

    def run(argv):
        if "SELECT pg_is_in_recovery()" in argv:
            asked.append(clock.now)
            return 0, next(answers) + "\n", ""
        return 0, "", ""
    rec.run = run
    assert rec.wait() == "promoted"
    assert asked == [0, 1, 2]


def test_wait_stopped_after_the_grace_period(tmp_path, monkeypatch):
    monkeypatch.setattr(_pitr, "postmaster_alive", lambda d: False)
    rec, clock = recovery_with(tmp_path)
    assert rec.wait() == "stopped"
    assert 10 < clock.now < 13


def test_wait_stopped_at_once_when_a_running_server_dies(tmp_path, monkeypatch):
    states = iter([True, True, False])
    monkeypatch.setattr(_pitr, "postmaster_alive", lambda d: next(states))
    rec, clock = recovery_with(tmp_path)
    assert rec.wait() == "stopped"
    assert clock.now == 2  # two polls while it recovered, then gone: no ten-second grace


def test_wait_times_out_while_still_recovering(tmp_path, monkeypatch):
    monkeypatch.setattr(_pitr, "postmaster_alive", lambda d: True)
    rec, clock = recovery_with(tmp_path)
    assert rec.wait() == "timeout"
    assert clock.now >= 30


def test_restore_script_records_gap_and_end(tmp_path):
    """The installed restore command, run as PostgreSQL would: a copy, the end of the archive, a gap."""
    import subprocess
    import sys
    script = tmp_path / "restore"
    script.write_text(_pitr.RESTORE_SCRIPT)
    archive = tmp_path / "wal"
    archive.mkdir()
    for name in ("000000010000000000000002", "000000010000000000000004"):
        (archive / name).write_bytes(b"x" * 16)
    state = tmp_path / "state.json"

    def restore(name):
        return subprocess.run([sys.executable, str(script), str(archive), str(state), name, str(tmp_path / "out")],
                              capture_output=True, text=True, check=False).returncode

    assert restore("000000010000000000000002") == 0
    assert json.loads(state.read_text())["last_restored"] == "000000010000000000000002"
    assert restore("00000002.history") == 1  # absent history files are normal
    assert restore("000000010000000000000003") == 127  # a gap: later segments exist
    data = json.loads(state.read_text())
    assert data["gap"] and data["missing"] == "000000010000000000000003"
    assert data["next_available"] == "000000010000000000000004"
    assert restore("000000010000000000000005") == 1  # the end of the archive
    assert json.loads(state.read_text())["gap"] is False
