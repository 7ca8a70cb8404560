# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL access for restoreops.dr: a psycopg 3 connection from community.postgresql-style options, the
archiver / replication / slot queries with their version and standby guards, and the pure decisions over what the
queries returned (``failing``, ``problems``, ``healthy``).

The decisions take plain dicts so they are unit-tested without a server; :func:`collect` is the only function that
talks to PostgreSQL, and it only reads.
"""

from __future__ import annotations

import datetime
import traceback
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError

PSYCOPG_IMPORT_ERROR: Optional[str] = None
try:
    import psycopg
    from psycopg.rows import dict_row
except ImportError:  # pragma: no cover - reported through missing_required_lib by the module
    psycopg = None
    dict_row = None
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

MIN_SERVER_VERSION = 120000
ROLE_NEEDED = "pg_monitor"
APPLICATION_NAME = "restoreops.dr.pg_archiver_facts"

SSL_MODES = ["allow", "disable", "prefer", "require", "verify-ca", "verify-full"]

# SQLSTATE codes libpq hands back for a refused login.
_AUTH_SQLSTATES = {"28P01", "28000"}


class ConnectionFailed(RestoreOpsError):
    """The server could not be reached or refused the login."""


class PrivilegeError(RestoreOpsError):
    """The login works but lacks what the archiver queries need."""


# --------------------------------------------------------------------------------------------------------------
# Connection
# --------------------------------------------------------------------------------------------------------------

def connection_kwargs(params: Dict[str, Any]) -> Dict[str, Any]:
    """psycopg/libpq keyword arguments from the module options (the password stays a keyword, never a DSN)."""
    host = params.get("login_unix_socket") or params.get("login_host") or None
    kwargs: Dict[str, Any] = {
        "dbname": params.get("login_db") or "postgres",
        "user": params.get("login_user") or "postgres",
        "port": int(params.get("port") or 5432),
        "connect_timeout": int(10 if params.get("connect_timeout") is None else params["connect_timeout"]),
        "sslmode": params.get("ssl_mode") or "prefer",
        "application_name": APPLICATION_NAME,
    }
    if host:
        kwargs["host"] = host
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if kwargs["connect_timeout"] < 1:
        raise InputError("connect_timeout must be at least 1 second.")
    return kwargs


def describe_target(kwargs: Dict[str, Any]) -> str:
    """Where we tried to connect, for messages (never includes the password)."""
    host = kwargs.get("host") or "the default unix socket"
    return f"{host} port {kwargs['port']} as {kwargs['user']} (database {kwargs['dbname']})"


def _scrub(text: str, password: Optional[str]) -> str:
    text = " ".join(str(text).split())
    if password:
        text = text.replace(password, "********")
    return text


def classify_connect_error(message: str, sqlstate: Optional[str]) -> str:
    """A short reason for a failed login: ``authentication``, ``refused``, ``timeout``, ``database``, ``role`` or
    ``other``."""
    if sqlstate in _AUTH_SQLSTATES:
        return "authentication"
    if sqlstate == "3D000":
        return "database"
    lowered = message.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return "authentication"
    if "database \"" in lowered and "does not exist" in lowered:
        return "database"
    if "role \"" in lowered and "does not exist" in lowered:
        return "role"
    if "connection refused" in lowered or "no such file or directory" in lowered:
        return "refused"
    if "timeout expired" in lowered:
        return "timeout"
    return "other"


_CONNECT_HINTS = {
    "authentication": "authentication failed; check login_user and login_password (and pg_hba.conf)",
    "refused": "nothing is listening there; check login_host, login_unix_socket and port, and that PostgreSQL runs",
    "timeout": "the connection timed out (connect_timeout); check the address and any firewall",
    "database": "the database in login_db does not exist",
    "role": "the role in login_user does not exist",
    "other": "the connection failed",
}


def connect(params: Dict[str, Any]) -> Any:
    """Open a read-only autocommit connection, or raise ConnectionFailed with one clear sentence."""
    if psycopg is None:  # pragma: no cover - the module checks this first
        raise RestoreOpsError("The psycopg (version 3) Python library is required.")
    kwargs = connection_kwargs(params)
    password = kwargs.get("password")
    try:
        conn = psycopg.connect(autocommit=True, row_factory=dict_row, **kwargs)
    except psycopg.Error as exc:
        sqlstate = getattr(exc, "sqlstate", None)
        detail = _scrub(str(exc), password)
        reason = classify_connect_error(detail, sqlstate)
        raise ConnectionFailed(
            f"Could not connect to PostgreSQL at {describe_target(kwargs)}: {_CONNECT_HINTS[reason]}. "
            f"Server said: {detail}",
            reason=reason,
        ) from None
    conn.read_only = True
    return conn


# --------------------------------------------------------------------------------------------------------------
# Queries (read-only, guarded by version and recovery state)
# --------------------------------------------------------------------------------------------------------------

def _one(cur: Any, sql: str, args: Any = None) -> Dict[str, Any]:
    cur.execute(sql, args)
    row = cur.fetchone()
    return dict(row) if row else {}


def _all(cur: Any, sql: str, args: Any = None) -> List[Dict[str, Any]]:
    cur.execute(sql, args)
    return [dict(row) for row in cur.fetchall()]


def collect(conn: Any) -> Dict[str, Any]:
    """Everything the facts need, as raw values (see :func:`build_facts`)."""
    with conn.cursor() as cur:
        base = _one(cur, """
            SELECT current_setting('server_version_num')::int AS version_num,
                   current_setting('server_version') AS server_version,
                   pg_is_in_recovery() AS in_recovery,
                   now() AS now,
                   current_user AS login_user,
                   (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
                   pg_has_role(current_user, %s, 'USAGE') AS monitor
        """, (ROLE_NEEDED,))
        version = base["version_num"]
        if version < MIN_SERVER_VERSION:
            raise RestoreOpsError(
                f"PostgreSQL {base['server_version']} is too old: pg_archiver_facts supports 12 and newer.")
        if not (base["superuser"] or base["monitor"]):
            raise PrivilegeError(
                f"The role {base['login_user']} lacks the privileges to read the archiver, replication and slot "
                f"state: grant it {ROLE_NEEDED} (GRANT {ROLE_NEEDED} TO \"{base['login_user']}\") or connect as a "
                "superuser.", missing_role=ROLE_NEEDED)

        names = ["archive_mode", "archive_command", "archive_timeout", "wal_level", "wal_segment_size"]
        names.append("wal_keep_size" if version >= 130000 else "wal_keep_segments")
        if version >= 150000:
            names.append("archive_library")
        settings = {row["name"]: row for row in _all(
            cur, "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (names,))}

        archiver = _one(cur, """
            SELECT archived_count, last_archived_wal, last_archived_time,
                   failed_count, last_failed_wal, last_failed_time, stats_reset
              FROM pg_stat_archiver
        """)

        try:
            ready = _one(cur, """
                SELECT count(*) FILTER (WHERE name ~ '^[0-9A-F]{24}[.]ready$') AS ready
                  FROM pg_ls_archive_statusdir()
            """)
        except psycopg.Error:
            ready = {}  # not readable here (for example a revoked EXECUTE): report it as unknown

        in_recovery = bool(base["in_recovery"])
        # pg_current_wal_lsn() raises on a standby: measure from what was received there instead.
        head = "pg_last_wal_receive_lsn()" if in_recovery else "pg_current_wal_lsn()"
        replicas = _all(cur, f"""
            SELECT application_name, state,
                   sent_lsn::text AS sent_lsn, replay_lsn::text AS replay_lsn,
                   pg_wal_lsn_diff({head}, replay_lsn)::bigint AS replay_lag_bytes,
                   extract(epoch FROM replay_lag)::float8 AS replay_lag
              FROM pg_stat_replication
             ORDER BY application_name, pid
        """)  # noqa: S608 - the only interpolation is one of two fixed function names

        wal_status = "wal_status" if version >= 130000 else "NULL::text AS wal_status"
        slots = _all(cur, f"""
            SELECT slot_name AS name, slot_type, active, {wal_status},
                   pg_wal_lsn_diff({head}, restart_lsn)::bigint AS retained_bytes
              FROM pg_replication_slots
             ORDER BY slot_name
        """)  # noqa: S608 - fixed fragments only

        standby: Dict[str, Any] = {}
        if in_recovery:
            standby = _one(cur, """
                SELECT pg_last_wal_receive_lsn()::text AS receive_lsn,
                       pg_last_wal_replay_lsn()::text AS replay_lsn,
                       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint AS lag_bytes,
                       pg_last_xact_replay_timestamp() AS last_replay_time
            """)

    return {
        "version_num": version,
        "server_version": base["server_version"],
        "in_recovery": in_recovery,
        "now": base["now"],
        "settings": {name: (row["setting"], row["unit"]) for name, row in settings.items()},
        "archiver": archiver,
        "ready_wal_count": ready.get("ready"),
        "replicas": replicas,
        "slots": slots,
        "standby": standby,
    }


# --------------------------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------------------------

def _iso(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


def seconds_between(later: Optional[datetime.datetime], earlier: Optional[datetime.datetime]) -> Optional[float]:
    """``later - earlier`` in seconds (never negative), or None when either is unknown."""
    if later is None or earlier is None:
        return None
    return max(0.0, round((later - earlier).total_seconds(), 3))


def is_failing(last_archived_time: Optional[datetime.datetime],
               last_failed_time: Optional[datetime.datetime]) -> bool:
    """Archiving is failing when the last failure is newer than the last success (or nothing ever succeeded)."""
    if last_failed_time is None:
        return False
    if last_archived_time is None:
        return True
    return last_failed_time > last_archived_time


def standby_replay_lag(lag_bytes: Optional[int], now: Optional[datetime.datetime],
                       last_replay_time: Optional[datetime.datetime]) -> Optional[float]:
    """Seconds a standby is behind.

    ``now - pg_last_xact_replay_timestamp()`` grows forever on a caught-up standby of an idle primary, so the
    timestamp is only trusted when WAL was received that is not replayed yet; when both LSNs are equal the lag is 0.
    """
    if lag_bytes is not None and lag_bytes <= 0:
        return 0.0
    if last_replay_time is None:
        return None
    return seconds_between(now, last_replay_time)


def setting_seconds(value: Optional[str], unit: Optional[str]) -> Optional[int]:
    """A time setting from pg_settings in seconds (archive_timeout is in ``s``)."""
    if value is None:
        return None
    factor = {"ms": 0.001, "s": 1, "min": 60, "h": 3600, "d": 86400}.get(unit or "s", 1)
    return int(int(value) * factor)


def setting_megabytes(value: Optional[str], unit: Optional[str]) -> Optional[int]:
    """A size setting from pg_settings in MB (wal_keep_size is in ``MB``)."""
    if value is None:
        return None
    factor = {"B": 1 / 1048576, "kB": 1 / 1024, "8kB": 8 / 1024, "MB": 1, "16MB": 16, "GB": 1024}
    return int(int(value) * factor.get(unit or "MB", 1))


def wal_keep_megabytes(settings: Dict[str, Any]) -> Optional[int]:
    """wal_keep_size (13+) or wal_keep_segments x wal_segment_size (12), in MB."""
    if "wal_keep_size" in settings:
        return setting_megabytes(*settings["wal_keep_size"])
    if "wal_keep_segments" in settings:
        segments = int(settings["wal_keep_segments"][0])
        seg_value, seg_unit = settings.get("wal_segment_size", ("16777216", "B"))
        seg_mb = setting_megabytes(seg_value, seg_unit) or 16
        return segments * seg_mb
    return None


def build_facts(raw: Dict[str, Any]) -> Dict[str, Any]:
    """The ``pg_archiver`` facts (without ``problems``/``healthy``) from what :func:`collect` returned."""
    settings = raw.get("settings", {})
    archiver = raw.get("archiver", {})
    now = raw.get("now")

    def setting(name: str) -> Optional[str]:
        return settings[name][0] if name in settings else None

    last_archived_time = archiver.get("last_archived_time")
    last_failed_time = archiver.get("last_failed_time")
    standby = raw.get("standby") or {}
    in_recovery = bool(raw.get("in_recovery"))

    replicas = []
    for rep in raw.get("replicas", []):
        lag_bytes = rep.get("replay_lag_bytes")
        lag = rep.get("replay_lag")
        if lag_bytes is not None and lag_bytes <= 0:
            # Caught up: the view keeps the last measured lag for a while (or clears it) once the primary is idle.
            lag = 0.0
        replicas.append({
            "application_name": rep.get("application_name"),
            "state": rep.get("state"),
            "sent_lsn": rep.get("sent_lsn"),
            "replay_lsn": rep.get("replay_lsn"),
            "replay_lag_bytes": None if lag_bytes is None else max(0, int(lag_bytes)),
            "replay_lag": None if lag is None else round(max(0.0, float(lag)), 3),
        })

    slots = [{
        "name": slot.get("name"),
        "slot_type": slot.get("slot_type"),
        "active": bool(slot.get("active")),
        "wal_status": slot.get("wal_status"),
        "retained_bytes": None if slot.get("retained_bytes") is None else max(0, int(slot["retained_bytes"])),
    } for slot in raw.get("slots", [])]

    lag_bytes = standby.get("lag_bytes") if in_recovery else None
    return {
        "server_version": raw.get("server_version"),
        "server_version_num": raw.get("version_num"),
        "in_recovery": in_recovery,
        "archive_mode": setting("archive_mode"),
        "archive_command": setting("archive_command"),
        "archive_library": setting("archive_library"),
        "archive_timeout": setting_seconds(*settings["archive_timeout"]) if "archive_timeout" in settings else None,
        "wal_level": setting("wal_level"),
        "wal_keep_size": wal_keep_megabytes(settings),
        "archived_count": archiver.get("archived_count"),
        "last_archived_wal": archiver.get("last_archived_wal"),
        "last_archived_time": _iso(last_archived_time),
        "last_archived_age": seconds_between(now, last_archived_time),
        "failed_count": archiver.get("failed_count"),
        "last_failed_wal": archiver.get("last_failed_wal"),
        "last_failed_time": _iso(last_failed_time),
        "failing": is_failing(last_archived_time, last_failed_time),
        "stats_reset": _iso(archiver.get("stats_reset")),
        "stats_age": seconds_between(now, archiver.get("stats_reset")),
        "ready_wal_count": raw.get("ready_wal_count"),
        "replicas": replicas,
        "receive_lsn": standby.get("receive_lsn") if in_recovery else None,
        "replay_lsn": standby.get("replay_lsn") if in_recovery else None,
        "replay_lag_bytes": None if lag_bytes is None else max(0, int(lag_bytes)),
        "replay_lag": (standby_replay_lag(lag_bytes, now, standby.get("last_replay_time"))
                       if in_recovery else None),
        "last_replay_time": _iso(standby.get("last_replay_time")) if in_recovery else None,
        "slots": slots,
    }


def _fmt_seconds(value: float) -> str:
    return f"{value:g} s"


PROBLEM_AREAS = ("archiving", "replication", "slots")


def find_problems(facts: Dict[str, Any], *, max_archive_age: Optional[float] = None,
                  max_replay_lag: Optional[float] = None,
                  max_replay_lag_bytes: Optional[int] = None) -> List[str]:
    """One plain sentence per violated expectation, in a stable order."""
    return [message for _area, message in find_problem_records(
        facts, max_archive_age=max_archive_age, max_replay_lag=max_replay_lag,
        max_replay_lag_bytes=max_replay_lag_bytes)]


def problems_by_area(records: List[Tuple[str, str]]) -> Dict[str, List[str]]:
    """The problems grouped by what they are about (``archiving``, ``replication``, ``slots``), each list in order."""
    return {area: [message for where, message in records if where == area] for area in PROBLEM_AREAS}


def find_problem_records(facts: Dict[str, Any], *, max_archive_age: Optional[float] = None,
                         max_replay_lag: Optional[float] = None,
                         max_replay_lag_bytes: Optional[int] = None) -> List[Tuple[str, str]]:
    """(area, sentence) per violated expectation, in a stable order; see :data:`PROBLEM_AREAS`."""
    problems: List[Tuple[str, str]] = []

    def add(area: str, message: str) -> None:
        problems.append((area, message))

    mode = facts.get("archive_mode")
    in_recovery = bool(facts.get("in_recovery"))
    # A standby with archive_mode = on leaves archiving to its primary; only "always" archives there.
    archives_here = mode == "always" or (mode == "on" and not in_recovery)

    if mode in (None, "off"):
        add("archiving", "WAL archiving is off (archive_mode = off): point-in-time recovery is not possible.")
    elif archives_here and not facts.get("archive_command") and not facts.get("archive_library"):
        add("archiving", f"archive_mode is {mode} but neither archive_command nor archive_library is set: "
                         "WAL segments pile up in pg_wal and nothing reaches the archive.")

    if archives_here and facts.get("failing"):
        add("archiving",
            f"WAL archiving is failing: segment {facts.get('last_failed_wal')} failed to archive at "
            f"{facts.get('last_failed_time')} ({facts.get('failed_count')} failures since {facts.get('stats_reset')}) "
            f"and no later segment was archived; the last archived segment is "
            f"{facts.get('last_archived_wal') or 'none'}.")

    if archives_here and max_archive_age is not None:
        age = facts.get("last_archived_age")
        if age is None:
            stats_age = facts.get("stats_age")
            if stats_age is None or stats_age > max_archive_age:
                add("archiving",
                    f"No WAL segment has been archived since the statistics were reset at "
                    f"{facts.get('stats_reset')} (max_archive_age is {_fmt_seconds(max_archive_age)}).")
        elif age > max_archive_age:
            add("archiving",
                f"The last archived segment {facts.get('last_archived_wal')} is {_fmt_seconds(age)} old "
                f"(archived at {facts.get('last_archived_time')}; max_archive_age is "
                f"{_fmt_seconds(max_archive_age)}).")

    lag_checks = []
    if in_recovery:
        lag_checks.append(("This standby", facts.get("replay_lag"), facts.get("replay_lag_bytes")))
    for rep in facts.get("replicas") or []:
        lag_checks.append((f"Standby {rep.get('application_name') or '(unnamed)'}",
                           rep.get("replay_lag"), rep.get("replay_lag_bytes")))
    for who, lag, lag_bytes in lag_checks:
        if max_replay_lag is not None and lag is not None and lag > max_replay_lag:
            add("replication", f"{who} is {_fmt_seconds(lag)} behind in replay (max_replay_lag is "
                               f"{_fmt_seconds(max_replay_lag)}).")
        if max_replay_lag_bytes is not None and lag_bytes is not None and lag_bytes > max_replay_lag_bytes:
            add("replication", f"{who} is {lag_bytes} bytes behind in replay (max_replay_lag_bytes is "
                               f"{max_replay_lag_bytes}).")

    for slot in facts.get("slots") or []:
        if slot.get("wal_status") == "lost":
            add("slots", f"Replication slot {slot.get('name')} has lost WAL it needed (wal_status = lost): "
                         "its consumer must be rebuilt.")
        elif not slot.get("active") and (slot.get("retained_bytes") or 0) > 0:
            add("slots", f"Inactive replication slot {slot.get('name')} retains {slot.get('retained_bytes')} "
                         "bytes of WAL in pg_wal; drop it or reconnect its consumer before the disk fills.")
    return problems


def validate_thresholds(params: Dict[str, Any]) -> None:
    for name in ("max_archive_age", "max_replay_lag", "max_replay_lag_bytes"):
        value = params.get(name)
        if value is not None and value < 0:
            raise InputError(f"{name} must not be negative (got {value}).")


def archiver_facts(params: Dict[str, Any], conn: Any = None) -> Dict[str, Any]:
    """Connect, collect, decide: the ``pg_archiver`` fact dict with ``problems`` and ``healthy``."""
    validate_thresholds(params)
    own = conn is None
    if own:
        conn = connect(params)
    try:
        raw = collect(conn)
    except psycopg.Error as exc:
        raise RestoreOpsError(f"Reading the archiver state failed: {_scrub(str(exc), params.get('login_password'))}"
                              ) from None
    finally:
        if own:
            conn.close()
    facts = build_facts(raw)
    records = find_problem_records(
        facts,
        max_archive_age=params.get("max_archive_age"),
        max_replay_lag=params.get("max_replay_lag"),
        max_replay_lag_bytes=params.get("max_replay_lag_bytes"),
    )
    facts["problems"] = [message for _area, message in records]
    facts["problems_by_area"] = problems_by_area(records)
    facts["healthy"] = not facts["problems"]
    return facts


def main(module: Any) -> Dict[str, Any]:
    """Entry point for the pg_archiver_facts module (read-only: the same in check mode)."""
    facts = archiver_facts(module.params)
    return {"changed": False, "ansible_facts": {"pg_archiver": facts}}
