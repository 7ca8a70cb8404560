# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which base backup a point-in-time recovery starts from (the pg_wal_archive role's ``tasks/pitr.yml``).

Each base backup the role takes records ``restoreops-backup.json`` (``name``, ``start_time``, ``end_time`` in UTC,
``start_wal``). Recovery can stop no earlier than the end of the base backup it starts from, so for a target time
the newest backup that ended at or before it (to the second) is chosen; for ``latest`` the newest of all; a backup
named explicitly is taken as it is (PostgreSQL then refuses a target before its end).
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError
from ansible_collections.restoreops.dr.plugins.module_utils._time import UTC, parse_time


def _ended(label: Mapping[str, Any]) -> Any:
    try:
        return parse_time(str(label.get("end_time") or ""), naive_tz=UTC)
    except ValueError as exc:
        raise InputError(f"Base backup {label.get('name')!r} records an unreadable end_time: {exc}.") from exc


def choose_base_backup(labels: Iterable[Mapping[str, Any]], target_time: str = "latest",
                       backup: str = "auto") -> dict[str, Any]:
    """The label of the base backup to start from, or ``{}`` when none fits.

    ``target_time`` is ``latest`` or a UTC time (``YYYY-MM-DD HH:MM:SS[.ffffff]``, an offset allowed); backups are
    ordered by name (their names are their UTC start times).
    """
    ordered = sorted((dict(label) for label in labels), key=lambda label: str(label.get("name", "")))
    if backup != "auto":
        return next((label for label in ordered if label.get("name") == backup), {})
    if target_time == "latest":
        return ordered[-1] if ordered else {}
    try:
        target = parse_time(target_time, naive_tz=UTC).replace(microsecond=0)
    except ValueError as exc:
        raise InputError(f"The recovery target {target_time!r} is not a time such as 2026-03-14 09:00:00.") from exc
    usable = [label for label in ordered if _ended(label) <= target]
    return usable[-1] if usable else {}
