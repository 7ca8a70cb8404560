# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention: the ``restoreops.dr.restic_forget_prune`` module (policy, forget/prune plan, locks, sizes).

Every decision (which snapshots go, which lock is stale, what a failure means) is a pure function over restic's
JSON output so that it can be unit-tested without restic.

Cost model: every restic command that opens the repository derives the master key with scrypt, so the apply path
opens the repository once in the common case: ``forget --json --prune``. Locks are only inspected when that call
fails (or, in check mode, before the dry run), and for a local repository both its size and whether it holds any
lock at all are read from the file system instead of another restic call.
"""

from __future__ import annotations

import datetime as _dt
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._errors import (
    InputError,
    LockedError,
    RestoreOpsError,
    ToolError,
)
from ansible_collections.restoreops.dr.plugins.module_utils._restic import locks as _locks
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import (
    Restic,
    classify_failure,
    explain,
    password_source,
    tool_runner,
)
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import (
    directory_size,
    has_lock_files,
    local_repository_path,
)
from ansible_collections.restoreops.dr.plugins.module_utils._runner import parse_json, pid_alive, version_string
from ansible_collections.restoreops.dr.plugins.module_utils._time import utcnow

KEEP_COUNTS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
GROUP_FIELDS = frozenset(("host", "paths", "tags"))
APPEND_ONLY_MSG = ("this repository is append-only; run retention from the maintenance host with full "
                   "credentials")

_DURATION_RE = re.compile(r"^(?:\d+[ymdh])+$")
_SUBSET_RE = re.compile(r"^(?:\d+/\d+|\d+(?:\.\d+)?%|\d+[kKmMgGtT]?)$")


def retention_argument_spec() -> dict[str, Any]:
    """The ``keep_*`` counts and ``keep_within`` (restic_forget_prune's options, backup_policy_facts' retention)."""
    return {**{key: dict(type="int") for key in KEEP_COUNTS}, "keep_within": dict(type="str")}


class AppendOnlyError(RestoreOpsError):
    """The backend refused to delete: it is append-only (or the credentials only allow appending)."""


class CheckFailedError(RestoreOpsError):
    """Retention ran but the ``restic check`` that followed it failed."""


# --- policy ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """What to keep and which snapshots to consider."""

    keep_last: int | None = None
    keep_hourly: int | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    keep_monthly: int | None = None
    keep_yearly: int | None = None
    keep_within: str | None = None
    keep_tags: tuple[str, ...] = ()
    group_by: str = "host,paths"
    host: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Policy:
        group_by = params.get("group_by")
        return cls(
            **{key: params.get(key) for key in KEEP_COUNTS},
            keep_within=params.get("keep_within") or None,
            keep_tags=tuple(params.get("keep_tags") or ()),
            group_by="host,paths" if group_by is None else group_by,
            host=tuple(params.get("host") or ()),
            tags=tuple(params.get("tags") or ()),
            paths=tuple(params.get("paths") or ()),
        )

    def validate(self) -> Policy:
        """Raise InputError for a policy restic would reject or one that keeps nothing."""
        for key in KEEP_COUNTS:
            value = getattr(self, key)
            if value is not None and value < 0:
                raise InputError(f"{key} must be 0 or more, got {value}.")
        if self.keep_within is not None and not _DURATION_RE.match(self.keep_within):
            raise InputError(f"keep_within must be a restic duration such as 7d or 1y5m7d2h, got {self.keep_within!r}.")
        fields = [part.strip() for part in self.group_by.split(",") if part.strip()]
        unknown = sorted(set(fields) - GROUP_FIELDS)
        if unknown:
            raise InputError(f"group_by may only combine host, paths and tags; got {', '.join(unknown)}.")
        for path in self.paths:
            if not path.startswith("/"):
                raise InputError(f"paths must be absolute (restic matches snapshot paths exactly), got {path!r}.")
        if self.keeps_nothing:
            raise InputError(
                "The retention policy keeps nothing: set at least one of keep_last, keep_hourly, keep_daily, "
                "keep_weekly, keep_monthly, keep_yearly (above 0), keep_within or keep_tags. Nothing was run.")
        return self

    @property
    def keeps_nothing(self) -> bool:
        counts = any((getattr(self, key) or 0) > 0 for key in KEEP_COUNTS)
        return not (counts or self.keep_within or self.keep_tags)

    def args(self) -> list[str]:
        """``restic forget`` arguments for this policy (filters included)."""
        args: list[str] = []
        for key in KEEP_COUNTS:
            value = getattr(self, key)
            if value:
                args += ["--" + key.replace("_", "-"), str(value)]
        if self.keep_within:
            args += ["--keep-within", self.keep_within]
        for tag in self.keep_tags:
            args += ["--keep-tag", tag]
        args += ["--group-by", ",".join(p.strip() for p in self.group_by.split(",") if p.strip())]
        return args + policy_filters(self)


def check_args(check_after: str | None) -> list[str] | None:
    """``restic check`` arguments for ``check_after``, or None when no check is wanted."""
    value = (check_after or "none").strip()
    if value == "none":
        return None
    if value == "structure":
        return ["check"]
    if _SUBSET_RE.match(value):
        return ["check", "--read-data-subset", value]
    raise InputError(
        f"check_after must be none, structure or a read_data_subset value such as 5%, 1/10 or 500M; got {value!r}.")


# --- restic issue 4568 -------------------------------------------------------------------------------------------

# restic before 0.17.0 forgets every snapshot of a group in which no snapshot is kept: with keep_tags naming a tag
# that no snapshot carries (a typo) and no other keep rule, that is every snapshot. restic 0.17.0 refuses such a
# policy itself, so the guard applies to older versions only.
KEEP_TAG_SAFE_VERSION = (0, 17, 0)


def keep_tag_hazard(version: Sequence[int], policy: Policy, snapshots: Sequence[Mapping[str, Any]]) -> str | None:
    """Why this policy must not run on this restic (restic issue 4568), or None (pure).

    ``snapshots`` are the ones the policy's filters select (``restic snapshots --json`` with the same ``--host``,
    ``--tag`` and ``--path``). A keep tag that no snapshot carries is refused; so is a policy whose only rule is
    keep_tags when a group (by ``group_by``) has no snapshot with one of the tags, as restic would empty that group.
    """
    if tuple(version) >= KEEP_TAG_SAFE_VERSION or not policy.keep_tags:
        return None
    tag_sets = [set(snap.get("tags") or ()) for snap in snapshots]

    def carries(tags: set[str], keep_tag: str) -> bool:
        return set(part for part in keep_tag.split(",") if part) <= tags

    absent = [tag for tag in policy.keep_tags if not any(carries(tags, tag) for tags in tag_sets)]
    release = ".".join(str(part) for part in version)
    remedy = ("Nothing was run. Correct the tag, add a keep_* count or keep_within, or upgrade restic to 0.17.0 or "
              "newer, which refuses such a policy itself.")
    if absent:
        return (f"keep_tags names {', '.join(absent)}, which no snapshot has; restic {release} (before 0.17.0) "
                f"would then forget every snapshot of a group that keeps nothing else (restic issue 4568). {remedy}")
    counts = any((getattr(policy, key) or 0) > 0 for key in KEEP_COUNTS)
    if counts or policy.keep_within:
        return None
    fields = [part.strip() for part in policy.group_by.split(",") if part.strip()]
    groups: dict[tuple, bool] = {}
    for snap, tags in zip(snapshots, tag_sets):
        key = tuple((name, snap.get("hostname", "") if name == "host" else
                     ",".join(sorted(snap.get(name) or ()))) for name in fields)
        groups[key] = groups.get(key, False) or any(carries(tags, tag) for tag in policy.keep_tags)
    emptied = [", ".join(f"{name} {value}" for name, value in key) or "all snapshots"
               for key, kept in groups.items() if not kept]
    if emptied:
        return (f"keep_tags is the only rule and no snapshot of the group {emptied[0]} carries one of its tags; "
                f"restic {release} (before 0.17.0) would forget every snapshot of that group (restic issue 4568). "
                f"{remedy}")
    return None


def policy_filters(policy: Policy) -> list[str]:
    """The snapshot filters of a policy, as ``restic snapshots`` takes them."""
    args: list[str] = []
    for host in policy.host:
        args += ["--host", host]
    for tag in policy.tags:
        args += ["--tag", tag]
    for path in policy.paths:
        args += ["--path", path]
    return args


# --- parsing ---------------------------------------------------------------------------------------------------


def snapshot_view(snap: Mapping[str, Any]) -> dict[str, Any]:
    """The fields the module returns for a snapshot."""
    return {
        "id": snap.get("id", ""),
        "short_id": snap.get("short_id") or str(snap.get("id", ""))[:8],
        "time": snap.get("time", ""),
        "host": snap.get("hostname", ""),
        "paths": list(snap.get("paths") or []),
        "tags": list(snap.get("tags") or []),
    }


def _snapshot_key(snap: Mapping[str, Any]) -> tuple:
    return (snap.get("time"), snap.get("tree"), snap.get("hostname"), tuple(snap.get("paths") or ()))


@dataclass
class ForgetPlan:
    """What ``restic forget --json`` decided, flattened over its groups."""

    kept: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)


def parse_forget(data: Any) -> ForgetPlan:
    """Flatten restic's forget JSON (a list of groups with ``keep``, ``remove`` and ``reasons``).

    restic 0.14 omits the snapshot ID inside ``reasons``; the reason is matched to its kept snapshot by ID when
    present, else by (time, tree, host, paths), which identifies a snapshot within a group.
    """
    if data is None:
        return ForgetPlan()
    if not isinstance(data, list):
        raise ToolError("restic forget --json did not return a list of groups.", stdout=str(data)[:2000])
    plan = ForgetPlan()
    for group in data:
        keep = group.get("keep") or []
        by_key = {_snapshot_key(s): s for s in keep}
        plan.kept += [snapshot_view(s) for s in keep]
        plan.removed += [snapshot_view(s) for s in group.get("remove") or []]
        for reason in group.get("reasons") or []:
            snap = reason.get("snapshot") or {}
            match = snap if snap.get("id") else by_key.get(_snapshot_key(snap), snap)
            plan.reasons.append({
                "id": match.get("id", ""),
                "time": snap.get("time", ""),
                "matches": list(reason.get("matches") or []),
                "counters": dict(reason.get("counters") or {}),
            })
    plan.kept.sort(key=lambda s: s["time"])
    plan.removed.sort(key=lambda s: s["time"])
    return plan


# --- the module ------------------------------------------------------------------------------------------------


def _diff(before: Sequence[dict], after: Sequence[dict]) -> dict[str, str]:
    def lines(snaps: Sequence[dict]) -> str:
        return "".join(f"{s['short_id']} {s['time']} {s['host']} {','.join(s['paths'])}\n" for s in snaps)
    return {"before_header": "snapshots", "after_header": "snapshots", "before": lines(before),
            "after": lines(after)}


def forget_args(policy: Policy, *, prune: bool, dry_run: bool) -> list[str]:
    args = ["forget", "--json", "--quiet"]
    if dry_run:
        args += ["--dry-run", "--no-lock"]
    if prune:
        args.append("--prune")
    return args + policy.args()


def forget(restic: Restic, policy: Policy, *, prune: bool, dry_run: bool) -> ForgetPlan:
    result = restic.run(forget_args(policy, prune=prune, dry_run=dry_run), check=False)
    if result.rc != 0:
        raise restic.runner.failure(result, "restic forget failed")
    text = result.stdout.strip()
    # With --prune, restic prints the forget JSON first; anything after it is prune's (quiet) text.
    first = text.splitlines()[0] if text else "null"
    return parse_forget(parse_json(first, what="output of restic forget"))


class Retention:
    """One run of the module: state kept here so that each step stays a small function."""

    def __init__(self, restic: Restic, params: Mapping[str, Any], check_mode: bool,
                 warn: Callable[[str], None], hostname: str | None = None,
                 now: Callable[[], _dt.datetime] | None = None, alive: Callable[[int], bool] | None = None) -> None:
        self.restic = restic
        self.params = params
        self.check_mode = check_mode
        self.warn = warn
        self.hostname = hostname or socket.gethostname()
        self.now = now or utcnow
        self.alive = alive or pid_alive
        self.local_path = local_repository_path(params["repository"])
        self.locks: list[dict[str, Any]] = []

    # each step -----------------------------------------------------------------------------------------------

    def size(self) -> int | None:
        if self.local_path is not None:
            return directory_size(self.local_path)
        return self.restic.stats_raw_data()

    def current_locks(self) -> list[_locks.Lock]:
        """The repository's locks; a local repository with an empty ``locks/`` directory is read without restic."""
        if self.local_path is not None and has_lock_files(self.local_path) is False:
            return []
        return [_locks.Lock.from_json(i, d) for i, d in self.restic.lock_documents()]

    def handle_locks(self, locks: Sequence[_locks.Lock]) -> bool:
        """Remove stale locks (unless told not to); raise LockedError for a live one. True if any were removed."""
        stale, live = _locks.classify(locks, self.now(), self.hostname, self.alive)
        self.locks = [_locks.lock_view(lk, True) for lk in stale] + [_locks.lock_view(lk, False) for lk in live]
        mode = "remove" if self.params.get("unlock_stale", True) else "fail"
        if not _locks.decide(stale, live, mode, self.locks, refusal="unlock_stale is false"):
            return False
        if not self.check_mode:
            self.restic.unlock()
            remaining = set(self.restic.lock_ids())
            for view in self.locks:
                view["removed"] = view["id"] not in remaining
            if any(view["id"] in remaining for view in self.locks):
                raise LockedError("restic unlock left a lock in place; nothing was removed.", locks=self.locks)
        return True

    def forget(self, policy: Policy, prune: bool) -> tuple[ForgetPlan, bool]:
        """Run forget (dry in check mode); on failure, find out why. Returns the plan and whether locks went."""
        unlocked = False
        if self.check_mode:
            unlocked = self.handle_locks(self.current_locks())
            return forget(self.restic, policy, prune=prune, dry_run=True), unlocked
        for attempt in (1, 2):
            try:
                return forget(self.restic, policy, prune=prune, dry_run=False), unlocked
            except ToolError as exc:
                kind = classify_failure(exc.rc or 0, exc.stderr)
                if kind == "forbidden":
                    raise AppendOnlyError(
                        f"{APPEND_ONLY_MSG} (the backend refused to delete: HTTP 403).",
                        repository_append_only=True, stderr=exc.stderr[-2000:]) from exc
                if kind in ("wrong_password", "no_repository", "unreachable") or attempt == 2:
                    raise
                locks = self.current_locks()
                if not locks:
                    raise
                unlocked = self.handle_locks(locks) or unlocked
        raise AssertionError("unreachable")  # pragma: no cover

    def run(self) -> dict[str, Any]:
        params = self.params
        policy = Policy.from_params(params).validate()
        check = check_args(params.get("check_after"))
        prune = bool(params.get("prune", True))
        version = self.restic.version()
        result: dict[str, Any] = {"restic_version": version_string(version)}
        if policy.keep_tags and tuple(version) < KEEP_TAG_SAFE_VERSION:
            hazard = keep_tag_hazard(version, policy, self.restic.snapshots(extra=policy_filters(policy)))
            if hazard:
                raise InputError(hazard, restic_version=version_string(version), restic_issue=4568)

        bytes_before = self.size() if prune else None
        plan, unlocked = self.forget(policy, prune)
        pruned = prune and bool(plan.removed) and not self.check_mode
        if pruned or (self.local_path is not None and not self.check_mode and prune):
            bytes_after = self.size()
        elif prune and not plan.removed:
            bytes_after = bytes_before
        else:
            bytes_after = None

        if plan.removed and not prune:
            self.warn(f"{len(plan.removed)} snapshot(s) {'would be' if self.check_mode else 'were'} forgotten "
                      "without prune: their data stays in the repository and no space is reclaimed until "
                      "restic prune runs.")
        check_result = {"ran": False, "ok": None}
        if check is not None and not self.check_mode:
            check_result = {"ran": True, "ok": self.restic.check(check).rc == 0}

        result.update(
            changed=bool(plan.removed) or unlocked,
            removed=plan.removed,
            kept=plan.kept,
            reasons=plan.reasons,
            prune={"ran": pruned, "bytes_before": bytes_before, "bytes_after": bytes_after},
            space_reclaimed=pruned,
            check=check_result,
            locks=self.locks,
        )
        if check_result["ran"] and not check_result["ok"]:
            raise CheckFailedError(
                f"Retention ran ({len(plan.removed)} snapshot(s) removed) but restic {' '.join(check)} reported "
                "errors afterwards; inspect the repository with restic check.", **result)
        return result


def main(module: Any) -> dict[str, Any]:
    """Body of restoreops.dr.restic_forget_prune (called through run_module)."""
    params = module.params
    # Refuse a bad policy before anything runs, restic included.
    Policy.from_params(params).validate()
    check_args(params.get("check_after"))
    password = password_source(params)
    runner = tool_runner(module, params["repository"], password, params.get("env"), params.get("cache_dir"),
                         params.get("restic_binary"))
    retention = Retention(Restic(runner), params, module.check_mode, module.warn)
    try:
        before_after: dict[str, Any] = retention.run()
    except ToolError as exc:
        raise explain(exc) from exc
    if module._diff and before_after["changed"]:
        everything = sorted(before_after["kept"] + before_after["removed"], key=lambda s: s["time"])
        before_after["diff"] = _diff(everything, before_after["kept"])
    return before_after
