# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain exceptions of restoreops.dr.

Everything below ``plugins/module_utils`` raises one of these; modules turn them into ``fail_json`` in a single
place (:func:`run_module`). Each error carries a plain sentence (``msg``) and optional structured ``details`` that
end up in the failed result, so a playbook can branch on them.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable


class RestoreOpsError(Exception):
    """Base class: a problem the user can act on, described in one sentence."""

    def __init__(self, msg: str, **details: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.details = details


class InputError(RestoreOpsError):
    """Options that cannot work together or point at something unusable."""


class ToolNotFoundError(RestoreOpsError):
    """The external tool (borg, restic, pg_*) is not installed or not executable."""


class UnsupportedVersionError(RestoreOpsError):
    """The tool is installed but in a version this collection does not drive."""


class ToolError(RestoreOpsError):
    """The external tool ran and failed."""

    def __init__(self, msg: str, *, cmd: list[str] | None = None, rc: int | None = None,
                 stdout: str = "", stderr: str = "", **details: Any) -> None:
        super().__init__(msg, **details)
        self.cmd = cmd or []
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


class LockedError(RestoreOpsError):
    """A repository lock is held and may not be broken."""


class UnsafeError(RestoreOpsError):
    """The requested action would destroy data or weaken a guarantee."""


def run_module(module: Any, main: Callable[[Any], dict[str, Any]]) -> None:
    """The one error boundary of every restoreops.dr module.

    ``main`` returns the result dict for ``exit_json``; a :class:`RestoreOpsError` becomes ``fail_json`` with the
    error's sentence, its details, and (for tool failures) the command, return code and output. An operating-system
    error that no step turned into a sentence (a full disk, a permission) still fails with its own words in ``msg``:
    a module run as a background job (``async``) would otherwise lose them.
    """
    try:
        result = main(module)
    except RestoreOpsError as exc:
        extra: dict[str, Any] = dict(exc.details)
        if isinstance(exc, ToolError):
            extra.update(cmd=exc.cmd, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr)
        module.fail_json(msg=exc.msg, exception=traceback.format_exc(), **extra)
        return
    except OSError as exc:
        module.fail_json(msg=f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
                         + (f" -> {exc.filename2}" if exc.filename2 else ""), errno=exc.errno,
                         exception=traceback.format_exc())
        return
    module.exit_json(**result)
