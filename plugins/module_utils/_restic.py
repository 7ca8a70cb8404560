# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A typed view of the restic CLI for retention: policy, forget/prune plans, locks, repository size.

Every decision (which snapshots go, which lock is stale, what a failure means) is a pure function over restic's
JSON output so that it can be unit-tested without restic. :func:`main` is the body of the
``restoreops.dr.restic_forget_prune`` module.

Cost model: every restic command that opens the repository derives the master key with scrypt (about 0.5 s of CPU
on a small machine, whatever the repository's size), so the apply path opens the repository once in the common
case: ``forget --json --prune``. Locks are only inspected when that call fails (or, in check mode, before the dry
run), and for a local repository both its size and whether it holds any lock at all are read from the file system
instead of another restic call.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit

from ansible_collections.restoreops.dr.plugins.module_utils._errors import (
    InputError,
    LockedError,
    RestoreOpsError,
    ToolError,
)
from ansible_collections.restoreops.dr.plugins.module_utils._runner import (
    ToolRunner,
    parse_json,
    parse_version,
    version_string,
)
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource

UTC = _dt.timezone.utc  # datetime.UTC needs Python 3.11; targets may run 3.9
MIN_VERSION = (0, 14, 0)
KEEP_COUNTS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")
GROUP_FIELDS = frozenset(("host", "paths", "tags"))
# restic's own rule (internal/restic/lock.go): a lock older than this is stale whoever holds it.
STALE_AFTER = _dt.timedelta(minutes=30)
APPEND_ONLY_MSG = ("this repository is append-only; run retention from the maintenance host with full "
                   "credentials")

_DURATION_RE = re.compile(r"^(?:\d+[ymdh])+$")
_SUBSET_RE = re.compile(r"^(?:\d+/\d+|\d+(?:\.\d+)?%|\d+[kKmMgGtT]?)$")
_SCHEME_RE = re.compile(r"^([a-z][a-z0-9]*):")
_REMOTE_SCHEMES = frozenset(("rest", "s3", "sftp", "b2", "azure", "gs", "swift", "rclone"))


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
        for host in self.host:
            args += ["--host", host]
        for tag in self.tags:
            args += ["--tag", tag]
        for path in self.paths:
            args += ["--path", path]
        return args


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


# --- environment and secrets -----------------------------------------------------------------------------------


def restic_env(repository: str, password: SecretSource, env: Mapping[str, Any] | None,
               cache_dir: str | None) -> dict[str, str]:
    """The environment restic runs with: backend credentials, repository, password source, cache.

    The repository goes through ``RESTIC_REPOSITORY`` because REST URLs may carry ``user:password@``; the unused
    password variables are set empty so a value inherited from the caller's environment cannot win.
    """
    environ = {str(k): str(v) for k, v in (env or {}).items()}
    environ["RESTIC_REPOSITORY"] = repository
    environ["RESTIC_PASSWORD"] = password.value if password.value is not None else ""
    environ["RESTIC_PASSWORD_FILE"] = password.file if password.file is not None else ""
    environ["RESTIC_PASSWORD_COMMAND"] = password.command if password.command is not None else ""
    if cache_dir:
        environ["RESTIC_CACHE_DIR"] = cache_dir
    return environ


def secrets_of(repository: str, password: SecretSource, env: Mapping[str, Any] | None) -> list[str]:
    """Values to scrub from anything we return: the password, every ``env`` value, a URL's password."""
    values = list(password.known_values())
    values += [str(v) for v in (env or {}).values() if v is not None and len(str(v)) >= 4]
    url = repository.split(":", 1)[1] if repository.startswith("rest:") else repository
    try:
        userinfo_password = urlsplit(url).password
    except ValueError:
        userinfo_password = None
    if userinfo_password:
        values.append(userinfo_password)
    return values


def local_repository_path(repository: str) -> str | None:
    """The directory of a local repository (``/path`` or ``local:/path``), None for a remote backend."""
    if repository.startswith("local:"):
        return repository[len("local:"):]
    match = _SCHEME_RE.match(repository)
    if match and match.group(1) in _REMOTE_SCHEMES:
        return None
    if match and not repository.startswith("/"):
        return None  # an unknown scheme: do not guess
    return repository


def has_lock_files(path: str) -> bool | None:
    """Whether a local repository's ``locks/`` directory holds anything; None when it cannot be read.

    restic keeps one file per lock there, so an empty directory means no lock without asking restic (which would
    derive the key, about 0.5 s of CPU, just to list nothing).
    """
    try:
        with os.scandir(os.path.join(path, "locks")) as entries:
            return next(iter(entries), None) is not None
    except OSError:
        return None


def directory_size(path: str) -> int:
    """Bytes held by the regular files under ``path`` (what a local repository occupies)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


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


def parse_time(text: str) -> _dt.datetime:
    """restic's RFC 3339 time with nanoseconds (``2026-01-01T10:00:00.123456789Z``), timezone-aware."""
    match = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text.strip())
    if not match:
        raise ToolError(f"Could not read the time {text!r} in restic's output.")
    base, frac, zone = match.groups()
    micro = (frac or "0")[:6].ljust(6, "0")
    zone = "+00:00" if zone == "Z" else zone
    return _dt.datetime.fromisoformat(f"{base}.{micro}{zone}")


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


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(UTC)


def pid_alive(pid: int) -> bool:
    """restic's test: signal 0 succeeds (any error, EPERM included, counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def lock_is_stale(lock: Lock, now: _dt.datetime, hostname: str, alive: Callable[[int], bool]) -> bool:
    """restic's definition, which ``restic unlock`` (without ``--remove-all``) applies.

    Older than 30 minutes (live holders refresh their locks every 5 minutes), or held on this host by a process
    that no longer exists. A recent lock from another host can never be proven stale from here.
    """
    if now - parse_time(lock.time) > STALE_AFTER:
        return True
    if lock.hostname != hostname:
        return False
    return not alive(lock.pid)


def lock_view(lock: Lock, stale: bool, removed: bool = False) -> dict[str, Any]:
    return {"id": lock.id, "time": lock.time, "hostname": lock.hostname, "pid": lock.pid,
            "exclusive": lock.exclusive, "stale": stale, "removed": removed}


# The one place that reads restic's stderr. restic 0.14 exits with 1 for every fatal error and prints no JSON
# error object, so a wrong password, a missing repository and a backend's refusal to delete cannot be told apart
# by return code; restic 0.17 and later give 10 (no repository), 11 (lock failed) and 12 (wrong password), which
# are preferred when present. Locks are never decided here: they are read back as JSON (restic cat lock).
FAILURE_CODES = {10: "no_repository", 11: "locked", 12: "wrong_password"}
_FAILURE_MARKERS = (
    ("wrong_password", re.compile(r"wrong password or no key found", re.I)),
    ("no_repository", re.compile(r"(Is there a repository at the following location\?|"
                                 r"unable to open config file|repository does not exist)", re.I)),
    ("forbidden", re.compile(r"(\b403\b[^\n]*Forbidden|Forbidden[^\n]*\(403\)|AccessDenied|Access Denied)",
                             re.I)),
)


def classify_failure(rc: int, stderr: str) -> str:
    """One of ``wrong_password``, ``no_repository``, ``locked``, ``forbidden`` or ``other``."""
    if rc in FAILURE_CODES:
        return FAILURE_CODES[rc]
    for kind, pattern in _FAILURE_MARKERS:
        if pattern.search(stderr or ""):
            return kind
    return "other"


def explain(exc: ToolError) -> ToolError:
    """The same failure with a sentence for the two causes users hit most; anything else is left as restic said."""
    kind = classify_failure(exc.rc or 0, exc.stderr)
    head = {
        "wrong_password": "The repository did not open: wrong password (restic found no key that it opens)",
        "no_repository": "There is no restic repository at this location (initialise it first, for example with "
                         "the restoreops.dr.restic role)",
    }.get(kind)
    if head is None:
        return exc
    return ToolError(f"{head}; nothing was changed. restic said: {exc.msg}", cmd=exc.cmd, rc=exc.rc,
                     stdout=exc.stdout, stderr=exc.stderr, **exc.details)


# --- restic ----------------------------------------------------------------------------------------------------


class Restic:
    """The restic commands retention needs; every call gets the repository and password from the environment."""

    def __init__(self, runner: ToolRunner) -> None:
        self.runner = runner

    def version(self) -> tuple[int, int, int]:
        result = self.runner.run(["version"], error="Could not run restic version")
        version = parse_version(result.stdout)
        if version < MIN_VERSION:
            raise InputError(f"restic {version_string(version)} is too old; restoreops.dr needs "
                             f"{version_string(MIN_VERSION)} or newer.")
        return version

    def forget(self, policy: Policy, *, prune: bool, dry_run: bool) -> ForgetPlan:
        args = ["forget", "--json", "--quiet"]
        if dry_run:
            args += ["--dry-run", "--no-lock"]
        if prune:
            args.append("--prune")
        result = self.runner.run(args + policy.args(), check=False)
        if result.rc != 0:
            raise self.runner.failure(result, "restic forget failed")
        text = result.stdout.strip()
        # With --prune, restic prints the forget JSON first; anything after it is prune's (quiet) text.
        first = text.splitlines()[0] if text else "null"
        return parse_forget(parse_json(first, what="output of restic forget"))

    def lock_ids(self) -> list[str]:
        result = self.runner.run(["list", "locks", "--no-lock"], error="Could not list restic locks")
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def locks(self) -> list[Lock]:
        locks = []
        for lock_id in self.lock_ids():
            result = self.runner.run(["cat", "lock", lock_id, "--no-lock"], check=False)
            if result.rc != 0:
                continue  # removed between list and cat: its holder finished
            locks.append(Lock.from_json(lock_id, parse_json(result.stdout, what="restic lock")))
        return locks

    def unlock(self) -> None:
        self.runner.run(["unlock"], error="restic unlock failed")

    def stats_raw_data(self) -> int:
        data = self.runner.run_json(["stats", "--json", "--mode", "raw-data", "--no-lock", "--quiet"])
        return int(data.get("total_size", 0))

    def check(self, args: Sequence[str]) -> bool:
        return self.runner.run([*args, "--quiet"], check=False).rc == 0


# --- the module ------------------------------------------------------------------------------------------------


def _diff(before: Sequence[dict], after: Sequence[dict]) -> dict[str, str]:
    def lines(snaps: Sequence[dict]) -> str:
        return "".join(f"{s['short_id']} {s['time']} {s['host']} {','.join(s['paths'])}\n" for s in snaps)
    return {"before_header": "snapshots", "after_header": "snapshots", "before": lines(before),
            "after": lines(after)}


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

    def current_locks(self) -> list[Lock]:
        """The repository's locks; a local repository with an empty ``locks/`` directory is read without restic."""
        if self.local_path is not None and has_lock_files(self.local_path) is False:
            return []
        return self.restic.locks()

    def classify(self, locks: Sequence[Lock]) -> tuple[list[Lock], list[Lock]]:
        now = self.now()
        stale = [lk for lk in locks if lock_is_stale(lk, now, self.hostname, self.alive)]
        live = [lk for lk in locks if lk not in stale]
        return stale, live

    def handle_locks(self, locks: Sequence[Lock]) -> bool:
        """Remove stale locks (unless told not to); raise LockedError for a live one. True if any were removed."""
        stale, live = self.classify(locks)
        self.locks = [lock_view(lk, True) for lk in stale] + [lock_view(lk, False) for lk in live]
        if live:
            desc = "; ".join(f"{lk.id[:8]} held by PID {lk.pid} on {lk.hostname} since {lk.time}"
                             f"{' (exclusive)' if lk.exclusive else ''}" for lk in live)
            raise LockedError(f"The repository is locked by a running restic process ({desc}); the live lock was "
                              "left in place and nothing was removed.", locks=self.locks)
        if stale and not self.params.get("unlock_stale", True):
            raise LockedError(f"The repository has {len(stale)} stale lock(s) and unlock_stale is false; nothing "
                              "was removed.", locks=self.locks)
        if stale and not self.check_mode:
            self.restic.unlock()
            remaining = {lk.id for lk in self.restic.locks()}
            for view in self.locks:
                view["removed"] = view["id"] not in remaining
            if any(view["id"] in remaining for view in self.locks):
                raise LockedError("restic unlock left a lock in place; nothing was removed.", locks=self.locks)
        return bool(stale)

    def forget(self, policy: Policy, prune: bool) -> tuple[ForgetPlan, bool]:
        """Run forget (dry in check mode); on failure, find out why. Returns the plan and whether locks went."""
        unlocked = False
        if self.check_mode:
            unlocked = self.handle_locks(self.current_locks())
            return self.restic.forget(policy, prune=prune, dry_run=True), unlocked
        for attempt in (1, 2):
            try:
                return self.restic.forget(policy, prune=prune, dry_run=False), unlocked
            except ToolError as exc:
                kind = classify_failure(exc.rc or 0, exc.stderr)
                if kind == "forbidden":
                    raise AppendOnlyError(
                        f"{APPEND_ONLY_MSG} (the backend refused to delete: HTTP 403).",
                        repository_append_only=True, stderr=exc.stderr[-2000:]) from exc
                if kind in ("wrong_password", "no_repository") or attempt == 2:
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
            check_result = {"ran": True, "ok": self.restic.check(check)}

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


def tool_runner(module: Any, repository: str, password: SecretSource, env: Mapping[str, Any] | None,
                cache_dir: str | None, binary: str | None) -> ToolRunner:
    """A runner for restic on ``repository``: repository, password and credentials in its environment only."""
    return ToolRunner(
        module=module,
        binary=binary or "restic",
        env=restic_env(repository, password, env, cache_dir),
        secrets=secrets_of(repository, password, env),
        name="restic",
    )


def main(module: Any) -> dict[str, Any]:
    """Body of restoreops.dr.restic_forget_prune (called through run_module)."""
    params = module.params
    # Refuse a bad policy before anything runs, restic included.
    Policy.from_params(params).validate()
    check_args(params.get("check_after"))
    password = SecretSource.from_params(params, "password", "password_file", "password_command").validate()
    if not password.given:
        raise InputError("Give the repository password as password, password_file or password_command.")
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
