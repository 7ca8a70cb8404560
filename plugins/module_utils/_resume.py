# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an interrupted restore keeps, and what a re-run transfers again: the decisions, as pure functions.

One method per tool (and restic version); :func:`restic_method` and the backends in :mod:`._restore` pick it:

- ``overwrite-if-changed`` (restic 0.17 and later): restic restores into the existing staging tree with
  ``--overwrite if-changed``. It takes a file whose size and mtime match the snapshot as restored, and checks the
  content of any other existing file, fetching only the blobs that differ.
- ``missing-paths`` (restic before 0.17, which always rewrites what it restores): the partial tree is compared with
  the snapshot's listing and the manifest recorded at backup time. A file is kept when its SHA-256 matches the
  manifest, or (for a file the manifest does not list) when its size and mtime match the snapshot, which restic sets
  only once a file is complete. Everything else is restored again, named by ``--include`` patterns that
  :func:`group_paths` keeps to a bounded number by naming whole directories.
- ``borg-sets``: the archive is cut into disjoint path sets (:func:`._restore.plan_parallel_extract`); each set that
  finished is recorded in a state file next to the staging tree, and a re-run extracts only the other sets, after
  removing what an interrupted set left of them.
- ``rsync`` (rsnapshot): rsync compares every file with the snapshot and transfers only those that differ.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

RESTIC_OVERWRITE_VERSION = (0, 17, 0)
METHODS = ("overwrite-if-changed", "missing-paths", "borg-sets", "rsync")
STATE_SUFFIX = ".resume.json"
STATE_VERSION = 1
# restic gets at most this many --include patterns for the paths to restore again (argv stays far below ARG_MAX).
MAX_INCLUDES = 200


def restic_method(version: Sequence[int]) -> str:
    """``overwrite-if-changed`` from restic 0.17 on, ``missing-paths`` before (pure)."""
    return "overwrite-if-changed" if tuple(version) >= RESTIC_OVERWRITE_VERSION else "missing-paths"


@dataclass
class ResumeReport:
    """What a restore kept from an earlier attempt and what it transferred (the module's ``resume`` return)."""

    method: str
    kept_files: int = 0
    kept_bytes: int = 0
    transferred_bytes: int = 0
    total_bytes: int = 0
    rerun: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "kept_files": self.kept_files, "kept_bytes": self.kept_bytes,
                "transferred_bytes": self.transferred_bytes, "total_bytes": self.total_bytes,
                "rerun_count": len(self.rerun), "rerun": self.rerun[:20]}


# --- restic before 0.17: which files are complete ----------------------------------------------------------------


@dataclass(frozen=True)
class FileNode:
    """A regular file of the snapshot: its absolute path, size and mtime (ns) as restic lists them."""

    path: str
    size: int
    mtime_ns: int | None = None


def complete_by_metadata(node: FileNode, st: os.stat_result | None) -> bool:
    """True when the local file has the snapshot's size and mtime (restic sets the mtime last, once the file's
    content is complete); restic's mtime has nanoseconds, a file system may keep microseconds."""
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != node.size or node.mtime_ns is None:
        return False
    return abs(st.st_mtime_ns - node.mtime_ns) < 1000


def classify(nodes: Iterable[FileNode], local_stat: Callable[[str], os.stat_result | None],
             digests: Mapping[str, str], content_matches: Callable[[str, str], bool]) -> tuple[list[FileNode],
                                                                                               list[FileNode]]:
    """Split the snapshot's files into (kept, todo) against the partial tree (pure but for the two callables).

    A file listed in ``digests`` (the manifest) is kept only when its size matches and ``content_matches(path,
    digest)``: restic preallocates files, so a partial file already has its final size. Any other file is kept when
    :func:`complete_by_metadata` says so. A missing file is to do."""
    kept: list[FileNode] = []
    todo: list[FileNode] = []
    for node in nodes:
        st = local_stat(node.path)
        if st is None or not stat.S_ISREG(st.st_mode) or st.st_size != node.size:
            todo.append(node)
        elif node.path in digests:
            (kept if content_matches(node.path, digests[node.path]) else todo).append(node)
        else:
            (kept if complete_by_metadata(node, st) else todo).append(node)
    return kept, todo


def with_link_groups(kept: Sequence[FileNode], todo: Sequence[FileNode], groups: Iterable[Sequence[str]]
                     ) -> tuple[list[FileNode], list[FileNode]]:
    """(kept, todo) with every name of a hard-link group to do when one of its names is (pure): restic restores
    names as one inode only when it restores them together, so a kept name goes again with its missing partner."""
    pending = {node.path for node in todo}
    again = {name for names in groups if pending.intersection(names) for name in names}
    return [n for n in kept if n.path not in again], [*todo, *(n for n in kept if n.path in again)]


def _parent(path: str) -> str:
    return os.path.dirname(path.rstrip("/")) or "/"


def group_paths(todo: Sequence[str], all_files: Sequence[str], limit: int = MAX_INCLUDES,
                tops: Sequence[str] = ()) -> list[str]:
    """At most ``limit`` paths that cover every path of ``todo`` (pure).

    A directory all of whose files are to do is named instead of its files. While there are too many paths, the
    deepest ones are replaced by their parent directory (which may bring back kept files: they are restored again,
    never lost), never climbing above ``tops`` (the restore's includes; ``/`` when none)."""
    if not todo:
        return []
    todo_set = set(todo)
    floor = {t.rstrip("/") or "/" for t in tops} or {"/"}
    # files below each directory, and how many of them are to do
    total: dict[str, int] = {}
    pending: dict[str, int] = {}
    for path in all_files:
        d = _parent(path)
        while True:
            total[d] = total.get(d, 0) + 1
            if path in todo_set:
                pending[d] = pending.get(d, 0) + 1
            if d == "/" or d in floor:
                break
            d = _parent(d)

    def cover(path: str) -> str:
        """The highest directory above ``path`` whose files are all to do (not above the floor)."""
        best = path
        d = _parent(path)
        while total.get(d) and pending.get(d) == total.get(d):
            best = d
            if d == "/" or d in floor:
                break
            d = _parent(d)
        return best

    chosen = sorted({cover(p) for p in todo})
    chosen = _drop_nested(chosen)
    while len(chosen) > limit:
        deepest = max(p.count("/") for p in chosen)
        raised = [(_parent(p) if p.count("/") == deepest and p not in floor and _parent(p) != "/" else p)
                  for p in chosen]
        raised = _drop_nested(sorted(set(raised)))
        if raised == chosen:
            break  # cannot coarsen any further without climbing above the includes
        chosen = raised
    return chosen


def _drop_nested(paths: Sequence[str]) -> list[str]:
    """Sorted paths without those that lie below another one."""
    out: list[str] = []
    for path in sorted(paths):
        if out and (path == out[-1] or path.startswith(out[-1].rstrip("/") + "/")):
            continue
        out.append(path)
    return out


def restic_pattern(path: str) -> str:
    """``path`` as a restic ``--include`` pattern that matches it literally (glob characters escaped)."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in path)


# --- borg: completed path sets -----------------------------------------------------------------------------------


def state_path(staging: str) -> str:
    return staging + STATE_SUFFIX


def new_state(snapshot_id: str, includes: Sequence[str], sets: Sequence[Sequence[str]]) -> dict[str, Any]:
    return {"version": STATE_VERSION, "snapshot": snapshot_id, "includes": list(includes),
            "sets": [list(s) for s in sets], "done": []}


def usable_state(state: Any, snapshot_id: str, includes: Sequence[str]) -> bool:
    """Whether a state file read back belongs to this restore (same snapshot and includes) and is well formed."""
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return False
    if state.get("snapshot") != snapshot_id or state.get("includes") != list(includes):
        return False
    sets = state.get("sets")
    done = state.get("done")
    return (isinstance(sets, list) and all(isinstance(s, list) for s in sets) and isinstance(done, list)
            and all(isinstance(i, int) and 0 <= i < len(sets) for i in done))


def pending_sets(state: Mapping[str, Any]) -> list[int]:
    """Indexes of the sets not recorded as complete, in order (pure)."""
    done = set(state.get("done", []))
    return [index for index in range(len(state.get("sets", []))) if index not in done]


def read_state(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def write_state(path: str, state: Mapping[str, Any]) -> None:
    """Replace the state file atomically (an interruption never leaves half a document)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def clear_state(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
