# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monthly DR drill (``playbooks/dr_drill.yml``): which checklist item a drill failed, its history entry, and the
trend over the last drills as a table and an SVG picture.

Pure functions over what the playbook gathered (the restore report of ``restoreops.dr.restore_server``, the drill's
own probe records, the failed task); nothing here talks to a host. The history is a file of JSON lines on the
controller, one entry per drill; :func:`parse_history` reads it back, keeping the entries it can read and counting the
lines it cannot.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Any, Iterable, Mapping, Sequence
from xml.sax.saxutils import escape

# The checklist of the runbook's "DR Failover Drill Checklist", in its order: key -> the name a report shows.
ITEMS: dict[str, str] = {
    "notification": "notification sent",
    "settings": "drill settings",
    "freshness": "backup fresher than the RPO",
    "offsite": "offsite repository reachable",
    "standby": "standby empty and isolated",
    "restore": "restore onto the standby",
    "integrity": "integrity (row counts, checksums, sanity checks)",
    "cutover": "cut-over",
    "smoke": "application smoke tests",
    "monitoring": "monitoring sees the standby",
    "rto": "RTO within the objective",
    "record": "drill recorded",
}

# Tasks of the restore_server role's preflight that answer one pre-drill item each (by the start of their name).
_PREFLIGHT_TASKS: tuple[tuple[str, str], ...] = (
    ("Check the target is an isolated, empty replacement", "standby"),
    ("Find the restore point", "offsite"),
)


def _title(key: str) -> str:
    return ITEMS.get(key, key)


def _sanity_item(check: Mapping[str, Any]) -> str:
    phase = check.get("phase")
    if phase in ("smoke", "monitoring"):
        return str(phase)
    return "integrity"


def failed_item(report: Mapping[str, Any] | None, step: str, task: str = "", msg: str = "",
                rpo: float | None = None, drill_checks: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The checklist item a failed drill stopped at, with the failing task's message.

    ``step`` is the item the playbook was at when it failed (``restore`` while the role ran); a failure inside the
    role is placed by the role's report: its failed phase, the failing task of the preflight, and the checks that
    failed (an SQL, HTTP, write or dependency check is integrity; a data-phase checksum mismatch too).
    """
    report = report or {}
    failure = dict(report.get("failure") or {})
    key = step if step in ITEMS else "restore"
    phase = failure.get("phase")
    detail = msg or str(failure.get("msg") or "")
    if step == "restore" and failure:
        role_task = str(failure.get("task") or task or "")
        detail = str(failure.get("msg") or msg or "")
        failed = [c for c in report.get("checks") or [] if not c.get("ok") and c.get("required", True)
                  and c.get("phase") in ("data", "sanity", "cutover")]
        if phase == "preflight":
            key = next((k for prefix, k in _PREFLIGHT_TASKS if role_task.startswith(prefix)), "restore")
            if role_task.startswith("Check the backup is fresher than the RPO"):
                age = (report.get("rpo") or {}).get("files_seconds")
                key = "freshness" if age is None or rpo is None or float(age) > float(rpo) else "standby"
        elif phase == "cutover":
            key = "cutover"
        elif failed:
            key = _sanity_item(failed[0]) if failed[0].get("phase") != "cutover" else "cutover"
            detail = "; ".join(f"{c.get('name')}: {c.get('detail', '')}".rstrip(": ") for c in failed) or detail
    elif step in ("smoke", "monitoring"):
        checks = [c for c in drill_checks or [] if not c.get("ok") and c.get("required", True)]
        if checks:
            key = _sanity_item(checks[0])
            detail = "; ".join(f"{c.get('name')}: {c.get('detail', '')}" for c in checks)
    return {"key": key, "item": _title(key), "phase": phase, "task": task or failure.get("task") or "",
            "message": " ".join(detail.split())}


def checklist(failed_key: str | None, skipped: Iterable[str] = (),
              evidence: Mapping[str, bool] | None = None) -> list[dict[str, str]]:
    """The checklist as the drill went: FAIL at the failed item, "not reached" after it, ok before it.

    ``evidence`` overrides the order for the items the restore role checks in its preflight (standby, offsite,
    freshness): each is ok only when the report shows it passed, else "not reached" (a restore that failed before its
    preflight proved none of them). The items the user did not declare (smoke tests, monitoring probes, an RTO
    objective, a cut-over, a notification) are "not declared"; an undelivered notification is "warn".
    """
    skipped = set(skipped)
    evidence = dict(evidence or {})
    out = []
    state = "ok"
    for key, title in ITEMS.items():
        if key in ("settings", "record"):
            continue
        if key == failed_key:
            out.append({"item": title, "status": "FAIL"})
            state = "not reached"
            continue
        if key in evidence:
            status = "ok" if evidence[key] else "not reached"
        elif key in skipped and state == "ok":
            status = "not declared"
        else:
            status = state
        out.append({"item": title, "status": status})
    if failed_key == "settings":
        out = [{"item": ITEMS["settings"], "status": "FAIL"}] + [dict(i, status="not reached") for i in out]
    return out


def _evidence(report: Mapping[str, Any]) -> dict[str, bool]:
    """What the restore report proves of the pre-drill items (see :func:`checklist`)."""
    passed = {c.get("name") for c in report.get("checks") or [] if c.get("phase") == "preflight" and c.get("ok")}
    return {"standby": "disk space" in passed, "offsite": bool(report.get("restore_point")),
            "freshness": "backup within RPO" in passed}


def issues(checks: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per check that did not pass (required or not): what the drill met on its way."""
    out = []
    for check in checks:
        if check.get("ok"):
            continue
        mark = "FAIL" if check.get("required", True) else "warn"
        line = f"{mark} {check.get('phase', '?')}: {check.get('name', '?')}"
        if check.get("detail"):
            line += f" - {check['detail']}"
        out.append(" ".join(line.split()))
    return out


def _utc(seconds: float) -> str:
    return _dt.datetime.fromtimestamp(float(seconds), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(state: Mapping[str, Any]) -> dict[str, Any]:
    """The history entry of one drill (one JSON line) from the playbook's state.

    Keys of ``state``: ``started`` and ``finished`` (Unix times of the drill's timer), ``standby`` (the host),
    ``report`` (restore_server's report, or nothing when the role did not get that far), ``drill_checks`` (the
    drill's own smoke and monitoring records), ``failure`` (from :func:`failed_item`, empty when the drill passed),
    ``notify_checks`` (undelivered notifications), ``skipped`` (the keys of the items not declared), ``teardown``
    (``torn down``, ``left`` or ``teardown failed: ...``), ``check_mode`` and ``report_path``.
    """
    report = dict(state.get("report") or {})
    failure = dict(state.get("failure") or {})
    drill_checks = list(state.get("drill_checks") or [])
    checks = list(state.get("notify_checks") or []) + list(report.get("checks") or []) + drill_checks
    rpo = dict(report.get("rpo") or {})
    point = dict(report.get("restore_point") or {})
    source = dict(report.get("source") or {})
    started = float(state["started"])
    finished = float(state["finished"])
    check_mode = report.get("result") == "CHECK" or bool(state.get("check_mode"))
    notify_failed = any(not c.get("ok") for c in state.get("notify_checks") or [])
    passed = not failure and report.get("result") == "PASS"
    failed_key = None if passed or (check_mode and not failure) else failure.get("key") or "restore"
    items = checklist(failed_key, state.get("skipped") or (), _evidence(report))
    return {
        "drill": _utc(started),
        "finished": _utc(finished),
        "standby": state.get("standby"),
        "result": "PASS" if passed else "CHECK" if check_mode and not failure else "FAIL",
        "failed_item": None if passed or (check_mode and not failure) else failure.get("item") or _title("restore"),
        "failed_phase": None if passed else failure.get("phase"),
        "failure": None if passed else failure.get("message") or None,
        "rto_seconds": report.get("rto_seconds") if passed else None,
        "rpo_seconds": rpo.get("files_seconds"),
        "rpo_database_seconds": rpo.get("postgresql_seconds"),
        "drill_seconds": round(finished - started, 1),
        "tool": source.get("tool"),
        "repository": source.get("repository"),
        "restore_point": point.get("name") or point.get("id"),
        "restore_point_time": point.get("time"),
        "checks": len(checks),
        "issues": issues(checks),
        "checklist": [dict(c, status="warn") if c["item"] == ITEMS["notification"] and notify_failed
                      and c["status"] == "ok" else c for c in items],
        "teardown": state.get("teardown") or "left",
        "report": state.get("report_path"),
    }


def summary(entry: Mapping[str, Any]) -> str:
    """The drill in a few lines: verdict, RTO and RPO, the checklist, the issues met."""
    head = f"DR drill {entry.get('result')} on {entry.get('standby')}"
    if entry.get("failed_item"):
        head += f" at checklist item '{entry['failed_item']}': {entry.get('failure') or ''}".rstrip(": ")
    lines = [head, f"  RTO {duration(entry.get('rto_seconds'))}, RPO files {duration(entry.get('rpo_seconds'))}, "
                   f"RPO database {duration(entry.get('rpo_database_seconds'))}, "
                   f"drill {duration(entry.get('drill_seconds'))}; standby {entry.get('teardown')}"]
    lines += [f"  [{c['status']}] {c['item']}" for c in entry.get("checklist") or []]
    found = entry.get("issues") or []
    lines.append(f"  issues met: {len(found)}")
    lines += [f"    {line}" for line in found]
    return "\n".join(lines) + "\n"


def parse_history(text: str) -> dict[str, Any]:
    """The entries of a history file (JSON lines), oldest first, and how many lines could not be read."""
    entries: list[dict[str, Any]] = []
    unreadable = 0
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            unreadable += 1
            continue
        if isinstance(entry, dict) and entry.get("drill"):
            entries.append(entry)
        else:
            unreadable += 1
    entries.sort(key=lambda e: str(e.get("drill")))
    return {"entries": entries, "unreadable": unreadable}


def _last(entries: Sequence[Mapping[str, Any]], last: int) -> list[Mapping[str, Any]]:
    if int(last) < 1:
        raise ValueError("last must be at least 1")
    return list(entries)[-int(last):]


def duration(seconds: Any) -> str:
    """A duration for people: 42 s, 3 min 5 s, 2 h 10 min, 1 d 2 h; '-' for none."""
    if seconds is None or seconds == "":
        return "-"
    s = round(float(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def table(entries: Sequence[Mapping[str, Any]], last: int = 12) -> str:
    """The last drills as a Markdown table, oldest first."""
    rows = ["| drill (UTC) | standby | tool | result | RTO | RPO files | RPO database | drill | failed item |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in _last(entries, last):
        failed = str(e.get("failed_item") or "").replace("|", "/")
        rows.append(f"| {e.get('drill')} | {e.get('standby') or '-'} | {e.get('tool') or '-'} | {e.get('result')} | "
                    f"{duration(e.get('rto_seconds'))} | {duration(e.get('rpo_seconds'))} | "
                    f"{duration(e.get('rpo_database_seconds'))} | {duration(e.get('drill_seconds'))} | "
                    f"{failed or '-'} |")
    if len(rows) == 2:
        rows.append("| no drill recorded yet | | | | | | | | |")
    return "\n".join(rows) + "\n"


def _nice_max(value: float) -> float:
    """A round upper bound of an axis (1, 2 or 5 times a power of ten) at or above value."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _unit(max_seconds: float) -> tuple[float, str]:
    if max_seconds >= 2 * 86400:
        return 86400.0, "d"
    if max_seconds >= 2 * 3600:
        return 3600.0, "h"
    if max_seconds >= 120:
        return 60.0, "min"
    return 1.0, "s"


_WIDTH, _LEFT, _RIGHT, _PANEL, _GAP, _TOP = 720, 70, 20, 150, 60, 40
_SERIES = {"rto_seconds": ("RTO", "#1f6fb4"), "rpo_seconds": ("RPO files", "#c0601a"),
           "rpo_database_seconds": ("RPO database", "#6a4c93")}


def _panel(out: list[str], title: str, keys: Sequence[str], entries: Sequence[Mapping[str, Any]], top: float,
           objective: float | None) -> None:
    values = [float(e[k]) for e in entries for k in keys if e.get(k) is not None]
    top_value = max(values + ([float(objective)] if objective else []) + [0.0])
    scale, unit = _unit(top_value)
    axis_max = _nice_max(top_value / scale) if top_value else 1.0
    plot_w = _WIDTH - _LEFT - _RIGHT
    n = len(entries)

    def x(i: int) -> float:
        return _LEFT + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(seconds: float) -> float:
        return top + _PANEL - _PANEL * (seconds / scale) / axis_max

    out.append(f'<text x="{_LEFT}" y="{top - 8:.1f}" class="title">{escape(title)} ({unit})</text>')
    out.append(f'<rect x="{_LEFT}" y="{top}" width="{plot_w}" height="{_PANEL}" class="frame"/>')
    for tick in range(5):
        value = axis_max * tick / 4
        ty = top + _PANEL - _PANEL * tick / 4
        out.append(f'<line x1="{_LEFT}" y1="{ty:.1f}" x2="{_LEFT + plot_w}" y2="{ty:.1f}" class="grid"/>')
        out.append(f'<text x="{_LEFT - 6}" y="{ty + 4:.1f}" class="tick" text-anchor="end">{value:g}</text>')
    if objective:
        oy = y(float(objective))
        out.append(f'<line x1="{_LEFT}" y1="{oy:.1f}" x2="{_LEFT + plot_w}" y2="{oy:.1f}" class="objective"/>')
        out.append(f'<text x="{_LEFT + plot_w - 4}" y="{oy - 4:.1f}" class="tick" text-anchor="end">'
                   f'objective {escape(duration(objective))}</text>')
    legend_x = _LEFT + 260
    for key in keys:
        label, colour = _SERIES[key]
        points = [(x(i), y(float(e[key])), e) for i, e in enumerate(entries) if e.get(key) is not None]
        if len(points) > 1:
            path = " ".join(f"{point[0]:.1f},{point[1]:.1f}" for point in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py, e in points:
            tip = f"{e.get('drill')} {label} {duration(e.get(key))} ({e.get('result')})"
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}" class="point {key}">'
                       f"<title>{escape(tip)}</title></circle>")
        out.append(f'<rect x="{legend_x}" y="{top - 18:.1f}" width="12" height="4" fill="{colour}"/>'
                   f'<text x="{legend_x + 16}" y="{top - 13:.1f}" class="tick">{escape(label)}</text>')
        legend_x += 120
    for i, e in enumerate(entries):
        if e.get("result") != "PASS":
            fx, fy = x(i), top + _PANEL
            tip = f"{e.get('drill')} FAIL at {e.get('failed_item') or '?'}"
            out.append(f'<path d="M{fx - 5:.1f},{fy - 5:.1f} l10,10 m0,-10 l-10,10" class="fail">'
                       f"<title>{escape(tip)}</title></path>")


def svg(entries: Sequence[Mapping[str, Any]], last: int = 12, rto_objective: float | None = None,
        rpo_objective: float | None = None, title: str = "DR drills") -> str:
    """RTO (top) and RPO (bottom) of the last drills as an SVG picture; a failed drill is a red cross (no RTO)."""
    shown = _last(entries, last)
    height = _TOP + 2 * _PANEL + _GAP + 60
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
           f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="11">',
           "<style>.title{font-size:13px;font-weight:bold}.frame{fill:none;stroke:#888}"
           ".grid{stroke:#ddd}.objective{stroke:#c00;stroke-dasharray:6 4}.tick{fill:#333}"
           ".fail{stroke:#c00;stroke-width:2;fill:none}</style>",
           f'<text x="{_LEFT}" y="18" class="title">{escape(title)}: the last {len(shown)} drill(s) '
           f"({sum(1 for e in shown if e.get('result') == 'PASS')} passed)</text>"]
    if not shown:
        out.append(f'<text x="{_LEFT}" y="{_TOP + 20}">no drill recorded yet</text></svg>')
        return "\n".join(out) + "\n"
    _panel(out, "RTO: to service", ["rto_seconds"], shown, _TOP + 20, rto_objective)
    _panel(out, "RPO: data lost", ["rpo_seconds", "rpo_database_seconds"], shown, _TOP + 20 + _PANEL + _GAP,
           rpo_objective)
    base = _TOP + 20 + 2 * _PANEL + _GAP
    plot_w = _WIDTH - _LEFT - _RIGHT
    n = len(shown)
    # The date of each drill, with its time when two drills share a day; at most eight labels, the newest always.
    stamps = [str(e.get("drill") or "") for e in shown]
    same_day = len({stamp[:10] for stamp in stamps}) < len(stamps)
    every = math.ceil(n / 8)
    for i, stamp in enumerate(stamps):
        if (n - 1 - i) % every:
            continue
        lx = _LEFT + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))
        label = stamp[:16].replace("T", " ") if same_day else stamp[:10]
        out.append(f'<text x="{lx:.1f}" y="{base + 16}" class="tick label" text-anchor="middle">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
