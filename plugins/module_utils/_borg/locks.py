# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whose borg lock it is, and whether it may be broken: pure decisions over the holders the lock files name.

A lock held on this host is judged by its PID (:func:`_runner.pid_alive`); a lock held on another host cannot be
seen from here, so it is broken only when that host is declared dead or the lock is older than a stated age.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo_files import LockHolder


def _borg_getfqdn() -> str:
    """borg 1.2's own getfqdn (platform.base): the canonical name of this host, else its hostname."""
    name = socket.gethostname()
    try:
        addrs = socket.getaddrinfo(name, None, 0, socket.SOCK_DGRAM, 0, socket.AI_CANONNAME)
    except OSError:
        return name
    for addr in addrs:
        if addr[3]:
            return addr[3]
    return name


def local_host_id(environ: dict[str, str] | None = None) -> str:
    """The host id borg 1.2 writes into lock names on this machine: ``BORG_HOST_ID`` or ``<fqdn>@<node>``."""
    environ = os.environ if environ is None else environ
    return environ.get("BORG_HOST_ID") or f"{_borg_getfqdn()}@{uuid.getnode()}"


def host_id_is_stable(host_id: str, environ: dict[str, str] | None = None) -> bool:
    """False when the node part is the random number uuid.getnode() falls back to (no MAC address: for example a
    container with no network); such an id changes with every process, so borg cannot recognise its own locks."""
    environ = os.environ if environ is None else environ
    if environ.get("BORG_HOST_ID"):
        return True
    try:
        node = int(host_id.rsplit("@", 1)[1])
    except (IndexError, ValueError):
        return False
    return not (node >> 40) & 1  # RFC 4122: a random node has the multicast bit set


def annotate_alive(holders: Iterable[LockHolder], my_host: str, alive: Callable[[int], bool]) -> list[LockHolder]:
    """Fill ``alive`` for holders on this host; holders on another host stay unknown (None)."""
    out = []
    for holder in holders:
        out.append(LockHolder(host=holder.host, pid=holder.pid, thread=holder.thread, kind=holder.kind,
                              age=holder.age, alive=alive(holder.pid) if holder.host == my_host else None))
    return out


@dataclass
class LockDecision:
    """What to do about the locks found: ``none``, ``break``, ``fail`` or ``ignore``."""

    action: str
    reason: str = ""
    holder: LockHolder | None = None  # the holder reported (the one that blocks, else the first)
    breakable: list[LockHolder] = field(default_factory=list)


def decide_lock(holders: Sequence[LockHolder], *, my_host: str, mode: str = "break",
                dead_hosts: Iterable[str] = (), break_foreign_lock_after: float | None = None) -> LockDecision:
    """Decide whether the locks found may be broken. Pure: every fact comes in as an argument.

    - no holder → ``none``; ``mode=ignore`` → ``ignore`` (borg waits ``lock_wait`` and fails by itself);
    - a holder on this host whose PID is alive → ``fail``, whatever the mode: a running borg is never interrupted;
    - a holder on another host → breakable only when that host id is in ``dead_hosts`` or the lock is older than
      ``break_foreign_lock_after`` seconds; otherwise ``fail`` (its liveness cannot be seen from here);
    - a holder on this host whose PID is dead → breakable;
    - breakable holders with ``mode=fail`` → ``fail``; with ``mode=break`` → ``break``.
    """
    if not holders:
        return LockDecision("none")
    if mode == "ignore":
        return LockDecision("ignore", "stale_lock=ignore: the lock is reported and left to borg.", holders[0])
    dead = set(dead_hosts)
    breakable: list[LockHolder] = []
    for holder in holders:
        if holder.host == my_host:
            if holder.alive:
                return LockDecision(
                    "fail", f"The repository is locked by a running borg process: PID {holder.pid} on this host "
                    f"({holder.host}); nothing was broken. Wait for it to finish or stop it.", holder)
            breakable.append(holder)
            continue
        if holder.host in dead:
            breakable.append(holder)
            continue
        if break_foreign_lock_after is not None and holder.age > break_foreign_lock_after:
            breakable.append(holder)
            continue
        older = (f" and is only {int(holder.age)} s old (break_foreign_lock_after={int(break_foreign_lock_after)})"
                 if break_foreign_lock_after is not None else "")
        return LockDecision(
            "fail", f"The repository is locked by PID {holder.pid} on another host, {holder.host}{older}; "
            "its liveness cannot be checked from here, so nothing was broken. If that host is gone (for example "
            "the server this one replaces), add its host id to dead_hosts.", holder)
    first = breakable[0]
    if mode == "fail":
        return LockDecision(
            "fail", f"The repository has a stale lock held by PID {first.pid} on {first.host} "
            "(stale_lock=fail); nothing was broken.", first, breakable)
    if first.host == my_host:
        reason = f"stale lock of dead PID {first.pid} on this host"
    elif first.host in dead:
        reason = f"lock of PID {first.pid} held by {first.host}, listed in dead_hosts"
    else:
        reason = f"lock of PID {first.pid} on {first.host}, older than break_foreign_lock_after"
    return LockDecision("break", reason, first, breakable)


def lock_report(holders: Sequence[LockHolder], decision: LockDecision | None, broken: bool) -> dict[str, Any]:
    holder = decision.holder if decision and decision.holder else (holders[0] if holders else None)
    return {
        "present": bool(holders),
        "holder_host": holder.host if holder else None,
        "holder_pid": holder.pid if holder else None,
        "holder_alive": holder.alive if holder else None,
        "broken": broken,
        "holders": [asdict(h) for h in holders],
        "reason": decision.reason if decision else "",
    }
