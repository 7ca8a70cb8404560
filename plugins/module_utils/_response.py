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
