# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nightly verification's decisions (the backup_verify role's on-host runner imports them).

Which backup is the latest, how old it is and whether that is too old, what a repository's result is (FAIL when
anything is broken, else STALE when the latest backup is only too old, else PASS), and what the whole run's result
and exit code are. Pure functions over the tools' parsed JSON; the runner does the I/O.

Standard library and this collection's tool layer only: the role ships these files to the host next to the runner.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._time import timestamp

PASS, FAIL, STALE = "PASS", "FAIL", "STALE"
RESULTS = (PASS, FAIL, STALE)
EXIT = {PASS: 0, FAIL: 1, STALE: 2}
EXIT_CONFIG = 3


class NothingToVerify(Exception):
    """The repository holds no backup (or its listing cannot be read)."""


def latest_borg(listing: Mapping[str, Any]) -> tuple[str, float]:
    """(archive name, seconds since the epoch) of the last archive of ``borg list --json --last 1``."""
    archives = listing.get("archives") or []
    if not archives:
        raise NothingToVerify("the repository holds no archive")
    archive = archives[-1]
    return archive["name"], timestamp(archive.get("time") or archive["start"])


def latest_restic(snapshots: Sequence[Mapping[str, Any]] | None) -> tuple[str, float]:
    """(snapshot id, seconds since the epoch) of the newest snapshot of ``restic snapshots --json``."""
    if not snapshots:
        raise NothingToVerify("the repository holds no snapshot")
    when, ident = max((timestamp(s["time"]), s["id"]) for s in snapshots)
    return ident, when


def backup_age(ident: str, when: float, now: float, max_age_hours: float) -> tuple[float, str | None]:
    """The latest backup's age in seconds, and a sentence when it is older than ``max_age_hours``."""
    age = max(0.0, now - when)
    if age > max_age_hours * 3600:
        return age, f"the latest backup {ident} is {age / 3600:.1f} h old, older than {max_age_hours:g} h"
    return age, None


def repository_result(problems: Sequence[str], stale: Sequence[str]) -> str:
    """FAIL (anything broken) > STALE (only too old) > PASS."""
    if problems:
        return FAIL
    if stale:
        return STALE
    return PASS


def overall(results: Iterable[str]) -> str:
    found = set(results)
    return FAIL if FAIL in found else STALE if STALE in found else PASS
