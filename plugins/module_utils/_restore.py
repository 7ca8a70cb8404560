# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore a borg archive, a restic snapshot or an rsnapshot snapshot into a staging directory, resumably, and prove
it against a manifest.

The restore lands in ``<staging_dir>/<snapshot id>``; a marker file ``<staging_dir>/<snapshot id>.done.json`` is
written only after the restore (and the checksum verification) succeeded. A run that finds the marker does nothing;
a run that finds a partial staging tree without the marker (an interrupted restore) resumes it: it keeps what was
restored and transfers only what is missing or wrong (the methods are described in :mod:`._resume`), then verifies
the whole tree as always. A run holds ``<staging_dir>/<snapshot id>.lock`` while it works: a second run on the same
snapshot (a re-run while the first still restores as a background job) waits for the first and then finds its marker.

borg 1.x extracts on one core, so a borg restore is split into disjoint path sets extracted in parallel, one
``borg extract`` per set; the directories above the split points get their metadata back from the archive listing
afterwards. restic restores in parallel by itself and is run once. rsnapshot snapshots are read with rsync.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import errno
import fcntl
import grp
import json
import os
import pwd
import re
import shutil
import stat
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Container, Iterable, Iterator, Mapping, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils import _manifest, _resume, _rsnapshot
from ansible_collections.restoreops.dr.plugins.module_utils._borg.cli import BorgCLI
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError
from ansible_collections.restoreops.dr.plugins.module_utils._manifest import (
    Manifest,
    ManifestError,
    verify_fidelity,
    verify_tree,
    walk,
)
from ansible_collections.restoreops.dr.plugins.module_utils._paths import refuse_inside_repository, refuse_root
from ansible_collections.restoreops.dr.plugins.module_utils._progress import (
    ChildWrites,
    ProgressReporter,
    process_writes,
)
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import Restic, has_sparse_restore, tool_runner
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import local_repository_path
from ansible_collections.restoreops.dr.plugins.module_utils._runner import (
    Result,
    ToolRunner,
    parse_json_lines,
    parse_version,
    version_string,
)
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
    source: str = ""  # a hard link (borg 1.2 lists it with mode "h..."): the member whose inode it shares


def parse_borg_items(text: str) -> list[Item]:
    return [Item(path=d["path"], type=d.get("type", "-"), size=int(d.get("size") or 0), mode=d.get("mode", ""),
                 user=d.get("user") or "", group=d.get("group") or "", uid=int(d.get("uid", -1)),
                 gid=int(d.get("gid", -1)), mtime=d.get("mtime", ""),
                 source=(d.get("source") or "") if str(d.get("mode", "")).startswith("h") else "")
            for d in parse_json_lines(text)]


def relink_hardlinks(root: str, items: Iterable[Item]) -> int:
    """Join again the hard links that parallel extraction split: a member and its ``source`` extracted by two borg
    processes are two files with the same bytes. Each such member is replaced (atomically, by rename) with a link to
    its source. Members whose source was not restored keep their own copy. Returns how many were joined."""
    joined = 0
    for item in items:
        if not item.source:
            continue
        member, source = os.path.join(root, item.path), os.path.join(root, item.source)
        try:
            st_member, st_source = os.lstat(member), os.lstat(source)
        except FileNotFoundError:
            continue
        if (st_member.st_dev, st_member.st_ino) == (st_source.st_dev, st_source.st_ino):
            continue
        temporary = member + ".restoreops-link"
        os.link(source, temporary)
        os.replace(temporary, member)
        joined += 1
    return joined


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


# --- resuming ---------------------------------------------------------------------------------------------------


@dataclass
class ResumeContext:
    """What a backend needs to resume: whether ``dest`` holds an interrupted attempt, the manifest (absolute, as on
    the backed-up host), and where it reports (``report``; ``on_kept`` tells the progress file what was kept)."""

    partial: bool
    report: _resume.ResumeReport
    manifest_path: str | None = None
    workers: int = 1
    threads: int = 2
    on_kept: Callable[[int], None] = lambda _kept: None
    measured_by_tool: bool = False


# The default smallest borg path set (O(borg_set_bytes)): each set is one borg process (a few tenths of a second
# to start and to read the archive's item list), worth it only for a set that takes longer than that to extract.
MIN_SET_BYTES = 64 << 20


def borg_set_count(workers: int, total_bytes: int | None = None, min_set_bytes: int | None = None) -> int:
    """How many path sets a borg restore is cut into: many more than the workers, so that an interruption loses
    at most the sets in flight (``workers`` of them, a sixteenth of the archive each at most), yet bounded, as each
    set is one ``borg extract`` that reads the archive's item list again: at most 64, and none smaller than
    ``min_set_bytes`` (:data:`MIN_SET_BYTES`; a small restore is cut into ``workers`` sets only)."""
    workers = max(1, workers)
    wanted = min(64, 16 * workers)
    if total_bytes is None:
        return wanted
    return max(workers, min(wanted, total_bytes // max(1, min_set_bytes or MIN_SET_BYTES)))


class _SetIndex:
    """Whether a path lies in (or is) one of a collection of archive paths, by its ancestors."""

    def __init__(self, units: Iterable[str]) -> None:
        self.units = set(units)

    def covers(self, path: str) -> bool:
        parts = path.split("/")
        return any("/".join(parts[:depth]) in self.units for depth in range(1, len(parts) + 1))


def _remove_path(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def _empty_dir(path: str) -> None:
    """Remove everything inside ``path``, keeping the directory."""
    with os.scandir(path) as entries:
        for entry in entries:
            _remove_path(entry.path)


def _remove_set(dest: str, units: Sequence[str], includes: Sequence[str]) -> None:
    """Remove what an unfinished path set may have left in ``dest`` (the set ``[]`` is the whole restore)."""
    if units:
        for unit in units:
            _remove_path(os.path.join(dest, unit))
    elif includes:
        for path in includes:
            _remove_path(os.path.join(dest, path.lstrip("/")))
    else:
        _empty_dir(dest)


def run_pool(task: Callable[[int], None], indexes: Sequence[int], workers: int) -> None:
    """Run ``task(index)`` for each index in order, ``workers`` at a time; after the first failure nothing new starts,
    the running ones finish, and the failure is raised."""
    queue = list(indexes)
    running: set[concurrent.futures.Future[None]] = set()
    failure: BaseException | None = None
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while queue or running:
            while queue and failure is None and len(running) < max(1, workers):
                running.add(pool.submit(task, queue.pop(0)))
            if not running:
                break
            finished, running = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                if future.exception() is not None and failure is None:
                    failure = future.exception()
            if failure is not None:
                queue = []
    if failure is not None:
        raise failure


_NS_TIME = re.compile(r"^(?P<base>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)$")


def _mtime_ns(text: Any) -> int | None:
    """restic's RFC 3339 time with nanoseconds as integer nanoseconds since the epoch (None when unreadable)."""
    match = _NS_TIME.match(str(text or ""))
    if not match:
        return None
    zone = "+00:00" if match.group("zone") == "Z" else match.group("zone")
    seconds = int(dt.datetime.fromisoformat(match.group("base") + zone).timestamp())
    return seconds * 1_000_000_000 + int((match.group("frac") or "0")[:9].ljust(9, "0"))


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _size_of(path: str) -> int:
    st = _lstat(path)
    return st.st_size if st is not None and stat.S_ISREG(st.st_mode) else -1


def _hash_matches(root: str, wanted: Sequence[tuple[str, str]], threads: int) -> set[str]:
    """The paths of ``wanted`` (path, sha256) whose file below ``root`` has that digest, hashed on ``threads``."""
    def one(pair: tuple[str, str]) -> str | None:
        try:
            return pair[0] if sha256_file(root + pair[0]) == pair[1] else None
        except OSError:
            return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return {path for path in pool.map(one, wanted) if path is not None}


# Go's os.FileMode bits for setuid, setgid and sticky (restic lists modes as Go FileModes).
_GO_SETUID, _GO_SETGID, _GO_STICKY = 1 << 23, 1 << 22, 1 << 20


def go_mode_bits(mode: int) -> int:
    """A Go FileMode (``restic ls --json``'s ``mode``) as Unix permission bits with setuid/setgid/sticky."""
    bits = mode & 0o777
    if mode & _GO_SETUID:
        bits |= stat.S_ISUID
    if mode & _GO_SETGID:
        bits |= stat.S_ISGID
    if mode & _GO_STICKY:
        bits |= stat.S_ISVTX
    return bits


def restore_file_metadata(root: str, nodes: Iterable[Mapping[str, Any]], paths: Container[str]) -> int:
    """Give the files of a ``restic ls --json`` listing named in ``paths`` their owner, mode (setuid and setgid
    after the owner, which clears them) and mtime under ``root``, as restic would have at the end of its restore."""
    count = 0
    for node in nodes:
        path = str(node.get("path") or "")
        if node.get("type") != "file" or path not in paths:
            continue
        target = root + path
        uid, gid = int(node.get("uid", -1)), int(node.get("gid", -1))
        if uid >= 0 and gid >= 0:
            os.chown(target, uid, gid, follow_symlinks=False)
        if "mode" in node:
            os.chmod(target, go_mode_bits(int(node["mode"])))
        mtime = _mtime_ns(node.get("mtime"))
        if mtime is not None:
            atime = _mtime_ns(node.get("atime"))
            os.utime(target, ns=(atime if atime is not None else mtime, mtime), follow_symlinks=False)
        count += 1
    return count


def restic_dir_items(nodes: Iterable[Mapping[str, Any]]) -> list[Item]:
    """The directories of a ``restic ls --json`` listing as :class:`Item` (relative path, mode, ids, mtime)."""
    items = []
    for node in nodes:
        if node.get("type") != "dir" or "mode" not in node:
            continue
        items.append(Item(path=str(node["path"]).strip("/"), type="d",
                          mode=stat.filemode(stat.S_IFDIR | go_mode_bits(int(node["mode"]))),
                          uid=int(node.get("uid", -1)), gid=int(node.get("gid", -1)),
                          mtime=str(node.get("mtime") or "")))
    return [item for item in items if item.path]


# --- the tools ---------------------------------------------------------------------------------------------------


class Backend:
    """What the restore needs from a tool: list restore points, restore one into a directory."""

    def method(self) -> str:
        """How this tool resumes an interrupted restore (one of :data:`._resume.METHODS`)."""
        raise NotImplementedError

    def version(self) -> str:
        raise NotImplementedError

    def snapshots(self, host: str | None) -> list[Snapshot]:
        raise NotImplementedError

    def restore(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int,
                resume: ResumeContext | None = None) -> dict[str, Any]:
        """Restore into ``dest`` (which may hold an interrupted attempt: ``resume.partial``); fills
        ``resume.report`` with what was kept and what was transferred. Without ``resume``, a plain restore into an
        empty directory."""
        raise NotImplementedError

    def preview(self, snapshot: Snapshot, dest: str, includes: Sequence[str], resume: ResumeContext) -> None:
        """Check mode: fill ``resume.report`` with what a run would keep of the partial tree in ``dest``; writes
        nothing."""
        raise NotImplementedError

    def size(self, snapshot: Snapshot) -> int:
        """Bytes the whole restore point holds once restored (an upper bound when includes narrow it)."""
        raise NotImplementedError

    def missing_includes(self, snapshot: Snapshot, includes: Sequence[str]) -> list[str]:
        """The paths of ``includes`` (absolute, normalised) that the restore point does not hold."""
        raise NotImplementedError

    def unsupported_attributes(self) -> tuple[str, ...]:
        """What this tool does not give back (names of _manifest.ATTRIBUTES): the verification says so instead of
        calling it a difference."""
        return ()


class ResticBackend(Backend):
    def __init__(self, restic: Restic, limit_download: int | None = None) -> None:
        self.restic = restic
        self.limit = ["--limit-download", str(limit_download)] if limit_download else []

    def version(self) -> str:
        return version_string(self.restic.version())

    def snapshots(self, host: str | None) -> list[Snapshot]:
        return parse_restic_snapshots(self.restic.snapshots(host))

    def method(self) -> str:
        return _resume.restic_method(self.restic.version())

    def _extra(self) -> list[str]:
        """The options of every restore this backend runs (the plain one, the resume's and the preview's): the
        download limit, and ``--sparse`` where restic has it (0.15+), so that long runs of zeros stay holes."""
        return [*self.limit, *(["--sparse"] if has_sparse_restore(self.restic.version()) else [])]

    def unsupported_attributes(self) -> tuple[str, ...]:
        return () if has_sparse_restore(self.restic.version()) else ("sparse",)

    def restore(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int,
                resume: ResumeContext | None = None) -> dict[str, Any]:
        if resume is None:  # a plain restore into an empty directory (a sample, a search)
            self.restic.restore(snapshot.id, dest, includes, extra=self._extra())
            return {"workers": 1}
        report = resume.report
        if report.method == "overwrite-if-changed":
            # restic 0.17+: an existing file of matching size and mtime is taken as restored, any other one is
            # compared blob by blob and only what differs is fetched; its summary counts what it skipped.
            outcome = self.restic.restore(snapshot.id, dest, includes, overwrite="if-changed", extra=self._extra())
            summary = outcome.summary or {}
            report.kept_files = int(summary.get("files_skipped") or 0)
            report.kept_bytes = int(summary.get("bytes_skipped") or 0)
            return {"workers": 1}
        if not resume.partial:
            self.restic.restore(snapshot.id, dest, includes, extra=self._extra())
            return {"workers": 1}
        # restic before 0.17 rewrites whatever it restores: name only the files that are not complete.
        nodes = self.restic.ls(snapshot.id, includes)
        if resume.manifest_path:
            # The manifest first (small), so that the partial tree is judged by a complete copy of it.
            self.restic.restore(snapshot.id, dest, [_resume.restic_pattern(resume.manifest_path)], extra=self._extra())
        kept, todo, fix = self._classify(nodes, dest, resume.manifest_path, resume.threads)
        report.kept_files = len(kept)
        report.kept_bytes = sum(node.size for node in kept)
        resume.on_kept(report.kept_bytes)
        others = [str(n["path"]) for n in nodes if n.get("type") not in ("file", "dir")
                  and not os.path.lexists(dest + str(n["path"]))]
        files = [str(n["path"]) for n in nodes if n.get("type") != "dir"]
        paths = _resume.group_paths([node.path for node in todo] + others, files, tops=includes)
        report.rerun = paths
        if paths:
            # restic 0.14 drops a hard link's second name when that name already exists (measured: gone, exit 0), and
            # rewrites whatever it restores anyway: what it restores again is removed first.
            for path in paths:
                if path.strip("/"):
                    _remove_path(dest + path)
                else:
                    _empty_dir(dest)  # "/": everything (the staging directory itself stays)
            self.restic.restore(snapshot.id, dest, [_resume.restic_pattern(p) for p in paths], extra=self._extra())
        # Kept files the killed restic had written but not finished: the snapshot's mode, owner and mtime.
        restore_file_metadata(dest, nodes, {node.path for node in fix})
        # restic sets a directory's metadata only when it restores the whole directory: give every directory
        # the snapshot's mode, owner and mtime, as the uninterrupted restore would have.
        restore_dir_metadata(dest, restic_dir_items(nodes))
        return {"workers": 1}

    def _classify(self, nodes: Sequence[Mapping[str, Any]], dest: str, manifest_path: str | None,
                  threads: int, manifest_root: str | None = None
                  ) -> tuple[list[_resume.FileNode], list[_resume.FileNode], list[_resume.FileNode]]:
        """(kept, todo, fix) of the snapshot's files against the partial tree in ``dest``, ``fix`` being the kept
        files that still need the snapshot's mode, owner and mtime (_resume.metadata_to_apply); the manifest is read
        from ``manifest_root`` (``dest`` by default) + ``manifest_path``."""
        files = [_resume.FileNode(str(n["path"]), int(n.get("size") or 0), _mtime_ns(n.get("mtime")))
                 for n in nodes if n.get("type") == "file"]
        digests: dict[str, str] = {}
        groups: list[list[str]] = []
        carrying: set[str] = set()
        if manifest_path:
            try:
                digests, groups, carrying = Manifest((manifest_root or dest) + manifest_path).resume_facts(
                    node.path for node in files)
            except (OSError, ManifestError):
                digests = {}  # not in the snapshot or unreadable: files are judged by size and mtime alone
        matching = _hash_matches(dest, [(node.path, digests[node.path]) for node in files if node.path in digests
                                        and _size_of(dest + node.path) == node.size], threads)
        kept, todo = _resume.classify(files, lambda path: _lstat(dest + path), digests,
                                      lambda path, _digest: path in matching)
        done, fix, again = _resume.metadata_to_apply(kept, lambda path: _lstat(dest + path), carrying)
        kept, todo = _resume.with_link_groups(done + fix, todo + again, groups)
        still = {node.path for node in kept}
        return kept, todo, [node for node in fix if node.path in still]

    def preview(self, snapshot: Snapshot, dest: str, includes: Sequence[str], resume: ResumeContext) -> None:
        report = resume.report
        if report.method == "overwrite-if-changed":
            outcome = self.restic.restore(snapshot.id, dest, includes, overwrite="if-changed",
                                          extra=["--dry-run", *self._extra()])
            summary = outcome.summary or {}
            report.kept_files = int(summary.get("files_skipped") or 0)
            report.kept_bytes = int(summary.get("bytes_skipped") or 0)
            report.transferred_bytes = int(summary.get("bytes_restored") or 0)
            return
        nodes = self.restic.ls(snapshot.id, includes)
        # The manifest in the partial tree may itself be incomplete: a complete copy goes to a temporary directory
        # outside staging, which is removed again (staging is not written in check mode).
        scratch = tempfile.mkdtemp(prefix="restoreops-preview-") if resume.manifest_path else None
        try:
            if scratch is not None and resume.manifest_path:
                self.restic.restore(snapshot.id, scratch, [_resume.restic_pattern(resume.manifest_path)],
                                    extra=self._extra())
            kept, todo, _fix = self._classify(nodes, dest, resume.manifest_path, resume.threads, scratch)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        report.kept_files = len(kept)
        report.kept_bytes = sum(node.size for node in kept)
        report.transferred_bytes = sum(node.size for node in todo)
        files = [str(n["path"]) for n in nodes if n.get("type") != "dir"]
        report.rerun = _resume.group_paths([node.path for node in todo], files, tops=includes)

    def size(self, snapshot: Snapshot) -> int:
        return self.restic.restore_size(snapshot.id)

    def missing_includes(self, snapshot: Snapshot, includes: Sequence[str]) -> list[str]:
        if not includes:
            return []
        found = self.restic.existing_paths(snapshot.id, includes)
        return [path for path in includes if path not in found]


class BorgBackend(Backend):
    def __init__(self, borg: BorgCLI, repository: str, min_set_bytes: int | None = None) -> None:
        self.borg = borg
        self.repository = repository
        self.min_set_bytes = min_set_bytes
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

    def method(self) -> str:
        return "borg-sets"

    def _state(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int,
               partial: bool) -> tuple[dict[str, Any], list[Item], bool]:
        """The path sets of this restore: read back from the state file of an interrupted run, or planned anew
        (``True`` as the third value then). Also returns the archive listing under ``includes``."""
        items = self.items(snapshot, [p.strip("/") for p in includes])
        state = _resume.read_state(_resume.state_path(dest)) if partial else None
        if _resume.usable_state(state, snapshot.id, includes):
            return state, items, False
        size = sum(item.size for item in items if item.type == "-")
        plan = plan_parallel_extract(items, borg_set_count(workers, size, self.min_set_bytes), min_units_per_worker=2)
        state = _resume.new_state(snapshot.id, includes, plan.groups)
        state["depth"] = plan.depth
        return state, items, True

    def restore(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int,
                resume: ResumeContext | None = None) -> dict[str, Any]:
        """Extract the archive as disjoint path sets, ``workers`` at a time; each set that finished is recorded in
        the state file next to ``dest``, so an interrupted restore is resumed by extracting only the other sets
        (what an unfinished set left behind is removed first)."""
        if resume is None:
            resume = ResumeContext(partial=False, report=_resume.ResumeReport(method=self.method()))
        archive = f"{self.repository}::{snapshot.name}"
        state, items, fresh = self._state(snapshot, dest, includes, workers, resume.partial)
        state_file = _resume.state_path(dest)
        if fresh and resume.partial:
            _empty_dir(dest)  # a partial tree without its record of finished sets: nothing in it can be trusted
        pending = _resume.pending_sets(state)
        self._count_kept(state, items, includes, resume.report)
        resume.on_kept(resume.report.kept_bytes)
        resume.report.rerun = [",".join(state["sets"][i]) or "(everything)" for i in pending]
        _resume.write_state(state_file, state)
        sets = state["sets"]
        for index in pending:
            _remove_set(dest, sets[index], includes)
        # borg 1.4 creates a missing parent directory by a check, then a create: two extracts running side by side
        # race on a shared parent ("makedirs: [Errno 17] File exists", rc 104; seen with Debian 13's borg). The
        # parents of every pending set's paths exist before the extracts start (their metadata is set below).
        for index in pending:
            for member in sets[index]:
                parent = os.path.dirname(member.strip("/"))
                if parent:
                    os.makedirs(os.path.join(dest, parent), exist_ok=True)
        error = f"borg extract of {snapshot.name} failed"
        guard = threading.Lock()

        def extract(index: int) -> None:
            # borg's self-test (about half a megabyte of temporary files and a fifth of a second) already ran in
            # this module's borg list; it is not repeated for every set.
            # --sparse: all-zero chunks become holes (borg 1.2 writes them out in full otherwise).
            self.borg.run(["extract", "--sparse", archive, *(sets[index] or [p.strip("/") for p in includes])],
                          cwd=dest, check=True, error=error, env={"BORG_SELFTEST": "disabled"})
            with guard:
                state["done"] = sorted({*state["done"], index})
                _resume.write_state(state_file, state)

        run_pool(extract, pending, max(1, workers))
        depth = int(state.get("depth") or 0)
        fixed = restore_dir_metadata(dest, [i for i in items if i.type == "d" and _depth(i.path) < depth])
        # A hard link whose two names fell into two sets (or into sets of two runs) is two files now.
        joined = relink_hardlinks(dest, items)
        info: dict[str, Any] = {"workers": min(max(1, workers), max(1, len(sets))), "sets": len(sets),
                                "hardlinks_joined": joined}
        if depth:
            info.update(split_depth=depth, upper_dirs_restored=fixed)
        return info

    def _count_kept(self, state: Mapping[str, Any], items: Sequence[Item], includes: Sequence[str],
                    report: _resume.ResumeReport) -> None:
        """Files and bytes of the archive inside the sets recorded as finished."""
        done = [state["sets"][i] for i in state.get("done", [])]
        if not done:
            return
        owner = _SetIndex([unit for units in done for unit in units])
        for item in items:
            if item.type == "-" and owner.covers(item.path):
                report.kept_files += 1
                report.kept_bytes += item.size

    def preview(self, snapshot: Snapshot, dest: str, includes: Sequence[str], resume: ResumeContext) -> None:
        state, items, fresh = self._state(snapshot, dest, includes, resume.workers, True)
        if not fresh:
            self._count_kept(state, items, includes, resume.report)
        pending = _resume.pending_sets(state)
        resume.report.rerun = [",".join(state["sets"][i]) or "(everything)" for i in pending]
        total = sum(item.size for item in items if item.type == "-")
        resume.report.transferred_bytes = total - resume.report.kept_bytes

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


class RsnapshotBackend(Backend):
    """rsnapshot snapshots, read with rsync (locally or over SSH): ``<root>/<interval>.<N>/<prefix>/<absolute path>``.

    rsync compares each file with the snapshot (size and mtime) and transfers only the files that differ, so a
    re-run after an interruption is a resume by itself; ``--delete`` clears what a killed rsync left half-written.
    """

    def __init__(self, module: Any, repository: str, prefix: str, ssh_command: str | None = None,
                 limit_kib: int | None = None, binary: str | None = None,
                 env: Mapping[str, Any] | None = None) -> None:
        self.login, self.root = _rsnapshot.split_repository(repository)
        self.prefix = prefix.strip("/")
        environ = {str(k): str(v) for k, v in (env or {}).items()}
        environ.update(TZ="UTC", LC_ALL="C")  # --list-only prints times in the local zone, and English
        self.runner = ToolRunner(module=module, binary=binary or "rsync", env=environ, name="rsync",
                                 secrets=[str(v) for v in (env or {}).values() if v is not None and len(str(v)) >= 4])
        self.transport = ["-e", ssh_command] if ssh_command and self.login else []
        self.limit = [f"--bwlimit={limit_kib}"] if limit_kib else []

    def method(self) -> str:
        return "rsync"

    def version(self) -> str:
        return version_string(parse_version(self.runner.run(["--version"], error="Could not run rsync").stdout))

    def _location(self, path: str) -> str:
        return f"{self.login}:{path}" if self.login else path

    def _list(self, path: str, *, recursive: bool = False, check: bool = True) -> Result:
        args = ["--list-only", "--no-human-readable", *self.transport]
        args += ["--recursive"] if recursive else ["--dirs"]
        return self.runner.run([*args, self._location(path)], check=check,
                               error=f"Could not list {self._location(path)} with rsync")

    def snapshots(self, host: str | None) -> list[Snapshot]:
        entries = _rsnapshot.snapshot_dirs(_rsnapshot.parse_list_only(self._list(self.root + "/").stdout))
        return [Snapshot(id=_rsnapshot.snapshot_id(e.mtime), time=e.mtime, name=e.name, host=self.prefix,
                         paths=(f"{self.root}/{e.name}/{self.prefix}",)) for e in entries]

    def _sources(self, snapshot: Snapshot, includes: Sequence[str]) -> list[str]:
        return _rsnapshot.rsync_sources(self.login, self.root, snapshot.name, self.prefix, list(includes))

    def _rsync(self, snapshot: Snapshot, dest: str, includes: Sequence[str], *, dry_run: bool) -> Result:
        args = ["--archive", "--hard-links", "--acls", "--xattrs", "--sparse", "--numeric-ids", "--delete",
                f"--out-format={_rsnapshot.OUT_FORMAT}", *self.transport, *self.limit]
        if includes:
            args.append("--relative")
        if dry_run:
            args.append("--dry-run")
        return self.runner.run([*args, *self._sources(snapshot, includes), dest.rstrip("/") + "/"],
                               error=f"rsync from rsnapshot {snapshot.name} failed")

    def restore(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int,
                resume: ResumeContext | None = None) -> dict[str, Any]:
        if resume is None:
            resume = ResumeContext(partial=False, report=_resume.ResumeReport(method=self.method()))
        moved = _rsnapshot.parse_transfer(self._rsync(snapshot, dest, includes, dry_run=False).stdout)
        resume.report.transferred_bytes = moved.bytes_sent
        resume.report.rerun = moved.names
        resume.measured_by_tool = True
        files, size = tree_stats(dest)
        resume.report.kept_files = max(0, files - moved.files)
        resume.report.kept_bytes = max(0, size - moved.file_bytes)
        return {"workers": 1}

    def preview(self, snapshot: Snapshot, dest: str, includes: Sequence[str], resume: ResumeContext) -> None:
        moved = _rsnapshot.parse_transfer(self._rsync(snapshot, dest, includes, dry_run=True).stdout)
        files, size = tree_stats(dest)
        replaced = [st.st_size for st in (_lstat(os.path.join(dest, name)) for name in moved.names)
                    if st is not None and stat.S_ISREG(st.st_mode)]
        resume.report.transferred_bytes = moved.file_bytes
        resume.report.rerun = moved.names
        resume.report.kept_files = max(0, files - len(replaced))
        resume.report.kept_bytes = max(0, size - sum(replaced))

    def size(self, snapshot: Snapshot) -> int:
        listing = self._list(f"{self.root}/{snapshot.name}/{self.prefix}/", recursive=True)
        return sum(e.size for e in _rsnapshot.parse_list_only(listing.stdout) if e.mode.startswith("-"))

    def missing_includes(self, snapshot: Snapshot, includes: Sequence[str]) -> list[str]:
        missing = []
        for path in includes:
            result = self._list(f"{self.root}/{snapshot.name}/{self.prefix}{path}", check=False)
            if result.rc == 23:  # rsync: "some files could not be transferred", here: the path does not exist
                missing.append(path)
            elif result.rc != 0:
                raise self.runner.failure(result, f"Could not list {path} in rsnapshot {snapshot.name}")
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
    directory, ``rsync -aHAXS`` into it otherwise (the staged copy is then removed). A path whose staged copy is gone
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
    """rsync a staged tree (or file) into an existing destination, keeping links, ACLs, xattrs and holes; True if it
    changed anything."""
    is_dir = os.path.isdir(src) and not os.path.islink(src)
    if is_dir:
        os.makedirs(dest, mode=0o755, exist_ok=True)
    argv = [module.get_bin_path("rsync", required=True), "-aHAXS", "--numeric-ids", "--itemize-changes",
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
    if params["tool"] == "rsnapshot":
        return repo if repo.startswith("/") else None
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
    if params["tool"] == "rsnapshot":
        _rsnapshot.split_repository(repo)
        given = [key for key in ("password", "password_file", "password_command", "cache_dir", "lock_wait", "host")
                 if params.get(key) is not None]
        if given:
            raise InputError(f"{', '.join(given)} do not apply to rsnapshot (its snapshots are plain directories, "
                             "read with rsync); leave them out.")
    elif params.get("ssh_command"):
        raise InputError("ssh_command applies to rsnapshot only (borg takes BORG_RSH in env).")
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
    if params.get("borg_set_bytes") is not None and params["borg_set_bytes"] < 1:
        raise InputError(f"borg_set_bytes must be 1 or more, got {params['borg_set_bytes']}.")
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
    if params.get("limit_download") and tool == "borg":
        raise InputError("limit_download applies to restic and rsnapshot only.")
    backend: Backend
    if tool == "rsnapshot":
        backend = RsnapshotBackend(module, params["repository"], params.get("rsnapshot_prefix") or "localhost",
                                   params.get("ssh_command"), params.get("limit_download"), params.get("binary"),
                                   params.get("env"))
    elif tool == "restic":
        backend = ResticBackend(Restic(tool_runner(module, params["repository"], secret, params.get("env"),
                                                   params.get("cache_dir"), params.get("binary"))),
                                params.get("limit_download"))
    else:
        backend = BorgBackend(borg_cli(module, params, secret), params["repository"], params.get("borg_set_bytes"))

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


# Beside the staging tree after an attempt that failed (the tool's error, or a tree that did not verify): the next
# run does not trust sizes and mtimes (see _restore).
FAILED_SUFFIX = ".failed"


def _flag_failed(path: str) -> None:
    """An empty file (a full file system still takes one) saying that the last attempt failed."""
    try:
        with open(path, "w", encoding="utf-8"):
            pass
    except OSError:
        pass  # no inode left: the next run then trusts restic's own judgement


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
    workers = params.get("parallel") or 0
    if workers <= 0:
        workers = os.cpu_count() or 1
    manifest = params.get("manifest_path")
    method = backend.method()
    failed_flag = staging + FAILED_SUFFIX
    if partial and method == "overwrite-if-changed" and os.path.exists(failed_flag):
        # restic gives a file its final size and mtime even when writing its content failed (a full disk: measured
        # with restic 0.18), so after an attempt that failed, size and mtime prove nothing: the partial tree is
        # judged by the manifest's digests, as with restic before 0.17.
        method = "missing-paths"
    resume = ResumeContext(partial=partial, report=_resume.ResumeReport(method=method),
                           manifest_path=manifest, workers=workers, threads=max(2, workers))
    if module.check_mode:
        if partial:
            backend.preview(snapshot, staging, includes, resume)
            resume.report.total_bytes = resume.report.kept_bytes + resume.report.transferred_bytes
            result["resume"] = resume.report.as_dict()
        result["msg"] = (f"Would restore {tool} {snapshot.name or snapshot.id} ({snapshot.time}) into {staging}"
                         + (f" (resuming an interrupted attempt: {resume.report.kept_files} files kept, about "
                            f"{resume.report.transferred_bytes} bytes to transfer)" if partial else ""))
        return result

    os.makedirs(staging, mode=0o700, exist_ok=True)
    start = time.monotonic()
    progress_file = params.get("progress_file")
    total = None
    if progress_file:
        total = params.get("expected_bytes") or result.get("size_estimate") or backend.size(snapshot)
    kept = [0]
    resume.on_kept = lambda value: kept.__setitem__(0, value)
    writes = ChildWrites()
    written_before = process_writes()
    with ProgressReporter(progress_file, "restore data", total, lambda: kept[0] + writes()) as progress:
        try:
            info = backend.restore(snapshot, staging, includes, workers if tool == "borg" else 1, resume)
        except Exception:
            _flag_failed(failed_flag)
            raise
        if not resume.measured_by_tool:
            # What this process and the tool processes it waited for wrote (the kernel's wchar).
            resume.report.transferred_bytes = max(0, process_writes() - written_before)
        restore_seconds = time.monotonic() - start
        files, size = tree_stats(staging)
        progress.complete(size)
    resume.report.total_bytes = size
    result["resume"] = resume.report.as_dict()

    verify: dict[str, Any] = {"checked": 0, "missing": [], "mismatched": [], "ok": None, "manifest": None,
                              "fidelity": [], "fidelity_ok": None}
    if manifest:
        opened = load_manifest(os.path.join(staging, manifest.lstrip("/")))
        verify.update(verify_against_manifest(staging, opened, includes, threads=max(2, workers)))
        verify.update(manifest=manifest, manifest_format=opened.version)
        del verify["tree_files"], verify["tree_bytes"]  # counted above, while the progress file was open
        verify.update(verify_fidelity(staging, opened, includes, backend.unsupported_attributes()))
    verify_seconds = time.monotonic() - start - restore_seconds
    result.update(restored=True, files=files, bytes=size, workers=info.get("workers", 1), verify=verify,
                  duration=round(restore_seconds, 3), verify_duration=round(verify_seconds, 3),
                  throughput_mib_s=round(size / 1048576 / restore_seconds, 1) if restore_seconds > 0 else None)
    if verify["ok"] is False:
        _flag_failed(failed_flag)
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
    _resume.clear_state(_resume.state_path(staging))  # the marker now says everything; the sets' record is done
    _resume.clear_state(failed_flag)
    return result
