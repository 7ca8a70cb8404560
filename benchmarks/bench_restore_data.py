"""Throughput of the restore's data phase (restoreops.dr.backup_restore) against the bare tools and a raw tar -x.

    BENCH_MIB=2048 python benchmarks/bench_restore_data.py

Builds a tree of BENCH_MIB MiB of incompressible files in 64 directories, backs it up with restic and borg, then
times, each from a cold page cache where the kernel lets us drop it, best of BENCH_RUNS:
  tar -x            the disk's limit for writing this tree
  restic restore    the bare tool, run by hand
  backup_restore    the module (tool=restic), restore time as it reports it, and the whole ansible call
  borg extract      the bare tool (borg 1.x: one core)
  backup_restore    the module (tool=borg, parallel = one worker per core)
Targets (issue 7): restic via the module >= 0.95x the bare tool; borg via the module >= 1.5x a single borg extract.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = int(os.environ.get("BENCH_MIB", "2048"))
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
WORK = Path(os.environ.get("BENCH_DIR", "/var/tmp/restoreops-bench-restore"))
PASSWORD = "bench-only-not-a-secret"  # noqa: S105 (throwaway repositories)
ENV = dict(os.environ, RESTIC_PASSWORD=PASSWORD, BORG_PASSPHRASE=PASSWORD,
           ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".cache" / "collections"), ANSIBLE_LOCALHOST_WARNING="False")


def sh(cmd: list[str], cwd: Path | None = None) -> str:
    return subprocess.run(cmd, check=True, cwd=cwd, env=ENV, capture_output=True, text=True).stdout


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    with contextlib.suppress(OSError):  # not allowed in every container; then the cache stays warm for all
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def best(fn) -> float:
    times = []
    for _run in range(RUNS):
        drop_caches()
        times.append(fn())
    return min(times)


def timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.monotonic()
    sh(cmd, cwd)
    return time.monotonic() - start


def module(args: dict) -> tuple[float, float]:
    """(restore seconds the module reports, wall seconds of the whole ansible call), from a cold cache."""
    drop_caches()
    start = time.monotonic()
    out = sh([str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local", "-o", "-e",
              f"ansible_python_interpreter={sys.executable}", "-m", "restoreops.dr.backup_restore",
              "-a", json.dumps(args)])
    wall = time.monotonic() - start
    result = json.loads(out.split("=>", 1)[1])
    return float(result["duration"]), wall


def main() -> int:
    src = WORK / "src"
    if not (WORK / "ready").exists():
        fresh(WORK)
        print(f"building a {MIB} MiB tree and its backups in {WORK} ...", flush=True)
        per_dir = max(1, MIB // 64)
        for d in range(64):
            target = src / "data" / f"dir{d:02}"
            target.mkdir(parents=True)
            for f in range(per_dir):
                (target / f"f{f:03}.bin").write_bytes(os.urandom(1 << 20))
        sh(["tar", "-cf", str(WORK / "tree.tar"), "-C", str(src), "."])
        sh(["restic", "init", "-q", "-r", str(WORK / "restic")])
        sh(["restic", "backup", "-q", "-r", str(WORK / "restic"), "data"], cwd=src)
        sh(["borg", "init", "-e", "repokey-blake2", str(WORK / "borg")])
        sh(["borg", "create", "--compression", "lz4", f"{WORK / 'borg'}::bench", "data"], cwd=src)
        (WORK / "ready").write_text("ok")
    out = WORK / "out"
    cores = os.cpu_count() or 1

    tar = best(lambda: timed(["tar", "-xf", str(WORK / "tree.tar")], cwd=fresh(out)))
    restic_bare = best(lambda: timed(["restic", "restore", "latest", "-r", str(WORK / "restic"), "--target",
                                      str(fresh(out))]))
    restic_mod = [module({"tool": "restic", "repository": str(WORK / "restic"), "password": PASSWORD,
                          "staging_dir": str(fresh(out))}) for _run in range(RUNS)]
    borg_bare = best(lambda: timed(["borg", "extract", f"{WORK / 'borg'}::bench"], cwd=fresh(out)))
    borg_mod = [module({"tool": "borg", "repository": str(WORK / "borg"), "password": PASSWORD,
                        "staging_dir": str(fresh(out)), "parallel": cores}) for _run in range(RUNS)]
    shutil.rmtree(out, ignore_errors=True)

    def rate(seconds: float) -> float:
        return MIB / seconds

    r_mod = min(t for t, _wall in restic_mod)
    r_wall = min(w for _t, w in restic_mod)
    b_mod = min(t for t, _wall in borg_mod)
    b_wall = min(w for _t, w in borg_mod)
    rows = [
        ("tar -x (disk limit)", tar, None),
        ("restic restore, bare", restic_bare, None),
        ("backup_restore restic (restore)", r_mod, restic_bare / r_mod),
        ("backup_restore restic (whole call)", r_wall, restic_bare / r_wall),
        ("borg extract, bare (1 process)", borg_bare, None),
        (f"backup_restore borg, {cores} workers (restore)", b_mod, borg_bare / b_mod),
        (f"backup_restore borg, {cores} workers (whole call)", b_wall, borg_bare / b_wall),
    ]
    print(f"\n{MIB} MiB, {cores} cores, best of {RUNS}, load average {Path('/proc/loadavg').read_text().split()[0]}")
    print(f"{'what':<46} {'seconds':>8} {'MiB/s':>8} {'speed vs bare':>14}")
    for name, seconds, ratio in rows:
        print(f"{name:<46} {seconds:8.2f} {rate(seconds):8.1f} {(f'{ratio:.2f}x' if ratio else ''):>14}")
    print(f"\nrestic: module/bare throughput {restic_bare / r_mod:.2f}x (target >= 0.95x)")
    print(f"borg:   module/bare throughput {borg_bare / b_mod:.2f}x (target >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
