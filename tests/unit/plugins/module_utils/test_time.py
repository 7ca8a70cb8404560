# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the one time parser, and of the borg rule under a time zone that is not UTC.

borg 1.x prints its archive times as local wall-clock times without an offset. Before this module existed, the
restore (and the ``timestamp`` filter) read them as UTC while the audit and backup_verify read them as local time;
on a host not set to UTC one of them was wrong by the zone's offset. These tests run under UTC+05:30 and UTC-07:00.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _audit, _restore, _time
from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo import summarize_listing

# 2026-11-23T02:00:00 wall-clock time in a zone 5 h 30 min east of UTC is 2026-11-22T20:30:00Z.
BORG_LOCAL = "2026-11-23T02:00:00.000000"


@pytest.fixture(params=["RDR-05:30", "RDR+07"])
def zone(request, monkeypatch):
    """A POSIX TZ (no tz database needed): RDR-05:30 is UTC+05:30, RDR+07 is UTC-07:00."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield dt.timedelta(hours=5, minutes=30) if request.param == "RDR-05:30" else dt.timedelta(hours=-7)
    monkeypatch.delenv("TZ")
    time.tzset()


def expected_utc(offset: dt.timedelta) -> dt.datetime:
    return dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC) - offset


def test_borg_time_is_local_time_of_this_host(zone):
    parsed = _time.parse_time(BORG_LOCAL)
    assert parsed == expected_utc(zone)
    assert parsed.utcoffset() == zone


def test_every_reader_agrees_on_a_borg_time(zone):
    """The restore's snapshot choice, the audit's RPO age and the timestamp filter read the same instant."""
    from ansible_collections.restoreops.dr.plugins.filter.timestamp import timestamp

    instant = expected_utc(zone).timestamp()
    snapshot = _restore.parse_borg_archives({"archives": [{"id": "a" * 64, "name": "db1", "start": BORG_LOCAL}]})[0]
    assert _time.parse_time(snapshot.time).timestamp() == instant
    assert _audit.epoch_seconds(BORG_LOCAL) == instant
    assert timestamp(BORG_LOCAL) == instant
    assert timestamp(snapshot.time) == instant


def test_borg_times_leave_the_host_with_their_offset(zone):
    snapshot = _restore.parse_borg_archives({"archives": [{"id": "a" * 64, "name": "db1", "start": BORG_LOCAL}]})[0]
    assert dt.datetime.fromisoformat(snapshot.time).utcoffset() == zone
    last = summarize_listing({"archives": [{"name": "db1", "start": BORG_LOCAL, "end": BORG_LOCAL}]})["archives"]
    assert dt.datetime.fromisoformat(last["last"]["end"]).timestamp() == expected_utc(zone).timestamp()
    assert _time.timestamp(snapshot.time) == expected_utc(zone).timestamp()


def test_the_audit_rpo_age_is_right_off_utc(zone):
    now = expected_utc(zone).timestamp() + 3600
    result = {"repo": {"append_only": True}, "key_export": {"exported": False},
              "archives": {"last": {"name": "db1", "start": BORG_LOCAL, "end": BORG_LOCAL}}}
    findings = _audit.borg_rules([{"name": "b", "result": result, "key_export_declared": True}], 2.0, now)
    assert [f["rule"] for f in findings] == []
    findings = _audit.borg_rules([{"name": "b", "result": result, "key_export_declared": True}], 0.5, now)
    assert [f["rule"] for f in findings] == ["backup_rpo"] and "1.0 h old" in findings[0]["message"]


def test_restore_marker_directory_mtimes_follow_the_rule(zone, tmp_path):
    item = _restore.Item(path="srv", type="d", mode="drwxr-x---", mtime=BORG_LOCAL)
    _restore.restore_dir_metadata(str(tmp_path), [item])
    assert int((tmp_path / "srv").stat().st_mtime) == int(expected_utc(zone).timestamp())


@pytest.mark.parametrize("text,utc", [
    ("2026-11-23T11:29:40.058736259Z", dt.datetime(2026, 11, 23, 11, 29, 40, 58736, tzinfo=dt.UTC)),
    ("2026-11-23T12:29:40+01:00", dt.datetime(2026, 11, 23, 11, 29, 40, tzinfo=dt.UTC)),
    ("2026-11-23 11:29:40.5+00", dt.datetime(2026, 11, 23, 11, 29, 40, 500000, tzinfo=dt.UTC)),
    ("2026-11-23T11:29:40-0230", dt.datetime(2026, 11, 23, 13, 59, 40, tzinfo=dt.UTC)),
])
def test_offsets_are_never_reinterpreted(zone, text, utc):
    assert _time.parse_time(text) == utc
    assert _time.with_offset(text) == text


def test_user_times_may_name_another_reading():
    assert _time.parse_time("2026-03-14T09:00:00", naive_tz=_time.UTC).utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("text", ["yesterday", "2026-11-23", "", "2026-11-23T25:00:00Z"])
def test_garbage_is_refused(text):
    with pytest.raises(ValueError):
        _time.parse_time(text)
    assert _time.parse_time_or_none(text) is None
