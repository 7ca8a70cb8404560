from __future__ import annotations

import datetime as dt
import os

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _pg_known_good as kg
from ansible_collections.restoreops.dr.plugins.module_utils import _pitr
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 14, 8, 0, 0, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def run_search(lo: float, hi: float, verdict, tolerance: float = 1.0, limit: int = 64):
    """Drive a Bisect with ``verdict(target) -> (outcome, last replayed or None)``; returns it and the targets."""
    search = kg.Bisect(lo=at(lo), hi=at(hi), tolerance=dt.timedelta(seconds=tolerance))
    targets = []
    while (target := search.next_target()) is not None:
        assert len(targets) < limit, "the search does not end"
        targets.append(target)
        outcome, last = verdict(target)
        search.record(target, outcome, last)
    return search, targets


def corruption_at(seconds: float):
    return lambda target: ("pass" if target < at(seconds) else "fail", None)


@pytest.mark.parametrize("corrupt", [0.3, 17.0, 333.3, 3599.9])
def test_bisect_finds_the_last_good_target_within_the_tolerance(corrupt):
    search, targets = run_search(0, 3600, corruption_at(corrupt))
    assert search.good is not None and search.bad is not None
    assert search.good < at(corrupt) <= search.bad
    assert search.bad - search.good <= dt.timedelta(seconds=1)
    assert len(targets) <= kg.trials_needed(dt.timedelta(seconds=3600), dt.timedelta(seconds=1))
    assert len(set(targets)) == len(targets)  # no target is tried twice


def test_the_usual_case_needs_only_the_halvings():
    _search, targets = run_search(0, 3600, corruption_at(1000.5))
    assert len(targets) == 12  # ceil(log2(3600)), neither end of the window tried


def test_a_failing_trial_moves_the_end_to_its_last_replayed_commit():
    commits = [at(s) for s in (10, 20, 30, 1000.25, 1500, 3000)]  # the corruption commits at 1000.25

    def verdict(target):
        last = max(c for c in commits if c <= target)
        return ("pass" if last < at(1000.25) else "fail"), last

    search, targets = run_search(0, 3600, verdict)
    assert search.bad == at(1000.25)  # the corrupting commit itself
    assert at(999.25) <= search.good < at(1000.25)
    assert len(targets) < 12


def test_the_window_end_passing_means_no_corruption_in_the_window():
    search, targets = run_search(0, 10, corruption_at(99))
    assert search.good == at(10) and search.bad is None
    assert targets[-1] == at(10)


def test_bad_at_the_start_means_no_good_target():
    search, targets = run_search(0, 10, corruption_at(-1))
    assert search.good is None and search.bad == at(0)
    assert targets[-1] == at(0)


def test_unreachable_targets_count_as_not_good_but_not_as_corruption():
    # the archive ends at 6: later targets cannot be reached, the data is fine everywhere it can be
    search, _targets = run_search(0, 10, lambda t: ("pass", None) if t <= at(6) else ("unreachable", None))
    assert search.bad is None and search.unreachable is not None
    assert at(5) <= search.good <= at(6)
    nothing, targets = run_search(0, 1.5, lambda t: ("unreachable", None))
    assert nothing.good is None and len(targets) == 2


def test_a_window_narrower_than_the_tolerance_tries_both_ends():
    _search, targets = run_search(0, 0.5, corruption_at(0.25))
    assert targets == [at(0), at(0.5)]


def test_record_refuses_an_unknown_outcome():
    with pytest.raises(ValueError):
        kg.Bisect(lo=at(0), hi=at(1), tolerance=dt.timedelta(seconds=1)).record(at(0), "maybe")


@pytest.mark.parametrize(("window", "tolerance", "needed"), [(3600, 1, 14), (86400, 1, 19), (1, 1, 2), (0.5, 1, 2)])
def test_trials_needed(window, tolerance, needed):
    assert kg.trials_needed(dt.timedelta(seconds=window), dt.timedelta(seconds=tolerance)) == needed


# --- the query's verdict ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("out", "expect", "outcome", "value"), [
    ("t\n", "auto", "pass", "t"),
    ("f\n", "auto", "fail", "f"),
    ("0\n", "auto", "pass", "0"),
    ("3\n", "auto", "fail", "3"),
    ("0|extra\n", "auto", "pass", "0"),
    ("0.0\n", "zero", "pass", "0.0"),
    ("t\n", "true", "pass", "t"),
    ("0\n", "true", "error", "0"),
    ("t\n", "zero", "error", "t"),
    ("", "no_rows", "pass", ""),
    ("7|x\n", "no_rows", "fail", "7|x"),
    ("", "auto", "error", ""),
    ("\n", "auto", "error", ""),  # NULL
    ("banana\n", "auto", "error", "banana"),
])
def test_query_verdict(out, expect, outcome, value):
    got = kg.query_verdict(0, out, "", expect)
    assert got[:2] == (outcome, value)


def test_query_errors_carry_the_servers_sentence():
    outcome, _value, detail = kg.query_verdict(1, "", 'psql:1: ERROR:  relation "no_such_table" does not exist\n'
                                                      "LINE 1: SELECT count(*) FROM no_such_table\n"
                                                      "                             ^\n")
    assert outcome == "error"
    assert detail == 'the query failed: psql:1: ERROR:  relation "no_such_table" does not exist'
    assert kg.query_verdict(2, "", "psql: could not connect\n")[2] == "the query failed: psql: could not connect"
    assert kg.query_verdict(3, "", "")[2] == "the query failed: psql exited with 3"


# --- the sandbox server's settings ---------------------------------------------------------------------------------


CONTROLDATA = """pg_control version number:            1300
Database cluster state:               in production
max_connections setting:              250
max_worker_processes setting:         8
max_wal_senders setting:              10
max_prepared_xacts setting:           5
max_locks_per_xact setting:           64
track_commit_timestamp setting:       on
"""


def test_standby_settings_at_least_as_high_as_the_primary():
    parsed = kg.parse_controldata(CONTROLDATA)
    assert parsed["max_connections"] == 250 and "track_commit_timestamp" not in parsed
    assert kg.standby_settings(parsed) == {"max_connections": "250", "max_worker_processes": "8",
                                           "max_wal_senders": "10", "max_prepared_transactions": "5",
                                           "max_locks_per_transaction": "64"}
    assert kg.standby_settings({})["max_connections"] == "100"


def test_server_options_keep_the_sandbox_apart():
    options = kg.server_options(port=54329, socket_dir="/sb/sock", conf_dir="/sb/conf",
                                controldata={"max_connections": 250}, settings={"work_mem": "64MB"})
    pairs = dict(options[i + 1].split("=", 1) for i in range(0, len(options), 2))
    assert all(options[i] == "-c" for i in range(0, len(options), 2))
    assert pairs["listen_addresses"] == "" and pairs["unix_socket_directories"] == "/sb/sock"
    assert pairs["port"] == "54329" and pairs["config_file"] == "/sb/conf/postgresql.conf"
    assert pairs["hba_file"] == "/sb/conf/pg_hba.conf"
    assert pairs["archive_mode"] == "off" and pairs["archive_command"] == ""
    assert pairs["archive_cleanup_command"] == "" and pairs["primary_conninfo"] == ""
    assert pairs["hot_standby"] == "on" and pairs["max_connections"] == "250" and pairs["work_mem"] == "64MB"


def test_recovery_settings_for_a_sandbox_pause():
    block = _pitr.recovery_settings("cmd", T0, "pause")
    assert "recovery_target_action = 'pause'" in block
    assert "recovery_target_action = 'promote'" in _pitr.recovery_settings("cmd", T0)
    with pytest.raises(ValueError):
        _pitr.recovery_settings("cmd", T0, "shutdown")


def test_pg_ctl_gets_the_options_quoted_for_its_shell(tmp_path):
    calls = []
    opts = _pitr.Options(data_dir=str(tmp_path / "data"), basebackup_dir="", wal_archive_dir="", restore_command="",
                         state_file="", target=None, control="pg_ctl", bin_dir="/pg/bin",
                         server_options=["-c", "listen_addresses=", "-c", "unix_socket_directories=/s b/sock"])
    _pitr.Recovery(opts, lambda argv: calls.append(argv) or (0, "", "")).start()
    argv = calls[0]
    assert argv[:4] == ["runuser", "-u", "postgres", "--"]
    assert argv[argv.index("-o") + 1] == "-c listen_addresses= -c 'unix_socket_directories=/s b/sock'"
    assert argv[-2:] == ["-W", "start"]  # pg_pitr does not wait for pg_ctl
    opts.start_wait, opts.timeout = True, 90
    _pitr.Recovery(opts, lambda argv: calls.append(argv) or (1, "", "")).start()
    assert calls[1][-4:] == ["-w", "-t", "90", "start"]  # a sandbox waits: a postmaster that exits fails pg_ctl


def test_wait_returns_paused_only_when_replay_paused(tmp_path, monkeypatch):
    monkeypatch.setattr(_pitr, "postmaster_alive", lambda d: True)
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("15\n")
    (data / "recovery.signal").write_text("")
    answers = iter([(0, "", ""), (0, "f\n", ""), (0, "", ""), (0, "t\n", "")])  # isready, paused?, isready, paused?
    seen = []

    def run(argv):
        seen.append(argv)
        return next(answers)

    opts = _pitr.Options(data_dir=str(data), basebackup_dir="", wal_archive_dir="", restore_command="",
                         state_file="", target=T0, control="pg_ctl", bin_dir="/pg/bin", target_action="pause",
                         login_user="app", database="shop", timeout=30)
    clock = [0.0]
    rec = _pitr.Recovery(opts, run, clock=lambda: clock[0], sleep=lambda s: clock.__setitem__(0, clock[0] + s))
    assert rec.wait() == "paused"
    query = seen[1]
    assert query[-1] == "SELECT pg_get_wal_replay_pause_state() = 'paused'"
    assert query[query.index("-U") + 1] == "app" and query[query.index("-d") + 1] == "shop"


# --- inputs ------------------------------------------------------------------------------------------------------


def base_backups(root, *ends):
    for index, end in enumerate(ends):
        path = root / f"b{index}"
        path.mkdir(parents=True)
        (path / _pitr.LABEL_FILE).write_text(
            f'{{"name": "b{index}", "start_time": "{end}", "end_time": "{end}", '
            f'"start_wal": "00000001000000000000000{index + 2}"}}')
    return str(root)


def params(tmp_path, **change):
    values = {"basebackup_dir": base_backups(tmp_path / "base", "2026-03-14 02:00:05+00", "2026-03-13 02:00:05+00"),
              "wal_archive_dir": str(tmp_path), "query": "SELECT 1", "expect": "auto", "tolerance": 1.0,
              "max_trials": 30, "window_start": None, "window_end": "2026-03-14 09:00:00", "settings": {},
              "trial_timeout": 600, "query_timeout": 300, "bin_dir": None}
    values.update(change)
    return values


def test_plan_defaults_the_start_to_the_earliest_backup(tmp_path):
    backups, start, end, step = kg.plan(params(tmp_path))
    assert [b.name for b in backups] == ["b0", "b1"]
    assert start == dt.datetime(2026, 3, 13, 2, 0, 5, tzinfo=UTC)
    assert end == dt.datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
    assert step == dt.timedelta(seconds=1)


@pytest.mark.parametrize(("change", "message"), [
    ({"window_end": None}, "window_end is required"),
    ({"window_end": "soon"}, "window_end must be a time"),
    ({"window_start": "2026-03-01 00:00:00"}, "before the end of the earliest base backup"),
    ({"window_start": "2026-03-14 10:00:00"}, "must be later than window_start"),
    ({"tolerance": 0}, "tolerance must be at least"),
    ({"max_trials": 10}, "more than max_trials=10"),
    ({"query": "  "}, "query is empty"),
    ({"expect": "maybe"}, "expect must be one of"),
    ({"settings": {"port": 1, "archive_command": "x", "work_mem": "1MB"}},
     "settings may not change archive_command, port"),
    ({"trial_timeout": 0}, "trial_timeout must be at least"),
    ({"bin_dir": "bin"}, "bin_dir must be an absolute path"),
])
def test_plan_refusals(tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        kg.plan(params(tmp_path, **change))


def test_plan_without_base_backups(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no base backup"):
        kg.plan(params(tmp_path, basebackup_dir=str(tmp_path / "empty")))


def test_conclude_reports_the_good_target_or_fails(tmp_path):
    search = kg.Bisect(lo=at(0), hi=at(8), tolerance=dt.timedelta(seconds=1))
    trials = []
    for target, outcome, last in ((at(4), "pass", "2026-03-14 08:00:03.5"), (at(6), "fail", "2026-03-14 08:00:05"),
                                  (at(4.5), "pass", "2026-03-14 08:00:03.5")):
        trials.append({"target": _pitr.pg_time(target), "outcome": outcome, "base_backup": "b0",
                       "last_replayed_transaction": last})
        search.record(target, outcome, _pitr.parse_target(last))
    result = kg.conclude(search, trials, {"window": {"start": "s", "end": "e"}, "tolerance": 1.0})
    assert result["target_time"] == "2026-03-14 08:00:04.500000+00"
    assert result["first_bad_time"] == "2026-03-14 08:00:05+00"
    assert result["found"] and result["last_good_transaction"] == "2026-03-14 08:00:03.5"
    empty = kg.Bisect(lo=at(0), hi=at(1), tolerance=dt.timedelta(seconds=1))
    empty.record(at(0), "fail")
    with pytest.raises(RestoreOpsError, match="No known-good recovery target") as info:
        kg.conclude(empty, [{"target": "x", "detail": "the query returned 2, not 0"}],
                    {"window": {"start": "s", "end": "e"}})
    assert "the query returned 2" in info.value.msg


def test_unreachable_details():
    assert "gap in the archive" in kg.unreachable_detail({"gap": True, "missing": "A", "next_available": "B"}, "")
    assert "archive ends before the target" in kg.unreachable_detail({"missing": "C", "last_restored": "B"}, "")
    assert "FATAL: x" in kg.unreachable_detail({}, "FATAL: x")


def test_log_tail(tmp_path):
    log = tmp_path / "log"
    log.write_text("a\nb\nc\nd\n")
    assert kg.log_tail(str(log)) == "b | c | d"
    assert kg.log_tail(str(tmp_path / "none")) == ""
    assert os.path.exists(log)


# --- one trial, with the commands answered here ------------------------------------------------------------------


def fake_postgres(query_answer, *, start_rc=0):
    """A ``run`` that plays PostgreSQL for one trial: tar unpacks a PG_VERSION, pg_ctl starts, the server pauses."""
    calls = []

    def run(argv, **kwargs):
        calls.append((argv, kwargs))
        tool = os.path.basename(argv[4]) if argv[:2] == ["runuser", "-u"] else argv[0]
        if tool == "tar" and argv[5] == "-xzf" and argv[6].endswith("base.tar.gz"):
            with open(os.path.join(argv[-1], "PG_VERSION"), "w") as handle:
                handle.write("15\n")
        if tool == "pg_controldata":
            return 0, CONTROLDATA, ""
        if tool == "pg_ctl" and argv[-1] == "start":
            if start_rc == 0:
                with open(os.path.join(argv[argv.index("-D") + 1], "postmaster.pid"), "w") as handle:
                    handle.write("4242\n")  # as the postmaster does
            return start_rc, "", ""
        if tool == "psql":
            sql = argv[-1]
            if "pause_state" in sql:
                return 0, "t\n", ""
            if "pg_is_in_recovery" in sql:
                return 0, "t|2026-03-14 08:00:03.500000|1\n", ""
            return query_answer
        return 0, "", ""

    return run, calls


def make_setup(tmp_path, box, **change):
    backups = _pitr.list_base_backups(base_backups(tmp_path / "base", "2026-03-14 07:59:00+00"))
    values = dict(backups=backups, archive=str(tmp_path / "wal"), sandbox=box, script="/sb/bin/restore",
                  conf_dir="/sb/conf", socket_dir="/sb/sock", port=54329, bin_dir="/pg/bin", os_user="postgres",
                  os_group="postgres", login_user="", database="shop", query="SELECT count(*) FROM o WHERE t < 0",
                  expect="auto", query_timeout=30, trial_timeout=60, settings={})
    values.update(change)
    return kg.Setup(**values)


def test_one_trial_recovers_pauses_queries_and_cleans_up(tmp_path, monkeypatch):
    alive = {"value": True}
    monkeypatch.setattr(_pitr, "postmaster_alive", lambda d: alive["value"])
    from ansible_collections.restoreops.dr.plugins.module_utils._sandbox import Sandbox
    with Sandbox(str(tmp_path / "box")) as box:
        run, calls = fake_postgres((0, "2\n", ""))

        def stop_when_asked(argv, **kwargs):
            if argv[-1] == "stop":
                with open(os.path.join(box.path, "trial", "data", "postmaster.pid"), "w") as handle:
                    handle.write("")  # pg_ctl removed it
                alive["value"] = False
            return run(argv, **kwargs)

        trial = kg.Trials(make_setup(tmp_path, box), stop_when_asked, clock=iter(range(100)).__next__)
        record = trial(at(3))
        assert os.listdir(os.path.join(box.path, "trial")) == []  # the data directory is gone
    assert record == {"target": "2026-03-14 08:00:03+00", "base_backup": "b0",
                      "last_replayed_transaction": "2026-03-14 08:00:03.500000", "outcome": "fail", "value": "2",
                      "detail": "the query returned 2, not 0", "seconds": 1}
    argvs = [argv for argv, _kw in calls]
    start = next(a for a in argvs if a[-1] == "start")
    assert "-w" in start and "archive_mode=off" in start[start.index("-o") + 1]
    assert "max_connections=250" in start[start.index("-o") + 1]  # from pg_controldata
    query = next((a, kw) for a, kw in calls if a[-1] == "SELECT count(*) FROM o WHERE t < 0")
    assert query[1]["environ_update"]["PGOPTIONS"] == ("-c default_transaction_read_only=on "
                                                       "-c statement_timeout=30000")
    assert query[0][query[0].index("-d") + 1] == "shop"
    assert next(a for a in argvs if a[-1] == "stop")[-6:] == ["-m", "immediate", "-w", "-t", "120", "stop"]


def test_a_trial_whose_server_exits_is_unreachable(tmp_path, monkeypatch):
    monkeypatch.setattr(_pitr, "postmaster_alive", lambda d: False)
    from ansible_collections.restoreops.dr.plugins.module_utils._sandbox import Sandbox
    with Sandbox(str(tmp_path / "box")) as box:
        run, calls = fake_postgres((0, "0\n", ""), start_rc=1)
        record = kg.Trials(make_setup(tmp_path, box), run)(at(3))
    assert record["outcome"] == "unreachable"
    assert record["detail"].startswith("PostgreSQL stopped before reaching the target")
    assert not any(argv[-1] == "SELECT count(*) FROM o WHERE t < 0" for argv, _kw in calls)


def test_a_promoted_sandbox_may_write():
    setup = kg.Setup(backups=[], archive="", sandbox=None, script="", conf_dir="", socket_dir="", port=1, bin_dir="",
                     os_user="postgres", os_group="postgres", login_user="", database="postgres", query="x",
                     expect="auto", query_timeout=5, trial_timeout=5, settings={}, target_action="promote")
    assert kg.pgoptions(setup) == "-c statement_timeout=5000"
