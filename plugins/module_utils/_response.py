# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The timeline of ``playbooks/ransomware_response.yml``: phase marks (start, end, failed) into phase records."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence


def phases(marks: Sequence[Mapping[str, Any]], order: Sequence[str]) -> List[Dict[str, Any]]:
    """One record per phase in ``order``: seconds from its first start to its last end (or failure), and its status:
    ``ok``, ``failed`` (with the first failure's host and message), ``incomplete`` (started, never ended: the run
    stopped inside it) or ``not run`` (its tag was not selected, or an earlier phase failed)."""
    records = []
    for name in order:
        own = [m for m in marks if m.get("phase") == name]
        starts = [float(m["t"]) for m in own if m.get("event") == "start"]
        ends = [float(m["t"]) for m in own if m.get("event") in ("end", "failed")]
        failed = [m for m in own if m.get("event") == "failed"]
        if not starts:
            records.append({"name": name, "status": "not run", "seconds": None, "detail": ""})
            continue
        seconds = round(max(ends) - min(starts), 1) if ends else None
        if failed:
            status = "failed"
            detail = f"{failed[0].get('host', '?')}: {failed[0].get('msg', '')}"
        elif ends:
            status, detail = "ok", ""
        else:
            status, detail = "incomplete", "started, never ended"
        records.append({"name": name, "status": status, "seconds": seconds, "detail": detail,
                        "start": min(starts), "end": max(ends) if ends else None})
    return records


def rotation_record(result: Mapping[str, Any], kind: str) -> Dict[str, Any]:
    """One line of the report for a registered loop result of the rotate phase: what was rotated, how, and what
    proves it. Names, key ids and proofs only; the results hold no secret (the modules never return one)."""
    item = result.get("item")
    if kind == "borg":
        name = item.get("repository") if isinstance(item, Mapping) else item
        change = result.get("passphrase_change") or {}
        export = (result.get("key_export") or {}).get("dest")
        detail = ("borg key change-passphrase" if change.get("changed") else "the new passphrase was already set")
        detail += f"; the key exported to {export}" if export else ""
        proven = ("the new passphrase opens it, the old one is refused"
                  if change.get("new_opens") and change.get("old_refused") is not False else "NOT proven")
        return {"what": f"borg passphrase of {name}", "detail": detail, "proven": proven}
    if kind == "restic":
        name = item.get("repository") if isinstance(item, Mapping) else item
        rotation = result.get("key_rotation") or {}
        kept = isinstance(item, Mapping) and item.get("remove_old_key") in (False, "false", "False")
        detail = f"new key {rotation.get('new_key_id') or '?'}"
        if rotation.get("old_key_id"):
            detail += f", old key {rotation['old_key_id']} " + ("kept (append-only server)" if kept else "removed")
        proven = ("the old password is refused" if rotation.get("old_refused")
                  else "the old password still opens it (old key kept)")
        return {"what": f"restic key of {name}", "detail": detail, "proven": proven}
    if kind == "postgresql":
        return {"what": f"database role {item}", "detail": "new password (kept in the secrets directory)",
                "proven": "set" if not result.get("failed") else "failed"}
    raise ValueError(f"unknown credential kind {kind!r}")
