# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How full a backup volume is and how much a tree on it occupies: ``df`` and ``du -s``, read with the standard library.

:func:`filesystem_usage` is ``df`` for the file system holding a path (``statvfs``; ``used_percent`` rounded up the way
``df`` prints ``Use%``, from the blocks available to unprivileged users). :func:`tree_usage` is ``du -s``: allocated
blocks of every entry below a path, each inode counted once (rsnapshot's hard links), links not followed, file systems
crossed as ``du`` does without ``-x``. Nothing is written. Standard library only (module code on Python 3.9+).
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import asdict, dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class TreeUsage:
    """What ``du -s`` and ``du -s --apparent-size`` would say about a tree, with the entries counted."""

    bytes: int  # allocated blocks (st_blocks * 512), each inode once
    apparent_bytes: int  # st_size of regular files and links, each inode once
    entries: int
    unreadable: int  # directories or entries that could not be read (du would print an error for each)


def mount_point(path: str, is_mount: Callable[[str], bool] = os.path.ismount) -> str:
    """The mount point of the file system holding ``path`` (an existing absolute path)."""
    current = os.path.realpath(path)
    while not is_mount(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def used_percent(used: int, available: int) -> int:
    """``df``'s ``Use%``: used blocks over the blocks a user can have (used + available), rounded up."""
    total = used + available
    return 0 if total <= 0 else math.ceil(used * 100 / total)


def filesystem_usage(path: str, statvfs: Callable[[str], Any] = os.statvfs) -> dict[str, Any]:
    """``df`` of the file system holding ``path``: bytes ``total``, ``used``, ``available`` (to unprivileged users),
    ``used_percent`` and the ``mount_point``."""
    st = statvfs(path)
    size = st.f_frsize or st.f_bsize
    total = st.f_blocks * size
    used = (st.f_blocks - st.f_bfree) * size
    available = st.f_bavail * size
    return {"mount_point": mount_point(path), "total": total, "used": used, "available": available,
            "used_percent": used_percent(used, available)}


def tree_usage(path: str) -> TreeUsage:
    """``du -s PATH``: every entry below ``path`` (itself included), hard-linked inodes counted once."""
    seen: set[tuple[int, int]] = set()
    allocated = apparent = entries = unreadable = 0

    def count(full: str) -> bool:
        nonlocal allocated, apparent, entries, unreadable
        try:
            st = os.lstat(full)
        except OSError:
            unreadable += 1
            return False
        entries += 1
        key = (st.st_dev, st.st_ino)
        if key in seen:
            return False
        seen.add(key)
        allocated += getattr(st, "st_blocks", 0) * 512
        if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            apparent += st.st_size
        return stat.S_ISDIR(st.st_mode)

    if count(path):
        def on_error(_exc: OSError) -> None:
            nonlocal unreadable
            unreadable += 1

        for root, dirs, files in os.walk(path, onerror=on_error):
            for name in dirs + files:
                count(os.path.join(root, name))
    return TreeUsage(bytes=allocated, apparent_bytes=apparent, entries=entries, unreadable=unreadable)


def volume_report(path: str, measure_tree: bool = True) -> dict[str, Any]:
    """One backup location: whether it exists, its file system (``df``) and, when asked, its size (``du -s``)."""
    if not os.path.exists(path):
        return {"path": path, "exists": False, "filesystem": None, "size": None}
    return {"path": path, "exists": True, "filesystem": filesystem_usage(path),
            "size": asdict(tree_usage(path)) if measure_tree else None}
