# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A repository's snapshot inventory compared with the one recorded earlier, off the backed-up host.

An attacker with a host's backup credentials may delete snapshots (restic ``forget``, borg ``delete``: an
append-only server keeps the data, yet the listing no longer shows them) or rewrite them (restic ``rewrite``, a
re-created borg archive under the same name). Comparing today's listing with the last recorded one names both. A
snapshot is matched by its id first; a recorded snapshot whose id is gone but whose name (borg archive) or time
(restic, to the second) reappears under another id was rewritten, one that left no trace was deleted. A snapshot
that is new but older than the record is backdated (it should have been in the record). Pure functions.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time_or_none


def _second(value: Any) -> Optional[int]:
    parsed = parse_time_or_none(str(value or ""))
    return int(parsed.timestamp()) if parsed else None


def _slim(snapshot: Mapping[str, Any]) -> Dict[str, Any]:
    return {k: snapshot.get(k) for k in ("id", "name", "time")}


def compare(current: Sequence[Mapping[str, Any]], recorded: Sequence[Mapping[str, Any]],
            recorded_at: Optional[str] = None) -> Dict[str, Any]:
    """Deleted, rewritten, backdated and new snapshots of ``current`` against ``recorded``."""
    current_ids = {s.get("id") for s in current}
    recorded_ids = {s.get("id") for s in recorded}
    unmatched = [s for s in current if s.get("id") not in recorded_ids]
    deleted: List[Dict[str, Any]] = []
    rewritten: List[Dict[str, Any]] = []
    for old in recorded:
        if old.get("id") in current_ids:
            continue
        same = next((s for s in unmatched
                     if (old.get("name") and s.get("name") == old.get("name") and s.get("name") != s.get("id", "")[:8])
                     or (_second(old.get("time")) is not None and _second(s.get("time")) == _second(old.get("time")))),
                    None)
        if same is not None:
            unmatched.remove(same)
            rewritten.append({"recorded": _slim(old), "now": _slim(same)})
        else:
            deleted.append(_slim(old))
    cutoff = _second(recorded_at) if recorded_at else max((_second(s.get("time")) or 0 for s in recorded), default=None)
    backdated = [_slim(s) for s in unmatched if cutoff is not None and (_second(s.get("time")) or 0) <= cutoff]
    new = [_slim(s) for s in unmatched if s not in backdated and _slim(s) not in backdated]
    return {
        "ok": not (deleted or rewritten or backdated),
        "deleted": deleted,
        "rewritten": rewritten,
        "backdated": backdated,
        "new": new,
        "unchanged": len(recorded_ids & current_ids),
        "recorded": len(recorded),
        "current": len(current),
    }


def sentence(name: str, diff: Mapping[str, Any]) -> str:
    """One line for the report."""
    if diff["ok"]:
        return (f"{name}: the {diff['recorded']} recorded snapshot(s) are all there, unchanged; "
                f"{len(diff['new'])} new since the record")
    parts = []
    if diff["deleted"]:
        parts.append("deleted: " + ", ".join(f"{s['name'] or s['id']} ({s['time']})" for s in diff["deleted"]))
    if diff["rewritten"]:
        parts.append("rewritten: " + ", ".join(f"{r['recorded']['name'] or r['recorded']['id']} ({r['recorded']['id']}"
                                               f" -> {r['now']['id']})" for r in diff["rewritten"]))
    if diff["backdated"]:
        parts.append("backdated, not in the record: " + ", ".join(f"{s['name'] or s['id']} ({s['time']})"
                                                                  for s in diff["backdated"]))
    return f"{name}: " + "; ".join(parts)
