# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the pure parts of _postgres: option mapping, error classification and the health decisions."""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _postgres as pg
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError

UTC = dt.timezone.utc  # noqa: UP017 - the module_utils target Python 3.9
NOW = dt.datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def raw(**overrides):
    """A healthy primary as collect() would return it; overrides replace whole keys or archiver fields."""
    base = {
        "version_num": 150008,
        "server_version": "15.8",
        "in_recovery": False,
        "now": NOW,
        "settings": {
            "archive_mode": ("on", None),
            "archive_command": ("/usr/local/bin/restoreops-wal-archive %p %f", None),
            "archive_library": ("", None),
            "archive_timeout": ("60", "s"),
            "wal_level": ("replica", None),
            "wal_keep_size": ("64", "MB"),
            "wal_segment_size": ("16777216", "B"),
        },
        "archiver": {
            "archived_count": 5,
            "last_archived_wal": "000000010000000000000005",
            "last_archived_time": ago(30),
            "failed_count": 0,
            "last_failed_wal": None,
            "last_failed_time": None,
            "stats_reset": ago(3600),
        },
        "ready_wal_count": 0,
        "replicas": [],
        "slots": [],
        "standby": {},
    }
    archiver = overrides.pop("archiver", {})
    base["archiver"].update(archiver)
    settings = overrides.pop("settings", {})
    base["settings"].update(settings)
    base.update(overrides)
    return base


def decide_problems(raw_values, **thresholds):
    return decide(raw_values, **thresholds)[1]


def decide(raw_values, **thresholds):
    facts = pg.build_facts(raw_values)
    problems = pg.find_problems(facts, **thresholds)
    return facts, problems


# --- connection options ----------------------------------------------------------------------------------------

def test_connection_kwargs_socket_wins_and_password_is_a_keyword():
    kwargs = pg.connection_kwargs({
        "login_host": "127.0.0.1", "login_unix_socket": "/run/pg", "port": 23001, "login_user": "mon",
        "login_password": "s3cret", "login_db": "app", "connect_timeout": 3, "ssl_mode": "disable",
    })
    assert kwargs["host"] == "/run/pg"
    assert kwargs["password"] == "s3cret"
    assert kwargs["dbname"] == "app"
    assert kwargs["sslmode"] == "disable"
    assert kwargs["connect_timeout"] == 3
    assert "s3cret" not in pg.describe_target(kwargs)


def test_connection_kwargs_defaults_leave_host_to_libpq():
    kwargs = pg.connection_kwargs({})
    assert "host" not in kwargs
    assert "password" not in kwargs
    assert (kwargs["user"], kwargs["dbname"], kwargs["port"]) == ("postgres", "postgres", 5432)
    assert kwargs["sslmode"] == "prefer"


def test_connection_kwargs_rejects_zero_timeout():
    with pytest.raises(InputError, match="connect_timeout"):
        pg.connection_kwargs({"connect_timeout": -1})
    with pytest.raises(InputError, match="connect_timeout must be at least 1 second"):
        pg.connection_kwargs({"connect_timeout": 0})  # zero was taken as "unset" and became 10


@pytest.mark.parametrize(("message", "sqlstate", "reason"), [
    ("whatever", "28P01", "authentication"),
    ("whatever", "28000", "authentication"),
    ('FATAL:  password authentication failed for user "x"', None, "authentication"),
    ("fe_sendauth: no password supplied", None, "authentication"),
    ('database "nope" does not exist', "3D000", "database"),
    ('failed: FATAL:  database "nope" does not exist', None, "database"),
    ("connection to server at \"127.0.0.1\", port 1 failed: Connection refused", None, "refused"),
    ('connection to server on socket "/x/.s.PGSQL.5432" failed: No such file or directory', None, "refused"),
    ("timeout expired", None, "timeout"),
    ('failed: FATAL:  role "nobody_here" does not exist', None, "role"),
    ("SSL error", None, "other"),
])
def test_classify_connect_error(message, sqlstate, reason):
    assert pg.classify_connect_error(message, sqlstate) == reason


def test_scrub_removes_password_and_newlines():
    assert pg._scrub("bad\n  hunter2 here", "hunter2") == "bad ******** here"


def test_connect_failure_message_never_contains_the_password(monkeypatch):
    class FakeError(Exception):
        sqlstate = "28P01"

    class FakePsycopg:
        Error = FakeError

        @staticmethod
        def connect(**kwargs):
            raise FakeError(f"password authentication failed (pw was {kwargs['password']})")

    monkeypatch.setattr(pg, "psycopg", FakePsycopg)
    with pytest.raises(pg.ConnectionFailed) as info:
        pg.connect({"login_host": "127.0.0.1", "port": 23001, "login_user": "u", "login_password": "Tr0ub4dor"})
    assert "Tr0ub4dor" not in info.value.msg
    assert "authentication failed" in info.value.msg
    assert info.value.details["reason"] == "authentication"


# --- settings conversions ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "unit", "expected"), [
    ("60", "s", 60), ("2", "min", 120), ("0", "s", 0), ("1500", "ms", 1), (None, "s", None),
])
def test_setting_seconds(value, unit, expected):
    assert pg.setting_seconds(value, unit) == expected


def test_wal_keep_size_13_and_newer():
    assert pg.wal_keep_megabytes({"wal_keep_size": ("1024", "MB")}) == 1024


def test_wal_keep_segments_on_12():
    settings = {"wal_keep_segments": ("8", None), "wal_segment_size": ("2048", "8kB")}
    assert pg.wal_keep_megabytes(settings) == 128


def test_wal_keep_unknown():
    assert pg.wal_keep_megabytes({}) is None


# --- failing ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("archived", "failed", "expected"), [
    (None, None, False),
    (ago(10), None, False),
    (None, ago(10), True),
    (ago(10), ago(20), False),   # a failure that was followed by a success
    (ago(20), ago(10), True),    # stuck now
])
def test_is_failing(archived, failed, expected):
    assert pg.is_failing(archived, failed) is expected


# --- healthy primary -------------------------------------------------------------------------------------------

def test_healthy_primary_facts():
    facts, problems = decide(raw(), max_archive_age=120)
    assert problems == []
    assert facts["archive_mode"] == "on"
    assert facts["archive_timeout"] == 60
    assert facts["wal_keep_size"] == 64
    assert facts["last_archived_age"] == 30.0
    assert facts["failing"] is False
    assert facts["in_recovery"] is False
    assert facts["replay_lag"] is None
    assert facts["last_archived_time"] == ago(30).isoformat()


def test_archiving_off_is_a_problem():
    problems = decide_problems(raw(settings={"archive_mode": ("off", None)}))
    assert len(problems) == 1
    assert "archive_mode = off" in problems[0]


def test_archive_mode_on_without_command():
    problems = decide_problems(raw(settings={"archive_command": ("", None), "archive_library": ("", None)}))
    assert any("neither archive_command nor archive_library" in p for p in problems)


def test_archive_library_counts_as_configured():
    settings = {"archive_command": ("", None), "archive_library": ("basic_archive", None)}
    problems = decide_problems(raw(settings=settings))
    assert problems == []


def test_failing_names_the_segment():
    facts, problems = decide(raw(archiver={
        "failed_count": 7, "last_failed_wal": "000000010000000000000006", "last_failed_time": ago(5),
    }))
    assert facts["failing"] is True
    assert len(problems) == 1
    assert "000000010000000000000006" in problems[0]
    assert "failing" in problems[0]


def test_recovered_failure_is_not_a_problem():
    facts, problems = decide(raw(archiver={
        "failed_count": 1, "last_failed_wal": "000000010000000000000004", "last_failed_time": ago(100),
    }))
    assert facts["failing"] is False
    assert problems == []


def test_old_archive_is_a_problem_only_with_threshold():
    old = raw(archiver={"last_archived_time": ago(4000)})
    assert decide(old)[1] == []
    problems = decide_problems(old, max_archive_age=600)
    assert len(problems) == 1
    assert "000000010000000000000005" in problems[0]
    assert "4000 s old" in problems[0]


def test_never_archived_since_reset():
    fresh = raw(archiver={"archived_count": 0, "last_archived_wal": None, "last_archived_time": None,
                          "stats_reset": ago(30)})
    assert decide(fresh, max_archive_age=600)[1] == []   # just reset: give it time
    stale = raw(archiver={"archived_count": 0, "last_archived_wal": None, "last_archived_time": None,
                          "stats_reset": ago(3000)})
    problems = decide(stale, max_archive_age=600)[1]
    assert len(problems) == 1
    assert "No WAL segment has been archived" in problems[0]


# --- replicas on a primary -------------------------------------------------------------------------------------

def test_replica_idle_caught_up_has_zero_lag():
    facts, problems = decide(raw(replicas=[{
        "application_name": "standby1", "state": "streaming", "sent_lsn": "0/3000060", "replay_lsn": "0/3000060",
        "replay_lag_bytes": 0, "replay_lag": None,
    }, {
        "application_name": "standby2", "state": "streaming", "sent_lsn": "0/3000060", "replay_lsn": "0/3000060",
        "replay_lag_bytes": 0, "replay_lag": 4.2,   # stale measurement kept by the view after the last commit
    }]), max_replay_lag=1, max_replay_lag_bytes=0)
    assert facts["replicas"][1]["replay_lag"] == 0.0
    assert facts["replicas"][0]["replay_lag"] == 0.0
    assert facts["replicas"][0]["replay_lag_bytes"] == 0
    assert problems == []


def test_replica_lag_over_thresholds():
    facts, problems = decide(raw(replicas=[{
        "application_name": "standby1", "state": "streaming", "sent_lsn": "0/5000000", "replay_lsn": "0/3000000",
        "replay_lag_bytes": 33554432, "replay_lag": 42.5,
    }]), max_replay_lag=30, max_replay_lag_bytes=16777216)
    assert facts["replicas"][0]["replay_lag"] == 42.5
    assert len(problems) == 2
    assert all("standby1" in p for p in problems)


def test_replica_lag_without_thresholds_is_not_judged():
    problems = decide_problems(raw(replicas=[{
        "application_name": "s", "state": "catchup", "sent_lsn": None, "replay_lsn": None,
        "replay_lag_bytes": None, "replay_lag": None,
    }]))
    assert problems == []


# --- standby ---------------------------------------------------------------------------------------------------

def standby_raw(lag_bytes, last_replay_age, **kw):
    return raw(in_recovery=True, standby={
        "receive_lsn": "0/3000060", "replay_lsn": "0/3000060" if lag_bytes == 0 else "0/2000000",
        "lag_bytes": lag_bytes, "last_replay_time": None if last_replay_age is None else ago(last_replay_age),
    }, **kw)


def test_standby_of_idle_primary_has_no_false_lag():
    facts, problems = decide(standby_raw(0, 7200), max_replay_lag=60)
    assert facts["replay_lag"] == 0.0
    assert facts["replay_lag_bytes"] == 0
    assert facts["last_replay_time"] == ago(7200).isoformat()
    assert problems == []


def test_standby_behind_uses_replay_timestamp():
    facts, problems = decide(standby_raw(1024, 90), max_replay_lag=60)
    assert facts["replay_lag"] == 90.0
    assert facts["replay_lag_bytes"] == 1024
    assert len(problems) == 1
    assert problems[0].startswith("This standby is 90 s behind")


def test_standby_lag_bytes_threshold():
    problems = decide_problems(standby_raw(1 << 20, 1), max_replay_lag_bytes=1024)
    assert len(problems) == 1
    assert "1048576 bytes" in problems[0]


def test_standby_nothing_replayed_yet():
    assert pg.standby_replay_lag(10, NOW, None) is None
    assert pg.standby_replay_lag(None, NOW, None) is None


def test_standby_with_archive_mode_on_is_not_judged_on_archiving():
    # On a standby archive_mode=on means "the primary archives"; an old/absent archive there is no problem.
    facts, problems = decide(standby_raw(0, 10, archiver={
        "archived_count": 0, "last_archived_wal": None, "last_archived_time": None, "stats_reset": ago(99999),
        "failed_count": 3, "last_failed_wal": "000000010000000000000001", "last_failed_time": ago(9999),
    }), max_archive_age=60)
    assert facts["failing"] is True
    assert problems == []


def test_standby_with_archive_mode_always_is_judged():
    problems = decide_problems(standby_raw(0, 10, settings={"archive_mode": ("always", None)}, archiver={
        "last_archived_time": ago(5000),
    }), max_archive_age=60)
    assert len(problems) == 1
    assert "5000 s old" in problems[0]


# --- slots -----------------------------------------------------------------------------------------------------

def test_inactive_slot_retaining_wal_is_a_problem():
    facts, problems = decide(raw(slots=[
        {"name": "gone_standby", "slot_type": "physical", "active": False, "wal_status": "extended",
         "retained_bytes": 50331648},
        {"name": "live", "slot_type": "physical", "active": True, "wal_status": "reserved", "retained_bytes": 1000},
        {"name": "unused", "slot_type": "physical", "active": False, "wal_status": None, "retained_bytes": None},
    ]))
    assert [s["name"] for s in facts["slots"]] == ["gone_standby", "live", "unused"]
    assert facts["slots"][2]["retained_bytes"] is None
    assert len(problems) == 1
    assert "gone_standby" in problems[0]
    assert "50331648" in problems[0]


def test_lost_slot_is_a_problem():
    slot = {"name": "s", "slot_type": "physical", "active": True, "wal_status": "lost", "retained_bytes": None}
    problems = decide_problems(raw(slots=[slot]))
    assert len(problems) == 1
    assert "wal_status = lost" in problems[0]


# --- several problems at once, thresholds ---------------------------------------------------------------------

def test_problems_are_ordered_and_all_reported():
    problems = decide_problems(raw(
        archiver={"last_archived_time": ago(900), "failed_count": 2, "last_failed_time": ago(10),
                  "last_failed_wal": "000000010000000000000006"},
        slots=[{"name": "x", "slot_type": "physical", "active": False, "wal_status": "reserved",
                "retained_bytes": 1}],
    ), max_archive_age=300)
    assert len(problems) == 3
    assert "failing" in problems[0]
    assert "900 s old" in problems[1]
    assert "slot x" in problems[2]


def test_problems_grouped_by_area():
    facts = pg.build_facts(raw(
        archiver={"last_archived_time": ago(900), "failed_count": 2, "last_failed_time": ago(10),
                  "last_failed_wal": "000000010000000000000006"},
        replicas=[{"application_name": "node2", "state": "streaming", "replay_lag": 420.0,
                   "replay_lag_bytes": 10}],
        slots=[{"name": "x", "slot_type": "physical", "active": False, "wal_status": "reserved",
                "retained_bytes": 1}],
    ))
    records = pg.find_problem_records(facts, max_archive_age=300, max_replay_lag=300)
    grouped = pg.problems_by_area(records)
    assert [len(grouped[area]) for area in pg.PROBLEM_AREAS] == [2, 1, 1]
    assert "node2 is 420 s behind" in grouped["replication"][0] and "slot x" in grouped["slots"][0]
    assert [message for _area, message in records] == pg.find_problems(facts, max_archive_age=300,
                                                                       max_replay_lag=300)
    assert pg.problems_by_area([]) == {"archiving": [], "replication": [], "slots": []}


def test_negative_threshold_rejected():
    with pytest.raises(InputError, match="max_replay_lag"):
        pg.validate_thresholds({"max_replay_lag": -1})


def test_archiver_facts_with_fake_connection(monkeypatch):
    monkeypatch.setattr(pg, "collect", lambda conn: raw(archiver={
        "failed_count": 1, "last_failed_wal": "000000010000000000000009", "last_failed_time": ago(1)}))
    facts = pg.archiver_facts({"max_archive_age": None}, conn=object())
    assert facts["healthy"] is False
    assert facts["problems_by_area"]["archiving"] == facts["problems"] and facts["problems_by_area"]["slots"] == []
    assert facts["failing"] is True
    assert len(facts["problems"]) == 1


def test_main_returns_facts_unchanged(monkeypatch):
    monkeypatch.setattr(pg, "collect", lambda conn: raw())
    monkeypatch.setattr(pg, "connect", lambda params: type("C", (), {"close": lambda self: None})())

    class Module:
        params = {}

    result = pg.main(Module())
    assert result["changed"] is False
    assert result["ansible_facts"]["pg_archiver"]["healthy"] is True
