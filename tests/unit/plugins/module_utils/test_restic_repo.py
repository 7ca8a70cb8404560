# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the restic_repo module's steps; restic answers from a script."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, run_module
from ansible_collections.restoreops.dr.plugins.module_utils._restic import repo

VERSION = [(0, "restic 0.14.0 compiled with go1.19.8 on linux/amd64\n", "")]
CONFIG = (0, json.dumps({"version": 2, "id": "9f3c0d1e", "chunker_polynomial": "3dea92648f6e83"}), "")
NOW = dt.datetime(2026, 11, 23, 11, 31, tzinfo=dt.UTC)
STALE = {"time": "2026-11-23T11:29:40.058736259Z", "exclusive": False, "hostname": "h1", "username": "root",
         "pid": 111}
LIVE = dict(STALE, pid=222)
DEFAULTS = {"repository": "/srv/restic", "password": "s3cret-pw", "password_file": None, "password_command": None,
            "env": {}, "restic_binary": "/bin/true", "cache_dir": None, "state": "present", "stale_locks": "remove",
            "dead_hosts": [], "check": "none", "read_data_subset": None}


def run(params: dict, script: dict, check_mode: bool = False, diff: bool = False) -> FakeModule:
    module = FakeModule({**DEFAULTS, **params}, script=script, check_mode=check_mode, diff=diff)
    run_module(module, lambda m: repo.main(m, hostname="h1", now=lambda: NOW, alive=lambda pid: pid == 222))
    return module


def repository(tmp_path, *, locks: int = 0):
    path = tmp_path / "repo"
    (path / "locks").mkdir(parents=True, exist_ok=True)
    (path / "config").write_text("encrypted")
    for index in range(locks):
        (path / "locks" / f"l{index}").write_text("x")
    return str(path)


def test_missing_local_repository_check_mode_then_apply(tmp_path):
    params = {"repository": str(tmp_path / "new")}
    preview = run(params, {"version": VERSION}, check_mode=True, diff=True)
    assert preview.commands() == [["version"]]
    assert preview.result["changed"] is True and preview.result["created"] is True
    assert preview.result["repo_id"] is None and preview.result["actions"] == ["restic init"]
    assert json.loads(preview.result["diff"]["after"]) == {"exists": True}
    applied = run(params, {"version": VERSION, "init": [(0, "", "")], "cat": [CONFIG]})
    assert [c[0] for c in applied.commands()] == ["version", "init", "cat"]
    assert applied.result["created"] is True and applied.result["repo_id"] == "9f3c0d1e"
    assert applied.result["repository_version"] == 2


def test_existing_repository_is_only_read(tmp_path):
    module = run({"repository": repository(tmp_path)}, {"version": VERSION, "cat": [CONFIG]})
    assert [c[0] for c in module.commands()] == ["version", "cat"]
    assert module.result["changed"] is False and module.result["created"] is False
    assert module.result["locks"] == [] and module.result["actions"] == []


def test_secrets_travel_in_the_environment(tmp_path):
    module = run({"repository": "rest:http://u:urlpw@127.0.0.1:1/r", "env": {"AWS_SECRET_ACCESS_KEY": "awssecret"}},
                 {"version": VERSION, "cat": [CONFIG], "list": [(0, "", "")]})
    for cmd, kwargs in module.calls:
        assert not any(word in " ".join(cmd) for word in ("s3cret-pw", "urlpw", "awssecret", "127.0.0.1"))
        assert kwargs["environ_update"]["RESTIC_PASSWORD"] == "s3cret-pw"
        assert kwargs["environ_update"]["RESTIC_REPOSITORY"] == "rest:http://u:urlpw@127.0.0.1:1/r"


def test_remote_repository_missing_is_created_on_017_exit_code():
    exit10 = json.dumps({"message_type": "exit_error", "code": 10, "message": "repository does not exist"})
    module = run({"repository": "s3:http://127.0.0.1:1/b"},
                 {"version": VERSION, "cat": [(10, "", exit10), CONFIG], "init": [(0, "", "")]})
    assert [c[0] for c in module.commands()] == ["version", "cat", "init", "cat"]
    assert module.result["created"] is True


def test_wrong_password_is_a_clear_error_and_nothing_is_created():
    with pytest.raises(FakeModule.Failed, match="did not open: wrong password") as info:
        run({"repository": "s3:http://127.0.0.1:1/b"},
            {"version": VERSION, "cat": [(1, "", "Fatal: wrong password or no key found\n")]})
    assert "s3cret-pw" not in json.dumps(info.value.result)


def test_non_repository_directory_refused(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "file").write_text("x")
    with pytest.raises(FakeModule.Failed, match="not a restic repository"):
        run({"repository": str(tmp_path / "stuff")}, {"version": VERSION})


def test_stale_lock_of_a_dead_process_removed(tmp_path):
    script = {"version": VERSION, "cat": [CONFIG, (0, json.dumps(STALE), "")],
              "list": [(0, "aaaa\n", ""), (0, "", "")], "unlock": [(0, "", "")]}
    module = run({"repository": repository(tmp_path, locks=1)}, script, diff=True)
    assert [c[0] for c in module.commands()] == ["version", "cat", "list", "cat", "unlock", "list"]
    assert module.result["changed"] is True
    assert module.result["locks"] == [{"id": "aaaa", "time": STALE["time"], "hostname": "h1", "pid": 111,
                                       "exclusive": False, "stale": True, "removed": True}]
    assert module.result["actions"] == ["remove 1 stale lock(s) with restic unlock"]


def test_stale_lock_in_check_mode_is_reported_not_removed(tmp_path):
    script = {"version": VERSION, "cat": [CONFIG, (0, json.dumps(STALE), "")], "list": [(0, "aaaa\n", "")]}
    module = run({"repository": repository(tmp_path, locks=1)}, script, check_mode=True)
    assert "unlock" not in [c[0] for c in module.commands()]
    assert module.result["changed"] is True and module.result["locks"][0]["removed"] is False


def test_live_lock_refused(tmp_path):
    script = {"version": VERSION, "cat": [CONFIG, (0, json.dumps(LIVE), "")], "list": [(0, "bbbb\n", "")]}
    with pytest.raises(FakeModule.Failed, match="locked by a running restic process") as info:
        run({"repository": repository(tmp_path, locks=1)}, script)
    assert info.value.result["locks"][0]["stale"] is False


@pytest.mark.parametrize("mode,outcome", [("fail", "failed"), ("ignore", "unchanged")])
def test_stale_locks_fail_and_ignore(tmp_path, mode, outcome):
    script = {"version": VERSION, "cat": [CONFIG, (0, json.dumps(STALE), "")], "list": [(0, "aaaa\n", "")]}
    if outcome == "failed":
        with pytest.raises(FakeModule.Failed, match="stale_locks=fail"):
            run({"repository": repository(tmp_path, locks=1), "stale_locks": mode}, script)
        return
    module = run({"repository": repository(tmp_path, locks=1), "stale_locks": mode}, script)
    assert module.result["changed"] is False and module.result["locks"][0]["stale"] is True


def test_lost_server_in_dead_hosts(tmp_path):
    lost = dict(LIVE, hostname="lost-server")
    script = {"version": VERSION, "cat": [CONFIG, (0, json.dumps(lost), "")],
              "list": [(0, "cccc\n", ""), (0, "", "")], "unlock": [(0, "", "")]}
    module = run({"repository": repository(tmp_path, locks=1), "dead_hosts": ["lost-server"]}, script)
    assert module.result["locks"][0]["stale"] is True and module.result["locks"][0]["removed"] is True


@pytest.mark.parametrize("check,subset,args", [("structure", None, ["check", "--quiet"]),
                                               ("read_data_subset", "5%",
                                                ["check", "--read-data-subset", "5%", "--quiet"])])
def test_check(tmp_path, check, subset, args):
    script = {"version": VERSION, "cat": [CONFIG], "check": [(0, "", "")]}
    module = run({"repository": repository(tmp_path), "check": check, "read_data_subset": subset}, script)
    assert module.commands()[-1] == args and module.result["check"] == {"mode": check, "ok": True}
    preview = run({"repository": repository(tmp_path), "check": check, "read_data_subset": subset}, script,
                  check_mode=True)
    assert preview.commands()[-1] == [*args[:-1], "--no-lock", "--quiet"]


def test_failed_check_fails(tmp_path):
    script = {"version": VERSION, "cat": [CONFIG], "check": [(1, "", "Fatal: repository contains errors\n")]}
    with pytest.raises(FakeModule.Failed, match="reported errors") as info:
        run({"repository": repository(tmp_path), "check": "structure"}, script)
    assert info.value.result["check"] == {"mode": "structure", "ok": False}


@pytest.mark.parametrize("params,message", [
    ({"check": "read_data_subset"}, "needs read_data_subset"),
    ({"check": "read_data_subset", "read_data_subset": "half"}, "needs read_data_subset"),
    ({"check": "structure", "read_data_subset": "5%"}, "only with check=read_data_subset"),
    ({"state": "absent"}, "state must be present"),
    ({"cache_dir": "cache"}, "cache_dir must be an absolute path"),
])
def test_bad_options_refused_before_restic(params, message):
    with pytest.raises(InputError, match=message):
        repo.validate({**DEFAULTS, **params})


# --- snapshot_stats ---------------------------------------------------------------------------------------------

SNAPSHOTS = [
    {"id": "11" * 32, "short_id": "11111111", "time": "2026-11-23T02:00:04.281930122+01:00", "hostname": "h1",
     "paths": ["/srv/app"]},
    {"id": "22" * 32, "short_id": "22222222", "time": "2026-11-23T03:00:00Z", "hostname": "h1",
     "paths": ["/srv/app"], "tags": ["nightly"]},
    {"id": "33" * 32, "short_id": "33333333", "time": "2026-11-22T23:59:00Z", "hostname": "h1", "paths": ["/etc"]},
]
STATS = (0, json.dumps({"total_size": 5368709120, "total_file_count": 48211}), "")


def test_newest_snapshot_by_time_not_by_position():
    assert repo.newest_snapshot(SNAPSHOTS)["short_id"] == "22222222"
    assert repo.newest_snapshot([]) is None
    assert repo.newest_snapshot([{"id": "x", "time": "garbage"}]) is None


def test_snapshot_stats_lists_and_measures_the_newest(tmp_path):
    script = {"version": VERSION, "cat": [CONFIG], "snapshots": [(0, json.dumps(SNAPSHOTS), "")], "stats": [STATS]}
    module = run({"repository": repository(tmp_path), "snapshot_stats": True}, script, check_mode=True)
    commands = module.commands()
    assert commands[2] == ["snapshots", "--json", "--no-lock"]
    assert commands[3] == ["stats", "--json", "--no-lock", "--mode", "restore-size", "22" * 32]
    last = module.result["snapshots"]["last"]
    assert module.result["snapshots"]["count"] == 3
    assert last["short_id"] == "22222222" and last["tags"] == ["nightly"] and last["time"] == "2026-11-23T03:00:00Z"
    assert last["stats"] == {"total_size": 5368709120, "total_file_count": 48211}
    assert module.result["changed"] is False


def test_snapshot_stats_of_an_empty_repository_and_of_one_to_create(tmp_path):
    empty = run({"repository": repository(tmp_path), "snapshot_stats": True},
                {"version": VERSION, "cat": [CONFIG], "snapshots": [(0, "[]", "")]})
    assert empty.result["snapshots"] == {"count": 0, "last": None}
    assert "stats" not in [c[0] for c in empty.commands()]
    preview = run({"repository": str(tmp_path / "new"), "snapshot_stats": True}, {"version": VERSION},
                  check_mode=True)
    assert preview.result["snapshots"] == {"count": 0, "last": None} and preview.commands() == [["version"]]


def test_snapshots_not_listed_unless_asked(tmp_path):
    module = run({"repository": repository(tmp_path)}, {"version": VERSION, "cat": [CONFIG]})
    assert "snapshots" not in module.result


def test_failed_check_still_reports_the_snapshots_and_locks(tmp_path):
    script = {"version": VERSION, "cat": [CONFIG, (0, json.dumps(STALE), "")], "list": [(0, "aaaa\n", "")],
              "snapshots": [(0, json.dumps(SNAPSHOTS), "")], "stats": [STATS],
              "check": [(1, "", "Fatal: repository contains errors\n")]}
    with pytest.raises(FakeModule.Failed, match="reported errors") as info:
        run({"repository": repository(tmp_path, locks=1), "check": "structure", "stale_locks": "ignore",
             "snapshot_stats": True}, script, check_mode=True)
    result = info.value.result
    assert result["check"] == {"mode": "structure", "ok": False}
    assert result["snapshots"]["last"]["short_id"] == "22222222"
    assert result["locks"][0]["stale"] is True and result["locks"][0]["removed"] is False
