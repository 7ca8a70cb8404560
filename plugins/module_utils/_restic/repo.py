# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``restoreops.dr.restic_repo`` module: a restic repository created when missing, its stale locks removed,
optionally checked, in small ``ensure_*`` steps that take ``check_mode``.

Whether the repository exists is decided from its ``config``: a local repository's file is looked at, a remote one
is asked with ``restic cat config`` (exit code 10 on restic 0.17+, restic's message before). A repository is created
only when it is missing, never re-initialised; a wrong password is an error, never a reason to create.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, LockedError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._restic import keys as _keys
from ansible_collections.restoreops.dr.plugins.module_utils._restic import locks as _locks
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import (
    Restic,
    explain,
    password_source,
    tool_runner,
)
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import (
    has_config,
    has_lock_files,
    local_repository_path,
)
from ansible_collections.restoreops.dr.plugins.module_utils._runner import pid_alive, version_string
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource
from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time_or_none, utcnow

CHECKS = ("none", "structure", "read_data_subset")
_SUBSET_RE = re.compile(r"^(?:\d+/\d+|\d+(?:\.\d+)?%|\d+[kKmMgGtT]?)$")


def check_args(check: str, subset: str | None) -> list[str] | None:
    """``restic check`` arguments for the ``check`` and ``read_data_subset`` options (None: no check)."""
    if check not in CHECKS:
        raise InputError(f"check must be one of {', '.join(CHECKS)}, got {check!r}.")
    if check != "read_data_subset":
        if subset:
            raise InputError("read_data_subset applies only with check=read_data_subset.")
        return None if check == "none" else ["check"]
    value = (subset or "").strip()
    if not _SUBSET_RE.match(value):
        raise InputError("check=read_data_subset needs read_data_subset, a value such as 5%, 1/10 or 500M; got "
                         f"{subset!r}.")
    return ["check", "--read-data-subset", value]


def validate(params: Mapping[str, Any]) -> None:
    if params.get("state", "present") != "present":
        raise InputError("state must be present: this module creates and guards repositories, it never removes one.")
    if params.get("stale_locks", "remove") not in _locks.STALE_LOCK_MODES:
        raise InputError(f"stale_locks must be one of {', '.join(_locks.STALE_LOCK_MODES)}.")
    check_args(params.get("check") or "none", params.get("read_data_subset"))
    if params.get("cache_dir") and not os.path.isabs(params["cache_dir"]):
        raise InputError(f"cache_dir must be an absolute path, got {params['cache_dir']!r}.")
    new_password_source(params)


def new_password_source(params: Mapping[str, Any]) -> SecretSource | None:
    """The new password of a key rotation (``new_password`` or ``new_password_file``), or None."""
    source = SecretSource(value=params.get("new_password"), file=params.get("new_password_file"),
                          label="new_password").validate()
    if not source.given:
        return None
    if source.value is not None and not source.value:
        raise InputError("new_password is empty.")
    return source


@dataclass
class State:
    """One run: what the steps found and changed."""

    restic: Restic
    params: Mapping[str, Any]
    check_mode: bool
    hostname: str
    now: Callable[[], _dt.datetime]
    alive: Callable[[int], bool]
    local_path: str | None = None
    config: dict[str, Any] | None = None
    created: bool = False
    changed: bool = False
    actions: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    locks: list[dict[str, Any]] = field(default_factory=list)

    def record(self, action: str, key: str, before: Any, after: Any) -> None:
        self.changed = True
        self.actions.append(action)
        self.before[key] = before
        self.after[key] = after


def read_config(state: State) -> dict[str, Any] | None:
    """The repository's config, or None when there is none (a local repository is looked at first)."""
    if state.local_path is not None and not has_config(state.local_path):
        if os.path.isdir(state.local_path) and os.listdir(state.local_path):
            raise InputError(f"{state.local_path} exists and is not empty, but it is not a restic repository (no "
                             "config file); refusing to initialise a repository there.")
        if os.path.exists(state.local_path) and not os.path.isdir(state.local_path):
            raise InputError(f"{state.local_path} exists and is not a directory; refusing to touch it.")
        return None
    return state.restic.cat_config()


def ensure_exists(state: State) -> None:
    """``restic init`` when the repository is missing; an existing one is only read."""
    state.config = read_config(state)
    if state.config is not None:
        return
    state.created = True
    state.record("restic init", "exists", False, True)
    if not state.check_mode:
        state.restic.init()
        state.config = state.restic.cat_config()
        if state.config is None:
            raise ToolError("restic init reported success but the repository cannot be opened.")


def current_locks(state: State) -> list[_locks.Lock]:
    if state.local_path is not None and has_lock_files(state.local_path) is False:
        return []
    return [_locks.Lock.from_json(i, d) for i, d in state.restic.lock_documents()]


def ensure_locks(state: State) -> None:
    """Stale locks removed (``restic unlock`` removes only those), a live one refused, per ``stale_locks``."""
    if state.created:  # a repository created by this run (or to be, in check mode) holds no one else's lock
        return
    mode = state.params.get("stale_locks") or "remove"
    stale, live = _locks.classify(current_locks(state), state.now(), state.hostname, state.alive,
                                  state.params.get("dead_hosts") or [])
    state.locks = [_locks.lock_view(lk, True) for lk in stale] + [_locks.lock_view(lk, False) for lk in live]
    if not _locks.decide(stale, live, mode, state.locks):
        return
    state.record(f"remove {len(stale)} stale lock(s) with restic unlock", "stale_locks",
                 [lk.id for lk in stale], [])
    if state.check_mode:
        return
    state.restic.unlock()
    remaining = set(state.restic.lock_ids())
    for view in state.locks:
        view["removed"] = view["id"] not in remaining
    left = [view["id"][:8] for view in state.locks if view["stale"] and view["id"] in remaining]
    if left:
        raise LockedError(f"restic unlock left the stale lock(s) {', '.join(left)} in place.", locks=state.locks)


def newest_snapshot(snapshots: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest of ``restic snapshots --json`` by time (on a tie, the later one in restic's list); None if none."""
    timed = [(parse_time_or_none(snap.get("time")), index, snap) for index, snap in enumerate(snapshots)]
    timed = [entry for entry in timed if entry[0] is not None]
    if not timed:
        return None
    return max(timed, key=lambda entry: (entry[0], entry[1]))[2]


def snapshot_summary(state: State) -> dict[str, Any] | None:
    """With ``snapshot_stats``: the snapshot count and the newest snapshot with its ``restic stats`` (restore-size),
    read without a lock; None when not asked."""
    if not state.params.get("snapshot_stats"):
        return None
    if state.config is None:  # check mode, repository still to be created
        return {"count": 0, "last": None}
    snapshots = state.restic.snapshots()
    if not isinstance(snapshots, list):
        raise ToolError("restic snapshots --json printed no list; the repository looks damaged.")
    newest = newest_snapshot(snapshots)
    last = None
    if newest is not None:
        stats = state.restic.snapshot_stats(str(newest.get("id")))
        last = {"id": newest.get("id"), "short_id": newest.get("short_id") or str(newest.get("id", ""))[:8],
                "time": newest.get("time"), "hostname": newest.get("hostname"), "paths": newest.get("paths") or [],
                "tags": newest.get("tags") or [],
                "stats": {"total_size": stats.get("total_size"), "total_file_count": stats.get("total_file_count")}}
    return {"count": len(snapshots), "last": last}


def run_check(state: State) -> dict[str, Any]:
    """``restic check`` (read-only; in check mode with ``--no-lock`` so that not even a lock file is written)."""
    mode = state.params.get("check") or "none"
    args = check_args(mode, state.params.get("read_data_subset"))
    report: dict[str, Any] = {"mode": mode, "ok": None}
    if args is None or state.config is None:
        return report
    if state.check_mode:
        args = [*args, "--no-lock"]
    result = state.restic.check(args)
    report["ok"] = result.rc == 0
    if result.rc != 0:
        error = explain(state.restic.runner.failure(result, f"restic {' '.join(args)} reported errors"))
        error.details.update(check=report, locks=state.locks, created=state.created)
        raise error
    return report


def main(module: Any, hostname: str | None = None, now: Callable[[], _dt.datetime] | None = None,
         alive: Callable[[int], bool] | None = None) -> dict[str, Any]:
    """Body of restoreops.dr.restic_repo (called through run_module)."""
    params = module.params
    validate(params)
    password = password_source(params)
    runner = tool_runner(module, params["repository"], password, params.get("env"), params.get("cache_dir"),
                         params.get("restic_binary"))
    state = State(restic=Restic(runner), params=params, check_mode=bool(module.check_mode),
                  hostname=hostname or socket.gethostname(), now=now or utcnow, alive=alive or pid_alive,
                  local_path=local_repository_path(params["repository"]))
    version = state.restic.version()
    rotation: dict[str, Any] | None = None
    new_source = new_password_source(params)
    if new_source is not None:
        new_runner = tool_runner(module, params["repository"], new_source, params.get("env"), params.get("cache_dir"),
                                 params.get("restic_binary"))
        rotation = _keys.rotate(state.restic, Restic(new_runner), new_source, check_mode=state.check_mode,
                                remove_old=params.get("remove_old_key", True), tmpdir=getattr(module, "tmpdir", None))
        for action in rotation.pop("actions"):
            state.record(action, "key", "the current password", "the new password")
        if rotation["new_opens"]:
            # From here on the repository is opened with the new password (the old one may no longer open it).
            state.restic = Restic(new_runner)
    ensure_exists(state)
    ensure_locks(state)
    snapshots = snapshot_summary(state)
    try:
        check = run_check(state)
    except ToolError as error:
        if snapshots is not None:  # a failed check still reports what was found
            error.details.setdefault("snapshots", snapshots)
        raise
    config = state.config or {}
    result: dict[str, Any] = {
        "changed": state.changed,
        "created": state.created,
        "repo_id": config.get("id"),
        "repository_version": config.get("version"),
        "locks": state.locks,
        "actions": state.actions,
        "check": check,
        "restic_version": version_string(version),
        "key_rotation": rotation,
    }
    if snapshots is not None:
        result["snapshots"] = snapshots
    if module._diff and state.changed:
        result["diff"] = {"before": json.dumps(state.before, indent=2, sort_keys=True) + "\n",
                          "after": json.dumps(state.after, indent=2, sort_keys=True) + "\n",
                          "before_header": params["repository"], "after_header": params["repository"]}
    return result
