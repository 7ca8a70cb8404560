# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL point-in-time recovery from a base backup and archived WAL: the body of ``restoreops.dr.pg_pitr``.

The decisions are pure functions over plain data, unit-tested without PostgreSQL: which base backup serves a target
(:func:`choose_base_backup`), what the recovery settings are (:func:`recovery_settings`), how far the archive reaches
(:func:`archive_segments`) and what the restore command's state file says went wrong (:func:`explain_failure`).
:class:`Recovery` does the work on the host: stop the server, move the data directory aside (never delete it), unpack
the base backup, write the recovery settings, start the server, wait for the end of recovery while reporting progress
(a stat of ``recovery.signal`` and of the postmaster, no database connection per poll), read where it stopped.

The WAL archive is read by the restore command of ``restoreops.dr.pg_wal_archive`` (``restoreops-wal-restore``),
which copies one segment and records in a JSON state file the last segment restored and any segment that is missing:
that is how a gap in the archive is told apart from its end.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError
from ansible_collections.restoreops.dr.plugins.module_utils._progress import ChildWrites, ProgressReporter
from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time

UTC = dt.timezone.utc
SEGMENT = re.compile(r"^[0-9A-F]{24}$")
LABEL_FILE = "restoreops-backup.json"
BLOCK_BEGIN = "# BEGIN restoreops.dr.pg_wal_archive point-in-time recovery"
BLOCK_END = "# END restoreops.dr.pg_wal_archive point-in-time recovery"
DONE_SUFFIX = ".pitr-done.json"


# The restore_command PostgreSQL runs for each file it needs (installed by the module at restore_script).
RESTORE_SCRIPT = r'''#!/usr/bin/python3
# Installed by restoreops.dr.pg_pitr; changes are overwritten.
# restore_command of restoreops.dr.pg_pitr (point-in-time recovery):
#   restoreops-wal-restore ARCHIVE_DIR STATE_FILE %f %p
# Copies one file from the archive and records, in STATE_FILE (JSON), the last segment restored and any segment
# that is missing. A missing segment with later segments of the same timeline behind it is a gap, not the end of
# the archive: the script then exits with 127, which makes PostgreSQL abort recovery instead of promoting a server
# that silently lacks everything after the gap.
import datetime
import json
import os
import re
import shutil
import sys

SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def stamp(path):
    ts = os.stat(path).st_mtime
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")


def load(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def save(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def main(argv):
    archive, state_path, name, dest = argv[1:5]
    src = os.path.join(archive, name)
    state = load(state_path)
    if os.path.isfile(src):
        tmp = dest + ".restoreops.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        if SEGMENT.match(name):
            state.update(last_restored=name, last_restored_time=stamp(src), restored=state.get("restored", 0) + 1)
            save(state_path, state)
        return 0
    if not SEGMENT.match(name):
        return 1  # history and backup files: their absence is normal
    later = sorted(f for f in os.listdir(archive) if SEGMENT.match(f) and f[:8] == name[:8] and f > name)
    state.update(missing=name, gap=bool(later))
    if later:
        state.update(next_available=later[0], next_available_time=stamp(os.path.join(archive, later[0])),
                     newest=later[-1], newest_time=stamp(os.path.join(archive, later[-1])))
        save(state_path, state)
        sys.stderr.write("restoreops-wal-restore: WAL segment %s is missing from %s but %s follows it; "
                         "aborting recovery\n" % (name, archive, later[0]))
        return 127
    save(state_path, state)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
'''


class RecoveryFailed(RestoreOpsError):
    """PostgreSQL did not reach the recovery target."""


# --- times ------------------------------------------------------------------------------------------------------


def parse_target(text: Optional[str]) -> Optional[dt.datetime]:
    """``latest``/empty → None; ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC) or ISO 8601 with an offset → aware UTC."""
    value = (text or "latest").strip()
    if value == "latest":
        return None
    try:
        return parse_time(value, naive_tz=UTC).astimezone(UTC)
    except ValueError as exc:
        raise InputError(f"target_time must be 'latest' or a time such as '2026-03-14 15:30:00' (UTC) or "
                         f"'2026-03-14T15:30:00+01:00', got {text!r} ({exc}).") from None


def pg_time(value: dt.datetime) -> str:
    """The form recovery_target_time and the base backup labels use: ``YYYY-MM-DD HH:MM:SS[.ffffff]+00``."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "+00"


def parse_label_time(text: str) -> dt.datetime:
    """A base backup label's time (``2026-03-14 15:30:00+00``)."""
    return parse_time(text, naive_tz=UTC).astimezone(UTC)


# --- base backups ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseBackup:
    name: str
    path: str
    start_wal: str
    start_time: str
    end_time: str

    @property
    def end(self) -> dt.datetime:
        return parse_label_time(self.end_time)

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "path": self.path, "start_wal": self.start_wal, "start_time": self.start_time,
                "end_time": self.end_time}


def list_base_backups(root: str) -> List[BaseBackup]:
    """The base backups under ``root`` (directories with a readable label), oldest first by name."""
    found = []
    try:
        names = sorted(os.listdir(root))
    except OSError as exc:
        raise InputError(f"The base backup directory {root} cannot be read: {exc.strerror}.") from None
    for name in names:
        label = os.path.join(root, name, LABEL_FILE)
        try:
            with open(label, encoding="utf-8") as handle:
                data = json.load(handle)
            found.append(BaseBackup(name=str(data.get("name") or name), path=os.path.join(root, name),
                                    start_wal=str(data["start_wal"]), start_time=str(data.get("start_time", "")),
                                    end_time=str(data["end_time"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def choose_base_backup(backups: Sequence[BaseBackup], target: Optional[dt.datetime],
                       wanted: str = "auto") -> BaseBackup:
    """The base backup to recover from (pure).

    ``wanted`` names one, else (``auto``) the newest whose end lies at or before ``target`` (recovery cannot stop
    before a backup's end), or simply the newest when recovering to the end of the archive.
    """
    if not backups:
        raise InputError("There is no base backup to recover from (no directory with a restoreops-backup.json).")
    ordered = sorted(backups, key=lambda b: (b.end, b.name))
    if wanted and wanted != "auto":
        named = [b for b in ordered if b.name == wanted]
        if not named:
            raise InputError(f"There is no base backup named {wanted!r}; there are: "
                             f"{', '.join(b.name for b in ordered)}.")
        chosen = named[0]
        if target is not None and chosen.end > target:
            raise InputError(f"Base backup {wanted} ended at {chosen.end_time}, after the target {pg_time(target)}; "
                             "recovery cannot stop before a backup's end. Choose an older one (or backup=auto).")
        return chosen
    if target is None:
        return ordered[-1]
    usable = [b for b in ordered if b.end <= target]
    if not usable:
        raise InputError(f"No base backup ended before the target {pg_time(target)}: the earliest ended at "
                         f"{ordered[0].end_time}, and recovery cannot stop before a backup's end.")
    return usable[-1]


# --- the archive and the recovery settings -----------------------------------------------------------------------


def archive_segments(names: Sequence[str], start_wal: str) -> List[str]:
    """The archived segments recovery from a backup that starts at ``start_wal`` may replay, in order.

    Segments sort by timeline, then position; a segment of a later timeline may follow, so positions are compared
    without the timeline.
    """
    start = start_wal[8:]
    return sorted((n for n in names if SEGMENT.match(n) and n[8:] >= start), key=lambda n: (n[8:], n[:8]))


TARGET_ACTIONS = ("promote", "pause")


def recovery_settings(restore_command: str, target: Optional[dt.datetime], action: str = "promote") -> str:
    """The block appended to ``postgresql.auto.conf`` (between markers, removed after the recovery).

    ``action`` is what the server does at the target: ``promote`` (a recovery that ends in a running primary) or
    ``pause`` (a sandbox that stays a read-only hot standby at the target, never starts a new timeline and never
    archives anything)."""
    if action not in TARGET_ACTIONS:
        raise ValueError(f"unknown recovery_target_action {action!r}")
    lines = [BLOCK_BEGIN,
             "restore_command = " + quote_setting(restore_command),
             "recovery_target_timeline = 'latest'",
             "recovery_target_action = " + quote_setting(action)]
    if target is not None:
        lines += ["recovery_target_time = " + quote_setting(pg_time(target)), "recovery_target_inclusive = true"]
    lines.append(BLOCK_END)
    return "\n".join(lines) + "\n"


def quote_setting(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def strip_block(text: str) -> str:
    """``postgresql.auto.conf`` without our block (anything else is kept as it is)."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        if line.strip() == BLOCK_BEGIN:
            inside = True
            continue
        if inside and line.strip() == BLOCK_END:
            inside = False
            continue
        if not inside:
            out.append(line)
    return "".join(out)


def default_restore_command(script: str, archive: str, state_file: str) -> str:
    return " ".join([shlex.quote(script), shlex.quote(archive), shlex.quote(state_file), "%f", "%p"])


def explain_failure(state: Dict[str, Any], *, archive: str, target: Optional[dt.datetime], backup: BaseBackup,
                    previous_dir: Optional[str], server_note: str) -> str:
    """One message for a recovery that did not reach its target, from the restore command's state file."""
    kept = f" The data directory from before is kept at {previous_dir}." if previous_dir else ""
    until = f"{pg_time(target)} UTC" if target is not None else "the end of the archive"
    last = state.get("last_restored") or "the base backup"
    last_time = state.get("last_restored_time") or backup.end_time
    if state.get("gap"):
        return (f"Point-in-time recovery stopped: WAL segment {state.get('missing')} is missing from {archive} "
                f"although {state.get('next_available')} and later segments are there. Recovery can reach no further "
                f"than the end of {last} (archived {state.get('last_restored_time', '?')}); the changes from "
                f"{last_time} until {until if target is not None else state.get('newest_time', '?')} are lost. "
                f"The server was left stopped.{kept}")
    if state.get("missing"):
        return (f"Point-in-time recovery did not reach {until}: the archive ends with {last} (archived "
                f"{state.get('last_restored_time', '?')}) and WAL segment {state['missing']} was never archived, so "
                f"the changes from {last_time} until {until} are lost.{kept}")
    return f"Point-in-time recovery did not reach {until}: PostgreSQL {server_note}. See the server log.{kept}"


# --- on the host -------------------------------------------------------------------------------------------------


def read_json(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def postmaster_alive(data_dir: str) -> bool:
    """Whether the postmaster named in ``postmaster.pid`` runs (signal 0)."""
    try:
        with open(os.path.join(data_dir, "postmaster.pid"), encoding="utf-8") as handle:
            pid = int(handle.readline().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Options:
    data_dir: str
    basebackup_dir: str
    wal_archive_dir: str
    restore_command: str
    state_file: str
    target: Optional[dt.datetime]
    backup: str = "auto"
    control: str = "systemd"
    service: str = ""
    bin_dir: str = ""
    os_user: str = "postgres"
    os_group: str = "postgres"
    socket_dir: str = "/var/run/postgresql"
    port: int = 5432
    timeout: int = 600
    progress_file: Optional[str] = None
    force: bool = False
    restore_script: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    # What a sandbox recovery changes (restoreops.dr.pg_known_good); the defaults are pg_pitr's.
    target_action: str = "promote"
    server_options: List[str] = field(default_factory=list)  # ``-c name=value`` pairs for the postmaster
    login_user: str = ""  # psql's -U (the OS user's name when empty)
    database: str = "postgres"
    stop_mode: str = "fast"
    start_wait: bool = False


def options_from_params(params: Dict[str, Any]) -> Options:
    for key in ("data_dir", "basebackup_dir", "wal_archive_dir", "state_file", "progress_file", "restore_script",
                "bin_dir"):
        value = params.get(key)
        if value and not os.path.isabs(value):
            raise InputError(f"{key} must be an absolute path, got {value!r}.")
    if params.get("control", "systemd") == "systemd" and not params.get("service"):
        raise InputError("control=systemd needs service (for example postgresql@15-main).")
    if int(params.get("timeout") or 0) < 1:
        raise InputError("timeout must be at least 1 second.")
    data_dir = os.path.normpath(params["data_dir"])
    if data_dir == "/" or os.path.dirname(data_dir) == "/":
        raise InputError(f"data_dir {data_dir} is not a PostgreSQL data directory this module will replace.")
    state_file = params.get("state_file") or data_dir + ".pitr-state.json"
    archive = os.path.normpath(params["wal_archive_dir"])
    script = params.get("restore_script") or "/usr/local/sbin/restoreops-wal-restore"
    if params.get("restore_command"):
        script = None
    command = params.get("restore_command") or default_restore_command(script or "", archive, state_file)
    return Options(data_dir=data_dir, basebackup_dir=params["basebackup_dir"], wal_archive_dir=archive,
                   restore_command=command, state_file=state_file, target=parse_target(params.get("target_time")),
                   backup=params.get("backup") or "auto", control=params.get("control") or "systemd",
                   service=params.get("service") or "", bin_dir=params.get("bin_dir") or "",
                   os_user=params.get("os_user") or "postgres", os_group=params.get("os_group") or "postgres",
                   socket_dir=params.get("socket_dir") or "/var/run/postgresql", port=int(params.get("port") or 5432),
                   timeout=int(params["timeout"]), progress_file=params.get("progress_file"),
                   force=bool(params.get("force")), restore_script=script)


class Recovery:
    """One recovery on the host. ``run`` is ``module.run_command``-like; ``clock``/``sleep`` are replaceable."""

    def __init__(self, opts: Options, run: Callable[..., Any], *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, poll: float = 0.5) -> None:
        self.opts = opts
        self.run = run
        self.clock = clock
        self.sleep = sleep
        self.poll = poll
        self.previous_dir: Optional[str] = None

    # commands ------------------------------------------------------------------------------------------------

    def _cmd(self, argv: List[str], what: str, ok: Sequence[int] = (0,)) -> Any:
        rc, out, err = self.run(argv)
        if rc not in ok:
            detail = (err or out or "").strip().splitlines()
            raise RestoreOpsError(f"{what} failed (rc={rc}): {detail[-1] if detail else 'no output'}", cmd=argv,
                                  rc=rc, stderr=(err or "")[-2000:])
        return rc, out, err

    def _as_user(self, argv: List[str]) -> List[str]:
        return ["runuser", "-u", self.opts.os_user, "--", *argv]

    def bin_dir(self) -> str:
        if self.opts.bin_dir:
            return self.opts.bin_dir
        try:
            with open(os.path.join(self.opts.data_dir, "PG_VERSION"), encoding="utf-8") as handle:
                major = handle.read().strip()
        except OSError:
            raise RestoreOpsError(f"Cannot tell the PostgreSQL version of {self.opts.data_dir} (no PG_VERSION); "
                                  "set bin_dir.") from None
        return f"/usr/lib/postgresql/{major}/bin"

    def stop(self) -> None:
        if self.opts.control == "systemd":
            self._cmd(["systemctl", "stop", self.opts.service], f"systemctl stop {self.opts.service}")
        elif os.path.isdir(self.opts.data_dir) and os.path.exists(os.path.join(self.opts.data_dir, "postmaster.pid")):
            self._cmd(self._as_user([os.path.join(self.bin_dir(), "pg_ctl"), "-D", self.opts.data_dir, "-m",
                                     self.opts.stop_mode, "-w", "-t", "120", "stop"]), "pg_ctl stop", ok=(0, 1))

    def start(self) -> int:
        """Start in recovery; a failure here is read from the state file and the postmaster, not raised. Returns the
        return code: with ``start_wait`` (pg_ctl only) pg_ctl waits until the server accepts connections (a hot
        standby does once consistent) and fails at once when the postmaster exits during recovery."""
        if self.opts.control == "systemd":
            rc, _out, _err = self.run(["systemctl", "start", self.opts.service])
            return rc
        log = self.opts.data_dir + ".log"
        options = ["-o", " ".join(shlex.quote(o) for o in self.opts.server_options)] \
            if self.opts.server_options else []
        wait = ["-w", "-t", str(self.opts.timeout)] if self.opts.start_wait else ["-W"]
        rc, _out, _err = self.run(self._as_user([os.path.join(self.bin_dir(), "pg_ctl"), "-D", self.opts.data_dir,
                                                 "-l", log, *options, *wait, "start"]))
        return rc

    def move_aside(self, stamp: str) -> Optional[str]:
        if not os.path.lexists(self.opts.data_dir):
            return None
        target = f"{self.opts.data_dir}.before-pitr-{stamp}"
        # mv, not rename(2): a data directory in an image layer (containers) or on another mount cannot be renamed.
        self._cmd(["mv", "-T", "--", self.opts.data_dir, target], f"moving {self.opts.data_dir} aside")
        return target

    def unpack(self, backup: BaseBackup) -> None:
        os.makedirs(self.opts.data_dir, mode=0o700)
        self._cmd(["chown", f"{self.opts.os_user}:{self.opts.os_group}", self.opts.data_dir], "chown of the data dir")
        os.chmod(self.opts.data_dir, 0o700)
        self._cmd(self._as_user(["tar", "-xzf", os.path.join(backup.path, "base.tar.gz"), "-C", self.opts.data_dir]),
                  f"unpacking {backup.name}/base.tar.gz")
        wal_tar = os.path.join(backup.path, "pg_wal.tar.gz")
        if os.path.exists(wal_tar):
            self._cmd(self._as_user(["tar", "-xzf", wal_tar, "-C", os.path.join(self.opts.data_dir, "pg_wal")]),
                      f"unpacking {backup.name}/pg_wal.tar.gz")

    def configure(self) -> None:
        auto = os.path.join(self.opts.data_dir, "postgresql.auto.conf")
        try:
            with open(auto, encoding="utf-8") as handle:
                text = strip_block(handle.read())
        except FileNotFoundError:
            text = ""
        if text and not text.endswith("\n"):
            text += "\n"
        self._write_owned(auto, text + recovery_settings(self.opts.restore_command, self.opts.target,
                                                         self.opts.target_action))
        self._write_owned(os.path.join(self.opts.data_dir, "recovery.signal"), "")

    def unconfigure(self) -> None:
        auto = os.path.join(self.opts.data_dir, "postgresql.auto.conf")
        with open(auto, encoding="utf-8") as handle:
            text = handle.read()
        self._write_owned(auto, strip_block(text))

    def _write_owned(self, path: str, text: str) -> None:
        tmp = path + ".restoreops.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        self._cmd(["chown", f"{self.opts.os_user}:{self.opts.os_group}", tmp], f"chown of {path}")
        os.replace(tmp, path)

    def restored_segments(self) -> int:
        return int(read_json(self.opts.state_file).get("restored") or 0)

    def wait(self) -> str:
        """Wait for the end of recovery; returns ``promoted`` (or ``paused`` at the target with the ``pause``
        action), ``stopped`` (the server is down) or ``timeout``."""
        signal = os.path.join(self.opts.data_dir, "recovery.signal")
        deadline = self.clock() + self.opts.timeout
        grace = self.clock() + 10  # a server that just started may not have written postmaster.pid yet
        seen = False  # a postmaster seen running and then gone has stopped: no need to sit out the grace
        while True:
            alive = postmaster_alive(self.opts.data_dir)
            seen = seen or alive
            if alive and self.opts.target_action == "pause":
                if self.accepts_connections() and self.replay_paused():
                    return "paused"
            elif (alive and not os.path.exists(signal) and self.accepts_connections()
                  and not self.still_in_recovery()):
                # PostgreSQL removes recovery.signal before its end-of-recovery checkpoint, and a hot standby accepts
                # connections all along: only pg_is_in_recovery() turning false means promoted.
                return "promoted"
            if not alive and (seen or self.clock() > grace):
                return "stopped"
            if self.clock() > deadline:
                return "timeout"
            self.sleep(self.poll)

    def accepts_connections(self) -> bool:
        rc, _out, _err = self.run(self._as_user([os.path.join(self.bin_dir(), "pg_isready"), "-q", "-h",
                                                 self.opts.socket_dir, "-p", str(self.opts.port)]))
        return rc == 0

    def still_in_recovery(self) -> bool:
        """Whether the server still says it is in recovery (an unanswered query counts as yes)."""
        rc, out, _err = self.run(self.psql("SELECT pg_is_in_recovery()"))
        return rc != 0 or out.strip() == "t"

    def psql(self, sql: str) -> List[str]:
        """``psql -X -q -A -t`` on the server's socket, as the OS user (and ``login_user`` when set): only the rows
        are printed, no command tags (a query of several statements prints the rows of each that returns any)."""
        user = ["-U", self.opts.login_user] if self.opts.login_user else []
        return self._as_user([os.path.join(self.bin_dir(), "psql"), "-h", self.opts.socket_dir, "-p",
                              str(self.opts.port), *user, "-d", self.opts.database, "-X", "-q", "-A", "-t", "-v",
                              "ON_ERROR_STOP=1", "-c", sql])

    def replay_paused(self) -> bool:
        """Whether WAL replay has paused (at the recovery target, with the ``pause`` action)."""
        try:
            with open(os.path.join(self.opts.data_dir, "PG_VERSION"), encoding="utf-8") as handle:
                major = int(handle.read().strip().split(".")[0])
        except (OSError, ValueError):
            major = 0
        sql = ("SELECT pg_get_wal_replay_pause_state() = 'paused'" if major >= 14
               else "SELECT pg_is_wal_replay_paused()")
        rc, out, _err = self.run(self.psql(sql))
        return rc == 0 and out.strip() == "t"

    def where(self) -> Dict[str, Any]:
        sql = ("SELECT pg_is_in_recovery(), coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', "
               "'YYYY-MM-DD HH24:MI:SS.US'), ''), (SELECT timeline_id FROM pg_control_checkpoint())")
        _rc, out, _err = self._cmd(self.psql(sql), "reading where recovery stopped")
        fields = (out.strip().splitlines() or [""])[-1].split("|")
        if len(fields) != 3:
            raise RestoreOpsError(f"Unexpected answer from psql about the recovery: {out.strip()[:200]!r}")
        return {"in_recovery": fields[0] == "t", "last_replayed_transaction": fields[1],
                "timeline": int(fields[2] or 0)}


def script_current(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == RESTORE_SCRIPT and os.access(path, os.X_OK)
    except (OSError, UnicodeDecodeError):
        return False


def install_script(path: str) -> None:
    """Write the restore command's script atomically (root-owned, 0755)."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = path + ".restoreops.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(RESTORE_SCRIPT)
    os.chmod(tmp, 0o755)  # noqa: S103 - PostgreSQL runs it as restore_command
    os.replace(tmp, path)


def done_marker(opts: Options) -> str:
    return opts.data_dir + DONE_SUFFIX


def already_done(opts: Options, backup: BaseBackup) -> Optional[Dict[str, Any]]:
    """The record of an earlier recovery of this data directory to the same target from the same backup."""
    if opts.force:
        return None
    marker = read_json(done_marker(opts))
    if not marker:
        return None
    wanted = pg_time(opts.target) if opts.target else "latest"
    if marker.get("base_backup") != backup.name or marker.get("target") != wanted:
        return None
    if os.path.exists(os.path.join(opts.data_dir, "recovery.signal")) or \
            not os.path.exists(os.path.join(opts.data_dir, "PG_VERSION")):
        return None
    return marker


def main(module: Any) -> Dict[str, Any]:
    opts = options_from_params(module.params)
    backup = choose_base_backup(list_base_backups(opts.basebackup_dir), opts.target, opts.backup)
    target_text = pg_time(opts.target) if opts.target else "latest"
    try:
        archived = archive_segments(os.listdir(opts.wal_archive_dir), backup.start_wal)
    except OSError as exc:
        raise InputError(f"The WAL archive {opts.wal_archive_dir} cannot be read: {exc.strerror}.") from None
    result: Dict[str, Any] = {"changed": False, "base_backup": backup.as_dict(), "target": target_text,
                              "archived_segments": len(archived)}
    done = already_done(opts, backup)
    if done is not None:
        kept = ("last_replayed_transaction", "timeline", "last_restored_wal", "previous_data_dir", "finished")
        result.update({k: done.get(k) for k in kept})
        result["msg"] = f"{opts.data_dir} was already recovered from {backup.name} to {target_text}."
        return result
    result["changed"] = True
    plan = (f"Recover {opts.data_dir} from base backup {backup.name} (ended {backup.end_time}, WAL from "
            f"{backup.start_wal}) to {target_text}, replaying up to {len(archived)} archived segment(s); the current "
            f"data directory moves aside to {opts.data_dir}.before-pitr-<time>.")
    needs_script = bool(opts.restore_script) and not script_current(opts.restore_script or "")
    if needs_script:
        plan += f" The restore command's script is installed at {opts.restore_script} first."
    result["plan"] = plan
    if module._diff:
        result["diff"] = {"before": f"data_dir: {opts.data_dir} (as found)\n",
                          "after": f"data_dir: {opts.data_dir} recovered from {backup.name} to {target_text}\n"}
    if module.check_mode:
        result["msg"] = "Would " + plan[0].lower() + plan[1:]
        return result

    if needs_script and opts.restore_script:
        install_script(opts.restore_script)
        result["script_installed"] = opts.restore_script
    recovery = Recovery(opts, module.run_command)
    stamp = dt.datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    started = time.monotonic()
    with ProgressReporter(opts.progress_file, "unpack base backup", None, ChildWrites()) as progress:
        recovery.stop()
        recovery.previous_dir = recovery.move_aside(stamp)
        result["previous_data_dir"] = recovery.previous_dir
        recovery.unpack(backup)
        for path in (opts.state_file, done_marker(opts)):
            if os.path.exists(path):
                os.unlink(path)
        recovery.configure()
        progress.stage("replay WAL", float(len(archived)), recovery.restored_segments, unit="WAL segments")
        recovery.start()
        outcome = recovery.wait()
    state = read_json(opts.state_file)
    result.update(last_restored_wal=state.get("last_restored"), segments_restored=int(state.get("restored") or 0))
    if outcome != "promoted" or state.get("gap"):
        note = {"stopped": "stopped before the end of recovery", "timeout":
                f"was still recovering after {opts.timeout} s (timeout)"}.get(outcome, "reported a gap")
        if outcome == "timeout":
            recovery.stop()
        raise RecoveryFailed(explain_failure(state, archive=opts.wal_archive_dir, target=opts.target, backup=backup,
                                             previous_dir=recovery.previous_dir, server_note=note), **result)
    where = recovery.where()
    if where["in_recovery"]:
        raise RecoveryFailed(f"Recovery finished but the server is still in recovery; target {target_text}.",
                             **result)
    last = where["last_replayed_transaction"]
    if opts.target is not None and last and parse_target(last) > opts.target:
        raise RecoveryFailed(f"Recovery went past the target: last replayed transaction at {last} UTC, target "
                             f"{target_text}.", **result)
    recovery.unconfigure()
    finished = dt.datetime.now(UTC).isoformat()
    result.update(last_replayed_transaction=last, timeline=where["timeline"], finished=finished,
                  duration=round(time.monotonic() - started, 3))
    with open(done_marker(opts), "w", encoding="utf-8") as handle:
        json.dump({"base_backup": backup.name, "target": target_text, "last_replayed_transaction": last,
                   "timeline": where["timeline"], "last_restored_wal": result["last_restored_wal"],
                   "previous_data_dir": recovery.previous_dir, "finished": finished}, handle, indent=2)
    return result
