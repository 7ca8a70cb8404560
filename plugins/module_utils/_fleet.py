# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several hosts restored together (restore_server_after_hosts): the order across hosts and the fleet report.

A host's services start once every host it restores after is in service. The hosts are grouped in levels: level 0
depends on no host of the play, level n on hosts of lower levels only; the role runs the services, sanity and
cut-over phases one level after another while the earlier phases run on all hosts at once. The fleet report puts
the hosts' own reports side by side on one clock.
"""

from __future__ import annotations

from html import escape
from typing import Any, Mapping, Sequence


class FleetError(ValueError):
    """The hosts' dependencies cannot be ordered (a cycle, an unknown host, a malformed value)."""


def _after(value: Any, host: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or any(not isinstance(v, str) or not v for v in value):
        raise FleetError(f"restore_server_after_hosts of {host} must be a list of inventory host names, got {value!r}")
    return list(value)


def levels(after: Mapping[str, Any]) -> dict[str, int]:
    """Each host's level from ``{host: [hosts it restores after]}`` (every host of the play is a key).

    A host names only hosts of the same play (one not restored here has no services this play could wait for: such a
    dependency belongs in restore_server_external_dependencies); a cycle is an error that names it.
    """
    deps = {str(host): _after(value, str(host)) for host, value in after.items()}
    for host, names in deps.items():
        unknown = [n for n in names if n not in deps]
        if unknown:
            raise FleetError(
                f"restore_server_after_hosts: {host} restores after {', '.join(unknown)}, which this play does not "
                "restore (restore it in the same play, or probe it with restore_server_external_dependencies)")
    level: dict[str, int] = {}
    pending = list(deps)
    depth = 0
    while pending:
        ready = [h for h in pending if all(d in level and level[d] < depth for d in deps[h])]
        if not ready:
            raise FleetError("restore_server_after_hosts: dependency cycle across hosts "
                             + " -> ".join(cycle(pending, deps)))
        for host in ready:
            level[host] = depth
        pending = [h for h in pending if h not in level]
        depth += 1
    return level


def cycle(pending: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle among the nodes left unordered (a -> b -> a), for a message: from the first, along the first
    dependency still pending. The services' order (filter service_order) names its cycles with it too."""
    path = [pending[0]]
    while True:
        node = next(d for d in deps[path[-1]] if d in pending)
        if node in path:
            return [*path[path.index(node):], node]
        path.append(node)


def dependency_checks(hosts: Sequence[str], in_service: Sequence[Any], done: Sequence[Any],
                      phases: Sequence[Any]) -> list[dict[str, Any]]:
    """One services-phase check per host this one restores after: in service (or restored by an earlier run), or
    not, with the phase where its restore stopped."""
    checks = []
    for host, served, complete, marks in zip(hosts, in_service, done, phases):
        names = [m.get("name") for m in marks or [] if isinstance(m, Mapping)]
        if served not in (None, ""):
            ok, detail = True, f"{host}, in service"
        elif complete:
            ok, detail = True, f"{host}, restored by an earlier run"
        elif names:
            ok, detail = False, f"{host}, which is not in service (its restore stopped in phase {names[-1]})"
        else:
            ok, detail = False, f"{host}, which is not in service (its restore did not start)"
        checks.append({"phase": "services", "name": f"restores after {host}", "ok": ok, "detail": detail})
    return checks


def _num(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def report(reports: Mapping[str, Any], after: Mapping[str, Any],
           done: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fleet report from each host's restore report (``{host: report or None}``) and its dependencies.

    Every host's phases on one clock (seconds since the first host started), the fleet's time to service (when the
    last host came into service), the critical path (the chain of hosts, each waiting on the one before, that ends
    at the last host in service) and the result: PASS only when every host of the play passed (a host restored by an
    earlier run, ``done``, writes no report this time and counts as passed, marked DONE).
    """
    done = done or {}
    deps = {str(h): _after(v, str(h)) for h, v in after.items()}
    for host in reports:
        deps.setdefault(str(host), [])
    try:
        level = levels(deps)
    except FleetError:
        level = {}
    starts = [_num(r.get("started_unix")) for r in reports.values() if isinstance(r, Mapping)]
    starts = [s for s in starts if s is not None]
    origin = min(starts) if starts else 0.0
    hosts: list[dict[str, Any]] = []
    in_service: dict[str, float] = {}
    for host in sorted(reports, key=lambda h: (level.get(h, 0), h)):
        r = reports[host] if isinstance(reports[host], Mapping) else None
        if r is None:
            earlier = bool(done.get(host))
            hosts.append({"host": host, "result": "DONE" if earlier else "NO REPORT", "level": level.get(host),
                          "after_hosts": deps[host],
                          "started_offset": None, "rto_seconds": None, "in_service_offset": None,
                          "services_offset": None, "waited_seconds": None, "phases": [], "failure": {} if earlier else {
                              "phase": "setup", "msg": "no restore report: the host did not reach the restore"}})
            continue
        start = _num(r.get("started_unix")) or origin
        shift = start - origin
        phases = [dict(p, start_offset=round(float(p.get("start_offset") or 0) + shift, 2))
                  for p in r.get("phases") or []]
        rto = _num(r.get("rto_seconds"))
        served = round(shift + rto, 1) if rto is not None and r.get("result") == "PASS" else None
        if served is not None:
            in_service[host] = served
        services = next((p["start_offset"] for p in phases if p.get("name") == "services"), None)
        # The role marks a phase "wait" from the end of a host's own work to its level's turn.
        wait = next((p for p in phases if p.get("name") == "wait"), None)
        hosts.append({
            "host": host, "result": r.get("result"), "level": level.get(host), "after_hosts": deps[host],
            "started_offset": round(shift, 1), "rto_seconds": rto, "in_service_offset": served,
            "services_offset": services,
            # How long the host, its data in place, waited for the hosts it restores after.
            "waited_seconds": (round(float(wait.get("seconds") or 0), 1) if wait is not None
                               else 0.0 if services is not None else None),
            "phases": phases, "failure": dict(r.get("failure") or {}),
        })
    passed = bool(hosts) and all(h["result"] in ("PASS", "DONE") for h in hosts) and bool(in_service)
    last = max(in_service, key=lambda h: in_service[h]) if passed else None
    return {
        "result": "PASS" if passed else ("CHECK" if hosts and all(h["result"] == "CHECK" for h in hosts) else "FAIL"),
        "hosts_count": len(hosts),
        "passed": sum(1 for h in hosts if h["result"] in ("PASS", "DONE")),
        "levels": max(level.values()) + 1 if level else 0,
        "started_unix": round(origin, 3),
        "time_to_service_seconds": in_service[last] if last else None,
        "last_in_service": last,
        "critical_path": _critical_path(last, deps, in_service) if last else [],
        "failed": [{"host": h["host"], "phase": h["failure"].get("phase"), "msg": h["failure"].get("msg")}
                   for h in hosts if h["result"] not in ("PASS", "DONE", "CHECK")],
        "hosts": hosts,
    }


def _critical_path(last: str, deps: Mapping[str, Sequence[str]],
                   in_service: Mapping[str, float]) -> list[dict[str, Any]]:
    """From the last host in service back along the dependency that came into service last."""
    path = [last]
    while True:
        before = [d for d in deps.get(path[-1], []) if d in in_service and d not in path]
        if not before:
            break
        path.append(max(before, key=lambda d: in_service[d]))
    return [{"host": h, "in_service_offset": in_service[h]} for h in reversed(path)]


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{value} s"


def markdown(fleet: Mapping[str, Any]) -> str:
    """The fleet report in Markdown."""
    lines = [f"# Fleet restore: {fleet['result']}", ""]
    lines.append(f"{fleet['passed']} of {fleet['hosts_count']} hosts passed, {fleet['levels']} dependency level(s).")
    if fleet.get("time_to_service_seconds") is not None:
        lines.append(f"Time to service of the fleet: **{fleet['time_to_service_seconds']} s** "
                     f"(the last host in service: {fleet['last_in_service']}).")
    if fleet.get("critical_path"):
        lines.append("Critical path: " + " → ".join(f"{p['host']} ({p['in_service_offset']} s)"
                                                    for p in fleet["critical_path"]) + ".")
    lines += ["", "| host | level | restores after | result | started | services start | waited | in service |",
              "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for h in fleet["hosts"]:
        level = "" if h["level"] is None else h["level"]
        lines.append(f"| {h['host']} | {level} | {', '.join(h['after_hosts']) or '-'} "
                     f"| {h['result']} | {_seconds(h['started_offset'])} | {_seconds(h['services_offset'])} "
                     f"| {_seconds(h['waited_seconds'])} | {_seconds(h['in_service_offset'])} |")
    if fleet.get("failed"):
        lines += ["", "## Failed", ""]
        lines += [f"- {f['host']}: phase {f['phase']}: {f['msg']}" for f in fleet["failed"]]
    lines += ["", "## Phases (seconds since the first host started)", ""]
    for h in fleet["hosts"]:
        rows = []
        for p in h["phases"]:
            status = "" if p.get("status", "ok") == "ok" else f" ({p['status']})"
            rows.append(f"{p['name']} {p['start_offset']}+{p.get('seconds', 0)} s{status}")
        lines.append(f"- {h['host']}: " + ", ".join(rows))
    return "\n".join(lines) + "\n"


def svg(fleet: Mapping[str, Any]) -> str:
    """The fleet timeline: one row group per host (its name, then a bar per phase), each host's in-service mark."""
    left, width, row = 150, 700, 20
    ends = [p["start_offset"] + float(p.get("seconds") or 0) for h in fleet["hosts"] for p in h["phases"]]
    total = max([*ends, 0.001])
    height = 60 + sum(row * (len(h["phases"]) + 1) + 8 for h in fleet["hosts"])
    title = (f"Fleet restore: {fleet['result']}, time to service "
             f"{_seconds(fleet.get('time_to_service_seconds'))}, {fleet['passed']} of {fleet['hosts_count']} hosts")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 110}" height="{height}" '
           'font-family="sans-serif" font-size="12">',
           f"  <title>{escape(title)}</title>",
           f'  <text x="10" y="20" font-size="14" font-weight="bold">{escape(title)}</text>']
    y = 36
    for h in fleet["hosts"]:
        group_top = y
        out.append(f'  <g id="host-{escape(h["host"])}">')
        out.append(f'    <text x="10" y="{y + 14}" font-weight="bold">{escape(h["host"])} — {escape(str(h["result"]))}'
                   + (f" (after {escape(', '.join(h['after_hosts']))})" if h["after_hosts"] else "") + "</text>")
        y += row
        for p in h["phases"]:
            x = left + p["start_offset"] / total * width
            w = max(float(p.get("seconds") or 0) / total * width, 1)
            colour = "#2e7d32" if p.get("status", "ok") == "ok" else "#c62828"
            out.append(f'    <text x="20" y="{y + 13}">{escape(p["name"])}</text>')
            out.append(f'    <rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 5}" fill="{colour}"/>')
            out.append(f'    <text x="{x + w + 4:.1f}" y="{y + 13}">{p.get("seconds", 0)} s</text>')
            y += row
        if h["in_service_offset"] is not None:
            x = left + h["in_service_offset"] / total * width
            out.append(f'    <line x1="{x:.1f}" y1="{group_top}" x2="{x:.1f}" y2="{y}" stroke="#1565c0" '
                       'stroke-dasharray="4 3"/>')
            out.append(f'    <text x="{x + 3:.1f}" y="{group_top + 14}" fill="#1565c0">in service '
                       f'{h["in_service_offset"]} s</text>')
        out.append("  </g>")
        y += 8
    out.append("</svg>")
    return "\n".join(out) + "\n"
