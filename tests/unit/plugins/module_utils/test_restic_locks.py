# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the restic lock decisions (restic's own staleness rule, dead hosts, the stale_locks modes)."""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils._errors import LockedError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._restic import locks
from ansible_collections.restoreops.dr.plugins.module_utils._restic.locks import Lock, lock_is_stale

LOCK_STALE = {"time": "2026-11-23T11:29:40.058736259Z", "exclusive": False, "hostname": "h1", "username": "root",
              "pid": 111}
LOCK_LIVE = {"time": "2026-11-23T11:30:06.1Z", "exclusive": False, "hostname": "h1", "username": "root",
             "pid": 222}
NOW = dt.datetime(2026, 11, 23, 11, 31, tzinfo=dt.UTC)


@pytest.mark.parametrize("data,hostname,alive,stale", [
    (LOCK_STALE, "h1", False, True),  # our host, holder gone
    (LOCK_LIVE, "h1", True, False),  # our host, holder running
    (dict(LOCK_LIVE, hostname="other"), "h1", False, False),  # another host: cannot tell, so live
    (dict(LOCK_LIVE, hostname="other", time="2026-11-23T10:00:00Z"), "h1", True, True),  # older than 30 min
])
def test_lock_is_stale(data, hostname, alive, stale):
    lock = Lock.from_json("x", data)
    assert lock_is_stale(lock, NOW, hostname, lambda pid: alive) is stale


def test_dead_hosts_make_a_recent_foreign_lock_stale_but_never_our_own_live_one():
    foreign = Lock.from_json("f", dict(LOCK_LIVE, hostname="lost-server"))
    assert lock_is_stale(foreign, NOW, "h1", lambda pid: True, ["lost-server"])
    assert not lock_is_stale(foreign, NOW, "h1", lambda pid: True, ["someone-else"])
    own = Lock.from_json("o", LOCK_LIVE)
    assert not lock_is_stale(own, NOW, "h1", lambda pid: True, ["h1"])


def test_unreadable_lock_time_is_a_tool_error():
    with pytest.raises(ToolError, match="Could not read the time"):
        lock_is_stale(Lock.from_json("x", dict(LOCK_LIVE, time="yesterday")), NOW, "h1", lambda pid: True)


def classified():
    stale, live = locks.classify([Lock.from_json("aaaa", LOCK_STALE), Lock.from_json("bbbb", LOCK_LIVE)], NOW, "h1",
                                 lambda pid: pid == 222)
    return stale, live


def test_classify():
    stale, live = classified()
    assert [lk.id for lk in stale] == ["aaaa"] and [lk.id for lk in live] == ["bbbb"]


@pytest.mark.parametrize("mode", ["remove", "fail"])
def test_a_live_lock_stops_remove_and_fail(mode):
    stale, live = classified()
    with pytest.raises(LockedError, match=r"locked by a running restic process.*left in place") as info:
        locks.decide(stale, live, mode, [{"id": "bbbb"}])
    assert info.value.details["locks"] == [{"id": "bbbb"}]


def test_modes_on_stale_locks_only():
    stale, _live = classified()
    assert locks.decide(stale, [], "remove", []) is True
    assert locks.decide([], [], "remove", []) is False
    assert locks.decide(stale, [Lock.from_json("b", LOCK_LIVE)], "ignore", []) is False
    with pytest.raises(LockedError, match="1 stale lock\\(s\\) and unlock_stale is false"):
        locks.decide(stale, [], "fail", [], refusal="unlock_stale is false")
