# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jobs through ansible-runner, as AWX runs a job template, and what AWX keeps of them: a private data directory
(inventory/, env/extravars, env/envvars, env/settings, project/), ``ansible-runner run``, then the runner's artifacts
(artifacts/<ident>/: job_events/, stdout, status, rc, command, fact_cache/). The helpers are shared by the audit's
integration target (tests/integration/targets/audit_policy/files/runner_checks.py) and the lab drill.

The lab drill (tests/lab/drill.sh --runner) uses the commands:

    runner_job.py drill-prepare PDD --inventory FILE --vars-file FILE... [--extra VAR=VALUE...] [--env NAME...]
        the private data directory for dr_drill.yml: the drill's inventory, its -e files and values as
        env/extravars (0600), the drill's secrets given as extra variables (AWX's credential injectors into extra
        vars: they override the inventory's file lookups), the ANSIBLE_* settings of the drill as env/envvars, and a
        project whose playbooks import the collection's
    runner_job.py drill-refused PDD IDENT PLAYBOOK VAR [--history FILE]
        a job without VAR among the extra variables: it must fail at its start with a message naming VAR, before
        any phase of the restore ran (and without a drill history entry)
    runner_job.py drill-restore PDD IDENT PLAYBOOK HOST --secrets FILE
        the job with every extra variable: status successful and rc 0, the restore's report and PASS, the drill's
        PASS and the data phase's progress lines in the job events; then env/extravars is removed (AWX deletes the
        private data directory) and every artifact file of every job is searched for the drill's secrets

Standard library only (secret_scan.py beside this file for the secrets' spellings); PyYAML for the drill's files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from typing import Any, Optional

# Beside this file (the script's directory, or tests/lab on PYTHONPATH for the audit's integration target).
from secret_scan import files_under, load_secrets, read, spellings


def write_json(path: str, data: Any, mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


def load_job(root: str, ident: str) -> tuple[str, Optional[int], list[dict]]:
    """The status, rc and job events (in their order) that ansible-runner left in artifacts/<ident>/."""
    artifacts = os.path.join(root, "artifacts", ident)
    events = []
    events_dir = os.path.join(artifacts, "job_events")
    names = os.listdir(events_dir) if os.path.isdir(events_dir) else []
    for name in sorted(names, key=lambda n: int(n.split("-", 1)[0])):
        with open(os.path.join(events_dir, name), encoding="utf-8") as handle:
            events.append(json.load(handle))
    found: dict[str, str] = {}
    for name in ("status", "rc"):
        if os.path.exists(os.path.join(artifacts, name)):
            with open(os.path.join(artifacts, name), encoding="utf-8") as handle:
                found[name] = handle.read().strip()
    rc = int(found["rc"]) if found.get("rc", "").lstrip("-").isdigit() else None
    return found.get("status", ""), rc, events


def run_runner(root: str, ident: str, playbook: str, quiet: bool = True) -> tuple[int, str, list[dict]]:
    """``ansible-runner run ROOT -p PLAYBOOK --ident IDENT``: its exit code, the job's status and job events."""
    argv = ["ansible-runner", "run", root, "-p", playbook, "--ident", ident] + (["-q"] if quiet else [])
    proc = subprocess.run(argv, capture_output=quiet, text=True, check=False)
    status, _rc, events = load_job(root, ident)
    return proc.returncode, status, events


def task_events(events: list[dict], event: str, task_prefix: str) -> list[dict]:
    return [e for e in events if e.get("event") == event
            and str(e.get("event_data", {}).get("task", "")).startswith(task_prefix)]


def artifact_files(root: str) -> list[str]:
    return files_under([os.path.join(root, "artifacts")])


def secrets_in_artifacts(root: str, secrets: list[str]) -> list[str]:
    """Every artifact file (job events, stdout, command, status, fact cache...) that holds any of the secrets, as
    such or base64-encoded, URL-quoted or JSON-escaped."""
    hits = []
    for full in artifact_files(root):
        data = read(full)
        hits += [f"{os.path.relpath(full, root)} holds secret #{i}" for i, secret in enumerate(secrets)
                 if any(form in data for form in spellings(secret) | {secret.encode()})]
    return hits


# --- the lab drill -------------------------------------------------------------------------------------------------

PROJECT = {
    "dr_drill.yml": "---\n# An AWX project's playbook: the collection's monthly DR drill.\n"
                    "- name: DR failover drill\n  ansible.builtin.import_playbook: restoreops.dr.dr_drill\n",
    "restore_server.yml": "---\n# An AWX project's playbook: the collection's restore of a lost server.\n"
                          "- name: Restore a lost server\n"
                          "  ansible.builtin.import_playbook: restoreops.dr.restore_server\n",
}
FILE_LOOKUP = re.compile(r"\{\{\s*lookup\('ansible\.builtin\.file',\s*'([^']+)'\)\s*\}\}")


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()


def drill_credentials(inventory_vars: dict, extravars: dict) -> dict:
    """The drill's secrets as values, as AWX's credential injectors give them (extra variables): they replace the
    inventory's and the -e files' lookups of the secret files on the controller."""
    creds: dict[str, Any] = {
        "drill_s3_credentials": json.loads(read_text(inventory_vars["drill_s3_credentials_file"])),
        "drill_partner_token": read_text(inventory_vars["drill_api_token_file"]),
        "drill_webhook_url": FILE_LOOKUP.sub(lambda m: read_text(m.group(1)), inventory_vars["drill_webhook_url"]),
    }
    if "restic_password" in extravars:
        creds["restic_password"] = read_text(inventory_vars["drill_restic_secret_file"])
    if "borg_passphrase" in extravars:
        creds["borg_passphrase"] = read_text(inventory_vars["drill_borg_secret_file"])
    dns = (extravars.get("restore_server_cutover") or {}).get("dns")
    if dns:
        with open(inventory_vars["drill_tsig_file"], encoding="utf-8") as handle:
            tsig = json.load(handle)
        creds["restore_server_cutover"] = dict(extravars["restore_server_cutover"], dns=dict(
            dns, key_name=tsig["key_name"], key_secret=tsig["key_secret"], key_algorithm=tsig["key_algorithm"]))
    return creds


def drill_prepare(args: argparse.Namespace) -> int:
    import yaml  # pylint: disable=import-outside-toplevel

    root = args.pdd
    for sub in ("inventory", "env", "project"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(args.inventory, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    with open(os.path.join(root, "inventory", "hosts.yml"), "w", encoding="utf-8") as handle:
        yaml.safe_dump(inventory, handle)
    extravars: dict[str, Any] = {}
    for path in args.vars_file:  # -e @file in this order: later files win, key by key
        with open(path, encoding="utf-8") as handle:
            extravars.update(yaml.safe_load(handle) or {})
    for item in args.extra:
        name, _eq, value = item.partition("=")
        extravars[name] = value
    extravars.update(drill_credentials(inventory["all"]["vars"], extravars))
    # The whole set, kept 0600 until the real job; each job gets its env/extravars from it.
    write_json(os.path.join(root, "env", "extravars.all"), extravars, 0o600)
    write_json(os.path.join(root, "env", "envvars"), {n: os.environ[n] for n in args.env if n in os.environ})
    # As a job template's timeout: a job that hangs is ended by the runner.
    write_json(os.path.join(root, "env", "settings"), {"job_timeout": args.job_timeout})
    for name, text in PROJECT.items():
        with open(os.path.join(root, "project", name), "w", encoding="utf-8") as handle:
            handle.write(text)
    print(f"ansible-runner private data directory {root}: inventory/hosts.yml, env/extravars ({len(extravars)} "
          f"variables, the drill's secrets among them), env/envvars ({', '.join(sorted(args.env))}), env/settings, "
          f"project/ ({', '.join(sorted(PROJECT))})")
    return 0


def job_extravars(root: str, drop: Optional[str] = None) -> None:
    with open(os.path.join(root, "env", "extravars.all"), encoding="utf-8") as handle:
        extravars = json.load(handle)
    extravars.pop(drop, None)
    write_json(os.path.join(root, "env", "extravars"), extravars, 0o600)


def count_lines(path: Optional[str]) -> int:
    if not path or not os.path.exists(path):
        return 0
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def failed(message: str) -> int:
    print(f"ansible-runner: FAILED: {message}", file=sys.stderr)
    return 1


def drill_refused(args: argparse.Namespace) -> int:
    root, ident = args.pdd, args.ident
    before = count_lines(args.history)
    job_extravars(root, drop=args.var)
    rc, status, events = run_runner(root, ident, args.playbook)
    os.remove(os.path.join(root, "env", "extravars"))
    refusals = [e for e in events if e.get("event") == "runner_on_failed"]
    msg = refusals[0]["event_data"].get("res", {}).get("msg", "") if refusals else ""
    task = refusals[0]["event_data"].get("task", "") if refusals else ""
    if rc == 0 or status != "failed":
        return failed(f"job {ident} without {args.var}: rc {rc}, status {status}; it must fail")
    if not task.startswith("Refuse a report directory") or args.var not in msg or "ansible-runner" not in msg:
        return failed(f"job {ident}: the first failure is not the refusal naming {args.var}: {task!r}: {msg!r}")
    started = [e["event_data"].get("task") for e in events if e.get("event") == "runner_on_ok"
               and str(e["event_data"].get("task", "")).startswith(("Phase ", "Restore the backup", "Pre-drill"))]
    if started:
        return failed(f"job {ident}: tasks ran after the refusal: {started}")
    if count_lines(args.history) != before:
        return failed(f"job {ident}: the refused drill wrote a history entry to {args.history}")
    print(f"ansible-runner: job {ident} ({args.playbook} without {args.var}) refused at its start: status {status}, "
          f"rc {rc}, task '{task}': {msg[:400]}")
    return 0


# await_jobs' line: the job's label ("restore data", "replay WAL", "unpack base backup"), the share done when the
# total is known, the amount (bytes or a count), rate and ETA, and the host.
PROGRESS = r"^[A-Za-z][A-Za-z ]* (\d+% )?[0-9.]+( [A-Za-z]+)?( / [0-9.]+( [A-Za-z]+)?)?( .*)? \({host}\)$"


def drill_restore(args: argparse.Namespace) -> int:
    root, ident, host = args.pdd, args.ident, args.host
    job_extravars(root)
    try:
        rc, status, events = run_runner(root, ident, args.playbook, quiet=False)
    finally:
        # AWX removes the private data directory after the job, the extra variables with it.
        for name in ("extravars", "extravars.all"):
            if os.path.exists(os.path.join(root, "env", name)):
                os.remove(os.path.join(root, "env", name))
    _status, artifact_rc, _events = load_job(root, ident)
    problems = []
    if rc != 0 or status != "successful" or artifact_rc != 0:
        problems.append(f"exit code {rc}, status {status!r}, artifacts rc {artifact_rc}")
    report = task_events(events, "runner_on_ok", "Print the report in short")
    report_lines = [line for e in report for line in e["event_data"]["res"].get("msg", [])]
    if not report_lines or not report_lines[0].startswith(f"RESTORE PASS on {host}"):
        problems.append(f"the restore's report with its PASS is not in the job events: {report_lines[:3]}")
    drill = task_events(events, "runner_on_ok", "Print the drill, the issues met and the trend")
    drill_lines = [line for e in drill for line in e["event_data"]["res"].get("msg", [])]
    if not any(line.startswith(f"DR drill PASS on {host}") for line in drill_lines):
        problems.append(f"the drill's PASS line is not in the job events: {drill_lines[:3]}")
    pattern = re.compile(PROGRESS.format(host=re.escape(host)))
    progress = [line for e in events for line in (e.get("stdout") or "").splitlines() if pattern.match(line)]
    if not progress:
        problems.append("no progress line of the data phase among the job events")
    with open(os.path.join(root, "artifacts", ident, "stdout"), encoding="utf-8", errors="replace") as handle:
        stdout = handle.read()
    if f"RESTORE PASS on {host}" not in stdout or f"DR drill PASS on {host}" not in stdout:
        problems.append("the job's stdout artifact lacks the restore's or the drill's PASS")
    secrets = list(load_secrets(args.secrets))
    files = artifact_files(root)
    leaks = secrets_in_artifacts(root, secrets)
    if leaks:
        problems.append(f"secrets in the artifacts: {leaks}")
    if problems:
        for problem in problems:
            print(f"ansible-runner: {problem}", file=sys.stderr)
        return failed(f"job {ident}")
    print("ansible-runner: progress lines in the job events: " + "; ".join(progress[:3])
          + (" ..." if len(progress) > 3 else ""))
    print(f"ansible-runner: job {ident} successful, {len(events)} events, report + PASS + {len(progress)} progress "
          f"lines in the events, {len(leaks)} secrets in {len(files)} artifact files "
          f"({len(secrets)} secrets, every job of {os.path.join(root, 'artifacts')})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("drill-prepare")
    prep.add_argument("pdd")
    prep.add_argument("--inventory", required=True)
    prep.add_argument("--vars-file", action="append", default=[])
    prep.add_argument("--extra", action="append", default=[])
    prep.add_argument("--env", action="append", default=[])
    prep.add_argument("--job-timeout", type=int, default=3600)
    refused = sub.add_parser("drill-refused")
    refused.add_argument("pdd")
    refused.add_argument("ident")
    refused.add_argument("playbook")
    refused.add_argument("var")
    refused.add_argument("--history")
    restore = sub.add_parser("drill-restore")
    restore.add_argument("pdd")
    restore.add_argument("ident")
    restore.add_argument("playbook")
    restore.add_argument("host")
    restore.add_argument("--secrets", required=True)
    args = parser.parse_args()
    return {"drill-prepare": drill_prepare, "drill-refused": drill_refused, "drill-restore": drill_restore}[
        args.command](args)


if __name__ == "__main__":
    sys.exit(main())
