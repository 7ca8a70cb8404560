# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the borg lock decisions (pure: every fact comes in as an argument)."""

from __future__ import annotations

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils._borg import locks
from ansible_collections.restoreops.dr.plugins.module_utils._borg.locks import (
    annotate_alive,
    decide_lock,
    local_host_id,
)
from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo_files import LockHolder

ME = "backup1.example.org@3281355014145"
LOST = "old-server.example.org@52231123181234"


def test_host_id_stability():
    assert locks.host_id_is_stable("vm@3281355014145", {})  # 0x2fc00000001: a real MAC
    assert not locks.host_id_is_stable("rdr-borg@62779240774033", {})  # 0x3918ee587991: multicast bit, random
    assert locks.host_id_is_stable("rdr-borg@62779240774033", {"BORG_HOST_ID": "x@1"})
    assert not locks.host_id_is_stable("garbage", {})


def test_local_host_id_env():
    assert local_host_id({"BORG_HOST_ID": "x@1"}) == "x@1"


def test_annotate_alive_only_for_own_host():
    hs = annotate_alive([LockHolder(ME, 10), LockHolder(LOST, 11)], ME, lambda pid: pid == 10)
    assert [h.alive for h in hs] == [True, None]


def holder(host=ME, pid=100, alive=None, age=10.0):
    return LockHolder(host=host, pid=pid, alive=alive, age=age)


def test_no_lock():
    assert decide_lock([], my_host=ME).action == "none"


def test_same_host_dead_pid_is_broken():
    d = decide_lock([holder(alive=False)], my_host=ME)
    assert d.action == "break" and "dead PID 100" in d.reason


@pytest.mark.parametrize("mode", ["break", "fail"])
def test_same_host_live_pid_fails_naming_pid(mode):
    d = decide_lock([holder(pid=4321, alive=True)], my_host=ME, mode=mode, dead_hosts=[ME],
                    break_foreign_lock_after=0)
    assert d.action == "fail" and "PID 4321" in d.reason


def test_foreign_host_refused_by_default():
    d = decide_lock([holder(host=LOST, age=10 ** 6)], my_host=ME)
    assert d.action == "fail" and LOST in d.reason and "dead_hosts" in d.reason


def test_foreign_host_in_dead_hosts_broken():
    d = decide_lock([holder(host=LOST)], my_host=ME, dead_hosts=[LOST])
    assert d.action == "break" and d.holder.host == LOST


def test_foreign_host_older_than_limit_broken():
    assert decide_lock([holder(host=LOST, age=3601)], my_host=ME, break_foreign_lock_after=3600).action == "break"


def test_foreign_host_younger_than_limit_refused():
    d = decide_lock([holder(host=LOST, age=60)], my_host=ME, break_foreign_lock_after=3600)
    assert d.action == "fail" and "60 s old" in d.reason


def test_mixed_one_live_blocks_all():
    d = decide_lock([holder(host=LOST), holder(pid=5, alive=True)], my_host=ME, dead_hosts=[LOST])
    assert d.action == "fail" and d.holder.pid == 5


def test_mode_fail_on_stale():
    assert decide_lock([holder(alive=False)], my_host=ME, mode="fail").action == "fail"


def test_mode_ignore():
    assert decide_lock([holder(alive=True)], my_host=ME, mode="ignore").action == "ignore"
