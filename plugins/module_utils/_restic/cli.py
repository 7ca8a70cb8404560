# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""restic's command line: environment, versions and their differences, failures, and the command wrapper.

Environment (:func:`restic_env`, the one place a restic environment is built): the repository goes through
``RESTIC_REPOSITORY`` (REST URLs may carry ``user:password@``), the password through ``RESTIC_PASSWORD``,
``RESTIC_PASSWORD_FILE`` or ``RESTIC_PASSWORD_COMMAND``; the variables not chosen are set empty, so a value
inherited from the caller's environment cannot win (restic reads the first non-empty one), and
``RESTIC_REPOSITORY_FILE`` is emptied for the same reason. Backend credentials come from ``env``.

Versions: restic 0.14 and later. restic 0.17 added specific exit codes (10 no repository, 11 lock failed,
12 wrong password since 0.17.1) and, with ``--json``, a final ``exit_error`` JSON line on stderr; older versions
exit 1 for every fatal error, so their English message is the only clue. restic 0.17 also made ``restore`` print
JSON lines (status, errors, a summary) and added ``--overwrite``. :func:`classify_failure` and
:func:`restore_args` / :func:`parse_restore_output` hold those differences; nothing else looks at a version.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from ansible_collections.restoreops.dr.plugins.module_utils import _runner
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, ToolError, run_module
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import local_repository_path
from ansible_collections.restoreops.dr.plugins.module_utils._runner import Result, ToolRunner, json_objects, parse_json
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource

MIN_VERSION = (0, 14, 0)
JSON_RESTORE_VERSION = (0, 17, 0)
# `restore --sparse` (writes long runs of zeros as holes) came with restic 0.15.0; 0.14 has no such flag and writes
# every byte (measured with 0.14.0: a 64 MiB file with 8 KiB of data came back with 64 MiB allocated).
SPARSE_RESTORE_VERSION = (0, 15, 0)
OVERWRITE_CHOICES = ("always", "if-changed", "if-newer", "never")


# --- environment ------------------------------------------------------------------------------------------------

def restic_env(repository: str, password: SecretSource, env: Mapping[str, Any] | None,
               cache_dir: str | None) -> dict[str, str]:
    """The environment restic runs with: backend credentials, repository, password source, cache."""
    environ = {str(k): str(v) for k, v in (env or {}).items()}
    environ["RESTIC_REPOSITORY"] = repository
    environ["RESTIC_REPOSITORY_FILE"] = ""
    environ["RESTIC_PASSWORD"] = password.value if password.value is not None else ""
    environ["RESTIC_PASSWORD_FILE"] = password.file if password.file is not None else ""
    environ["RESTIC_PASSWORD_COMMAND"] = password.command if password.command is not None else ""
    if cache_dir:
        environ["RESTIC_CACHE_DIR"] = cache_dir
    return environ


def secrets_of(repository: str, password: SecretSource, env: Mapping[str, Any] | None) -> list[str]:
    """Values to scrub from anything we return: the password, every ``env`` value, a URL's password."""
    values = list(password.known_values())
    values += [str(v) for v in (env or {}).values() if v is not None and len(str(v)) >= 4]
    url = repository.split(":", 1)[1] if repository.startswith("rest:") else repository
    try:
        userinfo_password = urlsplit(url).password
    except ValueError:
        userinfo_password = None
    if userinfo_password:
        values.append(userinfo_password)
    return values


def check_repository(repository: str) -> str:
    """A local repository must be an absolute path (a backend URL is taken as it is); else InputError."""
    local = local_repository_path(repository or "")
    if local is not None and not os.path.isabs(local):
        raise InputError(f"repository must be an absolute path or a backend URL (rest:, s3:, sftp:, ...), got "
                         f"{repository!r}: a relative path would be resolved against the module's working "
                         "directory.")
    return repository


def tool_runner(module: Any, repository: str, password: SecretSource, env: Mapping[str, Any] | None,
                cache_dir: str | None, binary: str | None) -> ToolRunner:
    """A runner for restic on ``repository``: repository, password and credentials in its environment only."""
    check_repository(repository)
    return ToolRunner(module=module, binary=binary or "restic", env=restic_env(repository, password, env, cache_dir),
                      secrets=secrets_of(repository, password, env), name="restic")


def repository_argument_spec() -> dict[str, Any]:
    """The options that reach a repository (documented by the ``restoreops.dr.restic`` doc fragment)."""
    return dict(
        repository=dict(type="str", required=True),
        password=dict(type="str", no_log=True),
        password_file=dict(type="path", no_log=False),
        password_command=dict(type="str", no_log=False),
        env=dict(type="dict", default={}, no_log=True),
        restic_binary=dict(type="str", default="restic"),
        cache_dir=dict(type="path"),
    )


PASSWORD_OPTIONS = ("password", "password_file", "password_command")


def run_restic_module(module_class: Any, options: Mapping[str, Any], body: Any, **kwargs: Any) -> None:
    """Build a restic module (the repository options, exactly one password source, check mode) and run ``body``
    through the one error boundary."""
    module = module_class(argument_spec={**repository_argument_spec(), **options},
                          mutually_exclusive=[PASSWORD_OPTIONS], required_one_of=[PASSWORD_OPTIONS],
                          supports_check_mode=True, **kwargs)
    run_module(module, body)


def password_source(params: Mapping[str, Any]) -> SecretSource:
    """``password`` / ``password_file`` / ``password_command``: exactly one, checked."""
    password = SecretSource.from_params(params, "password", "password_file", "password_command").validate()
    if not password.given:
        raise InputError("Give the repository password as password, password_file or password_command.")
    return password


# --- versions ---------------------------------------------------------------------------------------------------

def check_version(text: str) -> tuple[int, int, int]:
    version = _runner.parse_version(text)
    if version < MIN_VERSION:
        raise InputError(f"restic {_runner.version_string(version)} is too old; restoreops.dr needs "
                         f"{_runner.version_string(MIN_VERSION)} or newer.")
    return version


def has_json_restore(version: Sequence[int]) -> bool:
    return tuple(version) >= JSON_RESTORE_VERSION


def has_sparse_restore(version: Sequence[int]) -> bool:
    return tuple(version) >= SPARSE_RESTORE_VERSION


# --- failures ---------------------------------------------------------------------------------------------------

# The one place that reads restic's stderr. restic 0.14 exits with 1 for every fatal error and prints no JSON error
# object, so a wrong password, a missing repository and a backend's refusal to delete cannot be told apart by return
# code; restic 0.17 and later give 10 (no repository), 11 (lock failed) and 12 (wrong password), and with --json an
# exit_error line, which are preferred when present. Locks are never decided here: they are read back as JSON.
FAILURE_CODES = {10: "no_repository", 11: "locked", 12: "wrong_password"}
_FAILURE_MARKERS = (
    ("wrong_password", re.compile(r"wrong password or no key found", re.I)),
    ("no_repository", re.compile(r"(Is there a repository at the following location\?|"
                                 r"unable to open config file|repository does not exist)", re.I)),
    ("forbidden", re.compile(r"(\b403\b[^\n]*Forbidden|Forbidden[^\n]*\(403\)|AccessDenied|Access Denied)",
                             re.I)),
)


def exit_error(stderr: str) -> dict[str, Any] | None:
    """restic 0.17+'s final ``{"message_type": "exit_error", "code": N, "message": ...}`` line, if any."""
    finals = [entry for entry in json_objects(stderr) if entry.get("message_type") == "exit_error"]
    return finals[-1] if finals else None


def classify_failure(rc: int, stderr: str) -> str:
    """One of ``wrong_password``, ``no_repository``, ``locked``, ``forbidden`` or ``other``."""
    if rc in FAILURE_CODES:
        return FAILURE_CODES[rc]
    final = exit_error(stderr)
    if final is not None and final.get("code") in FAILURE_CODES:
        return FAILURE_CODES[final["code"]]
    text = str(final.get("message", "")) if final is not None else (stderr or "")
    for kind, pattern in _FAILURE_MARKERS:
        if pattern.search(text):
            return kind
    return "other"


# The sentences of the two causes users hit most, shared by every module that opens a restic repository (a module
# that reports problems instead of failing, such as key_escrow_check, uses the same words).
EXPLANATIONS = {
    "wrong_password": "The repository did not open: wrong password (restic found no key that it opens)",
    "no_repository": "There is no restic repository at this location (initialise it first, for example with "
                     "restoreops.dr.restic_repo)",
}


class ExplainedError(ToolError):
    """A restic failure already given its sentence by :func:`explain`."""


def explain(exc: ToolError) -> ToolError:
    """The same failure with a sentence for the two causes users hit most; anything else is left as restic said."""
    if isinstance(exc, ExplainedError):
        return exc
    kind = classify_failure(exc.rc or 0, exc.stderr)
    head = EXPLANATIONS.get(kind)
    if head is None:
        return exc
    return ExplainedError(f"{head}; nothing was changed. restic said: {exc.msg}", cmd=exc.cmd, rc=exc.rc,
                          stdout=exc.stdout, stderr=exc.stderr, **exc.details)


# --- restore: the per-version differences ------------------------------------------------------------------------

def restore_args(version: Sequence[int], snapshot: str, target: str, includes: Sequence[str] = (),
                 overwrite: str | None = None, extra: Sequence[str] = ()) -> list[str]:
    """``restic restore`` arguments. restic 0.17+ prints JSON lines (``--json``) and knows ``--overwrite``; before
    0.17 a restore always overwrites, so only V(always) (or nothing) can be asked of it."""
    args = ["restore", snapshot, "--target", target, *extra]
    for inc in includes:
        args += ["--include", inc]
    if overwrite is not None and overwrite not in OVERWRITE_CHOICES:
        raise InputError(f"overwrite must be one of {', '.join(OVERWRITE_CHOICES)}, got {overwrite!r}.")
    if has_json_restore(version):
        args.append("--json")
        if overwrite is not None:
            args += ["--overwrite", overwrite]
    elif overwrite not in (None, "always"):
        raise InputError(f"restic {_runner.version_string(version)} always overwrites on restore; "
                         f"--overwrite {overwrite} needs restic 0.17 or newer.")
    return args


@dataclass(frozen=True)
class RestoreOutcome:
    """What a restore reported: restic 0.17+'s summary and errors; None/empty for older versions."""

    summary: dict[str, Any] | None
    errors: list[dict[str, Any]]


def parse_restore_output(version: Sequence[int], stdout: str, stderr: str) -> RestoreOutcome:
    """The ``summary`` line (stdout) and the ``error`` lines (stderr) of a JSON restore; status lines are skipped."""
    if not has_json_restore(version):
        return RestoreOutcome(None, [])
    summary = None
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        entry = parse_json(line, what="line of restic restore")
        if isinstance(entry, dict) and entry.get("message_type") == "summary":
            summary = entry
    errors = [{"item": entry.get("item", ""), "message": (entry.get("error") or {}).get("message", "")}
              for entry in json_objects(stderr) if entry.get("message_type") == "error"]
    return RestoreOutcome(summary, errors)


# What restic says when a pack or blob does not decrypt or match its hash: the repository is damaged.
DAMAGE_MARKERS = ("ciphertext verification failed", "decrypting blob", "hash does not match", "invalid data returned",
                  "unexpected EOF", "checksum mismatch", "does not match")
_RESTORE_ERROR_RE = re.compile(r"^ignoring error for (?P<item>.*?): (?P<message>.+)$")


def restore_errors(stderr: str) -> list[tuple[str, str]]:
    """The per-file errors of a failed restore, as (path, message): restic 0.17+'s JSON ``error`` lines, or the
    ``ignoring error for PATH: MESSAGE`` lines older versions print; repeats are dropped, order kept."""
    found: list[tuple[str, str]] = []
    for entry in json_objects(stderr):
        if entry.get("message_type") == "error":
            found.append((str(entry.get("item", "")), str((entry.get("error") or {}).get("message", ""))))
    for line in (stderr or "").splitlines():
        match = _RESTORE_ERROR_RE.match(line.strip())
        if match:
            found.append((match.group("item"), match.group("message")))
    return list(dict.fromkeys(found))


# --- the wrapper ------------------------------------------------------------------------------------------------

class Restic:
    """restic commands; every call gets the repository and password from the runner's environment."""

    def __init__(self, runner: ToolRunner) -> None:
        self.runner = runner
        self._version: tuple[int, int, int] | None = None

    def version(self) -> tuple[int, int, int]:
        if self._version is None:
            result = self.runner.run(["version"], error="Could not run restic version")
            self._version = check_version(result.stdout)
        return self._version

    def run(self, args: Sequence[str], **kwargs: Any) -> Result:
        return self.runner.run(args, **kwargs)

    def failure(self, result: Result, what: str) -> ToolError:
        return explain(self.runner.failure(result, what))

    def cat_config(self) -> dict[str, Any] | None:
        """The repository config (``id``, ``version``), or None when there is no repository; other failures raise."""
        result = self.runner.run(["cat", "config", "--no-lock", "--quiet"], check=False)
        if result.rc == 0:
            data = parse_json(result.stdout, what="restic repository config")
            if not isinstance(data, dict) or not data.get("id"):
                raise ToolError("restic printed no repository config; the repository looks damaged.",
                                stdout=result.stdout[-2000:])
            return data
        if classify_failure(result.rc, result.stderr) == "no_repository":
            return None
        raise self.failure(result, "Could not open the restic repository")

    def init(self) -> None:
        result = self.runner.run(["init", "--quiet"], check=False)
        if result.rc != 0:
            raise self.failure(result, "restic init failed")

    def snapshots(self, host: str | None = None, extra: Sequence[str] = ()) -> Any:
        args = ["snapshots", "--json", "--no-lock", *extra]
        if host:
            args += ["--host", host]
        result = self.runner.run(args, check=False)
        if result.rc != 0:
            raise self.failure(result, "restic snapshots failed")
        return parse_json(result.stdout, what="output of restic snapshots")

    def ls(self, snapshot: str, paths: Sequence[str] = ()) -> list[dict[str, Any]]:
        """The nodes of a snapshot (``restic ls --json --no-lock``), below ``paths`` when given; each node is restic's
        JSON object (``path``, ``type`` file/dir/symlink/..., ``size``, ``mtime``). Reads only: no lock is taken."""
        args = ["ls", "--json", "--no-lock", snapshot]
        if paths:
            args += ["--recursive", *paths]
        result = self.runner.run(args, check=False)
        if result.rc != 0:
            raise self.failure(result, f"restic ls of snapshot {snapshot[:8]} failed")
        return [entry for entry in json_objects(result.stdout)
                if "node" in (entry.get("struct_type"), entry.get("message_type")) and "path" in entry]

    def lock_ids(self) -> list[str]:
        result = self.runner.run(["list", "locks", "--no-lock"], check=False)
        if result.rc != 0:
            raise self.failure(result, "Could not list restic locks")
        return [line.strip() for line in result.stdout.splitlines() if line.strip()]

    def lock_documents(self) -> list[tuple[str, dict[str, Any]]]:
        """(id, ``restic cat lock`` JSON) of every lock; a lock removed between list and cat is skipped."""
        out = []
        for lock_id in self.lock_ids():
            result = self.runner.run(["cat", "lock", lock_id, "--no-lock"], check=False)
            if result.rc != 0:
                continue  # removed between list and cat: its holder finished
            out.append((lock_id, parse_json(result.stdout, what="restic lock")))
        return out

    def unlock(self) -> None:
        self.runner.run(["unlock"], error="restic unlock failed")

    def stats_raw_data(self) -> int:
        data = self.runner.run_json(["stats", "--json", "--mode", "raw-data", "--no-lock", "--quiet"])
        return int(data.get("total_size", 0))

    def existing_paths(self, snapshot: str, paths: Sequence[str]) -> set[str]:
        """Which of the absolute ``paths`` exist in ``snapshot``: ``restic ls --json`` with the paths as filters,
        not recursive, lists each existing one (with its direct children) and nothing for a missing one."""
        result = self.runner.run(["ls", "--json", "--no-lock", snapshot, *paths], check=False)
        if result.rc != 0:
            raise self.failure(result, f"restic ls of snapshot {snapshot[:8]} failed")
        listed = {str(entry["path"]) for entry in json_objects(result.stdout) if entry.get("path")}
        return {path for path in paths if path in listed}

    def restore_size(self, snapshot: str) -> int:
        return int(self.snapshot_stats(snapshot).get("total_size", 0))

    def snapshot_stats(self, snapshot: str) -> dict[str, Any]:
        """``restic stats --json --no-lock --mode restore-size SNAPSHOT``: ``total_size`` (bytes a restore writes)
        and ``total_file_count``."""
        data = self.runner.run_json(["stats", "--json", "--no-lock", "--mode", "restore-size", snapshot])
        return data if isinstance(data, dict) else {}

    def check(self, args: Sequence[str]) -> Result:
        return self.runner.run([*args, "--quiet"], check=False)

    def restore(self, snapshot: str, target: str, includes: Sequence[str] = (), *, overwrite: str | None = None,
                extra: Sequence[str] = ()) -> RestoreOutcome:
        version = self.version()
        args = restore_args(version, snapshot, target, includes, overwrite, extra)
        result = self.runner.run(args, check=False)
        if result.rc != 0:
            errors = restore_errors(result.stderr)
            if not errors:
                raise self.failure(result, f"restic restore of snapshot {snapshot[:8]} failed")
            first = "; ".join(f"{item}: {message}" if item else message for item, message in errors[:3])
            damaged = any(marker in message for _item, message in errors for marker in DAMAGE_MARKERS)
            raise ToolError(
                f"restic restore of snapshot {snapshot[:8]} failed with {len(errors)} error(s): {first}"
                + ("; the repository is damaged: run restic check --read-data on it, and restore from another "
                   "snapshot or copy" if damaged else ""),
                cmd=result.cmd, rc=result.rc, stdout=result.stdout[-4000:], stderr=result.stderr[-4000:],
                restore_errors=[{"item": item, "message": message} for item, message in errors[:20]])
        return parse_restore_output(version, result.stdout, result.stderr)
