# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scratch directory that trial restores may fill and that is removed afterwards, without ever touching data that
was there before.

A sandbox directory must be absent, empty, or one this code made (it holds :data:`MARKER`, for example after an
interrupted run, whose leftovers are then removed). Anything else is refused: a sandbox pointed at a live path by
mistake must fail before a single file is written. It may not lie inside, or contain, the paths the caller protects
(the repository, the WAL archive, the base backups).
"""

from __future__ import annotations

import os
import shutil
from typing import Iterable, Optional, Tuple

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, UnsafeError

MARKER = ".restoreops-sandbox"
# Directories no sandbox may be: the system's own and the usual parents of live data (named, not used: S108).
SYSTEM_DIRS = frozenset({"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt",
                         "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib",  # noqa: S108
                         "/var/tmp", "/var/backups", "/var/log", "/var/lib/postgresql",  # noqa: S108
                         "/var/lib/restoreops"})


def inside(path: str, parent: str) -> bool:
    """Whether ``path`` is ``parent`` or below it (both normalised absolute paths)."""
    parent = parent.rstrip("/") or "/"
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def check_sandbox_path(path: str, protected: Iterable[Tuple[str, Optional[str]]] = ()) -> str:
    """The normalised sandbox path, or InputError when it could hurt: relative, a system directory, or overlapping
    one of the ``protected`` ``(option name, path)`` pairs (paths that are not local, such as URLs, are skipped)."""
    if not path or not os.path.isabs(path):
        raise InputError(f"sandbox_dir must be an absolute path, got {path!r}.")
    norm = os.path.normpath(path)
    if norm in SYSTEM_DIRS:
        raise InputError(f"sandbox_dir {norm} is a system directory; give a directory of its own below it, for "
                         f"example {norm.rstrip('/')}/restoreops-sandbox.")
    for name, other in protected:
        if not other or not os.path.isabs(other):
            continue
        other = os.path.normpath(other)
        if inside(norm, other) or inside(other, norm):
            raise InputError(f"sandbox_dir {norm} overlaps {name} {other}; the sandbox is removed afterwards, so "
                             "it must lie apart from everything the search reads.")
    return norm


class Sandbox:
    """``with Sandbox(path, owner) as box:`` creates (or reclaims) the directory and removes it on the way out."""

    def __init__(self, path: str, owner: Optional[Tuple[int, int]] = None, mode: int = 0o700) -> None:
        self.path = os.path.normpath(path)
        self.owner = owner
        self.mode = mode
        self.reclaimed = False

    def open(self) -> Sandbox:
        if os.path.islink(self.path) or (os.path.lexists(self.path) and not os.path.isdir(self.path)):
            raise UnsafeError(f"sandbox_dir {self.path} exists and is not a directory; nothing was changed.")
        if os.path.isdir(self.path):
            entries = os.listdir(self.path)
            if entries and MARKER not in entries:
                raise UnsafeError(f"sandbox_dir {self.path} already holds data that is not an earlier sandbox "
                                  f"(no {MARKER} in it); point sandbox_dir at a new or empty directory. Nothing "
                                  "was changed.")
            for name in entries:
                if name != MARKER:
                    self.reclaimed = True
                    remove(os.path.join(self.path, name))
        else:
            os.makedirs(self.path, mode=self.mode)
        os.chmod(self.path, self.mode)
        with open(os.path.join(self.path, MARKER), "w", encoding="utf-8") as handle:
            handle.write("A scratch directory of restoreops.dr; removed when the search ends.\n")
        if self.owner is not None:
            os.chown(self.path, *self.owner)
        return self

    def sub(self, *names: str, owner: bool = False) -> str:
        """A fresh subdirectory (removed first if it is there), optionally owned like the sandbox."""
        path = os.path.join(self.path, *names)
        if not inside(os.path.normpath(path), self.path) or os.path.normpath(path) == self.path:
            raise InputError(f"Internal error: {path} is not below the sandbox {self.path}.")
        if os.path.lexists(path):
            remove(path)
        os.makedirs(path, mode=0o700)
        if owner and self.owner is not None:
            os.chown(path, *self.owner)
        return path

    def close(self) -> None:
        if os.path.isfile(os.path.join(self.path, MARKER)):
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()


def remove(path: str) -> None:
    """Remove a file, a link or a directory tree (a link is removed, never followed)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
