# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which restic lock is stale, and what to do about the locks found: pure decisions over ``restic cat lock``.

restic's own rule (internal/restic/lock.go), which ``restic unlock`` (without ``--remove-all``) applies: a lock older
than 30 minutes is stale whoever holds it (live holders refresh theirs every 5 minutes); a recent lock held on this
host is stale when its process is gone; a recent lock from another host cannot be proven stale from here, unless
that host is declared dead (``dead_hosts``: the server a restore replaces).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._errors import LockedError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time

STALE_AFTER = _dt.timedelta(minutes=30)
STALE_LOCK_MODES = ("remove", "fail", "ignore")


@dataclass(frozen=True)
class Lock:
    id: str
    time: str
    hostname: str
    pid: int
    exclusive: bool
    username: str = ""

    @classmethod
    def from_json(cls, lock_id: str, data: Mapping[str, Any]) -> Lock:
        return cls(id=lock_id, time=str(data.get("time", "")), hostname=str(data.get("hostname", "")),
                   pid=int(data.get("pid") or 0), exclusive=bool(data.get("exclusive")),
                   username=str(data.get("username", "")))


def lock_time(lock: Lock) -> _dt.datetime:
    try:
        return parse_time(lock.time)
    except ValueError as exc:
        raise ToolError(f"Could not read the time {lock.time!r} in restic's output.") from exc


def lock_is_stale(lock: Lock, now: _dt.datetime, hostname: str, alive: Callable[[int], bool],
                  dead_hosts: Iterable[str] = ()) -> bool:
    """restic's definition (see the module documentation), plus hosts declared dead."""
    if now - lock_time(lock) > STALE_AFTER:
        return True
    if lock.hostname != hostname:
        return lock.hostname in set(dead_hosts)
    return not alive(lock.pid)


def lock_view(lock: Lock, stale: bool, removed: bool = False) -> dict[str, Any]:
    return {"id": lock.id, "time": lock.time, "hostname": lock.hostname, "pid": lock.pid,
            "exclusive": lock.exclusive, "stale": stale, "removed": removed}


def classify(locks: Sequence[Lock], now: _dt.datetime, hostname: str, alive: Callable[[int], bool],
             dead_hosts: Iterable[str] = ()) -> tuple[list[Lock], list[Lock]]:
    """(stale, live) locks."""
    dead = list(dead_hosts)
    stale = [lk for lk in locks if lock_is_stale(lk, now, hostname, alive, dead)]
    return stale, [lk for lk in locks if lk not in stale]


def describe(live: Sequence[Lock]) -> str:
    return "; ".join(f"{lk.id[:8]} held by PID {lk.pid} on {lk.hostname} since {lk.time}"
                     f"{' (exclusive)' if lk.exclusive else ''}" for lk in live)


def decide(stale: Sequence[Lock], live: Sequence[Lock], mode: str, views: list[dict[str, Any]],
           refusal: str = "stale_locks=fail") -> bool:
    """Whether the stale locks are to be removed; raise LockedError when the run must stop.

    A live lock stops every mode but ``ignore`` (it is never removed); stale locks stop ``fail``; ``ignore`` reports
    and removes nothing.
    """
    if mode == "ignore":
        return False
    if live:
        raise LockedError(f"The repository is locked by a running restic process ({describe(live)}); the live lock "
                          "was left in place and nothing was removed.", locks=views)
    if stale and mode == "fail":
        raise LockedError(f"The repository has {len(stale)} stale lock(s) and {refusal}; nothing was removed.",
                          locks=views)
    return bool(stale)
