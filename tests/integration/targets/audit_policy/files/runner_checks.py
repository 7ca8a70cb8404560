# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/audit_policy.yml through ansible-runner, as AWX runs a job template: a private data directory with
inventory/, env/extravars, env/envvars, env/cmdline (--check) and project/ (a playbook that imports the
collection's), then checks on what AWX keeps of a job: the runner's artifacts and job events.

Used by check_audit.py, whose hosts, repositories and PostgreSQL it reuses.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

# The job helpers shared with the lab drill: tests/lab/runner_job.py (runme.sh puts tests/lab on PYTHONPATH).
from runner_job import run_runner, secrets_in_artifacts, task_events, write_json

# AWX injects credentials as extra variables and as environment variables; both kinds are used below.
SECRET_VARS = {"audit_pg_password": "pg-" + os.urandom(9).hex(), "audit_s3_secret": "s3-" + os.urandom(12).hex()}
SECRET_ENV = {"AUDIT_PG_PASSWORD": "pgenv-" + os.urandom(9).hex()}
PROJECT_PLAYBOOK = """---
# An AWX project's playbook: the collection's audit, as a job template of type "check" runs it.
- name: Backup policy audit
  ansible.builtin.import_playbook: restoreops.dr.audit_policy
"""


def private_data_dir(root: str, inventory: dict, extravars: dict) -> str:
    for sub in ("inventory", "env", "project"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    write_json(os.path.join(root, "inventory", "hosts.json"), inventory)
    write_json(os.path.join(root, "env", "extravars"), extravars)
    write_json(os.path.join(root, "env", "envvars"), dict(
        SECRET_ENV, ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""),
        ANSIBLE_LOCALHOST_WARNING="False"))
    with open(os.path.join(root, "env", "cmdline"), "w", encoding="utf-8") as handle:
        handle.write("--check")
    with open(os.path.join(root, "project", "audit.yml"), "w", encoding="utf-8") as handle:
        handle.write(PROJECT_PLAYBOOK)
    return root


def runner_checks(work: str, inventory: dict, report_dir: str, secrets: list[str],
                  check: Callable[[str, bool, Any], None]) -> None:
    """``inventory``: the CLI run's hosts, with the secrets to inject already referenced as variables."""
    root = private_data_dir(os.path.join(work, "runner"), inventory,
                            dict(SECRET_VARS, audit_output_dir=report_dir))
    rc, status, events = run_runner(root, "audit", "audit.yml")
    check("ansible-runner: the job fails like the CLI run (a violation is not waived)",
          rc != 0 and status == "failed", (rc, status))
    probes = task_events(events, "runner_on_ok", "Read the backups")
    check("ansible-runner: one probe event per host", sorted(e["event_data"]["host"] for e in probes)
          == ["broken", "compliant", "waived"], [e["event_data"].get("host") for e in probes])
    table = task_events(events, "runner_on_ok", "Print the violations per host")
    lines = table[0]["event_data"]["res"]["msg"] if table else []
    check("ansible-runner: the table's lines arrive in the job events: PASS, VIOLATION and WAIVED with its reason",
          any(line.startswith("compliant ") and " PASS " in line for line in lines)
          and any(line.startswith("broken ") and " VIOLATION " in line for line in lines)
          and any(line.startswith("waived ") and " WAIVED " in line and "INC-4711" in line for line in lines)
          and lines and lines[-1].endswith("1 of 3 host(s) failing"), lines)
    stdout = "".join(e.get("stdout") or "" for e in events)
    check("ansible-runner: the job's stdout (what AWX shows) carries the table", "compliant" in stdout
          and "VIOLATION" in stdout and "INC-4711" in stdout, stdout[-2000:])
    verdict = task_events(events, "runner_on_failed", "Fail when any violation is not waived")
    check("ansible-runner: the FAIL verdict arrives as a failed event naming the failing host",
          len(verdict) == 1 and "policy violation(s) on broken" in verdict[0]["event_data"]["res"].get("msg", ""),
          [e["event_data"].get("res") for e in verdict])
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    artifact = stats[-1]["event_data"].get("artifact_data", {}).get("restoreops_audit") if stats else None
    with open(os.path.join(report_dir, "audit.json"), encoding="utf-8") as handle:
        doc = json.load(handle)
    check("ansible-runner: the verdict is in the job's artifacts (set_stats, kept by AWX) and matches audit.json",
          artifact is not None and artifact["ok"] is False and artifact["hosts_failing"] == ["broken"]
          and artifact["violations"] == doc["violations"] > 0 and artifact["hosts"] == 3
          and artifact["report_dir"] == report_dir, artifact)
    leaks = secrets_in_artifacts(root, secrets + list(SECRET_VARS.values()))
    check("ansible-runner: no passphrase, password or credential given as an extra variable in any artifact",
          leaks == [], leaks)
    # ansible-runner itself writes the job's whole environment, env/envvars included, to artifacts/<ident>/command
    # (docs/execution-environment.md): a credential injected as an environment variable is there, and must be
    # nowhere else (not in the job events, not in stdout).
    env_leaks = secrets_in_artifacts(root, list(SECRET_ENV.values()))
    check("ansible-runner: a credential injected through env/envvars is only in runner's own command file",
          env_leaks == ["artifacts/audit/command holds secret #0"], env_leaks)

    # Without audit_output_dir the reports would go to the job's copy of the project: refused before any probe.
    os.remove(os.path.join(root, "env", "extravars"))
    write_json(os.path.join(root, "env", "extravars"), SECRET_VARS)
    rc, status, events = run_runner(root, "no-dir", "audit.yml")
    refused = task_events(events, "runner_on_failed", "Refuse a report directory")
    check("ansible-runner without audit_output_dir: refused before any probe, saying why",
          rc != 0 and len(refused) == 1 and "audit_output_dir" in refused[0]["event_data"]["res"].get("msg", "")
          and not task_events(events, "runner_on_ok", "Read the backups")
          and not os.path.exists(os.path.join(root, "project", "audit-report")),
          [e["event_data"].get("res", {}).get("msg") for e in refused] or events[-3:])

    # '' keeps the report in the job only: it passes for the good hosts, and writes no file.
    write_json(os.path.join(root, "env", "extravars"),
               dict(SECRET_VARS, audit_output_dir="", audit_hosts="compliant:waived"))
    rc, status, events = run_runner(root, "no-files", "audit.yml")
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    artifact = stats[-1]["event_data"].get("artifact_data", {}).get("restoreops_audit") if stats else None
    check("ansible-runner with audit_output_dir '': PASS in the artifacts, no report file anywhere",
          rc == 0 and status == "successful" and artifact is not None and artifact["ok"] is True
          and artifact["report_dir"] is None and artifact["hosts"] == 2
          and not os.path.exists(os.path.join(root, "project", "audit-report")), (rc, status, artifact))
