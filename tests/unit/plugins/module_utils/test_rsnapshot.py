# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the rsnapshot configuration scan, the fix and the freshness decision."""

from __future__ import annotations

import os
import time

import pytest
from conftest import FakeModule as _FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils import _rsnapshot as rs
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError

GOOD = (
    "# rsnapshot configuration\n"
    "config_version\t1.2\n"
    "snapshot_root\t/srv/snapshots/\n"
    "cmd_rsync\t/usr/bin/rsync\n"
    "rsync_long_args\t--delete --numeric-ids --relative\n"
    "retain\tdaily\t7\n"
    "retain\tweekly\t4\n"
    "\n"
    "backup\t/etc/\tlocalhost/\n"
    "backup\t/home/my dir/\tlocalhost/\t+rsync_long_args=--bwlimit=100\n"
    "backup_script\t/usr/local/bin/dump.sh --all\tdb/\n"
)


def test_clean_config_has_no_problems():
    parsed = rs.parse_config(GOOD)
    assert parsed.problems == []
    assert parsed.snapshot_root == "/srv/snapshots/"
    assert parsed.intervals == [("daily", 7), ("weekly", 4)]


@pytest.mark.parametrize("line, fix", [
    ("retain  daily 7", "retain\tdaily\t7"),
    ("retain\tdaily 7", "retain\tdaily\t7"),
    ("snapshot_root /srv/snapshots/", "snapshot_root\t/srv/snapshots/"),
    ("backup\t/etc/  localhost/", "backup\t/etc/\tlocalhost/"),
    ("backup /etc/ localhost/", "backup\t/etc/\tlocalhost/"),
    ("backup\t/home/my dir/ localhost/", "backup\t/home/my dir/\tlocalhost/"),
    ("backup_script\t/usr/local/bin/dump.sh --all db/", "backup_script\t/usr/local/bin/dump.sh --all\tdb/"),
    ("config_version 1.2", "config_version\t1.2"),
    ("rsync_long_args --delete --numeric-ids", "rsync_long_args\t--delete --numeric-ids"),
])
def test_spaces_are_flagged_with_the_fix(line, fix):
    problem, fields = rs.scan_line(12, line)
    assert problem is not None
    assert problem.kind == "spaces"
    assert problem.line == 12
    assert problem.fix == fix
    assert "line 12" in problem.message and "tabs" in problem.message
    assert fields == fix.split("\t")


def test_line_numbers_count_comments_and_blank_lines():
    text = GOOD.replace("retain\tweekly\t4", "retain weekly 4").replace("backup\t/etc/\tlocalhost/",
                                                                        "backup\t/etc/ localhost/")
    parsed = rs.parse_config(text)
    assert [(p.line, p.directive) for p in parsed.problems] == [(7, "retain"), (9, "backup")]
    assert parsed.intervals == [("daily", 7), ("weekly", 4)]


def test_leading_and_trailing_whitespace():
    lead, _fields = rs.scan_line(3, "  retain\tdaily\t7")
    assert lead.kind == "leading_whitespace" and lead.fix == "retain\tdaily\t7"
    trail, _fields = rs.scan_line(4, "snapshot_root\t/srv/snap/  ")
    assert trail.kind == "trailing_whitespace" and trail.fix == "snapshot_root\t/srv/snap/"
    comment, fields = rs.scan_line(5, "   # indented comment")
    assert comment.kind == "leading_whitespace" and comment.fix == "# indented comment" and fields is None


def test_unknown_directive_is_reported_never_fixed():
    problem, _fields = rs.scan_line(2, "retian\tdaily\t7")
    assert problem.kind == "unknown_directive" and problem.fix is None


def test_fixed_text_changes_only_bad_lines_and_keeps_endings():
    text = "config_version 1.2\r\n# keep  this comment\r\nretain\tdaily\t7\r\n"
    parsed = rs.parse_config(text)
    out = rs.fixed_text(text, parsed.problems)
    assert out == "config_version\t1.2\r\n# keep  this comment\r\nretain\tdaily\t7\r\n"
    assert rs.parse_config(out).problems == []


def test_freshness_uses_first_retain_level():
    parsed = rs.parse_config(GOOD)
    now = 1_000_000.0
    seen = []

    def mtime_of(path):
        seen.append(path)
        return now - 3600 * 2

    fresh = rs.judge_freshness(parsed, None, 25, now, mtime_of)
    assert seen == ["/srv/snapshots/daily.0"]
    assert fresh.fresh is True and fresh.age_hours == 2.0 and fresh.message is None


def test_freshness_stale_missing_and_bad_interval():
    parsed = rs.parse_config(GOOD)
    now = 1_000_000.0
    stale = rs.judge_freshness(parsed, "weekly", 25, now, lambda p: now - 3600 * 30)
    assert stale.fresh is False and stale.path == "/srv/snapshots/weekly.0" and "30.0 h old" in stale.message
    missing = rs.judge_freshness(parsed, None, 25, now, lambda p: None)
    assert missing.fresh is False and missing.exists is False and "does not exist" in missing.message
    with pytest.raises(InputError):
        rs.judge_freshness(parsed, "hourly", 25, now, lambda p: now)
    no_root = rs.judge_freshness(rs.parse_config("retain\tdaily\t7\n"), None, 25, now, lambda p: now)
    assert no_root.fresh is False and "snapshot_root" in no_root.message


class ConfigReader:
    """Keeps the configuration file rsnapshot was asked to test, as it was when it ran."""

    seen = ""

    def __call__(self, cmd, kwargs):
        with open(cmd[cmd.index("-c") + 1], encoding="utf-8") as handle:
            self.seen = handle.read()


def FakeModule(params, check_mode=False, diff=False, answers=None):  # the conftest class, configured
    reader = ConfigReader()
    module = _FakeModule({"fix": False, "configtest": True, "check_freshness": True, "interval": None,
                          "max_age_hours": 25.0, "rsnapshot_bin": "/bin/true", "fail_on_problem": False, **params},
                         answers=answers or [(0, "Syntax OK\n", "")], check_mode=check_mode, diff=diff, on_run=reader)
    module.reader = reader
    return module


def write(tmp_path, text):
    conf = tmp_path / "rsnapshot.conf"
    conf.write_text(text)
    os.chmod(conf, 0o640)
    return conf


def test_main_check_mode_touches_nothing_and_tests_the_fixed_copy(tmp_path):
    text = GOOD.replace("retain\tdaily\t7", "retain  daily  7").replace("/srv/snapshots/", f"{tmp_path}/snaps/")
    conf = write(tmp_path, text)
    (tmp_path / "snaps" / "daily.0").mkdir(parents=True)
    module = FakeModule({"path": str(conf), "fix": True}, check_mode=True, diff=True)
    result = rs.main(module)
    assert result["changed"] is True and result["fixed"] is True
    assert conf.read_text() == text
    assert "retain\tdaily\t7" in module.reader.seen and module.calls[0][0][-3] == "-c"
    assert module.calls[0][0][-2] != str(conf)
    assert result["diff"]["after"] == rs.fixed_text(text, rs.parse_config(text).problems)
    assert result["lines"][0]["line"] == 6


def test_main_fix_then_idempotent(tmp_path):
    text = GOOD.replace("retain\tdaily\t7", "retain  daily  7").replace("/srv/snapshots/", f"{tmp_path}/snaps/")
    conf = write(tmp_path, text)
    (tmp_path / "snaps" / "daily.0").mkdir(parents=True)
    first = rs.main(FakeModule({"path": str(conf), "fix": True}))
    assert first["changed"] is True and first["ok"] is True and first["problems"] == []
    assert "retain\tdaily\t7\n" in conf.read_text()
    assert os.stat(conf).st_mode & 0o777 == 0o640
    second = rs.main(FakeModule({"path": str(conf), "fix": True}))
    assert second["changed"] is False and second["lines"] == [] and second["ok"] is True


def test_main_reports_configtest_and_staleness(tmp_path):
    conf = write(tmp_path, GOOD.replace("/srv/snapshots/", f"{tmp_path}/snaps/"))
    daily0 = tmp_path / "snaps" / "daily.0"
    daily0.mkdir(parents=True)
    old = time.time() - 3600 * 48
    os.utime(daily0, (old, old))
    module = FakeModule({"path": str(conf)}, answers=[(1, "", "ERROR: something is wrong\n")])
    result = rs.main(module)
    assert result["ok"] is False and result["changed"] is False
    assert result["configtest"]["ok"] is False and result["configtest"]["errors"] == ["something is wrong"]
    assert any("configtest failed" in p for p in result["problems"])
    assert any("48.0 h old" in p for p in result["problems"])
    module = FakeModule({"path": str(conf), "fail_on_problem": True},
                        answers=[(0, "Syntax OK\n", "")])
    with pytest.raises(RestoreOpsError) as err:
        rs.main(module)
    assert "older than 25 h" in err.value.msg and err.value.details["ok"] is False


def test_main_bad_input(tmp_path):
    with pytest.raises(InputError):
        rs.main(FakeModule({"path": str(tmp_path / "missing.conf")}))
    conf = write(tmp_path, GOOD)
    with pytest.raises(InputError):
        rs.main(FakeModule({"path": str(conf), "max_age_hours": 0}))
    spaced = GOOD.replace("retain\tdaily\t7", "retain daily 7")
    conf.write_text(spaced)
    with pytest.raises(InputError, match="not a retain level"):
        rs.main(FakeModule({"path": str(conf), "fix": True, "interval": "hourly"}))
    assert conf.read_text() == spaced


CONFIGTEST_OUTPUT = """\
----------------------------------------------------------------------------
rsnapshot encountered an error! The program was invoked with these options:
/usr/bin/rsnapshot -c bad.conf configtest
----------------------------------------------------------------------------
ERROR: bad.conf on line 2:
ERROR: snapshot_root /tmp/snaps/ - missing tabs to separate words - \\
         change spaces to tabs.
ERROR: bad.conf on line 5:
ERROR: backup /etc/hostname localhost/ - snapshot_root needs to be defined \\
         before backup points
ERROR: ---------------------------------------------------------------------
ERROR: Errors were found in bad.conf,
"""


def test_configtest_errors_are_joined():
    errors = rs.parse_configtest_errors(CONFIGTEST_OUTPUT)
    assert errors == [
        "bad.conf on line 2:",
        "snapshot_root /tmp/snaps/ - missing tabs to separate words - change spaces to tabs.",
        "bad.conf on line 5:",
        "backup /etc/hostname localhost/ - snapshot_root needs to be defined before backup points",
        "Errors were found in bad.conf,",
    ]


# --- rsnapshot as a restore source ---------------------------------------------------------------------------

LISTING = """drwxr-xr-x            4096 2026/12/01 03:30:12 .
drwxr-xr-x            4096 2026/12/01 03:30:12 daily.0
drwxr-xr-x            4096 2026/11/30 03:30:09 daily.1
drwxr-xr-x            4096 2026/11/24 04:30:00 weekly.0
drwxr-xr-x            4096 2026/11/20 04:30:00 _delete.4242
-rw-r--r--              12 2026/11/20 04:30:00 notes.txt
drwxr-xr-x            4096 2026/11/20 04:30:00 my dir.0
"""


def test_parse_list_only_and_snapshot_dirs():
    entries = rs.parse_list_only(LISTING)
    assert [e.name for e in entries][:2] == ["daily.0", "daily.1"]
    assert entries[0].mtime == "2026-12-01T03:30:12+00:00" and entries[0].size == 4096
    assert [e.name for e in rs.snapshot_dirs(entries)] == ["daily.0", "daily.1", "weekly.0"]
    assert rs.snapshot_id(entries[0].mtime) == "20261201T033012Z"


@pytest.mark.parametrize(("repo", "split"), [
    ("/var/cache/rsnapshot/", (None, "/var/cache/rsnapshot")),
    ("root@backup1:/var/cache/rsnapshot", ("root@backup1", "/var/cache/rsnapshot")),
    ("backup1.example:/srv/snaps", ("backup1.example", "/srv/snaps")),
])
def test_split_repository(repo, split):
    assert rs.split_repository(repo) == split


@pytest.mark.parametrize("repo", ["relative/path", "host:relative", "host::module/path", "rsync://host/mod", ""])
def test_split_repository_refuses(repo):
    with pytest.raises(InputError, match="absolute path or user@host"):
        rs.split_repository(repo)


def test_parse_transfer_counts_received_files_and_bytes_sent():
    out = "\n".join([">f+++++++++|1000|1000|srv/app/a", ".d..t......|0|4096|srv/app/",
                     ">f.st......|120|5000|srv/app/b", "*deleting  |0|0|srv/app/.b.XyZ12", "cL+++++++++|0|3|l"])
    moved = rs.parse_transfer(out)
    assert (moved.files, moved.bytes_sent, moved.file_bytes, moved.deleted) == (2, 1120, 6000, 1)
    assert moved.names == ["srv/app/a", "srv/app/b"]


def test_rsync_sources():
    assert rs.rsync_sources(None, "/snaps", "daily.0", "localhost/", []) == ["/snaps/daily.0/localhost/./"]
    assert rs.rsync_sources("u@h", "/snaps/", "weekly.1", "web1", ["/etc"]) == [
        "u@h:/snaps/weekly.1/web1/./etc"]
