# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup policy audit: pure rules over what the read-only probes observed on a host.

``playbooks/audit_policy.yml`` runs the collection's modules in check mode and collects their results per host
into one ``observations`` mapping; :func:`evaluate` turns it into findings, applies the host's waivers, and the
reports (table, JSON, JUnit XML) are rendered from the findings. Nothing here talks to a host or a tool.

Observation keys (each optional; a missing key means the host does not use that kind of backup):

``borg``       list of ``{name, result}`` where ``result`` is the registered ``restoreops.dr.borg_repo`` result
               (check mode), plus ``key_export_declared`` (bool).
``restic``     list of ``{name, retention, prune, schedule, forget, snapshots}``: the declared ``keep_*`` options, the
               prune flag, whether a retention timer is enabled, the registered ``restic_forget_prune`` check-mode
               result (or None) and the ``restic snapshots --json`` times (or a failed command result).
``escrow``     the registered ``restoreops.dr.key_escrow_check`` result.
``postgres``   the registered ``restoreops.dr.pg_archiver_facts`` result.
``secret_files``  list of ``{path, exists, mode}``.
``secret_hits``   list of ``{path, line}`` where a secret assignment was found in a unit, script or environment file.
``rsnapshot``  list of registered ``restoreops.dr.rsnapshot_config`` results.
``probe_failure``  the message of a probe run that failed as a whole (``restoreops.dr.backup_policy_facts`` with bad
               options), or None.

``restoreops.dr.backup_policy_facts`` returns every probe of a host in one result, in the shapes :func:`normalize`
reads; the playbook passes that registered result as it is.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time_or_none

RULES: dict[str, str] = {
    "borg_append_only": "borg repositories are append-only",
    "key_escrow": "repository keys are exported and the escrow check passes",
    "restic_retention": "restic retention prunes and runs on a schedule",
    "backup_rpo": "the latest backup is younger than the RPO",
    "pg_archiving": "PostgreSQL WAL archiving is healthy",
    "secret_file_mode": "passphrase files are 0600 or stricter",
    "secret_in_files": "no passphrase in unit files, scripts or environment files",
    "rsnapshot_config": "rsnapshot configurations are valid and fresh",
    "probe_failed": "every probe of the audit could run",
}


def _finding(rule: str, target: str, message: str) -> dict[str, Any]:
    return {"rule": rule, "target": target, "message": message, "waived": False, "reason": None}


def _failed(result: Any) -> str | None:
    """The failure message of a registered task result, or None when it ran."""
    if not isinstance(result, dict):
        return "no result"
    if result.get("failed"):
        return str(result.get("msg") or "failed")
    if result.get("skipped"):
        return None
    return None


def epoch_seconds(text: str | None) -> float | None:
    """Seconds since the epoch of a tool's time (see :mod:`._time` for borg's zone-less times), or None."""
    value = parse_time_or_none(text)
    return None if value is None else value.timestamp()


def _age_hours(stamp: float | None, now: float) -> float | None:
    return None if stamp is None else max(0.0, (now - stamp) / 3600.0)


def borg_rules(repos: list[dict], rpo_hours: float, now: float) -> list[dict[str, Any]]:
    findings = []
    for repo in repos:
        name = repo["name"]
        result = repo.get("result")
        failure = _failed(result)
        if failure:
            findings.append(_finding("probe_failed", name, f"borg repository {name} could not be read: {failure}"))
            continue
        info = result.get("repo") or {}
        if info.get("append_only") is not True:
            findings.append(_finding("borg_append_only", name, f"borg repository {name} is not append-only."))
        key_export = result.get("key_export") or {}
        if not repo.get("key_export_declared"):
            findings.append(_finding("key_escrow", name, f"borg repository {name} declares no key export."))
        elif key_export.get("exported"):
            findings.append(_finding("key_escrow", name, f"the key of borg repository {name} is not exported to "
                                     f"{key_export.get('dest')} (or the export is out of date)."))
        last = (result.get("archives") or {}).get("last")
        if not last:
            findings.append(_finding("backup_rpo", name, f"borg repository {name} holds no archive."))
        else:
            age = _age_hours(epoch_seconds(last.get("end") or last.get("start")), now)
            if age is None:
                findings.append(_finding("probe_failed", name, f"the time of {last.get('name')} is unreadable."))
            elif age > rpo_hours:
                findings.append(_finding("backup_rpo", name, f"the latest archive {last.get('name')} of {name} is "
                                         f"{age:.1f} h old, older than the RPO of {rpo_hours:g} h."))
    return findings


def restic_rules(repos: list[dict], rpo_hours: float, now: float) -> list[dict[str, Any]]:
    findings = []
    for repo in repos:
        name = repo["name"]
        retention = {k: v for k, v in (repo.get("retention") or {}).items() if v not in (None, [], "", 0)}
        if not retention:
            findings.append(_finding("restic_retention", name, f"restic repository {name} has no retention policy "
                                     "(no keep_* option)."))
        if not repo.get("prune", False):
            findings.append(_finding("restic_retention", name, f"restic repository {name} forgets without pruning: "
                                     "its storage never shrinks."))
        if not repo.get("schedule"):
            findings.append(_finding("restic_retention", name, f"restic repository {name} has no enabled retention "
                                     "schedule (timer)."))
        forget = repo.get("forget")
        failure = _failed(forget) if forget is not None else None
        if failure:
            findings.append(_finding("probe_failed", name, f"the retention preview of {name} failed: {failure}"))
            continue
        snapshots = repo.get("snapshots")
        if forget is not None and (snapshots is None or snapshots.get("skipped")):
            # the retention preview lists every snapshot (kept and, in check mode, those it would remove)
            listed = list(forget.get("kept") or []) + list(forget.get("removed") or [])
        else:
            failure = _failed(snapshots)
            if failure or not isinstance(snapshots, dict):
                findings.append(_finding("probe_failed", name,
                                         f"the snapshots of {name} could not be listed: {failure}"))
                continue
            try:
                listed = json.loads(snapshots.get("stdout") or "[]") or []
            except ValueError:
                findings.append(_finding("probe_failed", name, f"restic printed no JSON for the snapshots of {name}."))
                continue
        times = [t for t in (epoch_seconds(s.get("time")) for s in listed) if t is not None]
        if not times:
            findings.append(_finding("backup_rpo", name, f"restic repository {name} holds no snapshot."))
            continue
        age = _age_hours(max(times), now)
        if age is not None and age > rpo_hours:
            findings.append(_finding("backup_rpo", name, f"the latest snapshot of {name} is {age:.1f} h old, older "
                                     f"than the RPO of {rpo_hours:g} h."))
    return findings


def escrow_rules(result: Any) -> list[dict[str, Any]]:
    if result is None or (isinstance(result, dict) and result.get("skipped")):
        return []
    if not isinstance(result, dict) or "results" not in result:
        return [_finding("probe_failed", "key_escrow_check", f"key_escrow_check failed: {_failed(result)}")]
    findings = []
    for item in result.get("results") or []:
        for problem in item.get("problems") or []:
            findings.append(_finding("key_escrow", str(item.get("name")), str(problem)))
    if not result.get("ok", False) and not findings:
        findings.append(_finding("key_escrow", "key_escrow_check", "key_escrow_check did not pass."))
    return findings


def postgres_rules(result: Any) -> list[dict[str, Any]]:
    if result is None or (isinstance(result, dict) and result.get("skipped")):
        return []
    failure = _failed(result)
    if failure:
        return [_finding("probe_failed", "postgresql", f"pg_archiver_facts failed: {failure}")]
    facts = (result.get("ansible_facts") or {}).get("pg_archiver") or {}
    if facts.get("healthy"):
        return []
    problems = facts.get("problems") or ["pg_archiver_facts reports the archiver unhealthy."]
    return [_finding("pg_archiving", "postgresql", str(p)) for p in problems]


def secret_rules(files: list[dict], hits: list[dict]) -> list[dict[str, Any]]:
    findings = []
    for entry in files:
        path = entry["path"]
        if not entry.get("exists"):
            findings.append(_finding("secret_file_mode", path, f"passphrase file {path} does not exist."))
            continue
        mode = int(str(entry.get("mode") or "0"), 8)
        if mode & 0o077:
            findings.append(_finding("secret_file_mode", path, f"passphrase file {path} has mode {mode:04o}, looser "
                                     "than 0600."))
    for hit in hits:
        findings.append(_finding("secret_in_files", hit["path"], f"{hit['path']} holds a secret in clear: "
                                 f"{hit.get('variable') or 'a passphrase assignment'} (move it to a 0600 file or "
                                 "a credential and reference that)."))
    return findings


def rsnapshot_rules(results: list[Any]) -> list[dict[str, Any]]:
    findings = []
    for result in results:
        path = str((result or {}).get("path") or (result or {}).get("item") or "rsnapshot")
        failure = _failed(result)
        if failure and "problems" not in result:
            findings.append(_finding("probe_failed", path, f"rsnapshot_config failed: {failure}"))
            continue
        for problem in result.get("problems") or []:
            findings.append(_finding("rsnapshot_config", path, str(problem)))
    return findings


def probe_rules(failure: str | None) -> list[dict[str, Any]]:
    if not failure:
        return []
    return [_finding("probe_failed", "host", f"the probes of this host could not run: {failure}")]


def apply_waivers(findings: list[dict[str, Any]], waivers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark findings waived by a waiver for their rule (and target, when the waiver names one).

    A waiver without a written reason waives nothing and is itself reported.
    """
    out = [dict(f) for f in findings]
    for waiver in waivers or []:
        rule = waiver.get("rule")
        reason = str(waiver.get("reason") or "").strip()
        if rule not in RULES:
            out.append(_finding("probe_failed", "waivers", f"a waiver names the unknown rule {rule!r} "
                                f"(rules: {', '.join(sorted(RULES))})."))
            continue
        if not reason:
            out.append(_finding("probe_failed", "waivers", f"the waiver for {rule} has no written reason; "
                                "it waives nothing."))
            continue
        for finding in out:
            if finding["rule"] == rule and waiver.get("target") in (None, "", finding["target"]):
                finding["waived"] = True
                finding["reason"] = reason
    return out


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Observations in the shapes the rules take, from the registered loop results of the audit playbook.

    ``raw`` holds ``borg`` / ``restic_forget`` / ``restic_snapshots`` / ``rsnapshot`` as lists of loop results (each
    carrying its ``item``), ``secret_scan`` and ``watched`` as find results, and ``escrow`` / ``postgres`` as single
    results: the registered result of ``restoreops.dr.backup_policy_facts``, or a mapping built from one task per
    probe. (``restic_timer`` and ``secret_files`` as ``stat`` loop results are read too, when ``watched`` is
    absent.) A ``raw`` that itself failed (``failed: true``, as a failed probe module's registered result) is kept
    as ``probe_failure``: its probes did not run, which is a violation, never a pass.
    """
    obs: dict[str, Any] = {}
    obs["probe_failure"] = str(raw.get("msg") or "the probe failed") if raw.get("failed") else None
    obs["borg"] = [{"name": r.get("item", {}).get("name"), "result": r,
                    "key_export_declared": bool(r.get("item", {}).get("key_export"))}
                   for r in raw.get("borg") or []]
    # One find over the passphrase files and the timers' enablement links replaces a stat per path:
    # ``watched`` is that find result, ``secret_paths`` the declared passphrase files, ``timer_dir`` the systemd dir.
    watched = raw.get("watched")
    found: dict[str, dict] | None = None
    if isinstance(watched, dict):
        found = {f.get("path"): f for f in watched.get("files") or []}
    forgets = raw.get("restic_forget") or []
    snaps = raw.get("restic_snapshots") or []
    timers = raw.get("restic_timer") or []
    restic = []
    for index, snap in enumerate(snaps or forgets):
        item = snap.get("item") or {}
        forget = forgets[index] if index < len(forgets) else None
        snap = snaps[index] if index < len(snaps) else None
        timer = timers[index] if index < len(timers) else {}
        if found is not None:
            link = f"{raw.get('timer_dir') or '/etc/systemd/system'}/timers.target.wants/{item.get('retention_timer')}"
            scheduled = bool(item.get("retention_timer")) and link in found
        else:
            scheduled = bool((timer or {}).get("stat", {}).get("exists"))
        restic.append({
            "name": item.get("name"),
            "retention": item.get("retention") or {},
            "prune": bool(item.get("prune", False)),
            "schedule": scheduled,
            "forget": None if not forget or forget.get("skipped") else forget,
            "snapshots": None if not snap or snap.get("skipped") else snap,
        })
    obs["restic"] = restic
    for key in ("escrow", "postgres"):
        value = raw.get(key)
        obs[key] = None if not isinstance(value, dict) or value.get("skipped") else value
    if found is not None:
        obs["secret_files"] = [{"path": p, "exists": p in found, "mode": (found.get(p) or {}).get("mode")}
                               for p in raw.get("secret_paths") or []]
    else:
        obs["secret_files"] = [{"path": r.get("item"), "exists": (r.get("stat") or {}).get("exists", False),
                                "mode": (r.get("stat") or {}).get("mode")} for r in raw.get("secret_files") or []]
    scan = raw.get("secret_scan")
    if isinstance(scan, dict):
        obs["secret_hits"] = [{"path": f.get("path")} for f in scan.get("files") or []]
    obs["rsnapshot"] = [dict(r, path=r.get("path") or r.get("item")) for r in raw.get("rsnapshot") or []]
    return obs


def evaluate(observations: dict[str, Any], waivers: list[dict[str, Any]] | None = None,
             rpo_hours: float = 25.0, now: float | None = None) -> dict[str, Any]:
    """Every finding of one host, waivers applied, and the counts."""
    now = dt.datetime.now(dt.timezone.utc).timestamp() if now is None else float(now)
    rpo = float(rpo_hours)
    findings: list[dict[str, Any]] = probe_rules(observations.get("probe_failure"))
    findings += borg_rules(observations.get("borg") or [], rpo, now)
    findings += restic_rules(observations.get("restic") or [], rpo, now)
    findings += escrow_rules(observations.get("escrow"))
    findings += postgres_rules(observations.get("postgres"))
    findings += secret_rules(observations.get("secret_files") or [], observations.get("secret_hits") or [])
    findings += rsnapshot_rules(observations.get("rsnapshot") or [])
    findings = apply_waivers(findings, waivers or [])
    violations = [f for f in findings if not f["waived"]]
    checked = sorted({rule for rule, present in _checked_rules(observations).items() if present})
    return {"findings": findings, "violations": len(violations), "waived": len(findings) - len(violations),
            "checked": checked, "ok": not violations}


UNAUDITED = "the host could not be audited (unreachable or a probe failed)"


def evaluate_hosts(hosts: list[str], probes: list[Any], waivers: list[Any] | None = None,
                   rpo_hours: list[Any] | None = None, now: float | None = None) -> dict[str, dict[str, Any]]:
    """:func:`evaluate` for every host of a play at once, judged against one ``now``.

    ``probes``, ``waivers`` and ``rpo_hours`` are parallel to ``hosts``. A host without probe results (``None``:
    it was unreachable, or its probe task never ran) gets one ``probe_failed`` violation.
    """
    now = dt.datetime.now(dt.timezone.utc).timestamp() if now is None else float(now)
    count = len(hosts)
    waivers = list(waivers) if waivers is not None else [[]] * count
    rpo_hours = list(rpo_hours) if rpo_hours is not None else [25.0] * count
    probes = list(probes)
    if not (len(probes) == len(waivers) == len(rpo_hours) == count):
        raise ValueError(f"{count} hosts, but {len(probes)} probe results, {len(waivers)} waiver lists and "
                         f"{len(rpo_hours)} RPOs")
    out: dict[str, dict[str, Any]] = {}
    for host, raw, host_waivers, rpo in zip(hosts, probes, waivers, rpo_hours):
        if not isinstance(raw, dict):
            out[host] = {"findings": [_finding("probe_failed", "host", UNAUDITED)], "violations": 1, "waived": 0,
                         "checked": [], "ok": False}
            continue
        out[host] = evaluate(normalize(raw), host_waivers or [], 25.0 if rpo is None else rpo, now)
    return out


def _checked_rules(obs: dict[str, Any]) -> dict[str, bool]:
    return {
        "borg_append_only": bool(obs.get("borg")),
        "key_escrow": bool(obs.get("borg")) or _present(obs.get("escrow")),
        "restic_retention": bool(obs.get("restic")),
        "backup_rpo": bool(obs.get("borg")) or bool(obs.get("restic")),
        "pg_archiving": _present(obs.get("postgres")),
        "secret_file_mode": bool(obs.get("secret_files")),
        "secret_in_files": "secret_hits" in obs,
        "rsnapshot_config": bool(obs.get("rsnapshot")),
    }


def _present(result: Any) -> bool:
    return isinstance(result, dict) and not result.get("skipped")


# --- reports -----------------------------------------------------------------------------------------------
def report(per_host: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON document: per host its findings, plus totals."""
    hosts = {host: per_host[host] for host in sorted(per_host)}
    return {
        "rules": RULES,
        "hosts": hosts,
        "violations": sum(h["violations"] for h in hosts.values()),
        "waived": sum(h["waived"] for h in hosts.values()),
        "hosts_failing": sorted(h for h, r in hosts.items() if r["violations"]),
        "ok": all(r["violations"] == 0 for r in hosts.values()),
    }


def table(doc: dict[str, Any]) -> str:
    """A plain-text table of every finding per host (waived ones with their reason)."""
    rows = [("HOST", "RULE", "TARGET", "STATUS", "DETAIL")]
    for host, res in doc["hosts"].items():
        if not res["findings"]:
            rows.append((host, "-", "-", "PASS", f"{len(res['checked'])} rule(s) checked"))
        for f in res["findings"]:
            status = "WAIVED" if f["waived"] else "VIOLATION"
            detail = f["message"] + (f" [waived: {f['reason']}]" if f["waived"] else "")
            rows.append((host, f["rule"], f["target"], status, detail))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.append(f"{doc['violations']} violation(s), {doc['waived']} waived, "
                 f"{len(doc['hosts_failing'])} of {len(doc['hosts'])} host(s) failing")
    return "\n".join(lines)


def junit(doc: dict[str, Any]) -> str:
    """JUnit XML: a test suite per host, a test case per rule checked (and per finding); waived ones skipped."""
    suites = []
    total = failures = skipped = 0
    for host, res in doc["hosts"].items():
        cases = []
        by_rule: dict[str, list] = {}
        for f in res["findings"]:
            by_rule.setdefault(f["rule"], []).append(f)
        for rule in sorted(set(res["checked"]) | set(by_rule)):
            found = by_rule.get(rule, [])
            if not found:
                cases.append(f'    <testcase classname={quoteattr(host)} name={quoteattr(rule)}/>')
                continue
            for f in found:
                name = quoteattr(f"{rule}: {f['target']}")
                if f["waived"]:
                    skipped += 1
                    body = f'<skipped message={quoteattr("waived: " + str(f["reason"]))}/>'
                else:
                    failures += 1
                    body = (f'<failure message={quoteattr(f["message"])} type="violation">'
                            f'{escape(f["message"])}</failure>')
                cases.append(f"    <testcase classname={quoteattr(host)} name={name}>{body}</testcase>")
        total += len(cases)
        host_fail = sum(1 for f in res["findings"] if not f["waived"])
        host_skip = sum(1 for f in res["findings"] if f["waived"])
        suites.append(f'  <testsuite name={quoteattr(host)} tests="{len(cases)}" failures="{host_fail}" '
                      f'errors="0" skipped="{host_skip}">\n' + "\n".join(cases) + "\n  </testsuite>")
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="restoreops.dr audit_policy" '
            f'tests="{total}" failures="{failures}" errors="0" skipped="{skipped}">\n')
    return head + "\n".join(suites) + "\n</testsuites>\n"
