# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup diagnosis: pure decisions over what the read-only probes of ``playbooks/diagnose.yml`` observed.

The playbook runs the collection's modules read-only on each host (``borg_repo`` and ``restic_repo`` in check mode,
``rsnapshot_config``, ``pg_archiver_facts``, ``ansible.builtin.systemd_service`` for the timers and their services,
``backup_policy_facts`` for the backup volumes) and registers their results. :func:`evaluate` turns one host's results
into lines, one per check and target, each ``ok``, ``warn`` or ``fail`` with a one-line reason and the next command
to run; :func:`report` combines the hosts and :func:`table` prints them. Nothing here talks to a host or a tool: every
threshold a module already judges (rsnapshot's freshness, PostgreSQL's archive age and replay lag, restic's stale
locks, borg's lock holders) is read from that module's result, never decided a second time.

Observation keys (each optional; the registered result of one task, loops as ``{"results": [...]}``):

``borg``       ``restoreops.dr.borg_repo`` per entry of ``diagnose_borg_repositories`` (``item``: the entry).
``restic``     ``restoreops.dr.restic_repo`` per entry of ``diagnose_restic_repositories``.
``rsnapshot``  ``restoreops.dr.rsnapshot_config`` per configuration file.
``postgres``   ``restoreops.dr.pg_archiver_facts`` (or skipped).
``timers``     ``ansible.builtin.systemd_service`` (no state) per timer unit (``status``: systemd's properties).
``services``   the same per service a timer triggers (the timer's ``Unit`` property).
``volumes``    ``restoreops.dr.backup_policy_facts`` with ``volumes`` (``df`` and ``du -s`` per backup location).
``date_time``  the host's ``ansible_facts.date_time`` (its time zone, to read systemd's times).
"""

from __future__ import annotations

import datetime as _dt
import re
import shlex
import time
from typing import Any, Iterable

from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import local_repository_path
from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time_or_none

STATUSES = ("ok", "warn", "fail")
CHECKS: dict[str, str] = {
    "borg_archive": "borg archive",
    "borg_check": "borg check",
    "borg_lock": "borg lock",
    "restic_snapshot": "restic snapshot",
    "restic_check": "restic check",
    "restic_lock": "restic lock",
    "rsnapshot_snapshot": "rsnapshot daily.0",
    "rsnapshot_configtest": "rsnapshot config",
    "unit": "timer run",
    "disk": "backup volume",
    "pg_archiver": "WAL archiving",
    "pg_replication": "replication",
    "probe": "probe",
}
DEFAULTS = {"max_age_hours": 25.0, "disk_warn_percent": 80, "disk_fail_percent": 90}


def line(check: str, target: str, status: str, reason: str, next_command: str) -> dict[str, Any]:
    if check not in CHECKS or status not in STATUSES:
        raise ValueError(f"unknown check {check!r} or status {status!r}")
    return {"check": check, "target": target, "status": status, "reason": reason, "next": next_command}


# --- formatting ----------------------------------------------------------------------------------------------------

def human_bytes(value: Any) -> str:
    """1536 → ``1.5 KiB``; None → ``?``."""
    if value is None:
        return "?"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover


def human_age(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 72:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def q(value: Any) -> str:
    return shlex.quote(str(value))


def age_hours(stamp: str | None, now: float) -> float | None:
    when = parse_time_or_none(stamp)
    return None if when is None else max(0.0, (now - when.timestamp()) / 3600.0)


# --- registered results --------------------------------------------------------------------------------------------

def results_of(registered: Any) -> list[dict[str, Any]]:
    """The per-item results of a registered loop (an empty or skipped loop gives none)."""
    if not isinstance(registered, dict):
        return []
    return [r for r in registered.get("results") or [] if isinstance(r, dict) and not r.get("skipped")]


def failure_of(result: Any) -> str | None:
    if not isinstance(result, dict):
        return "no result"
    if result.get("unreachable"):
        return str(result.get("msg") or "unreachable")
    if result.get("failed"):
        return " ".join(str(result.get("msg") or "failed").split())
    return None


def item_name(result: dict[str, Any], fallback: str) -> str:
    item = result.get("item")
    if isinstance(item, dict):
        return str(item.get("name") or fallback)
    return str(item) if item is not None else fallback


# --- borg ----------------------------------------------------------------------------------------------------------

def repository_probe(
        result: dict[str, Any], tool: str) -> tuple[dict[str, Any], str, str, str | None, dict[str, Any], bool]:
    """What a borg_repo or restic_repo result says: its entry, name, backup unit, failure, check report, and whether
    the failure is the check's (the module then still returns what it read before the check)."""
    entry = result.get("item") or {}
    name = item_name(result, tool)
    unit = entry.get("backup_unit") or f"{tool}-backup-{name}.service"
    failure = failure_of(result)
    check = result.get("check") or {}
    return entry, name, unit, failure, check, failure is not None and check.get("ok") is False


def borg_lines(result: dict[str, Any], now: float, max_age: float) -> list[dict[str, Any]]:
    entry, name, unit, failure, check, check_failed = repository_probe(result, "borg")
    repo = str(entry.get("repo") or (result.get("repo") or {}).get("location") or "?")
    if failure is not None and not check_failed:
        return [line("borg_archive", name, "fail", f"{repo} could not be read: {failure}",
                     f"borg list --last 3 {q(repo)}")]
    out = [borg_archive_line(name, repo, unit, result.get("archives") or {}, now, max_age)]
    if check_failed:
        out.append(line("borg_check", name, "fail", f"borg check --{check.get('mode')} failed: {failure}",
                        f"borg check -v --{check_flag(check.get('mode'))} {q(repo)}"))
    elif check.get("ok") is True:
        out.append(line("borg_check", name, "ok", f"borg check --{check_flag(check.get('mode'))} passed",
                        f"borg check -v --{check_flag(check.get('mode'))} {q(repo)}"))
    elif check.get("skipped_reason"):
        out.append(line("borg_check", name, "warn", f"not run: {check['skipped_reason']}",
                        f"borg check -v --{check_flag(check.get('mode'))} {q(repo)} (once the lock is resolved)"))
    out.append(borg_lock_line(name, repo, result.get("lock") or {}, max_age))
    return out


def check_flag(mode: Any) -> str:
    return {"repository": "repository-only", "archives": "archives-only", "verify_data": "verify-data"}.get(
        str(mode), "repository-only")


def borg_archive_line(name: str, repo: str, unit: str, archives: dict[str, Any], now: float,
                      max_age: float) -> dict[str, Any]:
    last = archives.get("last")
    if not last:
        return line("borg_archive", name, "fail", f"{repo} holds no archive",
                    f"journalctl -u {q(unit)} -n 50 --no-pager")
    age = age_hours(last.get("start") or last.get("end"), now)
    stats = last.get("stats") or {}
    sizes = ""
    if stats:
        sizes = (f"; {human_bytes(stats.get('original_size'))} original, "
                 f"{human_bytes(stats.get('compressed_size'))} compressed, "
                 f"{human_bytes(stats.get('deduplicated_size'))} deduplicated")
    totals = archives.get("totals") or {}
    if totals.get("deduplicated_size") is not None:
        sizes += f" (repository {human_bytes(totals['deduplicated_size'])})"
    return freshness_line("borg_archive", name, age, max_age, f"archive {last.get('name')}", last.get("start"),
                          sizes, unit, f"borg list --last 3 {q(repo)}",
                          f"borg info {q(repo + '::' + str(last.get('name')))}")


def freshness_line(check: str, name: str, age: float | None, max_age: float, what: str, stamp: Any, sizes: str,
                   unit: str, list_command: str, ok_command: str) -> dict[str, Any]:
    """The newest archive or snapshot against the freshness threshold: too old (or of unknown time) fails."""
    if age is None:
        return line(check, name, "fail", f"the time of {what} is unreadable", list_command)
    newest = f"newest {what} from {stamp}, {human_age(age)} old"
    if age > max_age:
        return line(check, name, "fail", f"{newest}: older than {max_age:g} h{sizes}",
                    f"journalctl -u {q(unit)} -n 50 --no-pager")
    return line(check, name, "ok", f"{newest}{sizes}", ok_command)


def holder_host(host_id: Any) -> str:
    """The host name in a borg host id (``<fqdn>@<node>``)."""
    return str(host_id or "?").rsplit("@", 1)[0]


def borg_lock_line(name: str, repo: str, lock: dict[str, Any], max_age: float) -> dict[str, Any]:
    if not lock.get("present"):
        return line("borg_lock", name, "ok", "no lock", f"ls -l {q(repo + '/lock.exclusive')}")
    holders = lock.get("holders") or []
    blocking = [h for h in holders if h.get("alive") is False]
    foreign = [h for h in holders if h.get("alive") is None]
    running = [h for h in holders if h.get("alive") is True]
    if blocking:
        h = blocking[0]
        return line("borg_lock", name, "fail",
                    f"stale lock: its holder, PID {h.get('pid')} on {h.get('host')}, is dead "
                    f"(lock {human_age(float(h.get('age') or 0) / 3600)} old); every backup fails until it is broken",
                    f"pgrep -af borg || borg break-lock {q(repo)}")
    if foreign:
        h = foreign[0]
        return line("borg_lock", name, "warn",
                    f"locked by PID {h.get('pid')} on another host, {h.get('host')} "
                    f"({human_age(float(h.get('age') or 0) / 3600)} old); its liveness cannot be seen from here",
                    f"ssh {q(holder_host(h.get('host')))} pgrep -af borg")
    h = running[0]
    held = float(h.get("age") or 0) / 3600
    if held > max_age:
        return line("borg_lock", name, "warn",
                    f"a borg process (PID {h.get('pid')}) has held the lock for {human_age(held)}: hung?",
                    f"ps -o pid,etime,args -p {int(h.get('pid') or 0)}")
    return line("borg_lock", name, "ok", f"locked by a running borg (PID {h.get('pid')}), {human_age(held)}: a "
                "backup or check is in progress", f"ps -o pid,etime,args -p {int(h.get('pid') or 0)}")


# --- restic --------------------------------------------------------------------------------------------------------

def restic_lines(result: dict[str, Any], now: float, max_age: float) -> list[dict[str, Any]]:
    entry, name, unit, failure, check, check_failed = repository_probe(result, "restic")
    repository = str(entry.get("repository") or "?")
    restic = f"restic -r {q(repository)}"
    if failure is not None and not check_failed:
        return [line("restic_snapshot", name, "fail", f"{repository} could not be read: {failure}",
                     f"{restic} snapshots --latest 3")]
    out = []
    snapshots = result.get("snapshots")
    if snapshots is not None:
        out.append(restic_snapshot_line(name, repository, unit, snapshots, now, max_age))
    if check_failed:
        out.append(line("restic_check", name, "fail", f"restic check ({check.get('mode')}) failed: {failure}",
                        f"{restic} check"))
    elif check.get("ok") is True:
        # The subset the module was given (an entry's own, or diagnose_read_data_subset for every repository).
        subset = ((result.get("invocation") or {}).get("module_args") or {}).get("read_data_subset") \
            or entry.get("read_data_subset") or "part"
        read = f" (read {subset} of the data)" if check.get("mode") == "read_data_subset" else ""
        what = f"restic check passed{read}"
        out.append(line("restic_check", name, "ok", what, f"{restic} check --read-data-subset 5%"))
    out.append(restic_lock_line(name, restic, result.get("locks") or [], now, max_age))
    return out


def restic_snapshot_line(name: str, repository: str, unit: str, snapshots: dict[str, Any], now: float,
                         max_age: float) -> dict[str, Any]:
    last = snapshots.get("last")
    if not last:
        return line("restic_snapshot", name, "fail", f"{repository} holds no snapshot",
                    f"journalctl -u {q(unit)} -n 50 --no-pager")
    age = age_hours(last.get("time"), now)
    size = (last.get("stats") or {}).get("total_size")
    sizes = f"; {human_bytes(size)} to restore ({(last.get('stats') or {}).get('total_file_count')} files)" \
        if size is not None else ""
    count = f"; {snapshots.get('count')} snapshot(s) in all"
    result = freshness_line("restic_snapshot", name, age, max_age, f"snapshot {last.get('short_id')}",
                            last.get("time"), sizes, unit, f"restic -r {q(repository)} snapshots --latest 3",
                            f"restic -r {q(repository)} stats {q(last.get('short_id'))}")
    if result["status"] == "ok":
        result["reason"] += count
    return result


def restic_lock_line(name: str, restic: str, locks: list[dict[str, Any]], now: float,
                     max_age: float) -> dict[str, Any]:
    if not locks:
        return line("restic_lock", name, "ok", "no lock", f"{restic} list locks --no-lock")
    stale = [lk for lk in locks if lk.get("stale")]
    if stale:
        lk = stale[0]
        return line("restic_lock", name, "fail",
                    f"{len(stale)} stale lock(s): {lk.get('id', '')[:8]} of PID {lk.get('pid')} on "
                    f"{lk.get('hostname')} since {lk.get('time')} (holder dead, or silent for over 30 min); prune "
                    "and an exclusive check fail until it is removed", f"{restic} unlock")
    lk = locks[0]
    held = age_hours(lk.get("time"), now) or 0.0
    return line("restic_lock", name, "ok",
                f"locked by a running restic (PID {lk.get('pid')} on {lk.get('hostname')}, refreshed "
                f"{human_age(held)} ago)", f"{restic} list locks --no-lock")


# --- rsnapshot -----------------------------------------------------------------------------------------------------

def rsnapshot_lines(result: dict[str, Any], now: float) -> list[dict[str, Any]]:
    path = str(result.get("item") or result.get("path") or "/etc/rsnapshot.conf")
    failure = failure_of(result)
    if failure is not None:
        return [line("rsnapshot_configtest", path, "fail", f"could not be checked: {failure}",
                     f"rsnapshot -c {q(path)} configtest")]
    out = []
    snap = result.get("snapshot") or {}
    if snap.get("checked"):
        where = str(snap.get("path") or "?")
        if not snap.get("exists"):
            service = f"rsnapshot@{snap.get('interval')}.service"
            out.append(line("rsnapshot_snapshot", path, "fail", f"{where} does not exist: rsnapshot never completed "
                            f"a {snap.get('interval')} run", f"journalctl -u {q(service)} -n 50 --no-pager"))
        else:
            when = _dt.datetime.fromtimestamp(float(snap.get("mtime") or 0), _dt.timezone.utc).isoformat()
            age = float(snap.get("age_hours") or 0)
            status = "ok" if snap.get("fresh") else "fail"
            reason = f"{where} from {when}, {human_age(age)} old"
            if status == "fail":
                reason += f": older than {float(snap.get('max_age_hours') or 0):g} h"
            out.append(line("rsnapshot_snapshot", path, status, reason, f"ls -lt {q(where + '/')}"))
    test = result.get("configtest") or {}
    bad_lines = result.get("lines") or []
    if bad_lines:
        first = bad_lines[0]
        out.append(line("rsnapshot_configtest", path, "fail",
                        f"{len(bad_lines)} line(s) rsnapshot misreads; {first.get('message')}",
                        f"rsnapshot -c {q(path)} configtest"))
    elif test.get("ran") and not test.get("ok"):
        errors = test.get("errors") or []
        out.append(line("rsnapshot_configtest", path, "fail",
                        f"configtest failed (rc {test.get('rc')}): {errors[0] if errors else test.get('output', '')}",
                        f"rsnapshot -c {q(path)} configtest"))
    elif test.get("ran"):
        out.append(line("rsnapshot_configtest", path, "ok", "configtest: Syntax OK",
                        f"rsnapshot -c {q(path)} configtest"))
    return out


# --- systemd timers and their services -----------------------------------------------------------------------------

_SYSTEMD_TIME = re.compile(r"^(?:\w{3} )?(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)$")


def systemd_epoch(text: Any, date_time: dict[str, Any] | None) -> float | None:
    """Seconds since the epoch of a time ``systemctl show`` printed (``Tue 2026-12-01 13:40:05 UTC``); a zone other
    than UTC is read with the host's offset when it is the host's zone, else the time has no known instant."""
    match = _SYSTEMD_TIME.match(str(text or "").strip())
    if not match:
        return None
    clock, zone = match.groups()
    offset = None
    if zone in ("UTC", "GMT", "Z"):
        offset = "+0000"
    elif date_time and zone == date_time.get("tz"):
        offset = str(date_time.get("tz_offset") or "")
    if not offset or not re.match(r"^[+-]\d{4}$", offset):
        return None
    return _dt.datetime.strptime(f"{clock} {offset}", "%Y-%m-%d %H:%M:%S %z").timestamp()


def unset(value: Any) -> bool:
    return str(value or "").strip() in ("", "n/a", "0")


def unit_lines(timers: list[dict[str, Any]], services: list[dict[str, Any]], date_time: dict[str, Any] | None,
               now: float, max_age: float) -> list[dict[str, Any]]:
    by_service = {}
    for result in services:
        status = result.get("status") or {}
        name = status.get("Id") or result.get("name") or result.get("item")
        by_service[str(name)] = result
    out = []
    for result in timers:
        timer = str(result.get("name") or result.get("item") or "?")
        failure = failure_of(result)
        status = result.get("status") or {}
        if failure is not None or status.get("LoadState") == "not-found":
            out.append(line("unit", timer, "fail", f"could not be read: {failure or 'not found'}",
                            f"systemctl status {q(timer)}"))
            continue
        service_name = str(status.get("Unit") or timer.replace(".timer", ".service"))
        service_result = by_service.get(service_name) or {}
        out.append(timer_line(timer, status, service_name, service_result, date_time, now, max_age))
    return out


def timer_line(timer: str, status: dict[str, Any], service_name: str, service_result: dict[str, Any],
               date_time: dict[str, Any] | None, now: float, max_age: float) -> dict[str, Any]:
    journal = f"journalctl -u {q(service_name)} -n 50 --no-pager"
    if status.get("ActiveState") != "active":
        return line("unit", timer, "fail", f"the timer is {status.get('ActiveState')} "
                    f"({status.get('UnitFileState')}): it will not fire", f"systemctl enable --now {q(timer)}")
    service = service_result.get("status") or {}
    failure = failure_of(service_result) if service_result else None
    if failure is not None or not service:
        return line("unit", timer, "fail", f"its service {service_name} could not be read: {failure or 'missing'}",
                    f"systemctl status {q(service_name)}")
    triggered = status.get("LastTriggerUSec")
    started = service.get("ExecMainStartTimestamp")
    state = service.get("ActiveState")
    if state in ("activating", "active", "reloading") and not unset(started):
        running = systemd_epoch(started, date_time)
        hours = (now - running) / 3600 if running is not None else None
        if hours is not None and hours > max_age:
            return line("unit", timer, "warn", f"{service_name} has been running since {started} "
                        f"({human_age(hours)}): hung?", f"systemctl status {q(service_name)}")
        return line("unit", timer, "ok", f"{service_name} is running since {started}",
                    f"systemctl status {q(service_name)}")
    result = service.get("Result")
    if result not in (None, "", "success"):
        code = service.get("ExecMainStatus")
        exit_status = f", exit status {code}" if not unset(code) else ""
        if unset(started):  # a pre-command or a condition failed: the main command never started
            changed = service.get("StateChangeTimestamp")
            when = ("ended " + str(changed) + "; " if not unset(changed) else "") + "its main command never started"
        else:
            when = f"started {started}"
        return line("unit", timer, "fail", f"the last run of {service_name} ({when}) failed: result {result}"
                    f"{exit_status}", journal)
    if unset(triggered):
        if unset(started):
            return line("unit", timer, "warn", f"the timer has never fired and {service_name} never ran; next "
                        f"run {status.get('NextElapseUSecRealtime') or 'unknown'}", f"systemctl list-timers {q(timer)}")
        return line("unit", timer, "warn", f"the timer has never fired ({service_name} last ran by hand, "
                    f"{started}, and succeeded)", f"systemctl list-timers {q(timer)}")
    ended = service.get("ExecMainExitTimestamp")
    return line("unit", timer, "ok", f"fired {triggered}; {service_name} succeeded"
                + (f" (ended {ended})" if not unset(ended) else ""), journal)


# --- backup volumes ------------------------------------------------------------------------------------------------

def borg_local_path(repo: Any) -> str | None:
    text = str(repo or "")
    return text if text.startswith("/") else None


def location_names(observations: dict[str, Any]) -> dict[str, str]:
    """Backup location → what it holds (``borg main``, ``restic offsite``, ``rsnapshot /etc/rsnapshot.conf``), in the
    order the probes ran: local borg repositories, local restic repositories, rsnapshot snapshot roots."""
    names: dict[str, str] = {}
    for result in results_of(observations.get("borg")):
        path = borg_local_path((result.get("item") or {}).get("repo"))
        if path:
            names[path.rstrip("/") or "/"] = f"borg {item_name(result, path)}"
    for result in results_of(observations.get("restic")):
        local = local_repository_path(str((result.get("item") or {}).get("repository") or ""))
        if local and local.startswith("/"):
            names[local.rstrip("/") or "/"] = f"restic {item_name(result, local)}"
    for result in results_of(observations.get("rsnapshot")):
        snap = (result.get("snapshot") or {}).get("path")
        if snap:
            names[str(snap).rstrip("/").rsplit("/", 1)[0] or "/"] = f"rsnapshot {result.get('item')}"
    return names


def volume_paths(observations: dict[str, Any], extra: Iterable[str] = ()) -> list[str]:
    """The backup locations to read with ``df``/``du``: each local borg and restic repository and each rsnapshot
    ``snapshot_root`` the probes saw, then ``extra``; in that order, without repeats."""
    paths = list(location_names(observations)) + [str(p).rstrip("/") or "/" for p in extra]
    return list(dict.fromkeys(paths))


def disk_lines(volumes: Any, names: dict[str, str], warn_percent: float, fail_percent: float) -> list[dict[str, Any]]:
    failure = failure_of(volumes) if volumes else None
    if failure is not None:
        return [line("disk", "volumes", "fail", f"the backup volumes could not be read: {failure}", "df -h")]
    out: list[dict[str, Any]] = []
    by_mount: dict[str, list[dict[str, Any]]] = {}
    for vol in (volumes or {}).get("volumes") or []:
        if not vol.get("exists"):
            out.append(line("disk", str(vol.get("path")), "fail", f"{vol.get('path')} does not exist",
                            f"ls -ld {q(vol.get('path'))}"))
            continue
        by_mount.setdefault(str((vol.get("filesystem") or {}).get("mount_point")), []).append(vol)
    for mount, vols in by_mount.items():
        fs = vols[0].get("filesystem") or {}
        used = float(fs.get("used_percent") or 0)
        held = ", ".join(f"{names.get(str(v.get('path')).rstrip('/'), v.get('path'))} "
                         f"{human_bytes((v.get('size') or {}).get('bytes'))}" if v.get("size") is not None
                         else str(names.get(str(v.get('path')).rstrip('/'), v.get('path'))) for v in vols)
        reason = (f"{used:.0f}% used, {human_bytes(fs.get('available'))} free of {human_bytes(fs.get('total'))}; "
                  f"holds {held}")
        status = "fail" if used >= fail_percent else "warn" if used >= warn_percent else "ok"
        if status != "ok":
            reason = f"{reason} (threshold {fail_percent if status == 'fail' else warn_percent:g}%)"
        paths = " ".join(q(v.get("path")) for v in vols)
        out.append(line("disk", mount, status, reason, f"df -h {q(mount)}; du -sh {paths}"))
    return out


# --- PostgreSQL ------------------------------------------------------------------------------------------------------

PSQL_ARCHIVER = 'psql -c "SELECT * FROM pg_stat_archiver;"'


def postgres_lines(result: Any, previous: dict[str, Any] | None, now: float, max_age: float) -> list[dict[str, Any]]:
    if not isinstance(result, dict) or result.get("skipped"):
        return []
    failure = failure_of(result)
    if failure is not None:
        return [line("pg_archiver", "postgresql", "fail", f"the archiver state could not be read: {failure}",
                     PSQL_ARCHIVER)]
    facts = (result.get("ansible_facts") or {}).get("pg_archiver") or {}
    areas = facts.get("problems_by_area") or {}
    return [archiver_line(facts, areas.get("archiving") or [], previous, now, max_age),
            replication_line(facts, (areas.get("replication") or []) + (areas.get("slots") or []))]


def archiver_line(facts: dict[str, Any], problems: list[str], previous: dict[str, Any] | None, now: float,
                  max_age: float) -> dict[str, Any]:
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return line("pg_archiver", "postgresql", "fail", problems[0] + more, PSQL_ARCHIVER)
    count = int(facts.get("failed_count") or 0)
    before = (previous or {}).get("failed_count")
    same_stats = (previous or {}).get("stats_reset") == facts.get("stats_reset")
    last_failed = facts.get("last_failed_time")
    if before is not None and same_stats and count > int(before):
        return line("pg_archiver", "postgresql", "warn",
                    f"failed_count rose from {before} to {count} since the previous diagnosis "
                    f"({(previous or {}).get('at')}); the last failure was {facts.get('last_failed_wal')} at "
                    f"{last_failed}, and archiving has worked since", PSQL_ARCHIVER)
    failed_age = age_hours(last_failed, now)
    if before is None and count and failed_age is not None and failed_age <= max_age:
        return line("pg_archiver", "postgresql", "warn",
                    f"{count} failed attempt(s), the last {human_age(failed_age)} ago "
                    f"({facts.get('last_failed_wal')}); archiving has worked since", PSQL_ARCHIVER)
    if facts.get("archive_mode") in (None, "off"):  # pragma: no cover - pg_archiver_facts reports it as a problem
        return line("pg_archiver", "postgresql", "fail", "WAL archiving is off", PSQL_ARCHIVER)
    archived_age = facts.get("last_archived_age")
    when = f", last {facts.get('last_archived_wal')} {human_age(float(archived_age) / 3600)} ago" \
        if archived_age is not None else ", nothing archived yet"
    return line("pg_archiver", "postgresql", "ok",
                f"archiving works: {facts.get('archived_count')} archived{when}, {count} failed, "
                f"{facts.get('ready_wal_count')} waiting", PSQL_ARCHIVER)


def replication_line(facts: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    if facts.get("in_recovery"):
        command = 'psql -c "SELECT now() - pg_last_xact_replay_timestamp() AS replication_lag;"'
    else:
        command = 'psql -c "SELECT application_name, state, replay_lag FROM pg_stat_replication;"'
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return line("pg_replication", "postgresql", "fail", problems[0] + more, command)
    if facts.get("in_recovery"):
        return line("pg_replication", "postgresql", "ok",
                    f"standby: replay lag {facts.get('replay_lag')} s, {facts.get('replay_lag_bytes')} bytes", command)
    replicas = facts.get("replicas") or []
    if not replicas:
        return line("pg_replication", "postgresql", "ok", "primary without a connected standby: no lag to measure",
                    command)
    worst = max(float(r.get("replay_lag") or 0) for r in replicas)
    return line("pg_replication", "postgresql", "ok",
                f"primary: {len(replicas)} standby(s), the furthest {worst:g} s behind in replay", command)


# --- one host --------------------------------------------------------------------------------------------------------

def evaluate(observations: dict[str, Any], *, max_age_hours: float = DEFAULTS["max_age_hours"],
             disk_warn_percent: float = DEFAULTS["disk_warn_percent"],
             disk_fail_percent: float = DEFAULTS["disk_fail_percent"], previous: dict[str, Any] | None = None,
             now: float | None = None) -> dict[str, Any]:
    """One host's lines (``ok``/``warn``/``fail``, reason, next command), its verdict and what the next run compares
    with (``observed``)."""
    now = time.time() if now is None else float(now)
    max_age = float(max_age_hours)
    lines: list[dict[str, Any]] = []
    for result in results_of(observations.get("borg")):
        lines.extend(borg_lines(result, now, max_age))
    for result in results_of(observations.get("restic")):
        lines.extend(restic_lines(result, now, max_age))
    for result in results_of(observations.get("rsnapshot")):
        lines.extend(rsnapshot_lines(result, now))
    lines.extend(unit_lines(results_of(observations.get("timers")), results_of(observations.get("services")),
                            observations.get("date_time"), now, max_age))
    lines.extend(disk_lines(observations.get("volumes"), location_names(observations), disk_warn_percent,
                            disk_fail_percent))
    previous_pg = ((previous or {}).get("observed") or {}).get("postgres")
    lines.extend(postgres_lines(observations.get("postgres"), previous_pg, now, max_age))
    return summarize(lines, observed(observations, now))


def summarize(lines: list[dict[str, Any]], observed_now: dict[str, Any] | None = None) -> dict[str, Any]:
    counts = {status: sum(1 for entry in lines if entry["status"] == status) for status in STATUSES}
    status = "fail" if counts["fail"] else "warn" if counts["warn"] else "ok"
    return {"status": status, "ok": counts["fail"] == 0, "counts": counts, "lines": lines,
            "observed": observed_now or {}}


def observed(observations: dict[str, Any], now: float) -> dict[str, Any]:
    """What the next diagnosis compares with: PostgreSQL's failed_count (and when its statistics were reset)."""
    pg = observations.get("postgres")
    if not isinstance(pg, dict) or pg.get("skipped") or pg.get("failed"):
        return {}
    facts = (pg.get("ansible_facts") or {}).get("pg_archiver") or {}
    return {"postgres": {"failed_count": facts.get("failed_count"), "stats_reset": facts.get("stats_reset"),
                         "at": _dt.datetime.fromtimestamp(now, _dt.timezone.utc).isoformat(timespec="seconds")}}


def unreachable(reason: str) -> dict[str, Any]:
    """The verdict for a host that could not be diagnosed at all (unreachable, or a probe that stopped the host)."""
    return summarize([line("probe", "host", "fail", reason, "ansible -m ansible.builtin.ping HOST")])


# --- every host ------------------------------------------------------------------------------------------------------

def report(per_host: dict[str, dict[str, Any]], *, generated: str | None = None,
           thresholds: dict[str, Any] | None = None) -> dict[str, Any]:
    hosts = {name: per_host[name] for name in sorted(per_host)}
    totals = {status: sum(h.get("counts", {}).get(status, 0) for h in hosts.values()) for status in STATUSES}
    return {
        "generated": generated or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "thresholds": dict(thresholds or {}),
        "ok": all(h.get("ok") for h in hosts.values()),
        "counts": totals,
        "hosts_failing": [name for name, h in hosts.items() if not h.get("ok")],
        "hosts": hosts,
    }


def table(doc: dict[str, Any]) -> str:
    """One table per host: status, check, target, reason; the next command under each line."""
    out: list[str] = []
    for host, result in (doc.get("hosts") or {}).items():
        counts = result.get("counts") or {}
        out.append(f"== {host}: {str(result.get('status', '?')).upper()} "
                   f"({counts.get('fail', 0)} fail, {counts.get('warn', 0)} warn, {counts.get('ok', 0)} ok)")
        rows = [(entry["status"].upper(), CHECKS.get(entry["check"], entry["check"]), entry["target"])
                for entry in result.get("lines") or []]
        widths = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(("STATUS", "CHECK", "TARGET"))]
        out.append(f"{'STATUS':<{widths[0]}}  {'CHECK':<{widths[1]}}  {'TARGET':<{widths[2]}}  REASON")
        for row, entry in zip(rows, result.get("lines") or []):
            out.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {entry['reason']}")
            out.append(f"{'':<{widths[0]}}  {'':<{widths[1]}}  {'':<{widths[2]}}  -> {entry['next']}")
        out.append("")
    totals = doc.get("counts") or {}
    out.append(f"{len(doc.get('hosts') or {})} host(s): {totals.get('fail', 0)} fail, {totals.get('warn', 0)} warn, "
               f"{totals.get('ok', 0)} ok" + (f"; failing: {', '.join(doc.get('hosts_failing') or [])}"
                                              if doc.get("hosts_failing") else ""))
    return "\n".join(out)
