# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An idempotent borg_repo run costs about the same on a 2 GiB repository as on a 20 MiB one.

Builds two real borg 1.2 repositories (random, incompressible data streamed into `borg create` from stdin, so the
repository really holds that much), then times the borg_repo module itself (no Ansible controller around it) on
each, several times, with append_only and a key export that are already in place. For contrast it also times
`borg check --repository-only`, which reads the data.

Run: .venv/bin/python benchmarks/bench_borg_repo.py [--small-mib 20] [--large-mib 2048] [--runs 5]
Needs borg 1.2 on PATH. Writes only below a temporary directory, which it removes.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULE = os.path.join(ROOT, "plugins", "modules", "borg_repo.py")
CHUNK = 4 * 1024 * 1024


def collections_path(workdir: str) -> str:
    """A collection tree (restoreops/dr -> this checkout) for the module's imports."""
    path = os.path.join(workdir, "collections")
    os.makedirs(os.path.join(path, "ansible_collections", "restoreops"))
    os.symlink(ROOT, os.path.join(path, "ansible_collections", "restoreops", "dr"))
    return path


def fill_repo(repo: str, mib: int, env: dict[str, str]) -> None:
    subprocess.run(["borg", "init", "--encryption", "repokey-blake2", repo], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.Popen(["borg", "create", "--compression", "none", f"{repo}::data", "-"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    left = mib * 1024 * 1024
    while left:
        n = min(CHUNK, left)
        proc.stdin.write(os.urandom(n))
        left -= n
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit(f"borg create failed for {repo}")


def du(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def run_module(args_file: str, env: dict[str, str]) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, MODULE, args_file], env=env, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    result = json.loads(out.stdout)
    if result.get("failed"):
        raise SystemExit(f"borg_repo failed: {result.get('msg')}")
    return elapsed, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mib", type=int, default=20)
    parser.add_argument("--large-mib", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=5)
    opts = parser.parse_args()
    if shutil.which("borg") is None:
        raise SystemExit("borg is not installed")

    workdir = tempfile.mkdtemp(prefix="bench-borg-repo-")
    try:
        secret = os.path.join(workdir, "secret")
        with open(secret, "w", encoding="utf-8") as handle:
            handle.write("bench-borg-passphrase\n")
        os.chmod(secret, 0o600)
        base = os.path.join(workdir, "base")
        os.mkdir(base, 0o700)
        borg_env = dict(os.environ, BORG_PASSCOMMAND=f"cat {secret}", BORG_BASE_DIR=base)
        borg_env.pop("BORG_PASSPHRASE", None)
        module_env = dict(os.environ, PYTHONPATH=collections_path(workdir))

        repos = {}
        for label, mib in (("small", opts.small_mib), ("large", opts.large_mib)):
            repo = os.path.join(workdir, label)
            t0 = time.perf_counter()
            fill_repo(repo, mib, borg_env)
            args_file = os.path.join(workdir, f"{label}.json")
            with open(args_file, "w", encoding="utf-8") as handle:
                json.dump({"ANSIBLE_MODULE_ARGS": {
                    "repo": repo, "passphrase_file": secret, "base_dir": base, "append_only": True,
                    "key_export": {"dest": os.path.join(workdir, f"{label}.key")}}}, handle)
            first = run_module(args_file, module_env)[1]  # applies append_only and the key export
            repos[label] = {"label": label, "repo": repo, "args": args_file, "data_mib": mib,
                            "repo_bytes": du(repo), "fill_s": time.perf_counter() - t0,
                            "first_changed": first.get("changed"), "times": []}
        # Interleaved, so that a busy machine slows both sides alike.
        for _run in range(opts.runs):
            for row in repos.values():
                elapsed, result = run_module(row["args"], module_env)
                if result.get("changed"):
                    raise SystemExit(f"the idempotent run on {row['label']} reported a change: {result['actions']}")
                row["times"].append(elapsed)
        for row in repos.values():
            t0 = time.perf_counter()
            subprocess.run(["borg", "check", "--repository-only", row["repo"]], env=borg_env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            row["check_s"] = time.perf_counter() - t0
            row["median_s"] = statistics.median(row["times"])
            row["min_s"] = min(row["times"])
            row["max_s"] = max(row["times"])
        rows = [repos["small"], repos["large"]]

        version = subprocess.run(["borg", "--version"], capture_output=True, text=True, check=True).stdout.strip()
        print(f"{version}, "
              f"{opts.runs} idempotent runs of the borg_repo module per repository")
        print(f"{'repo':<6} {'size on disk':>14} {'idempotent run (median, min-max)':>34} "
              f"{'borg check --repo-only':>24}")
        for r in rows:
            print(f"{r['label']:<6} {r['repo_bytes'] / 2**20:>10.1f} MiB {r['median_s']:>12.3f} s "
                  f"({r['min_s']:.3f}-{r['max_s']:.3f} s) {r['check_s']:>20.2f} s")
        small, large = rows
        print(f"size ratio large/small: {large['repo_bytes'] / small['repo_bytes']:.1f}x")
        print(f"idempotent run ratio large/small: {large['median_s'] / small['median_s']:.2f}x")
        print(f"borg check --repository-only ratio large/small: {large['check_s'] / small['check_s']:.1f}x")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
