"""The backup-time checksum manifest at millions of files: record (first run, unchanged re-run) and verify.

    PYTHONPATH=.cache/collections .venv/bin/python benchmarks/bench_manifest_scale.py
    BENCH_FILES=300000,3000000 BENCH_CACHE=warm,cold BENCH_OLD=1 BENCH_DIR=/var/tmp/restoreops-bench-manifest

For each size it writes that many files of 512 bytes (1000 per directory, two levels), waits two seconds (files
written within a second of a recording are read again by the next one), installs the recorder as the
restoreops.dr.backup_context role does (record-context, and _manifest.py beside it in restoreops-lib/) and times,
each in a child process whose peak RSS comes from wait4():
  record, first run     no previous manifest: every file read and hashed
  record, unchanged     the same tree again: must print "unchanged"
  record, 1% changed    one file in a hundred rewritten (a new size, so a new mtime and ctime)
  verify                _restore.load_manifest + verify_against_manifest over the tree, as backup_restore calls them
                        (two hashing threads on this machine), with the walk of the restored tree it merges with
  read, Python          the same sorted walk, then open, one read and close per file: reading the bytes once,
                        without a manifest and without hashing
  read, C tools         find -type f -print0 | xargs -0 cat > /dev/null
with the page cache warm (everything read once before; BENCH_RUNS interleaved rounds, default 2, the best of each
step kept, since another job on the machine may drop the cache meanwhile) and cold (dropped before each run where
the kernel lets us: what a nightly pre-command meets; one round). With BENCH_OLD=1 the recorder and verification of
BENCH_OLD_REV (before the streaming manifest) run on the same tree, warm, at the sizes up to BENCH_OLD_MAX files (its
verification holds a thread-pool future per file, about 2.2 KiB each). BENCH_BIG=COUNTxBYTES (default 8000x262144,
2 GiB; empty: none) adds a tree of larger files, warm and cold, where reading the bytes dominates the first run.
Ratios pair runs of the same pass; the machine is shared, so absolute seconds vary with its load (printed). The
trees are deleted at the end (BENCH_KEEP=1 keeps them); the script refuses to start without room for them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = [int(n) for n in os.environ.get("BENCH_FILES", "300000,3000000").split(",")]
CACHES = os.environ.get("BENCH_CACHE", "warm,cold").split(",")
OLD = os.environ.get("BENCH_OLD", "1") == "1"
OLD_REV = os.environ.get("BENCH_OLD_REV", "8b0dd71")  # the last commit with the whole-manifest-in-memory code
OLD_MAX = int(os.environ.get("BENCH_OLD_MAX", "300000"))
BIG = os.environ.get("BENCH_BIG", "8000x262144")
WORK = Path(os.environ.get("BENCH_DIR", "/var/tmp/restoreops-bench-manifest"))
KEEP = os.environ.get("BENCH_KEEP") == "1"
RUNS = int(os.environ.get("BENCH_RUNS", "2"))
FILE_SIZE = 512
PER_DIR = 1000
COLLECTIONS = ROOT / ".cache" / "collections"
ENV = dict(os.environ, PYTHONPATH=str(COLLECTIONS), PYTHONDONTWRITEBYTECODE="1")

VERIFY_NEW = textwrap.dedent("""
    import json, sys
    from ansible_collections.restoreops.dr.plugins.module_utils import _restore
    manifest, top = sys.argv[1], sys.argv[2]
    result = _restore.verify_against_manifest("/", _restore.load_manifest(manifest), [top], threads=2)
    print(json.dumps({"checked": result["checked"], "ok": result["ok"], "files": result["tree_files"]}))
""")
READ_PY = textwrap.dedent("""
    import os, sys
    from ansible_collections.restoreops.dr.plugins.module_utils import _manifest
    files = size = 0
    for path, _st in _manifest.walk([sys.argv[1]]):
        fd = os.open(path, os.O_RDONLY)
        chunk = os.read(fd, 1 << 16)
        while chunk:
            size += len(chunk)
            chunk = os.read(fd, 1 << 20)
        os.close(fd)
        files += 1
    print(files, size)
""")
# The code before the streaming manifest, from git: the verification section of that commit's _restore.py (sha256_file,
# in_scope, verify_against_manifest, load_manifest, tree_stats) run on its own, as its module ran it: load_manifest
# (the whole JSON), tree_stats (a walk), then verify_against_manifest (a thread-pool future per file).
VERIFY_OLD = textwrap.dedent("""
    import concurrent.futures, hashlib, json, os, stat, sys
    from typing import Any, Sequence
    text = open(sys.argv[3], encoding="utf-8").read()
    section = text[text.index("# --- verification"):text.index("# --- the tools")]
    old = {"__name__": "old_verification", "concurrent": concurrent, "hashlib": hashlib, "json": json, "os": os,
           "stat": stat, "Any": Any, "Sequence": Sequence, "RestoreOpsError": RuntimeError}
    exec(compile("from __future__ import annotations\\n" + section, "old_restore", "exec"), old)
    manifest, top = sys.argv[1], sys.argv[2]
    files, size = old["tree_stats"](top)
    result = old["verify_against_manifest"]("/", old["load_manifest"](manifest), [top], threads=2)
    print(json.dumps({"checked": result["checked"], "ok": result["ok"], "files": files}))
""")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def drop_caches() -> bool:
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def run(argv: list[str], expect: str | None = None) -> dict:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child process (wait4 on its pid gives its own rusage)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    # read the pipes without reaping the child, then wait4() for its resource usage
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {err.decode()[-800:]}")
    text = out.decode().strip()
    if expect is not None and text.splitlines()[-1] != expect:
        raise SystemExit(f"{argv[:3]} printed {text!r}, expected {expect!r}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
            "out": text, "err": err.decode().strip()}


def make_tree(top: Path, count: int, file_size: int = FILE_SIZE) -> float:
    """count files of file_size bytes, each different (its number in the first 8 bytes)."""
    start = time.monotonic()
    block = os.urandom(file_size)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(count):
        if i % PER_DIR == 0:
            directory = top / f"{i // (PER_DIR * 100):03d}" / f"{i // PER_DIR % 100:02d}"
            directory.mkdir(parents=True)
            prefix = str(directory) + "/f"
        fd = os.open(f"{prefix}{i % PER_DIR:04d}", flags, 0o644)
        os.write(fd, i.to_bytes(8, "little") + block[8:])
        os.close(fd)
    return time.monotonic() - start


def change_some(top: Path, count: int, every: int = 100) -> int:
    changed = 0
    for i in range(0, count, every):
        path = top / f"{i // (PER_DIR * 100):03d}" / f"{i // PER_DIR % 100:02d}" / f"f{i % PER_DIR:04d}"
        path.write_bytes(b"changed " + path.read_bytes())
        changed += 1
    return changed


def install(dest: Path, rev: str | None = None) -> Path:
    """The recorder as the role lays it out; rev: the script as it was at that commit (no library then)."""
    dest.mkdir(parents=True, exist_ok=True)
    script = dest / "record-context"
    if rev is None:
        shutil.copy(ROOT / "roles/backup_context/files/record-context", script)
        lib = dest / "restoreops-lib/ansible_collections/restoreops/dr/plugins/module_utils"
        lib.mkdir(parents=True)
        for name in ("__init__.py", "_manifest.py"):
            shutil.copy(ROOT / "plugins/module_utils" / name, lib / name)
    else:
        script.write_bytes(subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:roles/backup_context/files/"
                                           "record-context"], check=True, capture_output=True).stdout)
    return script


def old_restore(dest: Path) -> Path:
    path = dest / "old_restore.py"
    path.write_bytes(subprocess.run(["git", "-C", str(ROOT), "show", f"{OLD_REV}:plugins/module_utils/_restore.py"],
                                    check=True, capture_output=True).stdout)
    return path


def du_mib(path: Path) -> float:
    return path.stat().st_size / 1048576 if path.exists() else 0.0


def bench_size(count: int, file_size: int = FILE_SIZE) -> dict:
    base = WORK / f"n{count}x{file_size}"
    shutil.rmtree(base, ignore_errors=True)
    data = base / "data"
    ctx = base / "ctx"
    print(f"\n=== {count} files of {file_size} bytes in {data} (load {loadavg()})", flush=True)
    created = make_tree(data, count, file_size)
    print(f"created in {created:.1f} s", flush=True)
    time.sleep(2)
    script = install(base / "libexec")
    record = [sys.executable, str(script), "--dir", str(ctx), "--path", str(data), "--stats"]
    verify = [sys.executable, "-c", VERIFY_NEW, str(ctx / "manifest.jsonl.gz"), str(data)]
    read_c = ["sh", "-c", f"find {data} -type f -print0 | xargs -0 cat > /dev/null"]
    read_py = [sys.executable, "-c", READ_PY, str(data)]
    results: dict = {"files": count, "file_size": file_size, "created_s": created}
    for cache in CACHES:
        cold = cache == "cold"
        if cold and not drop_caches():
            print("cold: the page cache cannot be dropped here; skipped")
            continue

        def step(name: str, argv: list[str], expect: str | None = None, cold: bool = cold, cache: str = cache) -> dict:
            if cold:
                drop_caches()
            load = loadavg()
            result = run(argv, expect)
            result["load"] = load
            stats = json.loads(result["err"].splitlines()[-1]) if "--stats" in argv else {}
            extra = f" hashed {stats['hashed']} reused {stats['reused']}" if stats else ""
            print(f"{cache:5} {name:<22} {result['wall']:8.2f} s wall {result['cpu']:8.2f} s CPU "
                  f"{result['rss_mib']:8.1f} MiB peak RSS (load {load}){extra}", flush=True)
            return result

        if not cold:
            subprocess.run(["sync"], check=True)
            run(read_py)  # everything in the page cache before the first measurement
        rounds = []
        for _round in range(1 if cold else RUNS):  # warm: interleaved rounds, the best of each kept
            shutil.rmtree(ctx, ignore_errors=True)
            rounds.append({"first": step("record, first run", record, "updated"),
                           "manifest_mib": du_mib(ctx / "manifest.jsonl.gz"),
                           "unchanged": step("record, unchanged", record, "unchanged"),
                           "verify": step("verify", verify),
                           "read": step("read, Python", read_py),
                           "read_c": step("read, C tools", read_c)})
        res = {key: min((r[key] for r in rounds), key=lambda r: r["wall"]) if key != "manifest_mib" else rounds[0][key]
               for key in rounds[0]}
        res["rounds"] = rounds
        if not cold and file_size == FILE_SIZE:
            changed = change_some(data, count)
            time.sleep(2)
            res["changed_1pct"] = step(f"record, {changed} changed", record, "updated")
            res["changed_files"] = changed
            res["unchanged_after"] = step("record, unchanged", record, "unchanged")
        results[cache] = res
    if OLD and count <= OLD_MAX and file_size == FILE_SIZE:
        old_dir = base / "old"
        old_script = install(old_dir / "libexec", OLD_REV)
        old_ctx = old_dir / "ctx"
        old_record = [sys.executable, str(old_script), "--dir", str(old_ctx), "--path", str(data)]
        old_verify = [sys.executable, "-c", VERIFY_OLD, str(old_ctx / "manifest.json"), str(data),
                      str(old_restore(old_dir))]
        res = {}
        run(read_py)  # warm, as the new code's warm pass
        for name, argv, expect in (("first", old_record, "updated"), ("unchanged", old_record, "unchanged"),
                                   ("verify", old_verify, None)):
            load = loadavg()
            res[name] = run(argv, expect)
            res[name]["load"] = load
            print(f"old   {name:<22} {res[name]['wall']:8.2f} s wall {res[name]['cpu']:8.2f} s CPU "
                  f"{res[name]['rss_mib']:8.1f} MiB peak RSS (load {load})", flush=True)
        res["manifest_mib"] = du_mib(old_ctx / "manifest.json")
        results["old"] = res
    if not KEEP:
        shutil.rmtree(base, ignore_errors=True)
    return results


def report(all_results: list[dict]) -> None:
    print(f"\n{'files':>9} {'size':>7} {'cache':>5} {'what':<13} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9} "
          f"{'µs/file':>8}")
    for res in all_results:
        n = res["files"]
        for cache in ("warm", "cold", "old"):
            if cache not in res:
                continue
            for key in ("first", "unchanged", "changed_1pct", "verify", "read", "read_c"):
                if key in res[cache]:
                    r = res[cache][key]
                    print(f"{n:>9} {res['file_size']:>7} {cache:>5} {key:<13} {r['wall']:8.2f} {r['cpu']:8.2f} "
                          f"{r['rss_mib']:9.1f} {r['wall'] / n * 1e6:8.2f}")
    print("\nratios (each within one pass):")
    for res in all_results:
        n = res["files"]
        for cache in ("warm", "cold"):
            if cache in res:
                r = res[cache]
                over = (r["verify"]["wall"] - r["read"]["wall"]) / n * 1e6
                over_cpu = (r["verify"]["cpu"] - r["read"]["cpu"]) / n * 1e6
                print(f"{n:>9} x {res['file_size']} {cache}: unchanged/first "
                      f"{r['unchanged']['wall'] / r['first']['wall']:.3f} wall, "
                      f"{r['unchanged']['cpu'] / r['first']['cpu']:.3f} CPU (target <= 0.10); verify/read "
                      f"{r['verify']['wall'] / r['read']['wall']:.2f} ({over:+.1f} µs wall, {over_cpu:+.1f} µs CPU "
                      f"per file over the read; C tools {r['read_c']['wall']:.2f} s); peak RSS record "
                      f"{max(r['first']['rss_mib'], r['unchanged']['rss_mib']):.0f} MiB, verify "
                      f"{r['verify']['rss_mib']:.0f} MiB; manifest {r['manifest_mib']:.1f} MiB")
    small_files = [r for r in all_results if r["file_size"] == FILE_SIZE]
    if len(small_files) >= 2:
        small, large = small_files[0], small_files[-1]
        factor = large["files"] / small["files"]
        print(f"\ngrowth {small['files']} -> {large['files']} files (x{factor:g}):")
        for cache in ("warm", "cold", "old"):
            if cache in small and cache in large:
                for key in ("first", "unchanged", "verify"):
                    a, b = small[cache][key], large[cache][key]
                    print(f"  {cache:5} {key:<10} time x{b['wall'] / a['wall']:.2f}, "
                          f"peak RSS x{b['rss_mib'] / a['rss_mib']:.2f} ({a['rss_mib']:.0f} -> {b['rss_mib']:.0f} MiB)")


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(143))  # a kill still deletes the trees (finally below)
    WORK.mkdir(parents=True, exist_ok=True)
    big_count, big_size = (int(x) for x in BIG.split("x")) if BIG else (0, 0)
    big = big_count * (big_size + 4096)
    need = max(max(SIZES) * 4096 * 1.3, big) + (2 << 30)  # a 4 KiB block per small file, inodes, manifests
    free = shutil.disk_usage(WORK).free
    if free < need:
        raise SystemExit(f"{WORK} has {free / 2**30:.1f} GiB free; {need / 2**30:.1f} GiB are needed")
    print(f"manifest benchmark, {os.cpu_count()} cores, {sys.version.split()[0]}, load {loadavg()}, in {WORK}")
    all_results = []
    try:
        for count in SIZES:
            all_results.append(bench_size(count))
        if BIG:
            count, size = (int(x) for x in BIG.split("x"))
            all_results.append(bench_size(count, size))
    finally:
        if not KEEP:
            with contextlib.suppress(OSError):
                shutil.rmtree(WORK)
    report(all_results)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_manifest_scale.json").write_text(json.dumps(all_results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
