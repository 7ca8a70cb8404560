# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a module may write: one rule for every module that writes next to a repository.

A file or tree written into a repository (a key export, a restore's staging tree) would be lost with the repository
it is meant to outlive, or would mix restored data into the backup store; a directory of ``/`` would put a module's
markers and locks on the live root. Both are refused before anything is written.
"""

from __future__ import annotations

import os

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError


def path_inside(path: str, directory: str) -> bool:
    """True when ``path`` (resolved) is ``directory`` or below it."""
    real_path = os.path.realpath(path)
    real_dir = os.path.realpath(directory)
    return real_path == real_dir or real_path.startswith(real_dir.rstrip(os.sep) + os.sep)


def refuse_inside_repository(option: str, path: str, repository_dir: str | None, what: str) -> None:
    """InputError when ``path`` (given as ``option``) is ``repository_dir`` or below it; ``what`` says what would
    be written there. A remote repository (``repository_dir`` None) is never local, so never refused."""
    if repository_dir and path_inside(path, repository_dir):
        raise InputError(f"{option} {path} is inside the repository {repository_dir}: {what}. "
                         f"Choose a {option} outside the repository.")


def refuse_root(option: str, path: str, what: str) -> None:
    """InputError when ``path`` resolves to ``/``."""
    if os.path.realpath(path) == os.sep:
        raise InputError(f"{option} must not be / (the live root): {what}. Give a directory of its own, for "
                         "example /var/lib/restoreops/staging.")
