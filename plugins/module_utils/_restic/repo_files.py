# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a local restic repository's files say, read without starting restic.

Every restic command that opens a repository derives the master key with scrypt (about 0.5 s of CPU on a small
machine, whatever the repository's size), so a local repository's size, whether it has a config, and whether it
holds any lock at all are read from the file system instead.
"""

from __future__ import annotations

import os
import re

from ansible_collections.restoreops.dr.plugins.module_utils._disk import tree_usage

_SCHEME_RE = re.compile(r"^([a-z][a-z0-9]*):")
_REMOTE_SCHEMES = frozenset(("rest", "s3", "sftp", "b2", "azure", "gs", "swift", "rclone"))


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


def has_config(path: str) -> bool:
    """Whether a local repository directory holds restic's ``config`` file (the repository exists)."""
    return os.path.isfile(os.path.join(path, "config"))


def has_lock_files(path: str) -> bool | None:
    """Whether a local repository's ``locks/`` directory holds anything; None when it cannot be read.

    restic keeps one file per lock there, so an empty directory means no lock without asking restic.
    """
    try:
        with os.scandir(os.path.join(path, "locks")) as entries:
            return next(iter(entries), None) is not None
    except OSError:
        return None


def directory_size(path: str) -> int:
    """Bytes held by the files under ``path`` (what a local repository occupies; its apparent size)."""
    return tree_usage(path).apparent_bytes
