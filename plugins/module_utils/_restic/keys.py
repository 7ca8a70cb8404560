# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotating a restic repository's key (``restoreops.dr.restic_repo`` with ``new_password``/``new_password_file``).

After a compromise the password the attacker read must stop opening the repository: ``restic key add`` with the new
password (read by restic from a 0600 file, never argv), then ``restic key remove`` of the key the old password
opens, then proof that the old password is refused. Idempotent: a repository the new password opens and the old one
does not needs nothing; one both open (a run interrupted between the two steps) only loses the old key. The
decision (:func:`plan`) is a pure function of which passwords open the repository.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Iterator

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import Restic, classify_failure, explain
from ansible_collections.restoreops.dr.plugins.module_utils._runner import parse_json
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource


def opens(restic: Restic) -> bool:
    """Whether this runner's password opens the repository (``restic cat config``); other failures raise."""
    result = restic.run(["cat", "config", "--no-lock", "--quiet"], check=False)
    if result.rc == 0:
        return True
    if classify_failure(result.rc, result.stderr) == "wrong_password":
        return False
    raise restic.failure(result, "Could not open the restic repository to rotate its key")


def plan(new_opens: bool, old_opens: bool, remove_old: bool) -> list[str]:
    """The steps: ``add`` (the new key), ``remove`` (the old key). Raises when neither password opens."""
    if not new_opens and not old_opens:
        raise InputError("Neither the current password nor the new one opens the repository: nothing can be "
                         "rotated (is the current password the one the backups use?).")
    steps = [] if new_opens else ["add"]
    if old_opens and remove_old:
        steps.append("remove")
    return steps


def current_key_id(restic: Restic) -> str:
    """The id of the key this runner's password opens (``restic key list --json``, ``current: true``)."""
    result = restic.run(["key", "list", "--json", "--no-lock"], check=False)
    if result.rc != 0:
        raise restic.failure(result, "Could not list the repository's keys")
    keys = parse_json(result.stdout, what="restic key list --json")
    current = [k for k in keys or [] if isinstance(k, dict) and k.get("current")]
    if len(current) != 1 or not current[0].get("id"):
        raise ToolError("restic key list named no current key.", stdout=result.stdout[-2000:])
    return str(current[0]["id"])


@contextlib.contextmanager
def password_file(source: SecretSource, tmpdir: str | None) -> Iterator[str]:
    """A file holding the new password for ``--new-password-file``: the given file, or a 0600 temporary one."""
    if source.file is not None:
        yield source.file
        return
    fd, path = tempfile.mkstemp(prefix="restic-new-", dir=tmpdir)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write((source.value or "") + "\n")
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def rotate(old: Restic, new: Restic, source: SecretSource, *, check_mode: bool, remove_old: bool,
           tmpdir: str | None = None) -> dict[str, Any]:
    """Add the new key, remove the old one, prove it; returns the report (``actions`` lists what was, or in check
    mode would be, done)."""
    new_opens = opens(new)
    old_opens = opens(old)
    steps = plan(new_opens, old_opens, remove_old)
    report: dict[str, Any] = {"changed": bool(steps), "actions": [], "old_key_id": None, "new_key_id": None,
                              "old_refused": not old_opens, "new_opens": new_opens}
    old_id = current_key_id(old) if old_opens else None
    report["old_key_id"] = old_id
    if "add" in steps:
        report["actions"].append("restic key add (the new password)")
        if not check_mode:
            with password_file(source, tmpdir) as path:
                result = old.run(["key", "add", "--new-password-file", path], check=False)
            if result.rc != 0:
                raise explain(old.runner.failure(result, "restic key add failed; the old key is untouched"))
            if not opens(new):
                raise ToolError("restic key add succeeded, but the new password does not open the repository.")
            report["new_opens"] = True
    if report["new_opens"] and not check_mode:
        report["new_key_id"] = current_key_id(new)
    if "remove" in steps:
        report["actions"].append(f"restic key remove {old_id} (the old password's key)")
        if not check_mode:
            result = new.run(["key", "remove", str(old_id)], check=False)
            if result.rc != 0:
                error = explain(new.runner.failure(
                    result, f"restic key remove {old_id} failed (an append-only server refuses deletions: remove "
                            f"the key file keys/{old_id}* on the server as its administrator); the new key was added"))
                error.details.update(rotation=report)
                raise error
            if opens(old):
                raise ToolError(f"The old key {old_id} was removed, yet the old password still opens the repository.")
            report["old_refused"] = True
    return report
