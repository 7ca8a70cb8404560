"""The whole restore: playbooks/restore_server.yml against a hand-written script of the runbook's commands.

    tests/lab/lab with-lab python benchmarks/bench_restore_playbook.py

Every host is a lab host (tests/lab/lab host: Debian 12, host networking, sshd on a loopback address of its own), so
the same host can be reached over SSH or through docker exec. Builds "production" once over SSH
(benchmarks/restore_playbook/production.yml, with the collection's roles):
PostgreSQL 15 archiving WAL to a bind-mounted offsite store, a pgbench database of BENCH_PG_SCALE (68: about 1 GiB)
in a pg_basebackup base backup, BENCH_WAL_MIB MiB of WAL written after it, BENCH_FILES_MIB MiB of application files
backed up with restic, keys escrowed on the controller. Production is then removed, and for each entry of BENCH_ORDER
a fresh replacement container (boot not timed) is restored by
  script    benchmarks/restore_playbook/restore-by-hand.sh (restic restore, useradd + chown -R by name, untar the
            base backup, restore_command + recovery.signal, start PostgreSQL, wait for the end of recovery, start
            the application), run with docker exec
  playbook  ansible-playbook playbooks/restore_server.yml with every phase, over SSH (ansible.builtin.ssh, the run's
            key, ControlPersist, pipelining on), as users run it
  docker    the same playbook through the docker connection (docker exec, pipelining on), as the lab ran it before
  lean      the playbook over SSH without what the script does not do and the role lets one skip:
            restore_server_install_tools=false, restore_server_rebuild=false, --skip-tags sanity
  mitogen   the full playbook over SSH with Mitogen's strategy (ANSIBLE_STRATEGY=mitogen_linear), from a mitogen
            package installed apart from the collection (BENCH_MITOGEN: the directory that holds ansible_mitogen,
            e.g. `pip install --target DIR mitogen`); the host's key is put in known_hosts first (Mitogen's SSH
            enforces host key checking), before the clock starts
and verified from outside (row counts, pgbench balance, a hash of every application file, owners by name, units
active, the application's answer); a wrong end state stops the benchmark. Page cache dropped before each restore.
After each restore, benchmarks/restore_playbook/task_cost.yml runs on that host over SSH and over docker exec
(BENCH_TASKS module runs of each of two modules, interleaved): the cost of one module run per connection. The
playbook runs log Ansible's JSON callback, which gives every task's duration on both connections.
Time to service: the script's service is up when it ends; a playbook's is up at its report's in-service mark
(rto_seconds: the role's start -> sanity passed), timed here from the ansible-playbook command's start (so Ansible's
start-up counts). Targets (issue 19), from one interleaved run: playbook time to service <= 1.5x the script, whole
play <= 2.0x, fixed cost (time to service - script) <= 15 s at the smoke size; the playbook's seconds per GiB within
1.15x the script's (`--slope SMALL.json LARGE.json` from two runs' BENCH_RESULTS).
Knobs: BENCH_FILES_MIB (2048), BENCH_PG_SCALE (68), BENCH_WAL_MIB (384), BENCH_ORDER (script,playbook,docker,lean,
lean,docker,playbook,script; "nopipe" is the full playbook over SSH with ANSIBLE_PIPELINING=False, "serial" the full
playbook with restore_server_parallel_postgresql=false: the files restored before PostgreSQL recovers), BENCH_TASKS
(40; 0 skips the module-run cost), BENCH_PIPELINING (True), BENCH_MITOGEN (see mitogen), BENCH_RESULTS (a JSON file
for the run's sizes, times and load), BENCH_RETRY (1: a restore that does not PASS is recorded with its message and
tried again on a fresh host that many times; a PASS with a wrong end state stops the benchmark),
BENCH_ADDRESSES (127.0.0.60,127.0.0.61: production's, the replacements'), BENCH_DIR
(/var/tmp/restoreops-bench-playbook), BENCH_KEEP=1 keeps it (logs, reports) afterwards, BENCH_PROFILE=1
adds Ansible's per-task times and the module results (-v) to the playbook logs there.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks" / "restore_playbook"
LAB = ROOT / "tests" / "lab" / "lab"
RELEASE = "bookworm"
IMAGE = f"restoreops-dr/host-{RELEASE}:current"
# The benchmark's loopback addresses (sshd on 22000 + the last octet): production, then every replacement. Not the
# drill's (tests/lab/drill.sh slots 0-4 use 127.0.0.10 to 127.0.0.54).
ADDRESS = dict(zip(("prod", "new"), os.environ.get("BENCH_ADDRESSES", "127.0.0.60,127.0.0.61").split(","), strict=True))
FILES_MIB = int(os.environ.get("BENCH_FILES_MIB", "2048"))
PG_SCALE = int(os.environ.get("BENCH_PG_SCALE", "68"))
WAL_MIB = int(os.environ.get("BENCH_WAL_MIB", "384"))
ORDER = os.environ.get("BENCH_ORDER", "script,playbook,docker,lean,lean,docker,playbook,script").split(",")
TASKS = int(os.environ.get("BENCH_TASKS", "40"))
PIPELINING = os.environ.get("BENCH_PIPELINING", "True")
WORK = Path(os.environ.get("BENCH_DIR", "/var/tmp/restoreops-bench-playbook"))
PROD = "rbench-prod"
BIN = Path(sys.executable).parent
PYTHON = sys.executable
ENV = dict(
    os.environ,
    ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"),
    ANSIBLE_INJECT_FACT_VARS="False",
    ANSIBLE_DEPRECATION_WARNINGS="False",
    ANSIBLE_LOCALHOST_WARNING="False",
    ANSIBLE_PIPELINING=PIPELINING,
    ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=120s -o ServerAliveInterval=15",
    ANSIBLE_SSH_CONTROL_PATH_DIR=str(WORK / "ssh" / "cp"),
)
if os.environ.get("BENCH_PROFILE") == "1":  # per-task times in the playbook logs (for the breakdown, not the ratio)
    ENV.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks", PROFILE_TASKS_TASK_OUTPUT_LIMIT="all")
LEAN = ["-e", "restore_server_install_tools=false", "-e", "restore_server_rebuild=false", "--skip-tags", "sanity"]
SERIAL = ["-e", "restore_server_parallel_postgresql=false"]
MITOGEN = os.environ.get("BENCH_MITOGEN", "")
RESULTS = os.environ.get("BENCH_RESULTS", "")
RETRY = int(os.environ.get("BENCH_RETRY", "1"))


LABELS = (
    ("script", "hand-written script"),
    ("playbook", "restore_server.yml, all phases, over SSH"),
    ("docker", "restore_server.yml, all phases, docker exec"),
    ("lean", "restore_server.yml, lean (see doc string)"),
    ("mitogen", "restore_server.yml, all phases, SSH, Mitogen"),
    ("nopipe", "restore_server.yml, all phases, no pipelining"),
    ("serial", "restore_server.yml, all phases, files then PostgreSQL"),
)


class LoadSampler(threading.Thread):
    """The 1-minute load average every 10 s while the restores run (the machine is shared)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append(load())
            self.halt.wait(10)

    def stop(self) -> None:
        self.halt.set()
        if not self.samples:
            self.samples.append(load())


def mitogen_env() -> dict:
    """Mitogen's strategy from BENCH_MITOGEN, for the "mitogen" restores only (the collection does not need it)."""
    if not (Path(MITOGEN) / "ansible_mitogen").is_dir():
        raise SystemExit("BENCH_MITOGEN must name the directory holding ansible_mitogen (pip install --target DIR)")
    return {
        "ANSIBLE_STRATEGY": "mitogen_linear",
        "ANSIBLE_STRATEGY_PLUGINS": str(Path(MITOGEN) / "ansible_mitogen" / "plugins" / "strategy"),
        "PYTHONPATH": os.pathsep.join(p for p in (MITOGEN, os.environ.get("PYTHONPATH", "")) if p),
    }


def sh(cmd: list[str], log: Path | None = None, env: dict | None = None) -> str:
    proc = subprocess.run(cmd, env=env or ENV, capture_output=True, text=True, check=False)
    if log:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.stderr.write((proc.stdout + proc.stderr)[-4000:])
        raise SystemExit(f"FAILED ({proc.returncode}): {' '.join(cmd[:6])} ...")
    return proc.stdout


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    with contextlib.suppress(OSError):  # not allowed everywhere; then every run sees the same warm cache
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def ssh_port(address: str) -> int:
    return 22000 + int(address.rsplit(".", 1)[1])


def inventory(name: str, group: str, address: str, connection: str = "ssh") -> Path:
    """One host of GROUP: over SSH (the run's key, a known_hosts file of the run) or through docker exec."""
    host = {"bench_address": address, "ansible_python_interpreter": "/usr/bin/python3"}
    if connection == "ssh":
        host.update(
            ansible_connection="ssh",
            ansible_host=address,
            ansible_port=ssh_port(address),
            ansible_user="root",
            ansible_ssh_private_key_file=str(WORK / "ssh" / "id_ed25519"),
            ansible_ssh_common_args=f"-o UserKnownHostsFile={WORK / 'ssh' / 'known_hosts'} "
            "-o StrictHostKeyChecking=accept-new -o IdentitiesOnly=yes",
        )
    else:
        host.update(ansible_connection="community.docker.docker")
    path = WORK / f"inventory-{name}-{connection}.yml"
    path.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {
                        "bench_dir": str(WORK),
                        "bench_offsite": str(WORK / "offsite"),
                        "bench_escrow": str(WORK / "escrow"),
                        "bench_secret_file": str(WORK / "restic.secret"),
                        "drill_pg_version": "15",
                    },
                    "hosts": {
                        "localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                    },
                    "children": {group: {"hosts": {name: host}}},
                }
            },
            indent=1,
        )
    )
    return path


def stop_ssh_masters() -> None:
    for sock in (WORK / "ssh" / "cp").glob("*"):
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "placeholder"], capture_output=True,
                       check=False)


def boot(name: str, address: str) -> None:
    """A lab host on ADDRESS; the host key of an earlier host there is forgotten (this one has its own)."""
    subprocess.run(["ssh-keygen", "-q", "-f", str(WORK / "ssh" / "known_hosts"), "-R",
                    f"[{address}]:{ssh_port(address)}"], capture_output=True, check=False)
    sh([str(LAB), "host", name, IMAGE, address, str(ssh_port(address)), str(WORK / "ssh" / "id_ed25519.pub"),
        f"--hostname={name}", "-v", f"{WORK / 'offsite'}:/offsite"])


def seed_known_host(address: str) -> None:
    """The host's key in the run's known_hosts before Ansible connects. Mitogen's SSH enforces host key checking
    (StrictHostKeyChecking yes, ahead of the inventory's accept-new), as a Mitogen user's known_hosts would."""
    keys = sh(["ssh-keyscan", "-p", str(ssh_port(address)), address])
    with (WORK / "ssh" / "known_hosts").open("a") as handle:
        handle.write(keys)


def remove(name: str) -> None:
    subprocess.run([str(LAB), "rm", name], check=False)
    stop_ssh_masters()


def build_production() -> dict:
    escrow = WORK / "escrow"
    if escrow.is_mount():
        sh(["umount", str(escrow)])
    shutil.rmtree(WORK, ignore_errors=True)
    for d in ("offsite", "escrow", "logs", "ssh/cp"):
        (WORK / d).mkdir(parents=True)
    (WORK / "ssh").chmod(0o700)
    key = WORK / "ssh" / "id_ed25519"
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "restoreops-bench", "-f", str(key)])
    (WORK / "ssh" / "known_hosts").write_text("")
    # The escrow lives on its own filesystem (key_escrow_check proves the keys are apart from the data).
    sh(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "restoreops-bench-escrow", str(escrow)])
    secret = WORK / "restic.secret"
    secret.write_text(os.urandom(24).hex() + "\n")
    secret.chmod(0o600)
    start = time.monotonic()
    boot(PROD, ADDRESS["prod"])
    sh(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory(PROD, "production", ADDRESS["prod"])),
            str(HERE / "production.yml"),
            "-e",
            json.dumps({"bench_files_mib": FILES_MIB, "bench_pg_scale": PG_SCALE, "bench_wal_mib": WAL_MIB}),
        ],
        log=WORK / "logs" / "production.log",
    )
    remove(PROD)  # the incident
    expected = json.loads((WORK / "expected.json").read_text())
    base = sorted((WORK / "offsite" / "pg" / "base").glob("2*Z"))[-1]
    wal = [p for p in (WORK / "offsite" / "pg" / "wal").iterdir() if len(p.name) == 24]
    expected.update(
        build_s=time.monotonic() - start,
        base_backup_bytes=sum(p.stat().st_size for p in base.iterdir()),
        wal_segments=len(wal),
        restic_bytes=sum(p.stat().st_size for p in (WORK / "offsite" / "restic").rglob("*") if p.is_file()),
    )
    return expected


def restore_script(name: str) -> tuple[float, dict]:
    key = WORK / "escrow" / "keys" / PROD / "files.restic.pass"
    start = time.monotonic()
    sh(["docker", "cp", str(key), f"{name}:/root/restic.pass"])  # the operator fetches the key from the escrow
    proc = subprocess.run(
        ["docker", "exec", name, "bash", "/root/restore-by-hand.sh", "/root/restic.pass"],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - start
    (WORK / "logs" / f"{name}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"FAILED: the hand-written restore on {name} exited {proc.returncode}")
    steps = {}
    for line in proc.stderr.splitlines():
        if line.startswith("step "):
            _w, step, seconds = line.split()
            steps[step] = float(seconds)
    return wall, steps


def covered(phases: list[dict]) -> float:
    """Seconds covered by at least one phase (phases 4 and 5 overlap when they run side by side)."""
    total, reach = 0.0, None
    spans = sorted((float(p["start_offset"]), float(p["start_offset"]) + float(p["seconds"])) for p in phases)
    for begin, end in spans:
        if reach is None or begin > reach:
            total += end - begin
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def task_times(log: Path) -> list[dict]:
    """Every task of a playbook run logged by the JSON callback: name, action, seconds, and whether it ran a module
    on the replacement (not only on the controller, and not delegated to it)."""
    controller_only = {
        "set_fact", "debug", "assert", "fail", "include_tasks", "import_tasks", "include_role", "import_role", "meta",
        "include_vars", "add_host", "group_by", "set_stats", "pause", "async_status_local",
    }
    text = log.read_text()
    data = json.loads(text[text.index("{"):])
    out = []
    for play in data.get("plays", []):
        for task in play.get("tasks", []):
            info = task["task"]
            start = _dt.datetime.fromisoformat(info["duration"]["start"].replace("Z", "+00:00"))
            end = _dt.datetime.fromisoformat((info["duration"].get("end") or info["duration"]["start"])
                                             .replace("Z", "+00:00"))
            seconds = (end - start).total_seconds()
            for result in task.get("hosts", {}).values():
                action = result.get("action", "").rsplit(".", 1)[-1]
                delegated_to = (result.get("_ansible_delegated_vars") or {}).get("ansible_host")
                delegated = delegated_to in ("localhost", "127.0.0.1")
                remote = action not in controller_only and not delegated and not result.get("skipped")
                out.append({"name": info["name"], "action": action, "seconds": seconds, "remote": remote,
                            "start": start.timestamp()})
    return out


def first_error(stdout: str, stderr: str) -> str:
    """The first failed or unreachable task's message from the JSON callback's output (else the output's tail)."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        data = json.loads(stdout[stdout.index("{"):])
        for play in data.get("plays", []):
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("failed") or result.get("unreachable"):
                        return f"{task['task']['name'] or result.get('action')} on {host}: {result.get('msg')}"
    return (stdout + stderr)[-1500:]


class RestoreFailed(Exception):
    """A playbook restore that did not PASS: recorded with its message (BENCH_RETRY decides whether to try again)."""


def restore_playbook(name: str, extra: list[str], pipelining: str = PIPELINING,
                     connection: str = "ssh", env: dict | None = None) -> tuple[float, dict]:
    cmd = [
        str(BIN / "ansible-playbook"),
        "-i",
        str(inventory(name, "replacement", ADDRESS["new"], connection)),
        str(ROOT / "playbooks" / "restore_server.yml"),
        "-e",
        f"@{HERE / 'restore_vars.yml'}",
        *extra,
        *(["-v"] if os.environ.get("BENCH_PROFILE") == "1" else []),
    ]
    start, epoch = time.monotonic(), time.time()
    log = WORK / "logs" / f"{name}.log"
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env=dict(ENV, ANSIBLE_PIPELINING=pipelining, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                                   **(env or {})))
    wall = time.monotonic() - start
    log.write_text(proc.stdout + proc.stderr)
    path = WORK / "reports" / name / "report.json"
    report = json.loads(path.read_text()) if path.exists() else {"result": "no report"}
    if proc.returncode != 0 or report["result"] != "PASS":
        failure = report.get("failure") or {}
        raise RestoreFailed(f"ansible-playbook exited {proc.returncode} after {wall:.1f} s, report {report['result']}"
                            + (f" in phase {failure.get('phase')}: {failure.get('msg')}" if failure else
                               f": {first_error(proc.stdout, proc.stderr)}"))
    # The role's start, on the controller's clock, from the report's end and length (play_seconds has 0.1 s).
    role_start = float(report["finished_unix"]) - float(report["play_seconds"])
    steps = {
        "service": role_start - epoch + float(report["rto_seconds"]),
        "rto_seconds": float(report["rto_seconds"]),
        "protected_seconds": float(report["protected_seconds"] or 0.0),
        "before the role": role_start - epoch,
    }
    steps.update({p["name"]: float(p["seconds"]) for p in report["phases"]})
    steps["outside phases"] = wall - covered(report["phases"])
    tasks = task_times(log)
    remote = [t["seconds"] for t in tasks if t["remote"]]
    steps["remote tasks"] = len(remote)
    steps["remote tasks to service"] = sum(1 for t in tasks if t["remote"] and t["start"] < epoch + steps["service"])
    steps["remote task median"] = statistics.median(remote) if remote else 0.0
    steps["remote task total"] = sum(remote)
    return wall, steps


def task_cost(name: str, connection: str) -> dict:
    """Seconds per module run over CONNECTION on the replacement (task_cost.yml, BENCH_TASKS runs per module)."""
    if TASKS <= 0:
        return {}
    log = WORK / "logs" / f"{name}-cost-{connection}.log"
    sh(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory(name, "replacement", ADDRESS["new"], connection)),
            str(HERE / "task_cost.yml"),
            "-e",
            f"bench_task_count={TASKS}",
        ],
        log=log,
        env=dict(ENV, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"),
    )
    return {t["action"]: t["seconds"] / TASKS for t in task_times(log)}


VERIFY = r"""
set -euo pipefail
q() { runuser -u postgres -- psql -XtAc "$1" "$2"; }
printf '{"orders": %s, "accounts": %s, "history": %s, "balance": %s, "in_recovery": "%s", "files": "%s",
 "not_app": %s, "app_uid": %s, "pg": "%s", "app": "%s", "health": %s}\n' \
  "$(q 'SELECT count(*) FROM orders' shop)" "$(q 'SELECT count(*) FROM pgbench_accounts' bench)" \
  "$(q 'SELECT count(*) FROM pgbench_history' bench)" "$(q 'SELECT sum(abalance) FROM pgbench_accounts' bench)" \
  "$(q 'SELECT pg_is_in_recovery()' postgres)" \
  "$(cd / && find srv/app -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)" \
  "$(find /srv/app \( ! -user app -o ! -group app \) | wc -l)" "$(id -u app)" \
  "$(systemctl is-active postgresql@15-main.service)" "$(systemctl is-active restoreops-demo-app.service)" \
  "$(curl -fsS "http://$(getent hosts "$(hostname)" | awk '{ print $1; exit }'):8080/health")"
"""


def verify(name: str, expected: dict) -> str:
    got = json.loads(sh(["docker", "exec", name, "bash", "-c", VERIFY]))
    wrong = [k for k in ("orders", "accounts", "history", "balance", "files") if str(got[k]) != str(expected[k])]
    if got["in_recovery"] != "f":
        wrong.append("in_recovery")
    if got["not_app"] != 0:
        wrong.append(f"{got['not_app']} files not owned by app:app")
    if got["app_uid"] == expected["app_uid"]:
        wrong.append("app kept UID 1500, which belongs to another user here")
    if got["pg"] != "active" or got["app"] != "active":
        wrong.append(f"units: postgresql {got['pg']}, app {got['app']}")
    if not (got["health"].get("ok") and got["health"].get("orders") == expected["orders"]):
        wrong.append(f"health {got['health']}")
    if wrong:
        raise SystemExit(f"FAILED: the restore on {name} is not correct: {', '.join(wrong)}\n{got}\n{expected}")
    return (
        f"{got['orders']} orders, {got['history']} pgbench transactions, balance {got['balance']}, files identical, "
        f"owned by app (uid {got['app_uid']}), both units active"
    )


def run_one(kind: str, index: int, expected: dict) -> dict:
    name = f"rbench-{kind}{index}"
    boot(name, ADDRESS["new"])
    try:
        sh(
            [
                "docker",
                "exec",
                name,
                "useradd",
                "--uid",
                "1500",
                "--no-create-home",
                "-s",
                "/usr/sbin/nologin",
                "builder",
            ]
        )
        sh(["docker", "cp", str(HERE / "restore-by-hand.sh"), f"{name}:/root/restore-by-hand.sh"])
        if kind == "mitogen":
            seed_known_host(ADDRESS["new"])
        drop_caches()
        before = load()
        if kind == "script":
            wall, steps = restore_script(name)
            steps["service"] = wall  # the script ends when the application answers
        else:
            extra = {"lean": LEAN, "serial": SERIAL}.get(kind, [])
            try:
                wall, steps = restore_playbook(name, extra, pipelining="False" if kind == "nopipe" else PIPELINING,
                                               connection="docker" if kind == "docker" else "ssh",
                                               env=mitogen_env() if kind == "mitogen" else None)
            except RestoreFailed as exc:  # recorded, not timed; the wrong end state of a PASS stays fatal (verify)
                print(f"  {name:<18} FAILED (load {before:.1f} -> {load():.1f}): {exc}", flush=True)
                return {"kind": kind, "name": name, "failed": str(exc), "load": (before, load())}
        after = load()
        proof = verify(name, expected)
        # The cost of one module run on this same host, over each connection, in alternating order.
        order = ("ssh", "docker") if index % 2 else ("docker", "ssh")
        cost = {conn: task_cost(name, conn) for conn in order}
    finally:
        remove(name)
    print(f"  {name:<18} {wall:8.1f} s   to service {steps['service']:.1f} s   load {before:.1f} -> {after:.1f}   "
          f"verified: {proof}", flush=True)
    runs = [f"{conn} {action} {sec * 1000:.0f} ms" for conn in ("ssh", "docker") for action, sec in cost[conn].items()]
    if runs:
        print(f"  {'':<18} per module run: {', '.join(runs)}", flush=True)
    return {"kind": kind, "name": name, "wall": wall, "steps": steps, "load": (before, after), "cost": cost}


def main() -> int:
    docker_info = None
    if shutil.which("docker"):
        docker_info = subprocess.run(["docker", "info"], capture_output=True, check=False)
    if docker_info is None or docker_info.returncode != 0:
        raise SystemExit("no docker engine answers: run this through `tests/lab/lab with-lab python ...`")
    if "mitogen" in ORDER:
        mitogen_env()  # fails early without BENCH_MITOGEN
    sh([str(LAB), "images", f"host-{RELEASE}"])
    start_load = os.getloadavg()
    sampler = LoadSampler()
    try:
        print(
            f"building production: {FILES_MIB} MiB of files, pgbench scale {PG_SCALE}, {WAL_MIB} MiB of WAL "
            f"after the base backup ...",
            flush=True,
        )
        expected = build_production()
        print(
            f"  production built in {expected['build_s']:.0f} s: {expected['file_count']} files, "
            f"{expected['file_bytes'] / 2**20:.0f} MiB; PostgreSQL {expected['pg_bytes'] / 2**20:.0f} MiB "
            f"(base backup {expected['base_backup_bytes'] / 2**20:.0f} MiB gzip), "
            f"{expected['wal_bytes'] / 2**20:.0f} MiB of WAL after it ({expected['wal_segments']} archived segments); "
            f"restic repository {expected['restic_bytes'] / 2**20:.0f} MiB",
            flush=True,
        )
        print(f"restores (order {','.join(ORDER)}; ANSIBLE_PIPELINING={PIPELINING}):", flush=True)
        sampler.start()
        runs = []
        for kind in ORDER:  # a failed restore is tried again on a fresh host, up to BENCH_RETRY times
            for _attempt in range(RETRY + 1):
                runs.append(run_one(kind, len(runs) + 1, expected))
                if "failed" not in runs[-1]:
                    break
    finally:
        remove(PROD)
        escrow = WORK / "escrow"
        if escrow.is_mount():
            subprocess.run(["umount", str(escrow)], check=False)
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(WORK, ignore_errors=True)

    sampler.stop()
    done = [r for r in runs if "failed" not in r]

    def median(kind: str, key: str | None = None) -> float | None:
        values = [r["wall"] if key is None else r["steps"].get(key, 0.0) for r in done if r["kind"] == kind]
        return statistics.median(values) if values else None

    script = median("script")
    print(
        f"\n{FILES_MIB} MiB files, pgbench scale {PG_SCALE} ({expected['pg_bytes'] / 2**20:.0f} MiB), "
        f"{expected['wal_bytes'] / 2**20:.0f} MiB WAL replayed; {os.cpu_count()} cores; load average "
        f"{start_load[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end, {min(sampler.samples):.1f}-"
        f"{max(sampler.samples):.1f} during the restores (every 10 s); medians of {len(ORDER)} interleaved runs"
    )
    print(f"{'restore':<48} {'whole s':>8} {'service s':>10} {'runs (whole/service)':>30} {'whole':>7} {'service':>8}")
    for kind, label in LABELS:
        m = median(kind)
        if m is None:
            continue
        each = ", ".join(f"{r['wall']:.1f}/{r['steps']['service']:.1f}" for r in done if r["kind"] == kind)
        service = median(kind, "service")
        ratios = f"{m / script:6.2f}x {service / script:7.2f}x" if script else ""
        print(f"{label:<48} {m:8.1f} {service:10.1f} {each:>30} {ratios}")
    for r in runs:
        if "failed" in r:
            print(f"{r['name']}: FAILED, not in the table: {r['failed'][:300]}")
    for kind, _label in LABELS:
        names = next((r["steps"] for r in done if r["kind"] == kind), None)
        if names:
            print(
                f"{kind + ' steps' if kind == 'script' else kind + ' phases'} (median s): "
                + ", ".join(f"{s} {median(kind, s):.1f}" for s in names)
            )
    if script and median("playbook"):
        service, whole = median("playbook", "service"), median("playbook")
        for what, value, target in (
            ("time to service / script", service / script, "<= 1.50x"),
            ("whole play / script", whole / script, "<= 2.00x"),
        ):
            met = value <= float(target.split()[1].rstrip("x"))
            print(f"playbook {what}: {value:.2f}x (target {target}): {'met' if met else 'NOT met'}")
        fixed = service - script
        print(f"fixed cost (time to service - script): {fixed:.1f} s (target <= 15 s at the smoke size): "
              f"{'met' if fixed <= 15 else 'NOT met'}")
    for kind in ("lean", "docker", "mitogen", "nopipe", "serial"):
        if script and median(kind):
            print(f"{kind} / script: whole {median(kind) / script:.2f}x, to service "
                  f"{median(kind, 'service') / script:.2f}x")
    if median("playbook") and median("docker"):
        print(f"playbook over SSH / over docker exec: {median('playbook') / median('docker'):.2f}x")
    if median("playbook") and median("mitogen"):
        print(f"playbook with Mitogen / without: whole {median('mitogen') / median('playbook'):.2f}x, to service "
              f"{median('mitogen', 'service') / median('playbook', 'service'):.2f}x")
    # One module run, per connection, on the same hosts (task_cost.yml after every restore).
    for action in ("command", "stat"):
        per = {conn: [r["cost"][conn][action] for r in done if action in r["cost"].get(conn, {})]
               for conn in ("ssh", "docker")}
        if per["ssh"] and per["docker"]:
            ssh_ms, docker_ms = statistics.median(per["ssh"]) * 1000, statistics.median(per["docker"]) * 1000
            print(f"one {action} module run (median of {len(per['ssh'])} hosts x {TASKS}): over SSH {ssh_ms:.0f} ms, "
                  f"docker exec {docker_ms:.0f} ms ({ssh_ms / docker_ms:.2f}x)")
    if RESULTS:
        Path(RESULTS).write_text(json.dumps({
            "files_mib": FILES_MIB, "pg_scale": PG_SCALE, "wal_mib": WAL_MIB, "order": ORDER,
            "data_bytes": expected["file_bytes"] + expected["pg_bytes"] + expected["wal_bytes"],
            "expected": expected, "load": {"start": start_load[0], "end": os.getloadavg()[0],
                                           "samples": sampler.samples},
            "runs": runs,
        }, indent=1, default=str))
        print(f"results written to {RESULTS}")
    return 0


def slope(small_path: str, large_path: str) -> int:
    """Seconds per GiB between two runs' BENCH_RESULTS (two data sizes), for the script and every playbook kind."""
    small, large = (json.loads(Path(p).read_text()) for p in (small_path, large_path))
    gib = (large["data_bytes"] - small["data_bytes"]) / 2**30
    print(f"data (files + PostgreSQL + WAL): {small['data_bytes'] / 2**30:.2f} GiB -> "
          f"{large['data_bytes'] / 2**30:.2f} GiB ({gib:.2f} GiB more)")

    def med(res: dict, kind: str, key: str) -> float | None:
        vals = [r["wall"] if key == "whole" else r["steps"][key] for r in res["runs"]
                if r["kind"] == kind and "failed" not in r]
        return statistics.median(vals) if vals else None

    script = (med(large, "script", "whole") - med(small, "script", "whole")) / gib
    print(f"{'restore':<10} {'measure':<8} {'small s':>8} {'large s':>8} {'s/GiB':>7} {'vs script':>10}")
    for kind, _label in LABELS:
        for key in ("whole", "service"):
            a, b = med(small, kind, key), med(large, kind, key)
            if a is None or b is None or (kind == "script" and key == "service"):
                continue
            per = (b - a) / gib
            print(f"{kind:<10} {key:<8} {a:8.1f} {b:8.1f} {per:7.1f} {per / script:9.2f}x")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--slope"] and len(sys.argv) == 4:
        sys.exit(slope(sys.argv[2], sys.argv[3]))
    if len(sys.argv) > 1:
        print(__doc__)
        sys.exit(0 if sys.argv[1] in ("-h", "--help") else 2)
    sys.exit(main())
