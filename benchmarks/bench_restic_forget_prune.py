# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Overhead of restoreops.dr.restic_forget_prune over the bare `restic forget --prune` it drives.

Builds a local repository with 50 snapshots (one a day: a fixed base plus data that changes every day), then,
ROUNDS times and in alternating order, times on two identical copies of it:

  bare    restic forget --quiet --prune --keep-daily 7 --keep-weekly 4 --keep-monthly 3
  module  the module file run as Ansible runs it on the target (python + args file), same policy

and, once, the module through `ansible localhost -m` (controller start-up included, for information).
Prints every measurement, the medians and the ratio module/bare (target: <= 1.2). Exits 0.

Environment: BENCH_SNAPSHOTS (50), BENCH_BASE_MIB (32), BENCH_STEP_MIB (2), BENCH_FILES (20000),
BENCH_CHANGED_FILES (200), BENCH_ROUNDS (5), BENCH_DIR (a temp dir).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
COLLECTIONS = ROOT / ".cache" / "collections"
MODULE = ROOT / "plugins" / "modules" / "restic_forget_prune.py"
POLICY = {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 3}
SNAPSHOTS = int(os.environ.get("BENCH_SNAPSHOTS", "50"))
BASE_MIB = int(os.environ.get("BENCH_BASE_MIB", "32"))
STEP_MIB = int(os.environ.get("BENCH_STEP_MIB", "2"))
# A server-like tree: many small files, a few hundred of which change every day (configs, logs, app state). The
# changed files give every snapshot new tree blobs, so prune has to walk and repack, as on a real repository.
FILES = int(os.environ.get("BENCH_FILES", "20000"))
CHANGED_FILES = int(os.environ.get("BENCH_CHANGED_FILES", "200"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def restic_env(repo: Path, password_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(RESTIC_REPOSITORY=str(repo), RESTIC_PASSWORD_FILE=str(password_file), TZ="UTC",
               RESTIC_CACHE_DIR=str(repo.parent / "cache"))
    return env


def build(work: Path, password_file: Path) -> Path:
    repo = work / "template-repo"
    data = work / "data"
    data.mkdir()
    env = restic_env(repo, password_file)
    subprocess.run(["restic", "init", "--quiet"], env=env, check=True)
    (data / "base.bin").write_bytes(os.urandom(BASE_MIB << 20))
    small = []
    for index in range(FILES):
        path = data / "tree" / f"d{index // 100:04d}" / f"f{index:06d}.txt"
        if index % 100 == 0:
            path.parent.mkdir(parents=True)
        path.write_bytes(os.urandom(512 + index % 3584))
        small.append(path)
    for day in range(SNAPSHOTS):
        for index in range(CHANGED_FILES):
            path = small[(day * CHANGED_FILES + index * 97) % len(small)] if small else None
            if path is not None:
                path.write_bytes(os.urandom(512 + (day + index) % 3584))
        # Each day replaces yesterday's changing data: forgetting a snapshot leaves STEP_MIB for prune to reclaim.
        for old in data.glob("day-*.bin"):
            old.unlink()
        (data / f"day-{day:03d}.bin").write_bytes(os.urandom(STEP_MIB << 20))
        stamp = time.strftime("%Y-%m-%d 10:00:00", time.gmtime(1767225600 + day * 86400))  # from 2026-01-01
        subprocess.run(["restic", "backup", "--quiet", "--host", "bench", "--time", stamp, str(data)], env=env,
                       check=True)
    return repo


def fresh_copy(template: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest)
    return dest


def time_bare(repo: Path, password_file: Path) -> float:
    args = ["restic", "forget", "--quiet", "--prune"]
    for key, value in POLICY.items():
        args += ["--" + key.replace("_", "-"), str(value)]
    start = time.perf_counter()
    subprocess.run(args, env=restic_env(repo, password_file), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_module(repo: Path, password_file: Path, work: Path) -> tuple[float, dict]:
    args_file = work / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "repository": str(repo), "password_file": str(password_file), "cache_dir": str(repo.parent / "cache"),
        **POLICY}}))
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS), TZ="UTC")
    start = time.perf_counter()
    out = subprocess.run([PYTHON, str(MODULE), str(args_file)], env=env, check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    result = json.loads(out.stdout)
    if result.get("failed"):
        raise SystemExit(f"module failed: {result.get('msg')}")
    return elapsed, result


def time_ansible(repo: Path, password_file: Path) -> float:
    module_args = json.dumps({"repository": str(repo), "password_file": str(password_file),
                              "cache_dir": str(repo.parent / "cache"), **POLICY})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_PYTHON_INTERPRETER=PYTHON,
               ANSIBLE_LOCALHOST_WARNING="False", TZ="UTC")
    ansible = str(Path(PYTHON).parent / "ansible")
    start = time.perf_counter()
    subprocess.run([ansible, "localhost", "-c", "local", "-m", "restoreops.dr.restic_forget_prune", "-a",
                    module_args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    if not (COLLECTIONS / "ansible_collections" / "restoreops" / "dr").exists():
        print("run `make tree` first (the collection link under .cache/collections)", file=sys.stderr)
        return 1
    work = Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="bench-restic-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        password_file = work / "password"
        password_file.write_text("bench-password\n")
        password_file.chmod(0o600)
        t0 = time.perf_counter()
        template = build(work, password_file)
        size = sum(f.stat().st_size for f in template.rglob("*") if f.is_file())
        print(f"repository: {SNAPSHOTS} snapshots, {size / 2**20:.1f} MiB, built in {time.perf_counter() - t0:.1f} s")
        version = subprocess.run(["restic", "version"], capture_output=True, text=True, check=True).stdout.split()[1]
        print(f"restic {version}; policy {POLICY}; {ROUNDS} rounds, order alternating")
        bare_times: list[float] = []
        module_times: list[float] = []
        removed = reclaimed = 0
        for round_no in range(ROUNDS):
            order = ("bare", "module") if round_no % 2 == 0 else ("module", "bare")
            for which in order:
                repo = fresh_copy(template, work / "run" / "repo")  # every run starts from the same 50 snapshots
                subprocess.run(["sync"], check=True)
                if which == "bare":
                    bare_times.append(time_bare(repo, password_file))
                else:
                    elapsed, result = time_module(repo, password_file, work)
                    module_times.append(elapsed)
                    removed = len(result["removed"])
                    reclaimed = result["prune"]["bytes_before"] - result["prune"]["bytes_after"]
            print(f"round {round_no + 1}: bare {bare_times[-1]:.3f} s, module {module_times[-1]:.3f} s")
        fresh_copy(template, work / "run" / "repo")
        ansible_time = time_ansible(work / "run" / "repo", password_file)
        bare = statistics.median(bare_times)
        module = statistics.median(module_times)
        print(f"module removed {removed} snapshots and reclaimed {reclaimed / 2**20:.1f} MiB")
        print(f"median bare restic forget --prune: {bare:.3f} s")
        print(f"median module (as run on the target): {module:.3f} s (+{module - bare:.3f} s)")
        print(f"ratio module/bare: {module / bare:.2f} (target <= 1.2)")
        print(f"for information, one `ansible localhost -m` run (controller start-up included): {ansible_time:.3f} s")
    finally:
        if not os.environ.get("BENCH_DIR"):
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
