# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The latest clean PostgreSQL recovery target: the body of ``restoreops.dr.pg_known_good``.

Logical corruption (a bad deploy, a wrong UPDATE, ransomware inside the database) is captured faithfully by the WAL
archive. Given a validation query and a time window, this bisects the recovery target: each trial recovers a sandbox
cluster (its own data directory, socket and port, never the live cluster) from the base backup that serves the
target, with the archived WAL, up to the target; the server pauses there as a read-only hot standby, the query runs,
and the sandbox is stopped and removed. A passing trial moves the window's start up, a failing one its end down (to
the last transaction the trial replayed, when that is earlier), until the window is no wider than the tolerance.

The recovery itself is :class:`._pitr.Recovery` (base backup choice, recovery settings, the restore command's
script, the wait loop) with the sandbox's settings; the decisions are pure: :class:`Bisect` (the next target and
the stopping rule), :func:`query_verdict`, :func:`standby_settings`, :func:`server_options`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import grp
import math
import os
import pwd
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ansible_collections.restoreops.dr.plugins.module_utils import _pitr
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError
from ansible_collections.restoreops.dr.plugins.module_utils._sandbox import MARKER, Sandbox, check_sandbox_path
from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time

UTC = dt.timezone.utc
EXPECT = ("auto", "true", "zero", "no_rows")
# Settings the sandbox owns: a caller's ``settings`` may not change them (they keep it off the network, away from the
# live cluster's files and from the archive).
RESERVED = frozenset({"port", "listen_addresses", "unix_socket_directories", "config_file", "hba_file", "ident_file",
                      "data_directory", "archive_mode", "archive_command", "archive_library", "restore_command",
                      "archive_cleanup_command", "recovery_end_command", "primary_conninfo", "primary_slot_name",
                      "hot_standby", "recovery_target_action", "external_pid_file", "logging_collector"})
# The settings a hot standby needs at least as high as the primary had (pg_controldata names them).
STANDBY_MINIMUMS = {"max_connections": 100, "max_worker_processes": 8, "max_wal_senders": 10,
                    "max_prepared_xacts": 0, "max_locks_per_xact": 64}
CONTROLDATA_NAMES = {"max_prepared_xacts": "max_prepared_transactions",
                     "max_locks_per_xact": "max_locks_per_transaction"}


# --- pure decisions -------------------------------------------------------------------------------------------------


@dataclass
class Bisect:
    """The search for the latest target whose recovered state passes the query (pure).

    Assumes what bisecting needs: once the data is bad it stays bad. Midpoints first; when the window is no wider
    than ``tolerance``, its start is tried if no trial passed yet, and its end if none failed, so the answer is
    always a target that really passed (or none) and a corruption is only reported when a trial saw it.
    """

    lo: dt.datetime
    hi: dt.datetime
    tolerance: dt.timedelta
    good: Optional[dt.datetime] = None  # the latest target that passed
    bad: Optional[dt.datetime] = None  # the earliest point known to fail (a target, or a commit time)
    unreachable: Optional[dt.datetime] = None  # the earliest target recovery could not reach
    tested: Set[dt.datetime] = field(default_factory=set)

    def next_target(self) -> Optional[dt.datetime]:
        if self.hi - self.lo > self.tolerance:
            return self.lo + (self.hi - self.lo) / 2
        if self.good is None and self.lo not in self.tested and self.bad != self.lo:
            return self.lo
        if self.bad is None and self.unreachable is None and self.hi not in self.tested:
            return self.hi
        return None

    def record(self, target: dt.datetime, outcome: str, last_replayed: Optional[dt.datetime] = None) -> None:
        """``pass``, ``fail`` or ``unreachable``. A failing trial whose last replayed transaction is earlier than its
        target proves that transaction's state bad already: the window's end moves there."""
        self.tested.add(target)
        if outcome == "pass":
            self.good = target if self.good is None else max(self.good, target)
            self.lo = max(self.lo, target)
            return
        point = target
        if outcome == "fail" and last_replayed is not None and self.lo < last_replayed < target:
            point = last_replayed
        if outcome == "fail":
            self.bad = point if self.bad is None else min(self.bad, point)
        elif outcome == "unreachable":
            self.unreachable = point if self.unreachable is None else min(self.unreachable, point)
        else:
            raise ValueError(f"unknown trial outcome {outcome!r}")
        self.hi = max(self.lo, min(self.hi, point))


def trials_needed(window: dt.timedelta, tolerance: dt.timedelta) -> int:
    """The most trials a search over ``window`` takes: the halvings, and the window's two ends."""
    halvings = math.ceil(math.log2(window / tolerance)) if window > tolerance else 0
    return halvings + 2


def query_verdict(rc: int, out: str, err: str, expect: str = "auto") -> Tuple[str, str, str]:
    """(``pass``/``fail``/``error``, the value, a sentence) for the query's ``psql -A -t`` output.

    ``auto``: a boolean must be true, a number must be zero; ``true``, ``zero``: only that; ``no_rows``: the query
    must return no row. The first column of the first row is the value."""
    if rc != 0:
        lines = [line.strip() for line in (err or out or "").strip().splitlines() if line.strip()]
        errors = [line for line in lines if "ERROR:" in line or "FATAL:" in line]
        reason = (errors or lines or [f"psql exited with {rc}"])[0 if errors else -1]
        return "error", "", f"the query failed: {reason}"
    rows = [line for line in (out or "").splitlines() if line != ""]
    if expect == "no_rows":
        return ("pass", "", "no row") if not rows else ("fail", rows[0], f"{len(rows)} row(s), the first: {rows[0]}")
    if not rows:
        return "error", "", "the query returned no row (a boolean or a count was expected)"
    value = rows[0].split("|", 1)[0].strip()
    if value in ("t", "f") and expect in ("auto", "true"):
        return ("pass" if value == "t" else "fail"), value, f"the query returned {'true' if value == 't' else 'false'}"
    if expect in ("auto", "zero"):
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None:
            return ("pass" if number == 0 else "fail"), value, f"the query returned {value}" + (
                "" if number == 0 else ", not 0")
    wanted = {"auto": "a boolean or a number", "true": "a boolean", "zero": "a number"}[expect]
    return "error", value, f"the query returned {value!r}, not {wanted}"


def parse_controldata(text: str) -> Dict[str, int]:
    """The ``... setting:`` values of ``pg_controldata`` (``max_connections setting: 100``)."""
    found = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        name = name.strip()
        if sep and name.endswith(" setting") and value.strip().lstrip("-").isdigit():
            found[name[: -len(" setting")]] = int(value.strip())
    return found


def standby_settings(controldata: Mapping[str, int]) -> Dict[str, str]:
    """What a hot standby of this backup needs: each setting at least as high as on the primary (a lower one makes
    PostgreSQL refuse to run queries during recovery)."""
    out = {}
    for name, minimum in STANDBY_MINIMUMS.items():
        value = max(minimum, controldata.get(name, minimum))
        out[CONTROLDATA_NAMES.get(name, name)] = str(value)
    return out


def server_options(*, port: int, socket_dir: str, conf_dir: str, controldata: Mapping[str, int],
                   settings: Mapping[str, Any]) -> List[str]:
    """The postmaster's ``-c`` options for a sandbox trial (they outrank every configuration file, including the
    ``postgresql.auto.conf`` inside the base backup): no TCP, a private socket, the sandbox's own configuration
    files, no archiving and no archive cleanup, no connection to a primary, a hot standby, and no fsync (the data is
    thrown away after the query)."""
    values: Dict[str, str] = {
        "config_file": os.path.join(conf_dir, "postgresql.conf"),
        "hba_file": os.path.join(conf_dir, "pg_hba.conf"),
        "ident_file": os.path.join(conf_dir, "pg_ident.conf"),
        "port": str(port),
        "listen_addresses": "",
        "unix_socket_directories": socket_dir,
        "archive_mode": "off",
        "archive_command": "",
        "archive_cleanup_command": "",
        "recovery_end_command": "",
        "primary_conninfo": "",
        "primary_slot_name": "",
        "hot_standby": "on",
        "logging_collector": "off",
        "external_pid_file": "",
        "fsync": "off",
        "ssl": "off",
        "shared_preload_libraries": "",
        "cluster_name": "restoreops-sandbox",
        **standby_settings(controldata),
    }
    values.update({str(k): str(v) for k, v in settings.items()})
    options = []
    for name, value in values.items():
        options += ["-c", f"{name}={value}"]
    return options


# --- a trial on the host ----------------------------------------------------------------------------------------


@dataclass
class Setup:
    """What every trial shares."""

    backups: List[_pitr.BaseBackup]
    archive: str
    sandbox: Sandbox
    script: str
    conf_dir: str
    socket_dir: str
    port: int
    bin_dir: str
    os_user: str
    os_group: str
    login_user: str
    database: str
    query: str
    expect: str
    query_timeout: int
    trial_timeout: int
    settings: Dict[str, Any]
    target_action: str = "pause"


def log_tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()[-4000:]
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


def unreachable_detail(state: Mapping[str, Any], log: str) -> str:
    if state.get("gap"):
        return (f"recovery stopped at a gap in the archive: WAL segment {state.get('missing')} is missing although "
                f"{state.get('next_available')} follows")
    if state.get("missing"):
        return (f"the archive ends before the target: the last segment is {state.get('last_restored') or 'none'} "
                f"(archived {state.get('last_restored_time', '?')})")
    return f"PostgreSQL stopped before reaching the target: {log or 'see its log'}"


class Trials:
    """Runs one sandbox recovery per target; ``run`` is ``module.run_command``."""

    def __init__(self, setup: Setup, run: Callable[..., Any], clock: Callable[[], float] = time.monotonic) -> None:
        self.setup = setup
        self.run = run
        self.clock = clock

    def options(self, target: dt.datetime, backup: _pitr.BaseBackup, trial_dir: str,
                extra: Sequence[str]) -> _pitr.Options:
        s = self.setup
        state = os.path.join(trial_dir, "state.json")
        return _pitr.Options(
            data_dir=os.path.join(trial_dir, "data"), basebackup_dir=os.path.dirname(backup.path),
            wal_archive_dir=s.archive, restore_command=_pitr.default_restore_command(s.script, s.archive, state),
            state_file=state, target=target, backup=backup.name, control="pg_ctl", bin_dir=s.bin_dir,
            os_user=s.os_user, os_group=s.os_group, socket_dir=s.socket_dir, port=s.port, timeout=s.trial_timeout,
            restore_script=None, target_action=s.target_action, server_options=list(extra), login_user=s.login_user,
            database=s.database, stop_mode="immediate", start_wait=True)

    def controldata(self, recovery: _pitr.Recovery) -> Dict[str, int]:
        rc, out, _err = self.run(recovery._as_user([os.path.join(recovery.bin_dir(), "pg_controldata"), "-D",
                                                    recovery.opts.data_dir]))
        return parse_controldata(out) if rc == 0 else {}

    def __call__(self, target: dt.datetime) -> Dict[str, Any]:
        s = self.setup
        start = self.clock()
        backup = _pitr.choose_base_backup(s.backups, target)
        trial_dir = s.sandbox.sub("trial", owner=True)
        opts = self.options(target, backup, trial_dir, [])
        recovery = _pitr.Recovery(opts, self.run)
        record: Dict[str, Any] = {"target": _pitr.pg_time(target), "base_backup": backup.name}
        try:
            recovery.unpack(backup)
            opts.server_options = server_options(
                port=s.port, socket_dir=s.socket_dir, conf_dir=s.conf_dir, controldata=self.controldata(recovery),
                settings=s.settings)
            recovery.configure()
            if recovery.start() == 0:
                state = recovery.wait()
            else:  # pg_ctl gave up: the postmaster exited during recovery, or is still not ready (the timeout)
                state = "timeout" if _pitr.postmaster_alive(opts.data_dir) else "stopped"
            if state in ("paused", "promoted"):
                where = recovery.where()
                record["last_replayed_transaction"] = where["last_replayed_transaction"]
                rc, out, err = self.run(recovery.psql(s.query), environ_update={"PGOPTIONS": pgoptions(s)})
                outcome, value, detail = query_verdict(rc, out, err, s.expect)
                record.update(outcome=outcome, value=value, detail=detail)
            elif state == "stopped":
                detail = unreachable_detail(_pitr.read_json(opts.state_file), log_tail(opts.data_dir + ".log"))
                record.update(outcome="unreachable", value="", detail=detail)
            else:
                record.update(outcome="error", value="",
                              detail=f"the sandbox was still recovering after {s.trial_timeout} s (trial_timeout)")
        finally:
            stop_sandbox_server(recovery)
            s.sandbox.sub("trial")  # emptied for the next trial; the sandbox goes at the end
        record["seconds"] = round(self.clock() - start, 3)
        return record


def pgoptions(setup: Setup) -> str:
    """The query's session (PGOPTIONS, so the query text stays as given): a statement timeout, and read-only unless
    the sandbox was promoted for a query that writes (into the sandbox, which is thrown away)."""
    read_only = "-c default_transaction_read_only=on " if setup.target_action == "pause" else ""
    return f"{read_only}-c statement_timeout={int(setup.query_timeout) * 1000}"


def stop_sandbox_server(recovery: _pitr.Recovery) -> None:
    """Stop the sandbox's postmaster (immediate: its data is thrown away), and kill it if it outlives pg_ctl."""
    data_dir = recovery.opts.data_dir
    pid = postmaster_pid(data_dir)
    if pid is None:
        return
    with contextlib.suppress(RestoreOpsError):
        recovery.stop()
    if _pitr.postmaster_alive(data_dir):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGQUIT)  # the postmaster's immediate shutdown
        for _attempt in range(50):
            if not _pitr.postmaster_alive(data_dir):
                break
            time.sleep(0.1)


def postmaster_pid(data_dir: str) -> Optional[int]:
    try:
        with open(os.path.join(data_dir, "postmaster.pid"), encoding="utf-8") as handle:
            return int(handle.readline().strip())
    except (OSError, ValueError):
        return None


# --- the module's main --------------------------------------------------------------------------------------------


def _time_option(params: Mapping[str, Any], key: str) -> Optional[dt.datetime]:
    text = params.get(key)
    if not text:
        return None
    try:
        return parse_time(str(text), naive_tz=UTC).astimezone(UTC)
    except ValueError:
        raise InputError(f"{key} must be a time such as '2026-03-14 15:30:00' (UTC) or '2026-03-14T15:30:00+01:00', "
                         f"got {text!r}.") from None


def plan(params: Mapping[str, Any]) -> Tuple[List[_pitr.BaseBackup], dt.datetime, dt.datetime, dt.timedelta]:
    for key in ("basebackup_dir", "wal_archive_dir", "bin_dir"):
        value = params.get(key)
        if value and not os.path.isabs(value):
            raise InputError(f"{key} must be an absolute path, got {value!r}.")
    if params.get("target_action", "pause") not in _pitr.TARGET_ACTIONS:
        raise InputError(f"target_action must be one of {', '.join(_pitr.TARGET_ACTIONS)}.")
    if params.get("expect", "auto") not in EXPECT:
        raise InputError(f"expect must be one of {', '.join(EXPECT)}.")
    if not str(params.get("query") or "").strip():
        raise InputError("query is empty; give SQL that returns a boolean (true when the data is good) or a count "
                         "of bad rows.")
    reserved = sorted(set(params.get("settings") or {}) & RESERVED)
    if reserved:
        raise InputError(f"settings may not change {', '.join(reserved)}: the sandbox sets them itself.")
    tolerance = float(params.get("tolerance") or 0)
    if tolerance < 0.001:
        raise InputError("tolerance must be at least 0.001 seconds.")
    for key in ("trial_timeout", "query_timeout"):
        if int(params.get(key) or 0) < 1:
            raise InputError(f"{key} must be at least 1 second.")
    backups = _pitr.list_base_backups(params["basebackup_dir"])
    if not backups:
        raise InputError(f"There is no base backup in {params['basebackup_dir']} (no directory with a "
                         f"{_pitr.LABEL_FILE}).")
    earliest = min(b.end for b in backups)
    start = _time_option(params, "window_start") or earliest
    end = _time_option(params, "window_end")
    if end is None:
        raise InputError("window_end is required: the time by which the data is known to be bad (or the time of "
                         "the incident).")
    if start < earliest:
        raise InputError(f"window_start {_pitr.pg_time(start)} lies before the end of the earliest base backup "
                         f"({_pitr.pg_time(earliest)}); recovery cannot stop before a backup's end.")
    if end <= start:
        raise InputError(f"window_end {_pitr.pg_time(end)} must be later than window_start {_pitr.pg_time(start)}.")
    step = dt.timedelta(seconds=tolerance)
    needed = trials_needed(end - start, step)
    if needed > int(params.get("max_trials") or 0):
        raise InputError(f"A window of {(end - start).total_seconds():.0f} s at a tolerance of {tolerance} s needs up "
                         f"to {needed} trials, more than max_trials={params.get('max_trials')}; narrow the window, "
                         "raise the tolerance or max_trials.")
    return backups, start, end, step


def os_ids(user: str, group: str) -> Tuple[int, int]:
    try:
        return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise InputError(f"The OS user or group {user}:{group} does not exist here.") from exc


def stop_leftovers(path: str, run: Callable[..., Any], os_user: str) -> List[int]:
    """Stop the postmaster of an interrupted earlier run left in this sandbox (its data directory has the pid file)."""
    stopped = []
    data_dir = os.path.join(path, "trial", "data")
    pid = postmaster_pid(data_dir)
    ours = os.path.isfile(os.path.join(path, MARKER))
    if pid is not None and ours and _pitr.postmaster_alive(data_dir):
        opts = _pitr.Options(data_dir=data_dir, basebackup_dir="", wal_archive_dir="", restore_command="",
                             state_file="", target=None, control="pg_ctl", os_user=os_user, stop_mode="immediate")
        stop_sandbox_server(_pitr.Recovery(opts, run))
        stopped.append(pid)
    return stopped


def main(module: Any) -> Dict[str, Any]:
    params = module.params
    backups, start, end, step = plan(params)
    archive = os.path.normpath(params["wal_archive_dir"])
    sandbox_path = check_sandbox_path(params["sandbox_dir"], [
        ("wal_archive_dir", archive), ("basebackup_dir", params["basebackup_dir"]),
        *[("a base backup", b.path) for b in backups]])
    if not os.path.isdir(archive):
        raise InputError(f"The WAL archive {archive} is not a directory.")
    result: Dict[str, Any] = {
        "changed": False, "window": {"start": _pitr.pg_time(start), "end": _pitr.pg_time(end)},
        "tolerance": step.total_seconds(), "sandbox_dir": sandbox_path,
        "max_trials_needed": trials_needed(end - start, step)}
    if module.check_mode:
        result["msg"] = (f"Would bisect the recovery target between {_pitr.pg_time(start)} and {_pitr.pg_time(end)} "
                         f"to {step.total_seconds()} s, with up to {result['max_trials_needed']} sandbox recoveries "
                         f"in {sandbox_path} from {len(backups)} base backup(s).")
        return result

    uid_gid = os_ids(params["os_user"], params["os_group"])
    result["leftover_servers_stopped"] = stop_leftovers(sandbox_path, module.run_command, params["os_user"])
    search = Bisect(lo=start, hi=end, tolerance=step)
    trials: List[Dict[str, Any]] = []
    result["trials"] = trials
    began = time.monotonic()
    with Sandbox(sandbox_path, owner=uid_gid) as sandbox:
        setup = prepare(sandbox, module, params, backups, archive)
        run_trial = Trials(setup, module.run_command)
        while True:
            target = search.next_target()
            if target is None:
                break
            if len(trials) >= int(params["max_trials"]):
                raise RestoreOpsError(f"The search took max_trials={params['max_trials']} trials without "
                                      "converging.", **result)
            record = run_trial(target)
            trials.append(record)
            if record["outcome"] == "error":
                raise RestoreOpsError(f"Trial {len(trials)} (target {record['target']}) could not be judged: "
                                      f"{record['detail']}. The search stopped; the sandbox is removed.", **result)
            last = record.get("last_replayed_transaction")
            search.record(target, record["outcome"], _pitr.parse_target(last) if last else None)
    result["duration"] = round(time.monotonic() - began, 3)
    return conclude(search, trials, result)


def conclude(search: Bisect, trials: List[Dict[str, Any]], result: Dict[str, Any]) -> Dict[str, Any]:
    """The result from the finished search (or the failure when no target passed)."""
    good = search.good
    if good is None:
        first = trials[0] if trials else {}
        raise RestoreOpsError(f"No known-good recovery target in the window: the data is bad (or unreachable) already "
                              f"at {result['window']['start']} ({first.get('detail', 'no trial ran')}). Move "
                              "window_start earlier (an older base backup may be needed).", **result)
    good_trial = next(t for t in trials if t["target"] == _pitr.pg_time(good))
    result.update(target_time=_pitr.pg_time(good), found=search.bad is not None,
                  last_good_transaction=good_trial.get("last_replayed_transaction") or "",
                  base_backup=good_trial["base_backup"],
                  first_bad_time=_pitr.pg_time(search.bad) if search.bad is not None else None)
    if search.bad is not None:
        result["msg"] = (f"The latest clean recovery target is {result['target_time']} (within "
                         f"{result['tolerance']} s of the first bad state, {result['first_bad_time']}), found in "
                         f"{len(trials)} sandbox recoveries.")
    elif search.unreachable is not None:
        result["msg"] = (f"The query passes up to {result['target_time']}; later targets were not reachable from the "
                         "archive, so no corruption was seen in the window.")
    else:
        result["msg"] = (f"The query passes at the window's end ({result['target_time']}): no corruption within the "
                         "window.")
    return result


def prepare(sandbox: Sandbox, module: Any, params: Mapping[str, Any], backups: List[_pitr.BaseBackup],
            archive: str) -> Setup:
    """The sandbox's shared parts: the restore command's script, its own configuration files, the socket dir."""
    script = os.path.join(sandbox.path, "bin", "restoreops-wal-restore")
    _pitr.install_script(script)
    conf_dir = sandbox.sub("conf", owner=True)
    for name, text in (("postgresql.conf", "# restoreops.dr sandbox: every setting is given on the command line\n"),
                       ("pg_hba.conf", "local all all trust\n"), ("pg_ident.conf", "")):
        path = os.path.join(conf_dir, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, 0o600)
        if sandbox.owner is not None:
            os.chown(path, *sandbox.owner)
    socket_dir = sandbox.sub("sock", owner=True)
    rc, _out, _err = module.run_command(["runuser", "-u", params["os_user"], "--", "test", "-w", socket_dir])
    if rc != 0:
        raise InputError(f"The OS user {params['os_user']} cannot reach {sandbox.path}; put sandbox_dir below a "
                         "directory that user may enter (for example /var/tmp).")
    bin_dir = params.get("bin_dir") or f"/usr/lib/postgresql/{pg_major(backups[-1].path, module)}/bin"
    return Setup(backups=backups, archive=archive, sandbox=sandbox, script=script, conf_dir=conf_dir,
                 socket_dir=socket_dir, port=int(params["port"]), bin_dir=bin_dir, os_user=params["os_user"],
                 os_group=params["os_group"], login_user=params.get("login_user") or "",
                 database=params["database"], query=params["query"], expect=params["expect"],
                 query_timeout=int(params["query_timeout"]), trial_timeout=int(params["trial_timeout"]),
                 settings=dict(params.get("settings") or {}), target_action=params.get("target_action") or "pause")


def pg_major(backup_path: str, module: Any) -> str:
    """The PostgreSQL major version of a base backup (its ``PG_VERSION``), read without unpacking it."""
    rc, out, err = module.run_command(["tar", "-xzOf", os.path.join(backup_path, "base.tar.gz"), "PG_VERSION"])
    if rc != 0 or not out.strip():
        raise InputError(f"Cannot read PG_VERSION from {backup_path}/base.tar.gz ({err.strip() or 'empty'}); set "
                         "bin_dir.")
    return out.strip()
