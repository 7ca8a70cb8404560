# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the nightly verification's decisions (the backup_verify runner's latest backup, age, results)."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _verify as verify

NOW = dt.datetime(2026, 11, 23, 6, 30, tzinfo=dt.UTC).timestamp()


def test_latest_borg_is_the_last_archive_listed():
    listing = {"archives": [{"name": "db1-1", "start": "2026-11-22T02:00:00.000000"},
                            {"name": "db1-2", "time": "2026-11-23T02:00:00.000000", "start": "ignored"}]}
    name, when = verify.latest_borg(listing)
    assert name == "db1-2"
    assert when == dt.datetime(2026, 11, 23, 2, 0).timestamp()  # borg's zone-less time: local time


def test_latest_borg_time_under_another_zone(monkeypatch):
    monkeypatch.setenv("TZ", "RDR-05:30")
    time.tzset()
    try:
        _name, when = verify.latest_borg({"archives": [{"name": "a", "time": "2026-11-23T02:00:00.000000"}]})
        assert when == dt.datetime(2026, 11, 22, 20, 30, tzinfo=dt.UTC).timestamp()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_latest_restic_is_the_newest_whatever_the_order():
    snaps = [{"id": "b" * 64, "time": "2026-11-23T02:00:00.5+01:00"},
             {"id": "a" * 64, "time": "2026-11-23T01:30:00.123456789Z"},
             {"id": "c" * 64, "time": "2026-11-22T02:00:00Z"}]
    ident, when = verify.latest_restic(snaps)
    assert ident == "a" * 64  # 01:30Z is later than 02:00+01:00 (01:00Z)
    assert when == pytest.approx(dt.datetime(2026, 11, 23, 1, 30, 0, 123456, tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize("data", [{}, {"archives": []}])
def test_no_archive(data):
    with pytest.raises(verify.NothingToVerify, match="no archive"):
        verify.latest_borg(data)


@pytest.mark.parametrize("data", [None, []])
def test_no_snapshot(data):
    with pytest.raises(verify.NothingToVerify, match="no snapshot"):
        verify.latest_restic(data)


def test_backup_age():
    age, message = verify.backup_age("x", NOW - 3600, NOW, 25)
    assert age == 3600 and message is None
    age, message = verify.backup_age("x", NOW - 26 * 3600, NOW, 25)
    assert message == "the latest backup x is 26.0 h old, older than 25 h"
    assert verify.backup_age("x", NOW + 60, NOW, 25) == (0.0, None)  # a clock ahead is not an age


@pytest.mark.parametrize("problems,stale,result", [
    ([], [], "PASS"), ([], ["old"], "STALE"), (["broken"], ["old"], "FAIL"), (["broken"], [], "FAIL"),
])
def test_repository_result(problems, stale, result):
    assert verify.repository_result(problems, stale) == result


@pytest.mark.parametrize("results,outcome,code", [
    (["PASS", "PASS"], "PASS", 0), (["PASS", "STALE"], "STALE", 2), (["STALE", "FAIL", "PASS"], "FAIL", 1),
    ([], "PASS", 0),
])
def test_overall_and_exit_code(results, outcome, code):
    assert verify.overall(results) == outcome
    assert verify.EXIT[outcome] == code
