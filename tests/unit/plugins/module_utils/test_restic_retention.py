# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the restic retention logic; restic itself is replaced by scripted answers."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from conftest import FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, ToolError, run_module
from ansible_collections.restoreops.dr.plugins.module_utils._restic import retention
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import has_lock_files
from ansible_collections.restoreops.dr.plugins.module_utils._restic.retention import Policy, check_args, parse_forget

A = "55178cc764ea3fc576c825d3560c21a2ffebc103f14772e51189e2685a8af114"
B = "81bc9d4fc5b9f289d7506500f42aadc5d91ce7e1cea4f947d30871bee91f3cb7"
C = "7887e2039761f7e63c7a5972ea6e6067fa0679cac0fe686b977fba71947e1909"


def snap(sid: str, time: str, tree: str) -> dict:
    return {"time": time, "tree": tree, "paths": ["/srv/data"], "hostname": "h1", "username": "root", "id": sid,
            "short_id": sid[:8]}


# The shape restic 0.14 prints for `forget --json`: note that `reasons[].snapshot` carries no id.
FORGET_014 = [{
    "tags": None, "host": "h1", "paths": ["/srv/data"],
    "keep": [snap(C, "2026-02-01T10:00:00Z", "t3")],
    "remove": [snap(B, "2026-01-02T10:00:00Z", "t2"), snap(A, "2026-01-01T10:00:00Z", "t1")],
    "reasons": [{"snapshot": {k: v for k, v in snap(C, "2026-02-01T10:00:00Z", "t3").items()
                              if k not in ("id", "short_id")},
                 "matches": ["daily snapshot", "monthly snapshot"], "counters": {"daily": 1}}],
}]
LOCK_STALE = {"time": "2026-11-23T11:29:40.058736259Z", "exclusive": False, "hostname": "h1", "username": "root",
              "pid": 111}
LOCK_LIVE = {"time": "2026-11-23T11:30:06.1Z", "exclusive": False, "hostname": "h1", "username": "root",
             "pid": 222}
NOW = dt.datetime(2026, 11, 23, 11, 31, tzinfo=dt.UTC)


VERSION = [(0, "restic 0.14.0 compiled with go1.19.8 on linux/amd64\n", "")]


DEFAULTS = {"repository": "/srv/restic", "password": "s3cret-pw", "password_file": None, "password_command": None,
            "env": {}, "restic_binary": "/bin/true", "cache_dir": None, "keep_last": None, "keep_hourly": None,
            "keep_daily": None, "keep_weekly": None, "keep_monthly": None, "keep_yearly": None, "keep_within": None,
            "keep_tags": [], "group_by": "host,paths", "host": [], "tags": [], "paths": [], "prune": True,
            "unlock_stale": True, "check_after": "none"}


def restic_module(params: dict, script: dict, check_mode: bool = False, diff: bool = False) -> FakeModule:
    """restic_forget_prune's options (defaults as the argument spec gives them) and a scripted restic."""
    return FakeModule({**DEFAULTS, **params}, script=script, check_mode=check_mode, diff=diff)


def run(module: FakeModule, monkeypatch, locks_alive=(222,)) -> dict:
    monkeypatch.setattr(retention, "pid_alive", lambda pid: pid in locks_alive)
    monkeypatch.setattr(retention.socket, "gethostname", lambda: "h1")
    monkeypatch.setattr(retention, "utcnow", lambda: NOW)
    monkeypatch.setattr(retention, "directory_size", lambda path: 1000)
    run_module(module, retention.main)
    return module.result


# --- policy ----------------------------------------------------------------------------------------------------


def test_policy_args_in_order_and_filters():
    policy = Policy.from_params({"keep_daily": 7, "keep_weekly": 4, "keep_last": 0, "keep_within": "1y2m",
                                 "keep_tags": ["keep"], "group_by": "host", "host": ["db1"], "tags": ["a,b"],
                                 "paths": ["/srv"]}).validate()
    assert policy.args() == ["--keep-daily", "7", "--keep-weekly", "4", "--keep-within", "1y2m",
                             "--keep-tag", "keep", "--group-by", "host", "--host", "db1", "--tag", "a,b",
                             "--path", "/srv"]


def test_policy_group_by_empty_disables_grouping():
    assert Policy.from_params({"keep_last": 1, "group_by": ""}).args() == ["--keep-last", "1", "--group-by", ""]


@pytest.mark.parametrize("params", [{}, {"keep_last": 0, "keep_daily": 0}, {"keep_within": ""},
                                    {"keep_tags": []}])
def test_policy_that_keeps_nothing_is_refused(params):
    with pytest.raises(InputError, match="keeps nothing"):
        Policy.from_params(params).validate()


@pytest.mark.parametrize("params,match", [
    ({"keep_daily": -1}, "0 or more"),
    ({"keep_within": "7 days"}, "restic duration"),
    ({"keep_last": 1, "group_by": "host,user"}, "group_by"),
    ({"keep_last": 1, "paths": ["srv"]}, "absolute"),
])
def test_policy_bad_values(params, match):
    with pytest.raises(InputError, match=match):
        Policy.from_params(params).validate()


@pytest.mark.parametrize("value,args", [
    ("none", None), (None, None), ("structure", ["check"]),
    ("5%", ["check", "--read-data-subset", "5%"]), ("2.5%", ["check", "--read-data-subset", "2.5%"]),
    ("1/10", ["check", "--read-data-subset", "1/10"]), ("500M", ["check", "--read-data-subset", "500M"]),
])
def test_check_args(value, args):
    assert check_args(value) == args


def test_check_args_rejects_garbage():
    with pytest.raises(InputError, match="check_after"):
        check_args("all of it")


# --- parsing and decisions -------------------------------------------------------------------------------------


def test_parse_forget_flattens_and_matches_reasons_without_ids():
    plan = parse_forget(FORGET_014)
    assert [s["id"] for s in plan.removed] == [A, B]  # oldest first
    assert [s["id"] for s in plan.kept] == [C]
    assert plan.kept[0] == {"id": C, "short_id": C[:8], "time": "2026-02-01T10:00:00Z", "host": "h1",
                            "paths": ["/srv/data"], "tags": []}
    assert plan.reasons == [{"id": C, "time": "2026-02-01T10:00:00Z",
                             "matches": ["daily snapshot", "monthly snapshot"], "counters": {"daily": 1}}]


def test_parse_forget_empty_repository():
    assert parse_forget(None).removed == []
    assert parse_forget([]).kept == []
    with pytest.raises(ToolError):
        parse_forget({"keep": []})


# --- the whole run, restic scripted ----------------------------------------------------------------------------


def test_apply_forgets_prunes_once_and_keeps_password_off_argv(monkeypatch):
    module = restic_module({"keep_monthly": 2}, {"version": VERSION, "forget": [(0, json.dumps(FORGET_014), "")]},
                           diff=True)
    result = run(module, monkeypatch)
    assert module.commands() == [["version"], ["forget", "--json", "--quiet", "--prune", "--keep-monthly", "2",
                                               "--group-by", "host,paths"]]
    for cmd, kwargs in module.calls:
        assert not any("s3cret-pw" in arg for arg in cmd)
        assert kwargs["environ_update"]["RESTIC_PASSWORD"] == "s3cret-pw"
        assert kwargs["environ_update"]["RESTIC_REPOSITORY"] == "/srv/restic"
    assert result["changed"] is True
    assert [s["id"] for s in result["removed"]] == [A, B]
    assert result["prune"] == {"ran": True, "bytes_before": 1000, "bytes_after": 1000}
    assert result["space_reclaimed"] is True
    assert result["check"] == {"ran": False, "ok": None}
    assert result["restic_version"] == "0.14.0"
    assert result["diff"]["before"].count("\n") == 3 and result["diff"]["after"].count("\n") == 1


def test_nothing_to_remove_is_not_a_change(monkeypatch):
    nothing = [dict(FORGET_014[0], remove=[])]
    module = restic_module({"keep_monthly": 2}, {"version": VERSION, "forget": [(0, json.dumps(nothing), "")]})
    result = run(module, monkeypatch)
    assert result["changed"] is False
    assert result["space_reclaimed"] is False
    assert result["prune"]["ran"] is False


def test_check_mode_is_a_dry_run_and_reports_locks(monkeypatch):
    module = restic_module({"keep_monthly": 2}, {
        "version": VERSION,
        "list": [(0, "", "")],
        "forget": [(0, json.dumps(FORGET_014) + "\nwould delete 3 packs\n", "")],
    }, check_mode=True)
    result = run(module, monkeypatch)
    assert module.commands()[-1][:6] == ["forget", "--json", "--quiet", "--dry-run", "--no-lock", "--prune"]
    assert "unlock" not in [c[0] for c in module.commands()]
    assert result["changed"] is True
    assert result["prune"] == {"ran": False, "bytes_before": 1000, "bytes_after": None}


def test_check_mode_on_a_local_repository_without_lock_files_does_not_ask_restic(monkeypatch, tmp_path):
    (tmp_path / "locks").mkdir()
    script = {"version": VERSION, "forget": [(0, json.dumps(FORGET_014), "")]}
    module = restic_module({"keep_monthly": 2, "repository": str(tmp_path)}, script, check_mode=True)
    result = run(module, monkeypatch)
    assert [c[0] for c in module.commands()] == ["version", "forget"]
    assert result["locks"] == []
    # a lock file present: restic lists the locks before the dry run
    (tmp_path / "locks" / "aaaa").write_text("x")
    module = restic_module({"keep_monthly": 2, "repository": str(tmp_path)},
                           dict(script, list=[(0, "", "")]), check_mode=True)
    run(module, monkeypatch)
    assert [c[0] for c in module.commands()] == ["version", "list", "forget"]


def test_has_lock_files(tmp_path):
    assert has_lock_files(str(tmp_path)) is None
    (tmp_path / "locks").mkdir()
    assert has_lock_files(str(tmp_path)) is False
    (tmp_path / "locks" / "0123").write_text("")
    assert has_lock_files(str(tmp_path)) is True


def test_prune_false_warns_and_reclaims_nothing(monkeypatch):
    module = restic_module({"keep_monthly": 2, "prune": False},
                           {"version": VERSION, "forget": [(0, json.dumps(FORGET_014), "")]})
    result = run(module, monkeypatch)
    assert "--prune" not in module.commands()[1]
    assert result["space_reclaimed"] is False
    assert result["prune"] == {"ran": False, "bytes_before": None, "bytes_after": None}
    assert "no space is reclaimed" in module.warnings[0]


def test_empty_policy_refused_before_restic(monkeypatch):
    module = restic_module({}, {})
    with pytest.raises(FakeModule.Failed, match="keeps nothing"):
        run(module, monkeypatch)
    assert module.calls == []


def test_stale_lock_is_unlocked_then_retention_runs(monkeypatch):
    locked = (1, "", "unable to create lock in backend: repository is already locked by PID 111 on h1\n")
    module = restic_module({"keep_monthly": 2}, {
        "version": VERSION,
        "forget": [locked, (0, json.dumps(FORGET_014), "")],
        "list": [(0, "aaaa\n", ""), (0, "", "")],
        "cat": [(0, json.dumps(LOCK_STALE), "")],
        "unlock": [(0, "successfully removed locks\n", "")],
    })
    result = run(module, monkeypatch)
    assert [c[0] for c in module.commands()] == ["version", "forget", "list", "cat", "unlock", "list", "forget"]
    assert result["locks"] == [{"id": "aaaa", "time": LOCK_STALE["time"], "hostname": "h1", "pid": 111,
                                "exclusive": False, "stale": True, "removed": True}]
    assert result["changed"] is True


def test_live_lock_is_left_and_reported(monkeypatch):
    locked = (1, "", "unable to create lock in backend: repository is already locked by PID 222 on h1\n")
    module = restic_module({"keep_monthly": 2}, {
        "version": VERSION, "forget": [locked], "list": [(0, "bbbb\n", "")],
        "cat": [(0, json.dumps(LOCK_LIVE), "")],
    })
    with pytest.raises(FakeModule.Failed, match="locked by a running restic process"):
        run(module, monkeypatch)
    assert "unlock" not in [c[0] for c in module.commands()]
    assert module.result["locks"][0]["stale"] is False


def test_stale_lock_kept_when_unlock_stale_is_false(monkeypatch):
    module = restic_module({"keep_monthly": 2, "unlock_stale": False}, {
        "version": VERSION, "forget": [(1, "", "locked")], "list": [(0, "aaaa\n", "")],
        "cat": [(0, json.dumps(LOCK_STALE), "")],
    })
    with pytest.raises(FakeModule.Failed, match="unlock_stale is false"):
        run(module, monkeypatch)
    assert "unlock" not in [c[0] for c in module.commands()]


def test_append_only_backend_gives_the_clear_message(monkeypatch):
    module = restic_module({"repository": "rest:http://127.0.0.1:22001/r", "keep_last": 1}, {
        "version": VERSION,
        "stats": [(0, json.dumps({"total_size": 5}), "")],
        "forget": [(1, "", "blob not removed, server response: 403 Forbidden (403)\n")],
    })
    with pytest.raises(FakeModule.Failed, match="this repository is append-only; run retention from the maintenance "
                                                "host with full credentials"):
        run(module, monkeypatch)
    assert module.result["repository_append_only"] is True


def test_wrong_password_is_not_mistaken_for_a_lock(monkeypatch):
    module = restic_module({"keep_last": 1}, {
        "version": VERSION, "forget": [(1, "", "Fatal: wrong password or no key found\n")],
    })
    with pytest.raises(FakeModule.Failed, match=r"did not open: wrong password .*nothing was changed"):
        run(module, monkeypatch)
    assert [c[0] for c in module.commands()] == ["version", "forget"]


def test_wrong_password_in_check_mode_gets_the_same_sentence(monkeypatch):
    module = restic_module({"keep_last": 1}, {
        "version": VERSION, "list": [(1, "", "Fatal: wrong password or no key found\n")],
    }, check_mode=True)
    with pytest.raises(FakeModule.Failed, match="did not open: wrong password"):
        run(module, monkeypatch)


def test_missing_repository_is_named(monkeypatch):
    module = restic_module({"keep_last": 1}, {
        "version": VERSION,
        "forget": [(1, "", "Fatal: unable to open config file: stat /srv/restic/config: no such file or directory\n"
                           "Is there a repository at the following location?\n/srv/restic\n")],
    })
    with pytest.raises(FakeModule.Failed, match="There is no restic repository at this location"):
        run(module, monkeypatch)
    assert module.result["rc"] == 1


def test_secret_scrubbed_from_failure_output(monkeypatch):
    module = restic_module({"keep_last": 1, "env": {"AWS_SECRET_ACCESS_KEY": "topsecretkey"}}, {
        "version": VERSION, "forget": [(1, "", "echo s3cret-pw topsecretkey\n")], "list": [(0, "", "")],
    })
    with pytest.raises(FakeModule.Failed):
        run(module, monkeypatch)
    text = json.dumps(module.result)
    assert "s3cret-pw" not in text and "topsecretkey" not in text


def test_check_after_failure_fails_after_retention(monkeypatch):
    module = restic_module({"keep_monthly": 2, "check_after": "10%"}, {
        "version": VERSION, "forget": [(0, json.dumps(FORGET_014), "")], "check": [(1, "", "pack x damaged")],
    })
    with pytest.raises(FakeModule.Failed, match="reported errors"):
        run(module, monkeypatch)
    assert module.commands()[-1] == ["check", "--read-data-subset", "10%", "--quiet"]
    assert module.result["check"] == {"ran": True, "ok": False}


def test_remote_repository_sizes_from_stats(monkeypatch):
    module = restic_module({"repository": "s3:http://127.0.0.1:22002/b", "keep_monthly": 2}, {
        "version": VERSION,
        "stats": [(0, json.dumps({"total_size": 900}), ""), (0, json.dumps({"total_size": 300}), "")],
        "forget": [(0, json.dumps(FORGET_014), "")],
    })
    result = run(module, monkeypatch)
    assert result["prune"] == {"ran": True, "bytes_before": 900, "bytes_after": 300}


# --- restic issue 4568 ------------------------------------------------------------------------------------------

def snap(host="db1", paths=("/srv",), tags=()):
    return {"hostname": host, "paths": list(paths), "tags": list(tags)}


@pytest.mark.parametrize(("params", "snaps", "expect"), [
    ({"keep_tags": ["keep"]}, [snap(tags=["kep"])], "keep_tags names keep, which no snapshot has"),
    ({"keep_tags": ["keep"], "keep_daily": 7}, [snap()], "keep_tags names keep, which no snapshot has"),
    ({"keep_tags": ["a,b"]}, [snap(tags=["a"]), snap(tags=["b"])], "keep_tags names a,b"),
    ({"keep_tags": ["keep"]}, [snap(tags=["keep"]), snap(host="db2")], "no snapshot of the group host db2, paths"),
    ({"keep_tags": ["keep"]}, [snap(tags=["keep"]), snap(tags=["keep"], paths=["/etc"])], None),
    ({"keep_tags": ["keep"], "keep_last": 1}, [snap(tags=["keep"]), snap(host="db2")], None),
    ({"keep_tags": ["keep"], "group_by": ""}, [snap(tags=["keep"]), snap(host="db2")], None),
    ({"keep_daily": 7}, [snap()], None),
])
def test_keep_tag_hazard_on_restic_before_0_17(params, snaps, expect):
    policy = Policy.from_params(params)
    hazard = retention.keep_tag_hazard((0, 14, 0), policy, snaps)
    if expect is None:
        assert hazard is None
    else:
        assert expect in hazard and "restic issue 4568" in hazard and "Nothing was run" in hazard
    assert retention.keep_tag_hazard((0, 17, 0), policy, snaps) is None


def test_keep_tag_hazard_refuses_before_forget_in_check_mode_too(monkeypatch):
    for check_mode in (True, False):
        module = restic_module({"keep_tags": ["keep"], "tags": ["nightly"]},
                               {"version": VERSION, "snapshots": [(0, json.dumps([snap(tags=["nightly"])]), "")]},
                               check_mode=check_mode)
        with pytest.raises(InputError, match=r"keep_tags names keep, which no snapshot has.*4568"):
            retention.main(module)
        assert module.commands()[-1] == ["snapshots", "--json", "--no-lock", "--tag", "nightly"]
        assert not any(cmd[0] == "forget" for cmd in module.commands())
