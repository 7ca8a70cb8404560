# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every tool's timestamps, parsed in one place.

restic prints RFC 3339 times with nanoseconds and an offset (``2026-11-23T11:29:40.058736259+01:00``, or ``Z``);
PostgreSQL prints offsets such as ``+00``; borg 1.x prints ISO 8601 times *without* an offset.

The borg rule, stated once: a time without an offset is the wall-clock time of the host that ran borg, in that
host's local time zone (borg 1.2 and 1.4 convert the archive's UTC time with ``time.localtime`` before printing).
So :func:`parse_time` reads a zone-less time in the local zone of the process that parses it, which is right on the
host that ran borg, and :func:`with_offset` turns such a time into one that carries its offset there, before it
leaves the host in a module result. A time that already has an offset is never reinterpreted.

Standard library only: the backup_verify runner ships this file to hosts that have no Ansible.
"""

from __future__ import annotations

import datetime as _dt
import re

UTC = _dt.timezone.utc  # datetime.UTC needs Python 3.11; managed hosts may run 3.9

_TIME_RE = re.compile(
    r"^(?P<date>\d{4}-\d\d-\d\d)[T ](?P<clock>\d\d:\d\d(?::\d\d)?)(?:[.,](?P<frac>\d+))?"
    r"\s*(?P<zone>Z|[+-]\d\d(?::?\d\d)?)?$",
    re.IGNORECASE,
)


def parse_time(text: str, naive_tz: _dt.tzinfo | None = None) -> _dt.datetime:
    """An aware datetime from a tool's ISO 8601 / RFC 3339 time; raises ValueError for anything else.

    Fractions longer than microseconds are cut (restic prints nanoseconds). A missing offset means the local time
    zone of this process (borg's rule, see the module documentation), or ``naive_tz`` where an option documents
    another reading of a time a user wrote (for example UTC).
    """
    match = _TIME_RE.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not an ISO 8601 time")
    clock = match.group("clock")
    if clock.count(":") == 1:
        clock += ":00"
    micro = (match.group("frac") or "0")[:6].ljust(6, "0")
    value = _dt.datetime.fromisoformat(f"{match.group('date')}T{clock}.{micro}")
    zone = match.group("zone")
    if zone is None:
        if naive_tz is not None:
            return value.replace(tzinfo=naive_tz)
        return value.astimezone()  # a naive datetime is local time: this gives it the local offset of that moment
    if zone.upper() == "Z":
        return value.replace(tzinfo=UTC)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    offset = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return value.replace(tzinfo=_dt.timezone(sign * offset))


def parse_time_or_none(text: str | None) -> _dt.datetime | None:
    """:func:`parse_time`, or None for an empty or unreadable value (for reports that must not fail on one)."""
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def timestamp(text: str) -> float:
    """Seconds since the epoch of a tool's time."""
    return parse_time(text).timestamp()


def with_offset(text: str | None) -> str | None:
    """The same instant as ISO 8601 with its offset (microseconds kept); a time that has one comes back unchanged.

    Used where borg's zone-less times leave the host they were printed on.
    """
    if not text:
        return text
    match = _TIME_RE.match(str(text).strip())
    if match is None or match.group("zone") is not None:
        return text
    return parse_time(text).isoformat(timespec="microseconds")


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(UTC)


def isoformat_utc(stamp: float) -> str:
    """Seconds since the epoch as an ISO 8601 UTC time (``+00:00``)."""
    return _dt.datetime.fromtimestamp(stamp, UTC).isoformat()
