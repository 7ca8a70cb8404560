# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the restore_server role: its inputs with their defaults, its check records, and its report.

Everything the role used to assemble in Jinja (YAML built in templates, results collected by hand) is here, as pure
functions over the registered results, so that it is unit-tested and the role's tasks stay one line each.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.filter.timestamp import timestamp

_MISSING = object()


# --- inputs -------------------------------------------------------------------------------------------------------


def spec_defaults(value: Any, options: Mapping[str, Any]) -> Any:
    """``value`` (a dict, or a list of dicts) with the defaults of an argument spec's ``options``, recursively.

    Role argument specs validate nested options but Ansible does not fill their defaults into the variables; this
    does, from the same spec, so that the role's tasks need no ``| default(...)`` chains.
    """
    if isinstance(value, list):
        return [spec_defaults(item, options) for item in value]
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"spec_defaults expects a dictionary, got {type(value).__name__}.")
    out = dict(value)
    for name, spec in (options or {}).items():
        spec = spec or {}
        current = out.get(name, _MISSING)
        if current is _MISSING or current is None:
            if spec.get("type") == "dict" and spec.get("options"):
                # A dict's own default (often {}) still gets its options' defaults.
                out[name] = spec_defaults(spec.get("default") or {}, spec["options"])
            elif "default" in spec:
                out[name] = spec["default"]
            continue
        if spec.get("options"):
            if spec.get("type") == "dict":
                out[name] = spec_defaults(current, spec["options"])
            elif spec.get("type") == "list" and spec.get("elements") == "dict":
                out[name] = [spec_defaults(item, spec["options"]) for item in current]
    return out


_CREDENTIALS = re.compile(r"(?P<scheme>[a-z0-9+.-]+://)(?P<userinfo>[^/@]*@)", re.I)


def repository_source(repository: str, tool: Optional[str] = None) -> Dict[str, Any]:
    """Where a restore reads from: the repository without credentials, and its backend kind."""
    repo = str(repository or "")
    clean = _CREDENTIALS.sub(lambda m: m.group("scheme") + (m.group("userinfo").split(":", 1)[0] + "@"
                                                            if ":" in m.group("userinfo") else m.group("userinfo")),
                             repo)
    if repo.startswith("s3:"):
        backend = "s3"
    elif repo.startswith("rest:"):
        backend = "rest"
    elif re.match(r"^(ssh://|sftp:|[^:/]+@[^:/]+:)", repo):
        backend = "ssh"
    elif repo.startswith("/") or repo.startswith("local:"):
        backend = "local"
    else:
        backend = repo.split(":", 1)[0] if ":" in repo else "local"
    return {"tool": tool, "repository": clean, "backend": backend}


# --- check records ---------------------------------------------------------------------------------------------


def escrow_checks(result: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """One record per escrowed key from a ``key_escrow_check`` result."""
    records = []
    for item in result.get("results") or []:
        checks = item.get("checks") or {}
        passed = [k for k, v in checks.items() if v]
        failed = [k for k, v in checks.items() if not v]
        detail = "passed: " + ", ".join(passed)
        if failed:
            detail += f" / failed: {', '.join(failed)}. " + " ".join(item.get("problems") or [])
        records.append({"phase": "keys", "name": f"escrowed key {item.get('name')}", "ok": bool(item.get("ok")),
                        "detail": detail.strip()})
    return records


def fidelity_checks(verify: Optional[Mapping[str, Any]], phase: str = "data") -> List[Dict[str, Any]]:
    """One record per attribute of ``backup_restore``'s ``verify.fidelity``: ``ok`` unless it differs (an attribute
    the tool does not keep, or one the manifest did not record, is ok and says so in ``detail``)."""
    records = []
    for line in (verify or {}).get("fidelity") or []:
        status = str(line.get("status") or "")
        detail = f"{status}: {line.get('checked', 0)} compared, {line.get('recorded', 0)} carrying it"
        if line.get("differing"):
            detail += f", {line['differing']} differing ({', '.join(line.get('paths') or [])})"
        records.append({"phase": phase, "name": f"fidelity: {line.get('attribute')}", "ok": status != "differing",
                        "detail": detail})
    return records


def data_summary(data: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """What the report keeps of the data phase: whether this run resumed an interrupted restore and what that moved
    (``resume``, with ``transferred_ratio``, the share of the total bytes this run transferred), and the fidelity
    lines of the verification (one per attribute)."""
    data = dict(data or {})
    resumed = str(data.get("resumed")).lower() == "true"
    resume = dict(data.get("resume") or {}) if resumed else {}
    total = resume.get("total_bytes") or 0
    if resume and total:
        resume["transferred_ratio"] = round(float(resume.get("transferred_bytes") or 0) / float(total), 3)
    return {"resumed": resumed, "resume": resume, "fidelity": list(data.get("fidelity") or [])}


def _results(registered: Optional[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    if not registered:
        return []
    return [r for r in registered.get("results") or [] if not r.get("skipped")]


def sanity_checks(registered: Mapping[str, Any], write_db: str = "") -> List[Dict[str, Any]]:
    """Records for phase 8 from the registered loop results ``sql``, ``http``, ``write``, ``dns``, ``tcp``."""
    records: List[Dict[str, Any]] = []
    for r in _results(registered.get("sql")):
        item = r.get("item") or {}
        rows = r.get("query_result")
        row = (rows or [{}])[0] if isinstance(rows, list) else {}
        got = next(iter(row.values()), None) if isinstance(row, Mapping) and row else None
        matched = "expect" not in item or str(got) == str(item["expect"])
        detail = f"got {got}" + (f", expected {item['expect']}" if "expect" in item else "")
        if rows is None and r.get("msg"):
            detail += f" ({r['msg']})"
        records.append({"phase": "sanity", "name": f"SQL: {item.get('name')}", "ok": rows is not None and matched,
                        "detail": detail, "required": True})
    for r in _results(registered.get("http")):
        item = r.get("item") or {}
        status_ok = r.get("status") == int(item.get("status", 200))
        body_ok = "contains" not in item or str(item["contains"]) in str(r.get("content", ""))
        records.append({"phase": "sanity", "name": f"HTTP: {item.get('name')}", "ok": status_ok and body_ok,
                        "detail": f"HTTP {r.get('status') or 'no answer'} from {item.get('url')}"
                                  + ("" if body_ok else f" (no {item['contains']!r} in the answer)"),
                        "required": True})
    if write_db:
        steps = _results(registered.get("write"))
        errors = [s.get("msg") for s in steps if s.get("msg") and s.get("query_result") is None]
        rows = len(steps[1].get("query_result") or []) if len(steps) > 1 else 0
        records.append({"phase": "sanity", "name": "write test", "ok": rows == 1 and not errors and len(steps) == 3,
                        "detail": f"create, insert, read back and drop a probe table in {write_db}"
                                  + (": " + "; ".join(errors) if errors else ""), "required": True})
    for r in _results(registered.get("dns")):
        item = r.get("item") or {}
        answer = (r.get("stdout") or "").strip() or "does not resolve"
        records.append({"phase": "sanity", "name": f"dependency: {item.get('name')}", "ok": r.get("rc") == 0,
                        "detail": f"DNS {item.get('dns')}: {answer}", "required": bool(item.get("required"))})
    for r in _results(registered.get("api")):
        item = r.get("item") or {}
        expected = int(item.get("status") or 200)
        status_ok = r.get("status") == expected
        body_ok = not item.get("body_contains") or str(item["body_contains"]) in str(r.get("content", ""))
        detail = f"HTTP {r.get('status') or 'no answer'} from {item.get('http')} (expected {expected})"
        if status_ok and not body_ok:
            detail += " without the expected text in the answer"
        records.append({"phase": "sanity", "name": f"dependency: {item.get('name')}", "ok": status_ok and body_ok,
                        "detail": detail, "required": bool(item.get("required"))})
    for r in _results(registered.get("tcp")):
        item = r.get("item") or {}
        opened = r.get("state") == "started"
        records.append({"phase": "sanity", "name": f"dependency: {item.get('name')}", "ok": opened,
                        "detail": f"TCP {item.get('tcp')}: " + ("open" if opened else str(r.get("msg") or "closed")),
                        "required": bool(item.get("required"))})
    return records


def service_checks(order: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Records for the services started, in their order, each healthy by its declared probe."""
    records: List[Dict[str, Any]] = [{"phase": "services", "name": "started in dependency order", "ok": True,
                                      "detail": " -> ".join(str(s.get("name")) for s in order)}]
    for service in order:
        health = {k: v for k, v in (service.get("health") or {}).items() if v and k != "status"}
        detail = "; ".join(f"{k} {v if isinstance(v, str) else ' '.join(map(str, v))}" for k, v in health.items())
        records.append({"phase": "services", "name": f"{service.get('name')} healthy", "ok": True,
                        "detail": detail or "started"})
    return records


def failed_checks(checks: Sequence[Mapping[str, Any]], phase: Optional[str] = None) -> List[Mapping[str, Any]]:
    """Checks that failed and count (required unless said otherwise), optionally of one phase."""
    return [c for c in checks if not c.get("ok") and c.get("required", True) and (phase is None or
                                                                                  c.get("phase") == phase)]


# --- the report ------------------------------------------------------------------------------------------------


def _utc(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(value: Any) -> Optional[float]:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return timestamp(value)


def phase_rows(marks: Sequence[Mapping[str, Any]], started: float, finished: float,
               failure: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Rows of the timeline from the phase marks (a phase ends where the next begins; jobs carry their own end)."""
    ordered = sorted(marks, key=lambda m: float(m["start"]))
    sequential = [m for m in ordered if m.get("end") is None]
    rows = []
    for mark in ordered:
        start = float(mark["start"])
        if mark.get("end") is not None:
            end = float(mark["end"])
        else:
            later = [float(m["start"]) for m in sequential if float(m["start"]) > start]
            end = min(later) if later else finished
        status = mark.get("status") or "ok"
        if failure and failure.get("phase") == mark["name"]:
            status = "failed"
        rows.append({"name": mark["name"], "status": status, "start_offset": round(start - started, 2),
                     "seconds": round(max(0.0, end - start), 2)})
    return rows


def restore_report(state: Mapping[str, Any]) -> Dict[str, Any]:
    """The report of one restore from the role's state (see tasks/report.yml for the keys)."""
    started = float(state["started"])
    finished = float(state["now"])
    failure = dict(state.get("failure") or {})
    checks = list(state.get("checks") or [])
    check_mode = bool(state.get("check_mode"))
    result = "CHECK" if check_mode else "FAIL" if failure or failed_checks(checks) else "PASS"
    marks = list(state.get("phases") or [])
    service_mark = state.get("in_service")
    protected_mark = state.get("protected")
    incident = _ts(state.get("incident")) or started
    point = dict(state.get("restore_point") or {})
    point_time = _ts(point.get("time"))
    pg = dict(state.get("postgresql") or {})
    pg_last = pg.get("last_replayed_transaction") or ""
    pg_time = _ts(pg_last if pg_last.endswith(("+00", "Z")) else (pg_last + "+00" if pg_last else ""))
    rto = round(float(service_mark) - started, 1) if service_mark and result == "PASS" else None
    protected = round(float(protected_mark) - started, 1) if protected_mark and result == "PASS" else None
    return {
        "host": state.get("host"),
        "result": result,
        "check_mode": check_mode,
        "started": _utc(started),
        "finished": _utc(finished),
        "started_unix": round(started, 3),
        "finished_unix": round(finished, 3),
        # Time to service: start -> sanity passed (and the cut-over done, where there is one).
        "rto_seconds": rto,
        # Time until the new host is itself backed up again.
        "protected_seconds": protected,
        "marks": [{"label": label, "seconds": value} for label, value in (("in service", rto), ("protected", protected))
                  if value is not None],
        "play_seconds": round(finished - started, 1),
        "phases": phase_rows(marks, started, finished, failure),
        "checks": checks,
        "failure": failure,
        "plan": list(state.get("plan") or []),
        "restore_point": point,
        "source": repository_source(state.get("repository") or "", state.get("tool")),
        "target": dict(state.get("target") or {}),
        "rpo": {
            "incident": _utc(incident),
            "restore_point_time": point.get("time"),
            "files_seconds": round(incident - point_time) if point_time is not None else None,
            "postgresql_last_transaction": pg_last or None,
            "postgresql_last_wal": pg.get("last_restored_wal"),
            "postgresql_seconds": round(incident - pg_time) if pg_time is not None else None,
        },
        "progress": dict(state.get("progress") or {}),
        "data": data_summary(state.get("data")),
    }


class FilterModule:
    def filters(self) -> Dict[str, Any]:
        return {
            "spec_defaults": spec_defaults,
            "repository_source": repository_source,
            "escrow_checks": escrow_checks,
            "fidelity_checks": fidelity_checks,
            "sanity_checks": sanity_checks,
            "service_checks": service_checks,
            "failed_checks": failed_checks,
            "restore_report": restore_report,
        }
