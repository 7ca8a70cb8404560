# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_archiver_facts takes well under half a second and does not grow with the database's size.

Starts a private PostgreSQL 15 cluster (as the postgres user, unix socket in a temp dir plus 127.0.0.1 on a port in
23000-23999) with WAL archiving on, then times pg_archiver_facts at several database sizes (pgbench tables at the
given scales). Two measurements per size:

- ``module``: the whole module as Ansible runs it on the target (a new Python process that imports ansible and
  psycopg, connects, queries, and prints JSON), median of --runs;
- ``logic``: the connect + queries + decisions alone (``_postgres.archiver_facts``) in this process, median of
  --runs x 5.

It prints a table and the ratio largest/smallest; the goals are module < 0.5 s and a ratio of at most 1.3. The
cluster and its directory are removed at the end, even on failure.

Usage: .venv/bin/python benchmarks/bench_pg_archiver_facts.py [--scales 0,10,40] [--runs 7] [--port 23100]
Run as root (the cluster runs as postgres) with PYTHONPATH=.cache/collections (make bench does).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.restoreops.dr.plugins.module_utils import _postgres as pg  # noqa: E402

BIN = "/usr/lib/postgresql/15/bin"
MODULE = os.path.join(ROOT, "plugins", "modules", "pg_archiver_facts.py")


def as_postgres(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, **kwargs)


def db_size(sock: str, port: int) -> int:
    out = as_postgres(f"{BIN}/psql", "-h", sock, "-p", str(port), "-X", "-A", "-t", "-c",
                      "SELECT pg_database_size('postgres')", capture_output=True, text=True).stdout
    return int(out.strip())


def time_module(args_file: str, runs: int) -> float:
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    samples = []
    for _run in range(runs):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-P", MODULE, args_file], capture_output=True, text=True, env=env,
                              check=False)
        samples.append(time.perf_counter() - start)
        result = json.loads(proc.stdout)
        if result.get("failed"):
            raise SystemExit(f"module failed: {result.get('msg')}")
    return statistics.median(samples)


def time_baseline(base: str, runs: int) -> float:
    """The same process start with ansible.builtin.ping: interpreter + AnsibleModule, no psycopg, no server."""
    import ansible.modules.ping as ping_module  # only to find its file

    args_file = os.path.join(base, "ping.json")
    with open(args_file, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": {}}, handle)
    samples = []
    for _run in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-P", ping_module.__file__, args_file], capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def time_import_psycopg(runs: int) -> float:
    samples = []
    for _run in range(runs):
        out = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import psycopg; "
                              "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True).stdout
        samples.append(float(out))
    return statistics.median(samples)


def time_logic(params: dict, runs: int) -> float:
    samples = []
    for _run in range(runs):
        start = time.perf_counter()
        facts = pg.archiver_facts(params)
        samples.append(time.perf_counter() - start)
        assert facts["archive_mode"] == "on"
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="0,10,40", help="pgbench scales to measure at (0 = empty database)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--port", type=int, default=23100)
    parser.add_argument("--workdir", default="/var/tmp")
    opts = parser.parse_args()
    if not 23000 <= opts.port <= 23999:
        raise SystemExit("--port must be in 23000-23999")
    scales = sorted(int(s) for s in opts.scales.split(","))

    base = tempfile.mkdtemp(prefix="bench-pgarch.", dir=opts.workdir)
    data, sock, archive = (os.path.join(base, d) for d in ("data", "sock", "archive"))
    started = False
    try:
        for d in (sock, archive):
            os.mkdir(d)
        subprocess.run(["chown", "-R", "postgres:postgres", base], check=True)
        as_postgres(f"{BIN}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync",
                    stdout=subprocess.DEVNULL)
        with open(os.path.join(data, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {opts.port}\nunix_socket_directories = '{sock}'\n"
                       f"archive_mode = on\narchive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'\n"
                       "fsync = off\nsynchronous_commit = off\nmax_wal_size = 1GB\n")
        as_postgres(f"{BIN}/pg_ctl", "-D", data, "-l", os.path.join(base, "log"), "-w", "start",
                    stdout=subprocess.DEVNULL)
        started = True

        params = {"login_unix_socket": sock, "port": opts.port, "login_user": "postgres", "login_db": "postgres",
                  "connect_timeout": 10, "ssl_mode": "disable", "max_archive_age": 3600}
        args_file = os.path.join(base, "args.json")
        with open(args_file, "w", encoding="utf-8") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)

        rows = []
        for scale in scales:
            if scale:
                as_postgres(f"{BIN}/pgbench", "-h", sock, "-p", str(opts.port), "-i", "-q", "-s", str(scale),
                            "postgres", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                as_postgres(f"{BIN}/psql", "-h", sock, "-p", str(opts.port), "-X", "-q", "-c",
                            "SELECT pg_switch_wal()", stdout=subprocess.DEVNULL)
            size = db_size(sock, opts.port)
            module_s = time_module(args_file, opts.runs)
            logic_s = time_logic(params, opts.runs * 5)
            rows.append((scale, size, module_s, logic_s))
            print(f"scale {scale:>4}  database {size / 1048576:8.1f} MiB  module {module_s * 1000:7.1f} ms  "
                  f"logic {logic_s * 1000:6.2f} ms", flush=True)

        baseline = time_baseline(base, opts.runs)
        psycopg_import = time_import_psycopg(opts.runs)
        print(f"baseline: ansible.builtin.ping run the same way {baseline * 1000:.1f} ms; "
              f"import psycopg alone {psycopg_import * 1000:.1f} ms")
        small, large = rows[0], rows[-1]
        ratio_module = large[2] / small[2]
        ratio_logic = large[3] / small[3]
        print(f"size ratio {large[1] / small[1]:.1f}x; time ratio large/small: module {ratio_module:.2f}, "
              f"logic {ratio_logic:.2f}")
        worst = max(r[2] for r in rows)
        print(f"slowest module run (median): {worst * 1000:.1f} ms (goal < 500 ms); above ping: "
              f"{(worst - baseline) * 1000:.1f} ms, of which importing psycopg {psycopg_import * 1000:.1f} ms")
        print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        return 0
    finally:
        if started:
            subprocess.run(["runuser", "-u", "postgres", "--", f"{BIN}/pg_ctl", "-D", data, "-m", "fast", "-w",
                            "stop"], stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
