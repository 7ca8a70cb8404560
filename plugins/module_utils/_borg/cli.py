# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""borg's command line: environment, versions, exit codes and messages, and the one wrapper every caller uses.

Environment rules (:func:`borg_environment`, the one place a borg environment is built):

- borg never prompts: ``BORG_DISPLAY_PASSPHRASE=no``, and without a passphrase source ``BORG_PASSPHRASE`` is empty,
  so an encrypted repository fails with ``PassphraseWrong`` instead of waiting for a terminal.
- Secrets never reach argv. A value goes in ``BORG_PASSPHRASE``, a command in ``BORG_PASSCOMMAND``, a file is opened
  for each single run and its descriptor handed over as ``BORG_PASSPHRASE_FD`` (borg reads it to its end, so each
  process gets its own descriptor).
- Passphrase variables inherited by the module process are dropped from it first: borg would prefer an inherited
  ``BORG_PASSPHRASE`` to the source chosen here, and ``run_command`` can only add variables.
- Relocated repositories, one policy: a restore reads the repository wherever the operator points it after a loss
  (``BORG_RELOCATED_REPO_ACCESS_IS_OK=yes``); everything else refuses a repository that moved (``no``). A caller's own
  ``env`` may still say otherwise, as borg documents the variable.

Versions: borg 1.2 and 1.4 are driven; borg 2 (a new repository format and command line: ``repo-create``,
``repo-list``, no ``init``) and anything before 1.2 are refused with a sentence saying so. borg 1.4 gives specific
exit codes (3..99 errors, 100..127 warnings) when ``BORG_EXIT_CODES=modern``, which is always set (borg 1.2 ignores
it); an error is named from its exit code where borg 1.4 gives one, else from the ``msgid`` of the ``--log-json``
lines (both generations print those), so the callers decide the same way on either.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._errors import ToolError, UnsupportedVersionError
from ansible_collections.restoreops.dr.plugins.module_utils._runner import (
    Result,
    ToolRunner,
    json_objects,
    parse_json,
    parse_version,
    version_string,
)
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource

MIN_VERSION = (1, 2, 0)
# Variables that would override or shadow the passphrase source a caller chose.
PASSPHRASE_VARS = ("BORG_PASSPHRASE", "BORG_PASSPHRASE_FD", "BORG_PASSCOMMAND", "BORG_NEW_PASSPHRASE")
PURPOSES = ("manage", "restore", "verify", "escrow")

# borg 1.4's specific exit codes (BORG_EXIT_CODES=modern) for the errors this collection decides on; the msgid is
# what borg 1.2 names the same error in its --log-json lines.
MODERN_ERRORS: dict[int, str] = {
    10: "Repository.AlreadyExists",
    12: "Repository.CheckNeeded",
    13: "Repository.DoesNotExist",
    15: "Repository.InvalidRepository",
    16: "Repository.InvalidRepositoryConfig",
    18: "Repository.ParentPathDoesNotExist",
    19: "Repository.PathAlreadyExists",
    21: "Repository.PathPermissionDenied",
    30: "Archive.AlreadyExists",
    31: "Archive.DoesNotExist",
    40: "KeyfileInvalidError",
    41: "KeyfileMismatchError",
    42: "KeyfileNotFoundError",
    43: "NotABorgKeyFile",
    44: "RepoKeyNotFoundError",
    45: "RepoIdMismatch",
    46: "UnencryptedRepo",
    50: "NoPassphraseFailure",
    51: "PasscommandFailure",
    52: "PassphraseWrong",
    53: "PasswordRetriesExceeded",
    61: "Cache.EncryptionMethodMismatch",
    62: "Cache.RepositoryAccessAborted",
    70: "LockError",
    71: "LockErrorT",
    72: "LockFailed",
    73: "LockTimeout",
    74: "NotLocked",
    75: "NotMyLock",
    80: "ConnectionClosed",
    81: "ConnectionClosedWithHint",
    83: "PathNotAllowed",
    87: "ConnectionBrokenWithHint",
    90: "IntegrityError",
    91: "FileIntegrityError",
}


# --- versions ---------------------------------------------------------------------------------------------------

def check_version(text: str) -> tuple[int, int, int]:
    """The borg version from ``borg --version``; borg 2 and anything before 1.2 are refused."""
    version = parse_version(text)
    if version[0] >= 2:
        raise UnsupportedVersionError(
            f"borg {version_string(version)} is installed, but restoreops.dr drives borg 1.2 and 1.4 only "
            "(borg 2 changed the repository format and the command line: repo-create/repo-list, no 'init'). "
            "Install borg 1.x or point the module at a borg 1.x executable.", borg_version=version_string(version))
    if version < MIN_VERSION:
        raise UnsupportedVersionError(
            f"borg {version_string(version)} is too old; restoreops.dr needs borg 1.2 or 1.4.",
            borg_version=version_string(version))
    return version


# borg before 1.2.5 lets an attacker with write access to the repository (and a way to put files into a backup) fake
# archives (CVE-2023-36811); 1.2.5 added archive TAM checks, 1.2.6 fixed the upgrade procedure of 1.2.5.
ARCHIVE_SPOOFING_FIXED = (1, 2, 5)


def security_warnings(version: Sequence[int]) -> list[str]:
    """The known security problems of this borg version, each with its remedy (pure)."""
    if tuple(version) >= ARCHIVE_SPOOFING_FIXED:
        return []
    return [f"borg {version_string(version)} is open to archive spoofing (CVE-2023-36811, fixed in borg 1.2.5): "
            "upgrade every client of the repository to borg 1.2.6 or newer (on Debian 12, borgbackup 1.4 from "
            "bookworm-backports: restoreops.dr.backup_tools with backup_tools_borg_from_backports: true), then run "
            "the repository upgrade borg documents: borg upgrade --show-rc --check-tam REPO on every client, "
            "borg upgrade --show-rc --check-archives-tam REPO, and borg upgrade --archives-tam REPO once the "
            "archives are known good. Do not run borg check with the new version before that (docs/reliability.md)."]


def has_modern_exit_codes(version: Sequence[int]) -> bool:
    """borg 1.4 and later give specific exit codes under BORG_EXIT_CODES=modern."""
    return tuple(version[:2]) >= (1, 4)


# --- exit codes and --log-json -------------------------------------------------------------------------------------

def rc_kind(rc: int) -> str:
    """``ok``, ``warning`` or ``error`` for either generation (1 / 100..127 warn; 2 / 3..99 / signals fail)."""
    if rc == 0:
        return "ok"
    if rc == 1 or 100 <= rc <= 127:
        return "warning"
    return "error"


def succeeded(rc: int) -> bool:
    """The operation reached its normal end (with or without warnings)."""
    return rc_kind(rc) != "error"


def log_msgids(stderr: str) -> list[str]:
    """The ``msgid`` of each ``--log-json`` line on stderr (borg's stable error names)."""
    return [str(entry["msgid"]) for entry in json_objects(stderr) if entry.get("msgid")]


def log_messages(stderr: str, levels: Sequence[str] = ("ERROR", "CRITICAL")) -> list[str]:
    """The messages of ``--log-json`` lines at the given levels (plain lines are kept as they are)."""
    out = []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                out.append(line.strip())
            continue
        if isinstance(entry, dict) and entry.get("levelname") in levels and entry.get("message"):
            out.append(str(entry["message"]))
    return out


def last_error_message(stderr: str) -> str:
    """The first line of the last ERROR log message, skipping borg's "Local Exception" header and the traceback
    borg logs after an unexpected error (its own line, which must never become a task's message)."""
    for entry in reversed(list(json_objects(stderr))):
        if entry.get("type") == "log_message" and entry.get("levelname") in ("ERROR", "CRITICAL"):
            message = str(entry.get("message", "")).strip().splitlines()
            if message and message[0] != "Local Exception" and not message[0].startswith("Traceback"):
                return message[0]
    return ""


def error_ids(rc: int, stderr: str) -> list[str]:
    """What went wrong, by name: the msgids of the log lines, plus the name of a borg 1.4 specific exit code."""
    ids = log_msgids(stderr)
    named = MODERN_ERRORS.get(rc)
    if named and named not in ids:
        ids.append(named)
    return ids


def is_missing_repository(rc: int, stderr: str) -> bool:
    return "Repository.DoesNotExist" in error_ids(rc, stderr)


def is_wrong_passphrase(rc: int, stderr: str) -> bool:
    return "PassphraseWrong" in error_ids(rc, stderr)


# --- environment ------------------------------------------------------------------------------------------------

def drop_inherited_passphrases(environ: dict[str, str] | Any = None) -> None:
    """Remove borg passphrase variables inherited by the module process (which is short-lived, so its own
    environment is changed: run_command can only add variables)."""
    environ = os.environ if environ is None else environ
    for var in PASSPHRASE_VARS:
        environ.pop(var, None)


def borg_environment(secret: SecretSource, *, purpose: str = "manage", unencrypted_ok: bool = False,
                     base_dir: str | None = None, rsh: str | None = None, key_file: str | None = None,
                     extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The environment every borg run gets (see the module documentation for the rules).

    A passphrase file is not in here: :class:`BorgCLI` opens it for each run (``BORG_PASSPHRASE_FD``).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown borg purpose {purpose!r}")
    drop_inherited_passphrases()
    env: dict[str, str] = {"BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes" if purpose == "restore" else "no"}
    env.update({str(k): str(v) for k, v in (extra or {}).items() if k not in PASSPHRASE_VARS})
    env.update({
        "BORG_DISPLAY_PASSPHRASE": "no",
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes" if unencrypted_ok else "no",
        "BORG_EXIT_CODES": "modern",
    })
    if rsh:
        env["BORG_RSH"] = rsh
    if base_dir:
        env["BORG_BASE_DIR"] = base_dir
    if key_file:
        env["BORG_KEY_FILE"] = key_file
    if secret.kind == "value":
        env["BORG_PASSPHRASE"] = secret.value or ""
    elif secret.kind == "command":
        env["BORG_PASSCOMMAND"] = secret.command or ""
    elif secret.kind is None:
        env["BORG_PASSPHRASE"] = ""  # never prompt: an encrypted repository then fails with PassphraseWrong
    return env


# --- the wrapper ------------------------------------------------------------------------------------------------

class BorgCLI:
    """borg with the rules above; ``repo`` names the repository in messages."""

    def __init__(self, module: Any, secret: SecretSource, *, binary: str | None = None, repo: str = "",
                 purpose: str = "manage", unencrypted_ok: bool = False, base_dir: str | None = None,
                 rsh: str | None = None, key_file: str | None = None, lock_wait: int | None = None,
                 remote_path: str | None = None, extra_env: Mapping[str, Any] | None = None,
                 bypass_lock: bool = False) -> None:
        self.repo = repo
        self.bypass_lock = bypass_lock
        self.secret = secret
        self.lock_wait = lock_wait
        self.remote_path = remote_path
        env = borg_environment(secret, purpose=purpose, unencrypted_ok=unencrypted_ok, base_dir=base_dir, rsh=rsh,
                               key_file=key_file, extra=extra_env)
        scrub = secret.known_values() + [str(v) for v in (extra_env or {}).values() if v and len(str(v)) >= 4]
        self.runner = ToolRunner(module, binary or "borg", env=env, secrets=scrub, name="borg")

    @property
    def env(self) -> dict[str, str]:
        return self.runner.env

    def argv(self, args: Sequence[str]) -> list[str]:
        """``command --log-json [--bypass-lock | --lock-wait N] [--remote-path P] rest...``.

        ``bypass_lock`` is for readers that must leave no trace in the repository (a search on a repository that may
        be read-only or under attack); borg then neither takes nor waits for a lock."""
        common = ["--log-json"]
        if self.bypass_lock:
            common.append("--bypass-lock")
        elif self.lock_wait is not None:
            common += ["--lock-wait", str(self.lock_wait)]
        if self.remote_path:
            common += ["--remote-path", self.remote_path]
        return [args[0], *common, *args[1:]]

    def _open_secret(self) -> int | None:
        return os.open(self.secret.file or "", os.O_RDONLY) if self.secret.kind == "file" else None

    def run(self, args: Sequence[str], *, check: bool = False, warnings_ok: bool = False, error: str | None = None,
            cwd: str | None = None, env: Mapping[str, str] | None = None) -> Result:
        """One borg run. Not checked by default: callers decide on the result (:meth:`fail` names the error).

        ``check`` raises on any non-zero exit, or (``warnings_ok``) only on an error, not on a warning. ``env`` adds
        variables for this run only.
        """
        fd = self._open_secret()
        try:
            call_env = dict(env or {})
            extra: dict[str, Any] = {"pass_fds": [fd]} if fd is not None else {}
            if fd is not None:
                call_env["BORG_PASSPHRASE_FD"] = str(fd)
            if call_env:
                extra["env"] = call_env
            result = self.runner.run(self.argv(args), check=False, cwd=cwd, **extra)
        finally:
            if fd is not None:
                os.close(fd)
        if check and result.rc != 0 and not (warnings_ok and succeeded(result.rc)):
            raise self.fail(result, error or f"borg {args[0]} of {self.repo} failed")
        return result

    def run_json(self, args: Sequence[str], *, error: str | None = None) -> Any:
        result = self.run(args, check=True, error=error)
        return parse_json(result.stdout, what=f"output of borg {args[0]}")

    def run_parallel(self, arg_lists: Sequence[Sequence[str]], *, cwd: str | None = None,
                     error: str | None = None) -> list[Result]:
        """Several runs at once, each with its own passphrase descriptor."""
        fds = [self._open_secret() for _args in arg_lists]
        try:
            per_call = [({"BORG_PASSPHRASE_FD": str(fd)}, [fd]) if fd is not None else ({}, []) for fd in fds]
            try:
                return self.runner.run_parallel([self.argv(a) for a in arg_lists], cwd=cwd, per_call=per_call)
            except ToolError as exc:
                failed = Result(cmd=exc.cmd, rc=exc.rc if exc.rc is not None else 2, stdout=exc.stdout,
                                stderr=exc.stderr)
                raise self.fail(failed, error or f"borg {arg_lists[0][0]} of {self.repo} failed") from exc
        finally:
            for fd in fds:
                if fd is not None:
                    os.close(fd)

    def version(self) -> tuple[int, int, int]:
        result = self.runner.run(["--version"], error="Could not run borg --version")
        return check_version(result.stdout or result.stderr)

    def fail(self, result: Result, what: str) -> ToolError:
        """A ToolError that names the cause: wrong passphrase, failed passcommand, lock, connection, or borg's own
        last error message."""
        ids = error_ids(result.rc, result.stderr)
        messages = [m.splitlines()[0] for m in log_messages(result.stderr)
                    if m.strip() and not m.startswith("Traceback") and m != "Local Exception"]
        reason = last_error_message(result.stderr) or (messages[-1] if messages else f"rc={result.rc}")
        if "PassphraseWrong" in ids:
            msg = (f"The passphrase is wrong for {self.repo} (borg: PassphraseWrong); check passphrase, "
                   "passphrase_file or passcommand.")
        elif "PasscommandFailure" in ids:
            msg = f"The passcommand failed (borg: {reason})."
        elif any(i.startswith("Lock") for i in ids):
            msg = f"{what}: the repository {self.repo} is locked and the lock could not be taken (borg: {reason})"
        elif any(i in ("IntegrityError", "FileIntegrityError", "Repository.CheckNeeded") for i in ids):
            msg = (f"{what}: the repository {self.repo} is damaged (borg: {reason}); run borg check on it, and "
                   "restore from another archive or another copy of the repository")
        elif any(i.startswith("Connection") for i in ids):
            remote = [m for m in log_messages(result.stderr, levels=("WARNING", "ERROR", "CRITICAL"))
                      if m.startswith("Remote:")]
            msg = f"Cannot reach {self.repo}: {remote[-1] if remote else reason}"
        else:
            msg = f"{what}: {reason}"
        return ToolError(msg, cmd=result.cmd, rc=result.rc, stdout=result.stdout[-4000:],
                         stderr=result.stderr[-4000:], borg_msgids=ids)
