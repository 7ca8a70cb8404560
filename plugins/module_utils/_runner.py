# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run an external tool: argv lists only, secrets through the environment or file descriptors, JSON decoded.

A :class:`ToolRunner` wraps ``AnsibleModule.run_command`` (anything with the same signature will do, which is how
unit tests replace it). It never builds a shell string, never expands ``~`` or ``$VARS`` in arguments, and scrubs the
secrets it was given from every message and captured output it hands back.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._errors import (
    InputError,
    ToolError,
    ToolNotFoundError,
)

REDACTED = "********"


@dataclass(frozen=True)
class Result:
    """What one run of a tool gave back."""

    cmd: list[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each non-empty secret in ``text`` with a fixed mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def parse_json(text: str, *, what: str = "output") -> Any:
    """Decode a tool's JSON output, or raise a ToolError naming what was being read."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ToolError(f"Could not decode the JSON {what}: {exc}", stdout=text[:2000]) from exc


def parse_json_lines(text: str) -> list[Any]:
    """Decode newline-delimited JSON (restic and borg stream progress this way); blank lines are skipped."""
    items = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            items.append(parse_json(line, what="line"))
    return items


def json_objects(text: str) -> Iterator[dict[str, Any]]:
    """The JSON objects among a tool's output lines (borg's --log-json, restic's message lines); other lines are
    skipped, as tools mix plain text in."""
    for line in (text or "").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            yield entry


_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    """The first ``X.Y[.Z]`` found in a ``--version`` output, as a tuple of ints."""
    match = _VERSION_RE.search(text)
    if not match:
        raise ToolError(f"Could not find a version number in {text.strip()[:200]!r}")
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def version_string(version: Sequence[int]) -> str:
    return ".".join(str(part) for part in version)


@dataclass
class ToolRunner:
    """Runs one tool (``binary``) with a fixed base environment.

    ``secrets`` are the values to scrub from anything returned or raised; they are never put on the command line by
    the runner. ``env`` is merged into the child's environment (``environ_update``) for every call.
    """

    module: Any
    binary: str
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            self.name = os.path.basename(self.binary)

    def resolve(self) -> str:
        """Absolute path of the binary, or ToolNotFoundError."""
        if os.path.isabs(self.binary):
            if os.access(self.binary, os.X_OK):
                return self.binary
            raise ToolNotFoundError(f"{self.name} was not found at {self.binary} (or is not executable).")
        found = shutil.which(self.binary)
        if not found:
            raise ToolNotFoundError(
                f"{self.name} ({self.binary}) is not installed or not on PATH; "
                "install it (for example with the restoreops.dr.backup_tools role).")
        return found

    def run(self, args: Sequence[str], *, env: Mapping[str, str] | None = None, data: str | None = None,
            check: bool = True, pass_fds: Sequence[int] = (), cwd: str | None = None,
            error: str | None = None) -> Result:
        """Run ``binary args...``; raise ToolError on a non-zero exit unless ``check`` is false."""
        for arg in args:
            if not isinstance(arg, str):
                raise InputError(f"Internal error: argument {arg!r} for {self.name} is not a string.")
        cmd = [self.resolve(), *args]
        environ = dict(self.env)
        if env:
            environ.update(env)
        kwargs: dict[str, Any] = {
            "environ_update": environ,
            "expand_user_and_vars": False,
            "check_rc": False,
        }
        if data is not None:
            kwargs["data"] = data
            kwargs["binary_data"] = True
        if pass_fds:
            kwargs["pass_fds"] = list(pass_fds)
        if cwd:
            kwargs["cwd"] = cwd
        rc, out, err = self.module.run_command(cmd, **kwargs)
        out = redact(out or "", self.secrets)
        err = redact(err or "", self.secrets)
        result = Result(cmd=cmd, rc=rc, stdout=out, stderr=err)
        if check and rc != 0:
            raise self.failure(result, error)
        return result

    def run_json(self, args: Sequence[str], **kwargs: Any) -> Any:
        """Run and decode stdout as one JSON document."""
        result = self.run(args, **kwargs)
        return parse_json(result.stdout, what=f"output of {self.name} {' '.join(args[:1])}")

    def failure(self, result: Result, error: str | None = None) -> ToolError:
        """A ToolError for a failed run, with the tool's last stderr line as the reason."""
        last = next((line.strip() for line in reversed(result.stderr.splitlines()) if line.strip()), "")
        head = error or f"{self.name} {' '.join(result.cmd[1:2])} failed (rc={result.rc})"
        msg = f"{head}: {last}" if last else head
        return ToolError(msg, cmd=result.cmd, rc=result.rc, stdout=result.stdout[-4000:],
                         stderr=result.stderr[-4000:])

    def run_parallel(self, arg_lists: Sequence[Sequence[str]], *, env: Mapping[str, str] | None = None,
                     cwd: str | None = None, error: str | None = None,
                     per_call: Sequence[tuple[Mapping[str, str], Sequence[int]]] | None = None) -> list[Result]:
        """Run several invocations at once (one process each) and wait for all; raise on the first failure.

        ``run_command`` blocks, so this starts the processes itself, with the same rules: argv lists, no shell,
        the runner's environment (secrets included) merged over the module's, output redacted. ``per_call`` gives
        each process its own extra environment and inherited file descriptors (a passphrase descriptor is read to
        its end, so processes cannot share one).
        """
        binary = self.resolve()
        environ = dict(os.environ)
        environ.update(self.env)
        if env:
            environ.update(env)
        procs = []
        for index, args in enumerate(arg_lists):
            cmd = [binary, *args]
            call_env, fds = per_call[index] if per_call else ({}, ())
            procs.append((cmd, subprocess.Popen(cmd, cwd=cwd, env={**environ, **call_env}, pass_fds=tuple(fds),
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                stdin=subprocess.DEVNULL)))
        results = []
        for cmd, proc in procs:
            out, err = proc.communicate()
            results.append(Result(cmd=cmd, rc=proc.returncode,
                                  stdout=redact(out.decode("utf-8", "replace"), self.secrets),
                                  stderr=redact(err.decode("utf-8", "replace"), self.secrets)))
        for result in results:
            if result.rc != 0:
                raise self.failure(result, error)
        return results


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host: signal 0 succeeds, or fails with EPERM (the process
    exists but belongs to someone else). The one test every lock decision of this collection uses."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True
