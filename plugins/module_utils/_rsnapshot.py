# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""rsnapshot configuration checks: tabs, ``rsnapshot configtest`` and the freshness of the newest snapshot.

rsnapshot splits every configuration line on runs of TAB characters. A line whose fields are separated by spaces
becomes one long field, and rsnapshot either refuses the file with a cryptic message or, worse, reads a backup
point whose source is ``/etc/ localhost/``. :func:`scan_config` finds those lines without running rsnapshot and
proposes the line with tabs; :func:`main` also runs ``configtest`` and checks the newest snapshot's age.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError
from ansible_collections.restoreops.dr.plugins.module_utils._runner import ToolRunner

# directive -> (fewest fields, most fields) including the directive itself, as rsnapshot 1.4 reads them.
# Single-value directives whose value may legitimately hold spaces (a command with arguments, rsync options,
# a path) are listed with (2, 2): only a directive glued to its value by spaces can be detected there.
DIRECTIVES: dict[str, tuple[int, int]] = {
    "config_version": (2, 2),
    "snapshot_root": (2, 2),
    "include_conf": (2, 2),
    "no_create_root": (2, 2),
    "cmd_cp": (2, 2),
    "cmd_rm": (2, 2),
    "cmd_rsync": (2, 2),
    "cmd_ssh": (2, 2),
    "cmd_logger": (2, 2),
    "cmd_du": (2, 2),
    "cmd_rsnapshot_diff": (2, 2),
    "cmd_preexec": (2, 2),
    "cmd_postexec": (2, 2),
    "linux_lvm_cmd_lvcreate": (2, 2),
    "linux_lvm_cmd_lvremove": (2, 2),
    "linux_lvm_cmd_mount": (2, 2),
    "linux_lvm_cmd_umount": (2, 2),
    "linux_lvm_snapshotsize": (2, 2),
    "linux_lvm_snapshotname": (2, 2),
    "linux_lvm_vgpath": (2, 2),
    "linux_lvm_mountpath": (2, 2),
    "retain": (3, 3),
    "interval": (3, 3),
    "verbose": (2, 2),
    "loglevel": (2, 2),
    "logfile": (2, 2),
    "lockfile": (2, 2),
    "stop_on_stale_lockfile": (2, 2),
    "rsync_short_args": (2, 2),
    "rsync_long_args": (2, 2),
    "ssh_args": (2, 2),
    "du_args": (2, 2),
    "one_fs": (2, 2),
    "include": (2, 2),
    "exclude": (2, 2),
    "include_file": (2, 2),
    "exclude_file": (2, 2),
    "link_dest": (2, 2),
    "sync_first": (2, 2),
    "use_lazy_deletes": (2, 2),
    "rsync_numtries": (2, 2),
    "backup": (3, 4),
    "backup_script": (3, 3),
    "backup_exec": (2, 3),
}

_WS = re.compile(r"[ \t]+")


@dataclass
class LineProblem:
    """One configuration line that rsnapshot will misread, with the line that fixes it."""

    line: int
    directive: str
    kind: str  # spaces | leading_whitespace | trailing_whitespace | unknown_directive
    text: str
    fix: str | None
    message: str


@dataclass
class ParsedConfig:
    """What the checks need from a configuration: its directives (as rsnapshot would read the fixed file)."""

    snapshot_root: str | None = None
    intervals: list[tuple[str, int]] = field(default_factory=list)
    sync_first: bool = False
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def fixed_lines(self) -> dict[int, str]:
        return {p.line: p.fix for p in self.problems if p.fix is not None}


def _split_fields(directive: str, fields: list[str]) -> list[str]:
    """Split the space-joined fields of a line until the directive has the fields it needs.

    The field that holds spaces is split from the right, so a source path with spaces in a ``backup`` line keeps
    them when only the separator before the destination is a space.
    """
    low, _high = DIRECTIVES[directive]
    fields = list(fields)
    while len(fields) < low:
        idx = next((i for i in range(len(fields) - 1, 0, -1) if _WS.search(fields[i].strip())), None)
        if idx is None:
            break
        need = low - len(fields)
        parts = _WS.split(fields[idx].strip(), maxsplit=0)
        # keep the leftmost parts together (a path or command may contain spaces), split off what is missing
        head = parts[: len(parts) - need] if len(parts) > need else parts[:1]
        tail = parts[len(head):]
        fields[idx:idx + 1] = [" ".join(head), *tail]
    return fields


def scan_line(number: int, raw: str) -> tuple[LineProblem | None, list[str] | None]:
    """Check one line; return (problem or None, the fields rsnapshot should see or None for blank/comment)."""
    text = raw.rstrip("\r\n")
    if not text.strip() or text.startswith("#"):
        return None, None
    problem_kinds: list[str] = []
    body = text
    if body[0] in " \t":
        problem_kinds.append("leading_whitespace")
        body = body.lstrip(" \t")
        if body.startswith("#"):
            # rsnapshot only treats a line that starts with '#' as a comment
            return (LineProblem(number, "#", "leading_whitespace", text, body,
                                f"line {number}: a comment must start in the first column; "
                                "rsnapshot reads this line as a directive."), None)
    stripped = body.rstrip(" \t")
    if stripped != body:
        problem_kinds.append("trailing_whitespace")
        body = stripped
    fields = [f for f in re.split(r"\t+", body) if f != ""]
    head = fields[0]
    directive = _WS.split(head, maxsplit=1)[0]
    if directive not in DIRECTIVES:
        kinds = ", ".join(problem_kinds)
        return (LineProblem(number, directive, "unknown_directive", text, None,
                            f"line {number}: unknown directive {directive!r}"
                            + (f" ({kinds})" if kinds else "") + "."), fields)
    if head != directive:
        # the directive and its first value are separated by spaces
        fields = [directive, head[len(directive):].strip(" "), *fields[1:]]
        problem_kinds.insert(0, "spaces")
    before = len(fields)
    fields = _split_fields(directive, fields)
    if len(fields) != before and "spaces" not in problem_kinds:
        problem_kinds.insert(0, "spaces")
    if not problem_kinds:
        return None, fields
    fix = "\t".join(fields)
    kind = problem_kinds[0]
    if kind == "spaces":
        message = (f"line {number}: spaces separate the fields of {directive!r}; rsnapshot needs tabs. "
                   f"Fix: {fix!r}")
    elif kind == "leading_whitespace":
        message = f"line {number}: whitespace before {directive!r}; a directive must start in the first column."
    else:
        message = f"line {number}: whitespace at the end of {directive!r} becomes part of its last value."
    return LineProblem(number, directive, kind, text, fix, message), fields


def parse_config(text: str) -> ParsedConfig:
    """Scan every line; collect problems and the values later checks need (read from the fixed fields)."""
    parsed = ParsedConfig()
    for number, raw in enumerate(text.splitlines(), start=1):
        problem, fields = scan_line(number, raw)
        if problem is not None:
            parsed.problems.append(problem)
        if not fields:
            continue
        directive = fields[0]
        if directive == "snapshot_root" and len(fields) >= 2:
            parsed.snapshot_root = fields[1]
        elif directive in ("retain", "interval") and len(fields) >= 3:
            with contextlib.suppress(ValueError):
                parsed.intervals.append((fields[1], int(fields[2])))
        elif directive == "sync_first" and len(fields) >= 2:
            parsed.sync_first = fields[1].strip() == "1"
    return parsed


def fixed_text(text: str, problems: list[LineProblem]) -> str:
    """The configuration with every fixable line replaced by its fix; line endings kept."""
    fixes = {p.line: p.fix for p in problems if p.fix is not None}
    out = []
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        if number in fixes:
            ending = raw[len(raw.rstrip("\r\n")):]
            out.append(f"{fixes[number]}{ending}")
        else:
            out.append(raw)
    return "".join(out)


@dataclass
class Freshness:
    """The newest snapshot directory of the lowest retain level and its age."""

    checked: bool
    path: str | None = None
    interval: str | None = None
    exists: bool = False
    mtime: float | None = None
    age_hours: float | None = None
    max_age_hours: float | None = None
    fresh: bool | None = None
    message: str | None = None


def judge_freshness(parsed: ParsedConfig, interval: str | None, max_age_hours: float, now: float,
                    mtime_of: Any) -> Freshness:
    """Decide whether ``<snapshot_root>/<interval>.0`` is younger than ``max_age_hours``.

    ``mtime_of(path)`` returns the mtime or None when the path is not a directory (injected for tests).
    """
    if not parsed.snapshot_root:
        return Freshness(True, max_age_hours=max_age_hours, fresh=False,
                         message="No snapshot_root in the configuration: cannot find the newest snapshot.")
    levels = [name for name, _count in parsed.intervals]
    if interval is None:
        if not levels:
            return Freshness(True, max_age_hours=max_age_hours, fresh=False,
                             message="No retain (or interval) line in the configuration.")
        interval = levels[0]
    elif levels and interval not in levels:
        raise InputError(f"interval {interval!r} is not a retain level of this configuration "
                         f"(levels: {', '.join(levels)}).")
    path = os.path.join(parsed.snapshot_root, f"{interval}.0")
    mtime = mtime_of(path)
    if mtime is None:
        return Freshness(True, path=path, interval=interval, exists=False, max_age_hours=max_age_hours,
                         fresh=False, message=f"The newest snapshot {path} does not exist: no backup has run.")
    age = max(0.0, (now - mtime) / 3600.0)
    fresh = age <= max_age_hours
    message = None if fresh else (f"The newest snapshot {path} is {age:.1f} h old, older than "
                                  f"{max_age_hours:g} h.")
    return Freshness(True, path=path, interval=interval, exists=True, mtime=mtime, age_hours=round(age, 3),
                     max_age_hours=max_age_hours, fresh=fresh, message=message)


def dir_mtime(path: str) -> float | None:
    try:
        if not os.path.isdir(path):
            return None
        return os.stat(path).st_mtime
    except OSError:
        return None


def run_configtest(runner: ToolRunner, path: str) -> dict[str, Any]:
    """``rsnapshot -c PATH configtest``; rsnapshot answers by its exit code."""
    result = runner.run(["-c", path, "configtest"], check=False)
    return {"ran": True, "ok": result.rc == 0, "rc": result.rc,
            "errors": parse_configtest_errors(result.stdout + "\n" + result.stderr),
            "output": (result.stdout + result.stderr).strip()[-4000:]}


def parse_configtest_errors(text: str) -> list[str]:
    """rsnapshot's ``ERROR:`` lines, with its backslash-continued lines joined and rulers dropped."""
    errors: list[str] = []
    continued = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("ERROR:"):
            part = line[len("ERROR:"):].strip()
            if continued and errors:
                errors[-1] += " " + part
            else:
                errors.append(part)
        elif continued and line and errors:
            errors[-1] += " " + line
        else:
            continued = False
            continue
        continued = errors[-1].endswith("\\")
        if continued:
            errors[-1] = errors[-1][:-1].rstrip()
    return [e.strip() for e in errors if e.strip() and set(e.strip()) != {"-"}]


def main(module: Any) -> dict[str, Any]:
    params = module.params
    path: str = params["path"]
    if not os.path.isabs(path):
        raise InputError(f"path must be an absolute path, got {path!r}.")
    if not os.path.isfile(path):
        raise InputError(f"The rsnapshot configuration {path} does not exist or is not a regular file.")
    max_age = float(params["max_age_hours"])
    if max_age <= 0:
        raise InputError("max_age_hours must be greater than 0.")
    try:
        with open(path, encoding="utf-8") as handle:
            original = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {path}: {exc}") from exc

    parsed = parse_config(original)
    levels = [name for name, _count in parsed.intervals]
    if params["check_freshness"] and params["interval"] and levels and params["interval"] not in levels:
        raise InputError(f"interval {params['interval']!r} is not a retain level of this configuration "
                         f"(levels: {', '.join(levels)}).")
    new_text = fixed_text(original, parsed.problems)
    will_fix = bool(params["fix"]) and new_text != original
    changed = False
    result: dict[str, Any] = {"path": path}

    if will_fix:
        changed = True
        if module._diff:
            result["diff"] = {"before": original, "after": new_text,
                              "before_header": path, "after_header": f"{path} (tabs)"}
        if not module.check_mode:
            _write_atomic(path, new_text)

    runner = ToolRunner(module, params["rsnapshot_bin"], name="rsnapshot")
    configtest: dict[str, Any] = {"ran": False, "ok": None, "rc": None, "errors": [], "output": ""}
    if params["configtest"]:
        if will_fix and module.check_mode:
            # test what the file would be, without touching it
            configtest = _configtest_copy(runner, path, new_text)
        else:
            configtest = run_configtest(runner, path)

    # with fix, the fixable lines are (or in check mode would be) gone: what remains is what a fix cannot mend
    remaining = [p for p in parsed.problems if not (will_fix and p.fix is not None)]
    if params["check_freshness"]:
        fresh = judge_freshness(parsed, params["interval"], max_age, time.time(), dir_mtime)
    else:
        fresh = Freshness(False, max_age_hours=max_age)

    problems: list[str] = [p.message for p in remaining]
    if configtest["ran"] and not configtest["ok"]:
        boilerplate = ("Errors were found in", "rsnapshot can not continue", "sure you don't have spaces")
        specific = [e for e in configtest["errors"] if not e.startswith(boilerplate)]
        why = "; ".join(specific[:4]) or f"rc={configtest['rc']}"
        problems.append(f"rsnapshot configtest failed: {why}")
    if fresh.checked and not fresh.fresh and fresh.message:
        problems.append(fresh.message)

    result.update(
        changed=changed,
        ok=not problems,
        problems=problems,
        lines=[asdict(p) for p in parsed.problems],
        fixed=will_fix,
        configtest=configtest,
        snapshot=asdict(fresh),
    )
    if problems and params["fail_on_problem"]:
        raise RestoreOpsError(f"{path}: " + " ".join(problems), **{k: v for k, v in result.items() if k != "diff"})
    return result


def _write_atomic(path: str, text: str) -> None:
    st = os.stat(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rsnapshot-conf.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, st.st_mode & 0o7777)
        with contextlib.suppress(PermissionError):
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _configtest_copy(runner: ToolRunner, path: str, text: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rsnapshot-configtest.") as tmp:
        copy = os.path.join(tmp, os.path.basename(path))
        with open(copy, "w", encoding="utf-8") as handle:
            handle.write(text)
        outcome = run_configtest(runner, copy)
        outcome["output"] = outcome["output"].replace(copy, path)
        outcome["errors"] = [e.replace(copy, path) for e in outcome["errors"]]
        return outcome


# --- rsnapshot snapshots as a restore source (restoreops.dr.backup_restore tool=rsnapshot) -----------------------
# A snapshot is a directory ``<snapshot root>/<interval>.<N>`` (daily.0 the newest daily one) holding, below the
# destination of each backup line (``localhost/``), the backed-up tree with its absolute paths (rsnapshot's default
# ``--relative``). It is read through rsync alone, locally or over SSH, so that listing and copying share one path.

SNAPSHOT_NAME = re.compile(r"^(?P<interval>[A-Za-z][A-Za-z0-9_-]*)\.(?P<n>\d+)$")
# ``rsync --list-only --no-human-readable`` with TZ=UTC: mode, size, date, time, name.
_LIST_LINE = re.compile(r"^(?P<mode>[-a-zA-Z]{10})\s+(?P<size>\d+)\s+(?P<date>\d{4}/\d\d/\d\d)\s+"
                        r"(?P<time>\d\d:\d\d:\d\d)\s(?P<name>.+)$")
# The --out-format of a restore: itemized changes, bytes sent for the file, its length, its name.
OUT_FORMAT = "%i|%b|%l|%n"
_REMOTE = re.compile(r"^(?:(?P<user>[^@/:\s]+)@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>/.*)$")


@dataclass(frozen=True)
class ListedEntry:
    """One line of ``rsync --list-only``."""

    mode: str
    size: int
    mtime: str  # ISO 8601, UTC
    name: str


def split_repository(repository: str) -> tuple[str | None, str]:
    """``[user@]host:/path`` -> (``[user@]host``, ``/path``); a local absolute path -> (None, path). InputError for
    anything else (a relative path, ``host:relative``, an rsync daemon's ``host::module``)."""
    if repository.startswith("/"):
        return None, os.path.normpath(repository)
    match = _REMOTE.match(repository)
    if match and "::" not in repository and "://" not in repository:
        login = (match.group("user") + "@" if match.group("user") else "") + match.group("host")
        return login, os.path.normpath(match.group("path"))
    raise InputError(f"repository must be the snapshot root as an absolute path or user@host:/absolute/path for "
                     f"rsnapshot, got {repository!r}.")


def parse_list_only(text: str) -> list[ListedEntry]:
    """The entries of ``rsync --list-only --no-human-readable`` (run with TZ=UTC), without ``.``."""
    entries = []
    for line in text.splitlines():
        match = _LIST_LINE.match(line.rstrip("\n"))
        if not match or match.group("name") == ".":
            continue
        stamp = f"{match.group('date').replace('/', '-')}T{match.group('time')}+00:00"
        entries.append(ListedEntry(match.group("mode"), int(match.group("size")), stamp, match.group("name")))
    return entries


def snapshot_dirs(entries: list[ListedEntry]) -> list[ListedEntry]:
    """The snapshot directories (``<interval>.<N>``) of a snapshot root's listing; ``_delete.*`` and other names
    are not snapshots."""
    return [e for e in entries if e.mode.startswith("d") and SNAPSHOT_NAME.match(e.name)]


def snapshot_id(mtime_iso: str) -> str:
    """A snapshot's id: its directory's mtime, ``20261201T033000Z``. It stays with the snapshot when rsnapshot
    rotates daily.0 to daily.1, so a resumed restore finds the same data under its new name."""
    return mtime_iso[:19].replace("-", "").replace(":", "") + "Z"


@dataclass
class Transfer:
    """What one rsync run transferred, from its --out-format lines."""

    files: int = 0
    bytes_sent: int = 0
    file_bytes: int = 0
    deleted: int = 0
    names: list[str] = field(default_factory=list)


def parse_transfer(text: str) -> Transfer:
    """Sum the ``%i|%b|%l|%n`` lines: a regular file received (``>f``) counts, with the bytes rsync sent for it
    (``%b``, less than its length when only parts differed) and its length; ``*deleting`` lines are counted apart."""
    out = Transfer()
    for line in text.splitlines():
        parts = line.split("|", 3)
        if len(parts) != 4:
            continue
        flags, sent, length, name = parts
        if flags.startswith("*deleting"):
            out.deleted += 1
        elif flags.startswith(">f"):
            out.files += 1
            out.bytes_sent += int(sent) if sent.isdigit() else 0
            out.file_bytes += int(length) if length.isdigit() else 0
            out.names.append(name)
    return out


def rsync_sources(login: str | None, root: str, snapshot: str, prefix: str, includes: list[str]) -> list[str]:
    """rsync's source arguments for a restore of ``includes`` (absolute paths; the whole backup point when empty)
    from ``<root>/<snapshot>/<prefix>``; ``/./`` marks where --relative starts, so each path lands in staging under
    its absolute path."""
    base = "/".join(part.strip("/") for part in (root, snapshot, prefix) if part.strip("/"))
    base = "/" + base
    host = f"{login}:" if login else ""
    if not includes:
        return [f"{host}{base}/./"]
    return [f"{host}{base}/.{path}" for path in includes]
