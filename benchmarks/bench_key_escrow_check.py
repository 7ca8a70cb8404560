# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""key_escrow_check's time does not grow with repository size.

Builds a borg repokey repository and a restic repository of 20 MiB and of 2 GiB (random data, so nothing
deduplicates), escrows their keys on another directory, and times the full check of each (exists, mode, apart,
decrypts, current) through the collection's own module_utils, driving the real borg and restic. Prints the median
of several runs per size and the ratio large/small; the goal is a ratio of at most 1.2.

Usage: .venv/bin/python benchmarks/bench_key_escrow_check.py [--large-mib 2048] [--runs 5] [--workdir /var/tmp]
Needs about 3x the large size free in --workdir (removed at the end). Run with PYTHONPATH=.cache/collections
(make bench does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".cache", "collections"))

from ansible_collections.restoreops.dr.plugins.module_utils import _escrow as escrow  # noqa: E402

PASS = "bench-escrow-passphrase"  # noqa: S105  (a throwaway benchmark repository)


class Runner:
    """The slice of AnsibleModule.run_command that ToolRunner uses, on subprocess."""

    def run_command(self, cmd, environ_update=None, pass_fds=None, cwd=None, **_kwargs):
        env = dict(os.environ)
        env.update(environ_update or {})
        proc = subprocess.run(cmd, env=env, pass_fds=tuple(pass_fds or ()), cwd=cwd, capture_output=True,
                              text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr


def sh(cmd: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, check=True, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def build(root: str, size_mib: int, escrow_dir: str) -> list[escrow.EscrowItem]:
    name = f"{size_mib}m"
    src = os.path.join(root, f"src-{name}")
    os.makedirs(src)
    with open(os.path.join(src, "data.bin"), "wb") as handle:
        left = size_mib
        while left:
            step = min(left, 64)
            handle.write(os.urandom(step << 20))
            left -= step
    borg_repo = os.path.join(root, f"borg-{name}")
    restic_repo = os.path.join(root, f"restic-{name}")
    key = os.path.join(escrow_dir, "keys", f"borg-{name}.key")
    restic_pw = os.path.join(escrow_dir, "keys", f"restic-{name}.pass")
    passphrase = os.path.join(escrow_dir, "pass", "borg.pass")
    env = {"BORG_PASSPHRASE": PASS, "BORG_BASE_DIR": os.path.join(root, "base")}
    sh(["borg", "init", "-e", "repokey", borg_repo], env)
    sh(["borg", "create", "--compression", "none", f"{borg_repo}::a", src], env)
    sh(["borg", "key", "export", borg_repo, key], env)
    os.chmod(key, 0o600)
    sh(["restic", "init", "-q", "-r", restic_repo, "--password-file", restic_pw])
    sh(["restic", "backup", "-q", "--no-cache", "-r", restic_repo, "--password-file", restic_pw, src])
    shutil.rmtree(src)
    return [
        escrow.parse_item({"name": f"borg-{name}", "kind": "borg", "repo": borg_repo, "key_file": key,
                           "passphrase_file": passphrase}),
        escrow.parse_item({"name": f"restic-{name}", "kind": "restic", "repo": restic_repo, "key_file": restic_pw}),
    ]


def du_mib(path: str) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            total += os.lstat(os.path.join(dirpath, f)).st_size
    return total / (1 << 20)


def check_once(item: escrow.EscrowItem) -> float:
    probes = {"borg": escrow.BorgProbe(Runner()), "restic": escrow.ResticProbe(Runner())}
    start = time.perf_counter()
    result = escrow.check_item(item, 0o600, probes)
    elapsed = time.perf_counter() - start
    if not (result.checks["decrypts"] and result.checks["current"]):
        raise SystemExit(f"the check failed on {item.name}: {result.problems}")
    return elapsed


def time_pair(small: escrow.EscrowItem, large: escrow.EscrowItem, runs: int) -> tuple[float, float]:
    """Median times, small and large runs interleaved so that load from elsewhere hits both alike."""
    check_once(small)  # warm the page cache and the interpreter's imports; not counted
    check_once(large)
    small_times, large_times = [], []
    for _run in range(runs):
        small_times.append(check_once(small))
        large_times.append(check_once(large))
    return statistics.median(small_times), statistics.median(large_times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mib", type=int, default=20)
    parser.add_argument("--large-mib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workdir", default="/var/tmp")
    args = parser.parse_args()
    for name in escrow.FOREIGN_SECRET_VARS:
        os.environ.pop(name, None)
    root = tempfile.mkdtemp(prefix="bench-escrow-", dir=args.workdir)
    try:
        escrow_dir = os.path.join(root, "escrow")
        for sub in ("keys", "pass"):
            os.makedirs(os.path.join(escrow_dir, sub), mode=0o700)
        with open(os.path.join(escrow_dir, "pass", "borg.pass"), "w", encoding="utf-8") as handle:
            handle.write(PASS + "\n")
        for name in (f"{args.small_mib}m", f"{args.large_mib}m"):
            path = os.path.join(escrow_dir, "keys", f"restic-{name}.pass")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(f"bench-restic-{name}\n")
        os.chmod(os.path.join(escrow_dir, "pass", "borg.pass"), 0o600)
        for name in os.listdir(os.path.join(escrow_dir, "keys")):
            os.chmod(os.path.join(escrow_dir, "keys", name), 0o600)

        print(f"building repositories of {args.small_mib} MiB and {args.large_mib} MiB in {root} ...", flush=True)
        t0 = time.perf_counter()
        small = build(root, args.small_mib, escrow_dir)
        large = build(root, args.large_mib, escrow_dir)
        print(f"built in {time.perf_counter() - t0:.0f} s", flush=True)

        worst = 0.0
        print(f"{'tool':8} {'small repo':>12} {'large repo':>12} {'small check':>12} {'large check':>12} {'ratio':>6}")
        for s_item, l_item in zip(small, large, strict=True):
            s_time, l_time = time_pair(s_item, l_item, args.runs)
            ratio = l_time / s_time
            worst = max(worst, ratio)
            print(f"{s_item.kind:8} {du_mib(s_item.repo or ''):>9.0f} MiB {du_mib(l_item.repo or ''):>9.0f} MiB "
                  f"{s_time:>10.3f} s {l_time:>10.3f} s {ratio:>6.2f}")
        verdict = "within" if worst <= 1.2 else "NOT within"
        print(f"worst ratio large/small: {worst:.2f} ({verdict} the 1.2 goal; median of {args.runs} runs each)")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
