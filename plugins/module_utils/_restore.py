# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore a borg archive or a restic snapshot into a staging directory, resumably, and prove it against a manifest.

The restore lands in ``<staging_dir>/<snapshot id>``; a marker file ``<staging_dir>/<snapshot id>.done.json`` is
written only after the restore (and the checksum verification) succeeded. A run that finds the marker does nothing;
a run that finds a partial staging tree without the marker (an interrupted restore) removes it and starts again.
A run holds ``<staging_dir>/<snapshot id>.lock`` while it works: a second run on the same snapshot (a re-run while
the first still restores as a background job) waits for the first and then finds its marker.

borg 1.x extracts on one core, so a borg restore is split into disjoint path sets extracted in parallel, one
``borg extract`` per worker; the directories above the split points get their metadata back from the archive listing
afterwards. restic restores in parallel by itself and is run once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import grp
import json
import os
import pwd
import shutil
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils import _manifest
from ansible_collections.restoreops.dr.plugins.module_utils._borg.cli import BorgCLI
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError
from ansible_collections.restoreops.dr.plugins.module_utils._manifest import Manifest, ManifestError, verify_tree, walk
from ansible_collections.restoreops.dr.plugins.module_utils._paths import refuse_inside_repository, refuse_root
from ansible_collections.restoreops.dr.plugins.module_utils._progress import ChildWrites, ProgressReporter
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import Restic, tool_runner
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import local_repository_path
from ansible_collections.restoreops.dr.plugins.module_utils._runner import parse_json_lines, version_string
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource
from ansible_collections.restoreops.dr.plugins.module_utils._time import UTC, parse_time, with_offset

MARKER_SUFFIX = ".done.json"


@dataclass(frozen=True)
class Snapshot:
    """One restorable point: a restic snapshot or a borg archive."""

    id: str
    time: str
    name: str = ""
    host: str = ""
    paths: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["paths"] = list(self.paths)
        data["tags"] = list(self.tags)
        return data


def select_snapshot(snapshots: Sequence[Snapshot], wanted: str = "latest",
                    before: dt.datetime | None = None) -> Snapshot:
    """The snapshot to restore: by id/short id/name, or the newest one (older than ``before`` when given)."""
    if not snapshots:
        raise RestoreOpsError("The repository has no snapshots/archives to restore from.")
    if wanted and wanted != "latest":
        matches = [s for s in snapshots if wanted in (s.id, s.name) or (len(wanted) >= 8 and s.id.startswith(wanted))]
        if not matches:
            raise InputError(f"No snapshot or archive named {wanted!r} in the repository.")
        if len(matches) > 1:
            raise InputError(f"{wanted!r} matches more than one snapshot: {', '.join(s.id[:8] for s in matches)}.")
        chosen = matches[0]
        if before is not None and parse_time(chosen.time) >= before:
            raise InputError(f"Snapshot {wanted!r} ({chosen.time}) is not older than before={before.isoformat()}.")
        return chosen
    candidates = sorted(snapshots, key=lambda s: parse_time(s.time))
    if before is not None:
        candidates = [s for s in candidates if parse_time(s.time) < before]
        if not candidates:
            raise RestoreOpsError(f"No snapshot is older than {before.isoformat()}; nothing known-good to restore.")
    return candidates[-1]


def refuse_stale(snapshot: Snapshot, max_age_hours: float | None, now: dt.datetime) -> None:
    """InputError when the restore point is older than ``max_age_hours`` (the RPO): the newest backup missing the
    recent data means backups stopped, which the operator must know before restoring (pure)."""
    if max_age_hours is None:
        return
    age = (now - parse_time(snapshot.time)).total_seconds() / 3600
    if age > max_age_hours:
        raise InputError(
            f"The restore point {snapshot.name or snapshot.id[:8]} ({snapshot.time}) is {age:.1f} h old, older than "
            f"max_age_hours={max_age_hours:g} (the RPO): the data since then is not in it, and the backups may have "
            "stopped. Nothing was restored. Set allow_stale: true to restore it anyway.", age_hours=round(age, 2))


def parse_restic_snapshots(data: Any) -> list[Snapshot]:
    return [Snapshot(id=s["id"], time=s["time"], name=s.get("short_id", s["id"][:8]), host=s.get("hostname", ""),
                     paths=tuple(s.get("paths") or ()), tags=tuple(s.get("tags") or ()))
            for s in data or []]


def parse_borg_archives(data: Any) -> list[Snapshot]:
    """borg's archives; their zone-less local times get this host's offset, as they leave the host in results."""
    return [Snapshot(id=a["id"], time=with_offset(a.get("start") or a["time"]) or "", name=a["name"])
            for a in data.get("archives", [])]


# --- parallel borg extract -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One archive member from ``borg list --json-lines``."""

    path: str
    type: str
    size: int = 0
    mode: str = ""
    user: str = ""
    group: str = ""
    uid: int = -1
    gid: int = -1
    mtime: str = ""


def parse_borg_items(text: str) -> list[Item]:
    return [Item(path=d["path"], type=d.get("type", "-"), size=int(d.get("size") or 0), mode=d.get("mode", ""),
                 user=d.get("user") or "", group=d.get("group") or "", uid=int(d.get("uid", -1)),
                 gid=int(d.get("gid", -1)), mtime=d.get("mtime", ""))
            for d in parse_json_lines(text)]


def _depth(path: str) -> int:
    return path.count("/") + 1


def _unit(path: str, depth: int) -> str:
    return "/".join(path.split("/")[:depth])


@dataclass
class Plan:
    """How a borg extract is split: one list of archive paths per worker, and the directories to fix afterwards."""

    groups: list[list[str]]
    depth: int
    upper_dirs: list[Item] = field(default_factory=list)

    @property
    def workers(self) -> int:
        return len(self.groups)


def plan_parallel_extract(items: Sequence[Item], workers: int, *, min_units_per_worker: int = 4,
                          max_depth: int = 8) -> Plan:
    """Split the archive into ``workers`` disjoint path sets of about equal size (pure).

    A unit is a path cut at ``depth`` components: a directory unit takes its whole subtree, a shallower file is a
    unit by itself. The shallowest depth that yields enough units is used, and units go to the least loaded worker,
    largest first. Directories shallower than the cut are not extracted by anyone: their metadata is restored from
    the listing afterwards (``upper_dirs``).
    """
    if workers <= 1 or not items:
        return Plan(groups=[[]], depth=0)
    depth = 1
    for depth in range(1, max_depth + 1):
        units = {_unit(i.path, depth) for i in items if not (i.type == "d" and _depth(i.path) < depth)}
        if len(units) >= workers * min_units_per_worker:
            break
    sizes: dict[str, int] = {}
    for item in items:
        if item.type == "d" and _depth(item.path) < depth:
            continue
        key = _unit(item.path, depth)
        sizes[key] = sizes.get(key, 0) + item.size
    if len(sizes) < 2:
        return Plan(groups=[[]], depth=0)
    count = min(workers, len(sizes))
    groups: list[list[str]] = [[] for _slot in range(count)]
    loads = [0] * count
    for unit, size in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        target = loads.index(min(loads))
        groups[target].append(unit)
        loads[target] += size
    upper = [i for i in items if i.type == "d" and _depth(i.path) < depth]
    return Plan(groups=[sorted(g) for g in groups], depth=depth, upper_dirs=upper)


def mode_bits(mode: str) -> int:
    """``drwxr-x---`` → 0o750 (with setuid/setgid/sticky)."""
    if len(mode) != 10:
        raise ValueError(f"unexpected mode string {mode!r}")
    bits = 0
    for index, (char, value) in enumerate(zip(mode[1:], (0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 4, 2, 1))):
        if char in "rwx":
            bits |= value
        elif char in "sS" and index == 2:
            bits |= 0o4000 | (value if char == "s" else 0)
        elif char in "sS" and index == 5:
            bits |= 0o2000 | (value if char == "s" else 0)
        elif char in "tT" and index == 8:
            bits |= 0o1000 | (value if char == "t" else 0)
    return bits


def _owner_ids(item: Item) -> tuple[int, int]:
    """By name when the name exists here (borg's own default), else the numeric ids from the archive."""
    try:
        uid = pwd.getpwnam(item.user).pw_uid if item.user else item.uid
    except KeyError:
        uid = item.uid
    try:
        gid = grp.getgrnam(item.group).gr_gid if item.group else item.gid
    except KeyError:
        gid = item.gid
    return uid, gid


def restore_dir_metadata(root: str, items: Iterable[Item]) -> int:
    """Create the directories above the split points and give them the archive's mode, owner and mtime."""
    count = 0
    for item in sorted(items, key=lambda i: _depth(i.path), reverse=True):
        target = os.path.join(root, item.path)
        os.makedirs(target, exist_ok=True)
        uid, gid = _owner_ids(item)
        if uid >= 0 and gid >= 0:
            os.chown(target, uid, gid, follow_symlinks=False)
        if item.mode:
            os.chmod(target, mode_bits(item.mode))
        if item.mtime:
            stamp = parse_time(item.mtime).timestamp()
            os.utime(target, (stamp, stamp))
        count += 1
    return count


# --- verification ----------------------------------------------------------------------------------------------
# The manifest's format, the walk and the merge live in _manifest (the on-host recorder runs the same file).

in_scope = _manifest.in_scope
sha256_file = _manifest.sha256_file


def verify_against_manifest(root: str, files: Manifest | Mapping[str, str], includes: Sequence[str] = (),
                            threads: int = 4) -> dict[str, Any]:
    """Hash every manifest file that falls inside the restore and compare, streaming (see _manifest.verify_tree).

    ``files`` is an open manifest (load_manifest) or a mapping of path to sha256. The result lists the first
    paths missing and mismatched with their counts, and the regular files and bytes of the restored tree.
    """
    try:
        return verify_tree(root, files, includes, threads=threads)
    except ManifestError as exc:
        raise RestoreOpsError(f"The checksum manifest {exc}.") from exc


def load_manifest(path: str) -> Manifest:
    """Open the manifest in the restored data (format 2 streams; format 1, manifest.json, is read whole)."""
    try:
        return Manifest(path)
    except FileNotFoundError as exc:
        raise RestoreOpsError(f"The checksum manifest {path} is not in the restored data.") from exc
    except ManifestError as exc:
        raise RestoreOpsError(f"The checksum manifest {exc}.") from exc


def tree_stats(root: str) -> tuple[int, int]:
    files = size = 0
    for _path, st in walk([root]):
        files += 1
        size += st.st_size
    return files, size


# --- the tools ---------------------------------------------------------------------------------------------------


class Backend:
    """What the restore needs from a tool: list restore points, restore one into a directory."""

    def version(self) -> str:
        raise NotImplementedError

    def snapshots(self, host: str | None) -> list[Snapshot]:
        raise NotImplementedError

    def restore(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int) -> dict[str, Any]:
        raise NotImplementedError

    def size(self, snapshot: Snapshot) -> int:
        """Bytes the whole restore point holds once restored (an upper bound when includes narrow it)."""
        raise NotImplementedError

    def missing_includes(self, snapshot: Snapshot, includes: Sequence[str]) -> list[str]:
        """The paths of ``includes`` (absolute, normalised) that the restore point does not hold."""
        raise NotImplementedError


class ResticBackend(Backend):
    def __init__(self, restic: Restic, limit_download: int | None = None) -> None:
        self.restic = restic
        self.limit = ["--limit-download", str(limit_download)] if limit_download else []

    def version(self) -> str:
        return version_string(self.restic.version())

    def snapshots(self, host: str | None) -> list[Snapshot]:
        return parse_restic_snapshots(self.restic.snapshots(host))

    def restore(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int) -> dict[str, Any]:
        self.restic.restore(snapshot.id, dest, includes, extra=self.limit)
        return {"workers": 1}

    def size(self, snapshot: Snapshot) -> int:
        return self.restic.restore_size(snapshot.id)

    def missing_includes(self, snapshot: Snapshot, includes: Sequence[str]) -> list[str]:
        if not includes:
            return []
        found = self.restic.existing_paths(snapshot.id, includes)
        return [path for path in includes if path not in found]


class BorgBackend(Backend):
    def __init__(self, borg: BorgCLI, repository: str) -> None:
        self.borg = borg
        self.repository = repository
        self._listing: tuple[str, tuple[str, ...], list[Item]] | None = None

    def items(self, snapshot: Snapshot, paths: Sequence[str]) -> list[Item]:
        """The archive's members under ``paths`` (all without), listed once per run: the includes check and the
        parallel plan read the same listing. A path that matches nothing is a warning to borg, not a failure."""
        key = (snapshot.name, tuple(paths))
        if self._listing is None or self._listing[:2] != key:
            archive = f"{self.repository}::{snapshot.name}"
            listing = self.borg.run(["list", "--json-lines", archive, *paths], check=True, warnings_ok=True,
                                    error=f"borg list of {snapshot.name} failed")
            self._listing = (key[0], key[1], parse_borg_items(listing.stdout))
        return self._listing[2]

    def version(self) -> str:
        return version_string(self.borg.version())

    def snapshots(self, host: str | None) -> list[Snapshot]:
        data = self.borg.run_json(["list", "--json", self.repository])
        archives = parse_borg_archives(data)
        if host:
            archives = [a for a in archives if a.name.startswith(host)]
        return archives

    def restore(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int) -> dict[str, Any]:
        archive = f"{self.repository}::{snapshot.name}"
        paths = [p.strip("/") for p in includes]
        error = f"borg extract of {snapshot.name} failed"
        if workers <= 1:
            self.borg.run(["extract", archive, *paths], cwd=dest, check=True, error=error)
            return {"workers": 1}
        plan = plan_parallel_extract(self.items(snapshot, paths), workers)
        if plan.workers <= 1:
            self.borg.run(["extract", archive, *paths], cwd=dest, check=True, error=error)
            return {"workers": 1}
        self.borg.run_parallel([["extract", archive, *group] for group in plan.groups], cwd=dest, error=error)
        fixed = restore_dir_metadata(dest, plan.upper_dirs)
        return {"workers": plan.workers, "split_depth": plan.depth, "upper_dirs_restored": fixed}

    def size(self, snapshot: Snapshot) -> int:
        data = self.borg.run_json(["info", "--json", f"{self.repository}::{snapshot.name}"])
        return int(data["archives"][0]["stats"]["original_size"])

    def missing_includes(self, snapshot: Snapshot, includes: Sequence[str]) -> list[str]:
        if not includes:
            return []
        members = {item.path for item in self.items(snapshot, [p.strip("/") for p in includes])}
        missing = []
        for path in includes:
            rel = path.strip("/")
            if rel not in members and not any(member.startswith(rel + "/") for member in members):
                missing.append(path)
        return missing


def borg_cli(module: Any, params: Mapping[str, Any], secret: SecretSource) -> BorgCLI:
    """borg for a restore: the passphrase, key file and lock wait never on argv, a relocated repository followed
    (the restore policy of :mod:`._borg.cli`)."""
    return BorgCLI(module, secret, binary=params.get("binary"), repo=params["repository"], purpose="restore",
                   key_file=params.get("key_file"), lock_wait=params.get("lock_wait"), extra_env=params.get("env"))


# How backup_restore and backup_known_good open a repository (their documentation: the backup_access fragment).
ACCESS_OPTIONS: dict[str, dict[str, Any]] = {
    "password": {"type": "str", "no_log": True, "aliases": ["passphrase"]},
    "password_file": {"type": "path", "no_log": False, "aliases": ["passphrase_file"]},
    "password_command": {"type": "str", "no_log": False, "aliases": ["passcommand"]},
    "key_file": {"type": "path", "no_log": False},
    "env": {"type": "dict", "default": {}, "no_log": True},
    "cache_dir": {"type": "path"},
    "binary": {"type": "str"},
}


# --- the module's main --------------------------------------------------------------------------------------------


def _read_marker(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def restore_lock(path: str) -> Iterator[float]:
    """Hold an exclusive lock on ``path`` (created 0600); yields the seconds spent waiting for another holder."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        waited = 0.0
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            start = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            waited = time.monotonic() - start
        yield waited
    finally:
        os.close(fd)


def _is_empty_place(path: str) -> bool:
    """True when nothing is at ``path`` yet, or only an empty directory (a rename may replace it)."""
    if not os.path.lexists(path):
        return True
    return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)


def put_in_place(module: Any, staging: str, includes: Sequence[str], check_mode: bool = False) -> list[dict[str, Any]]:
    """Move each verified ``<staging>/<path>`` to ``<path>``: a rename when the destination is absent or an empty
    directory, ``rsync -aHAX`` into it otherwise (the staged copy is then removed). A path whose staged copy is gone
    was put in place by an earlier run and is left alone. Returns one record per path: renamed, merged, in place."""
    placed: list[dict[str, Any]] = []
    for path in includes:
        src = os.path.join(staging, path.lstrip("/"))
        if not os.path.lexists(src):
            placed.append({"path": path, "how": "in place", "changed": False})
            continue
        how = "renamed" if _is_empty_place(path) else "merged"
        record: dict[str, Any] = {"path": path, "how": how, "changed": True}
        if not check_mode:
            if how == "renamed":
                os.makedirs(os.path.dirname(path) or "/", mode=0o755, exist_ok=True)
                try:
                    os.rename(src, path)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    how = record["how"] = "merged"
            if how == "merged":
                record["changed"] = _rsync_into(module, src, path)
                if os.path.isdir(src) and not os.path.islink(src):
                    shutil.rmtree(src)
                else:
                    os.unlink(src)
        placed.append(record)
    return placed


def _rsync_into(module: Any, src: str, dest: str) -> bool:
    """rsync a staged tree (or file) into an existing destination, keeping links, ACLs and xattrs; True if it changed
    anything."""
    is_dir = os.path.isdir(src) and not os.path.islink(src)
    if is_dir:
        os.makedirs(dest, mode=0o755, exist_ok=True)
    argv = [module.get_bin_path("rsync", required=True), "-aHAX", "--numeric-ids", "--itemize-changes",
            src + "/" if is_dir else src, dest + "/" if is_dir else dest]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        detail = err.strip() or out.strip()
        raise RestoreOpsError(f"Could not merge {src} into {dest} with rsync (exit {rc}): {detail}. "
                              "The staged copy is kept; fix the cause and run again.")
    return bool(out.strip())


BEFORE_FORMATS = ("YYYY-MM-DDTHH:MM[:SS[.fraction]] with an optional offset (Z, +HH, +HHMM or +HH:MM; UTC when "
                  "none), a space allowed instead of the T, for example 2026-03-14T09:00:00+00:00")


def parse_before(value: str | None) -> dt.datetime | None:
    """O(before) as an aware time, or an InputError that names the option and the accepted formats."""
    if value is None or value == "":
        return None
    try:
        return parse_time(value, naive_tz=UTC)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"before must be an ISO 8601 time, {BEFORE_FORMATS}; got {value!r} ({exc}).") from exc


def _repository_dir(params: Mapping[str, Any]) -> str | None:
    """The local directory of the repository, None for a remote one."""
    repo = params["repository"]
    if params["tool"] == "borg":
        return None if "://" in repo else repo
    return local_repository_path(repo)


def _check_params(params: dict[str, Any]) -> dt.datetime | None:
    """Every check that needs no tool, before anything runs; returns O(before) parsed."""
    for key in ("staging_dir", "manifest_path", "progress_file"):
        value = params.get(key)
        if value and not os.path.isabs(value):
            raise InputError(f"{key} must be an absolute path, got {value!r}.")
    repo = params["repository"]
    if params["tool"] == "borg" and "://" not in repo and not os.path.isabs(repo):
        raise InputError(f"repository must be an absolute path or an ssh:// URL for borg, got {repo!r}.")
    if params["tool"] == "restic" and ":" not in repo and not os.path.isabs(repo):
        raise InputError(f"repository must be an absolute path or a restic backend URL, got {repo!r}.")
    if params.get("key_file") and params["tool"] != "borg":
        raise InputError("key_file applies to borg keyfile repositories only.")
    includes = params.get("includes") or []
    relative = [inc for inc in includes if not isinstance(inc, str) or not inc.startswith("/")]
    if relative:
        raise InputError(f"includes must be absolute paths (as on the backed-up host, for example /srv/app); "
                         f"got {', '.join(repr(inc) for inc in relative)}. Nothing was restored.")
    params["includes"] = [os.path.normpath(inc) for inc in includes]
    if params.get("put_in_place") and not params.get("includes"):
        raise InputError("put_in_place needs includes: name the absolute paths to move from staging into place.")
    staging_dir = params["staging_dir"]
    what = "the restored tree, its completion marker and its lock would be written there"
    refuse_root("staging_dir", staging_dir, what)
    refuse_inside_repository("staging_dir", staging_dir, _repository_dir(params),
                             "restored data would be written into the backup store")
    max_age = params.get("max_age_hours")
    if max_age is not None and max_age <= 0:
        raise InputError(f"max_age_hours must be greater than 0, got {max_age:g}.")
    for key in ("parallel", "lock_wait", "limit_download", "expected_bytes"):
        value = params.get(key)
        if value is not None and value < 0:
            raise InputError(f"{key} must be 0 or more, got {value}.")
    return parse_before(params.get("before"))


def main(module: Any) -> dict[str, Any]:
    params = module.params
    before = _check_params(params)
    tool = params["tool"]
    secret = SecretSource(value=params.get("password"), file=params.get("password_file"),
                          command=params.get("password_command"), label="password").validate()
    if params.get("limit_download") and tool != "restic":
        raise InputError("limit_download applies to restic only.")
    backend: Backend
    if tool == "restic":
        backend = ResticBackend(Restic(tool_runner(module, params["repository"], secret, params.get("env"),
                                                   params.get("cache_dir"), params.get("binary"))),
                                params.get("limit_download"))
    else:
        backend = BorgBackend(borg_cli(module, params, secret), params["repository"])

    version = backend.version()
    snapshot = select_snapshot(backend.snapshots(params.get("host")), params["snapshot"], before)
    if not params.get("allow_stale"):
        refuse_stale(snapshot, params.get("max_age_hours"), dt.datetime.now(dt.timezone.utc))
    staging = os.path.join(params["staging_dir"], snapshot.id)
    marker = staging + MARKER_SUFFIX
    result: dict[str, Any] = {"changed": False, "snapshot": snapshot.as_dict(), "staging_path": staging,
                              "marker": marker, "tool_version": version, "resumed": False, "restored": False}

    if params.get("estimate_size"):
        result["size_estimate"] = backend.size(snapshot)

    if _completed(marker, staging, params["includes"]) is None:
        refuse_missing_includes(backend, snapshot, params["includes"], tool)
    if module.check_mode:
        return _place(module, params, _restore(module, params, backend, snapshot, result))
    os.makedirs(params["staging_dir"], mode=0o700, exist_ok=True)
    with restore_lock(staging + ".lock") as waited:
        result["lock_waited"] = round(waited, 3)
        return _place(module, params, _restore(module, params, backend, snapshot, result))


def _completed(marker: str, staging: str, includes: Sequence[str]) -> dict[str, Any] | None:
    """The marker's record when this restore (same snapshot, same includes) is already complete."""
    done = _read_marker(marker)
    if done is not None and os.path.isdir(staging) and done.get("includes", []) == list(includes):
        return done
    return None


def refuse_missing_includes(backend: Backend, snapshot: Snapshot, includes: Sequence[str], tool: str) -> None:
    """InputError, before anything is written, when an include names a path the restore point does not hold
    (a typo would otherwise restore an empty tree and mark it complete)."""
    missing = backend.missing_includes(snapshot, includes)
    if missing:
        held = f" It holds {', '.join(snapshot.paths)}." if snapshot.paths else ""
        raise InputError(f"includes names paths that are not in {tool} {snapshot.name or snapshot.id} "
                         f"({snapshot.time}): {', '.join(missing)}; nothing was restored.{held} Check the spelling "
                         "(paths as on the backed-up host) or choose another snapshot.", missing_includes=missing)


def _place(module: Any, params: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """With put_in_place, move the verified staging tree into place (only ever after its marker was written)."""
    if params.get("put_in_place"):
        placed = put_in_place(module, result["staging_path"], params.get("includes") or [], module.check_mode)
        result["placed"] = placed
        result["changed"] = result["changed"] or any(p["changed"] for p in placed)
    return result


def _restore(module: Any, params: dict[str, Any], backend: Backend, snapshot: Snapshot,
             result: dict[str, Any]) -> dict[str, Any]:
    """The restore itself, under the snapshot's lock (or in check mode, the plan)."""
    tool = params["tool"]
    staging = result["staging_path"]
    marker = result["marker"]
    includes = params.get("includes") or []
    done = _completed(marker, staging, includes)
    if done is not None:
        result.update(verify=done.get("verify"), files=done.get("files"), bytes=done.get("bytes"),
                      workers=done.get("workers"), duration=0.0)
        return result

    partial = os.path.isdir(staging)
    result.update(changed=True, resumed=partial)
    if module.check_mode:
        result["msg"] = (f"Would restore {tool} {snapshot.name or snapshot.id} ({snapshot.time}) into {staging}"
                         + (" (replacing an interrupted attempt)" if partial else ""))
        return result

    if partial:
        shutil.rmtree(staging)
    os.makedirs(staging, mode=0o700)
    workers = params.get("parallel") or 0
    if workers <= 0:
        workers = os.cpu_count() or 1
    start = time.monotonic()
    progress_file = params.get("progress_file")
    total = None
    if progress_file:
        total = params.get("expected_bytes") or result.get("size_estimate") or backend.size(snapshot)
    with ProgressReporter(progress_file, "restore data", total, ChildWrites()) as progress:
        info = backend.restore(snapshot, staging, includes, workers if tool == "borg" else 1)
        restore_seconds = time.monotonic() - start
        files, size = tree_stats(staging)
        progress.complete(size)

    verify: dict[str, Any] = {"checked": 0, "missing": [], "mismatched": [], "ok": None, "manifest": None}
    if params.get("manifest_path"):
        manifest = params["manifest_path"]
        opened = load_manifest(os.path.join(staging, manifest.lstrip("/")))
        verify.update(verify_against_manifest(staging, opened, includes, threads=max(2, workers)))
        verify.update(manifest=manifest, manifest_format=opened.version)
        del verify["tree_files"], verify["tree_bytes"]  # counted above, while the progress file was open
    verify_seconds = time.monotonic() - start - restore_seconds
    result.update(restored=True, files=files, bytes=size, workers=info.get("workers", 1), verify=verify,
                  duration=round(restore_seconds, 3), verify_duration=round(verify_seconds, 3),
                  throughput_mib_s=round(size / 1048576 / restore_seconds, 1) if restore_seconds > 0 else None)
    if verify["ok"] is False:
        problems = [f"missing: {p}" for p in verify["missing"][:20]] + \
                   [f"checksum differs: {p}" for p in verify["mismatched"][:20]]
        raise RestoreOpsError(
            f"The restored data does not match the manifest recorded at backup time ({verify['missing_count']} "
            f"missing, {verify['mismatched_count']} changed); the staging tree {staging} is kept for inspection and "
            "is not marked complete. Choose an older snapshot (before=...) if this is logical corruption.",
            verify=verify, snapshot=snapshot.as_dict(), problems=problems)
    with open(marker, "w", encoding="utf-8") as handle:
        json.dump({"snapshot": snapshot.as_dict(), "includes": includes, "files": files, "bytes": size,
                   "workers": result["workers"], "verify": verify,
                   "finished": dt.datetime.now(dt.timezone.utc).isoformat()}, handle, indent=2)
    return result
