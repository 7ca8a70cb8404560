from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import time
from types import SimpleNamespace

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _manifest as m

DAY_NS = 86400 * 10**9


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stat_of(size=512, mtime=10, ctime=20, inode=7):
    return SimpleNamespace(st_size=size, st_mtime_ns=mtime, st_ctime_ns=ctime, st_ino=inode)


def lines(path) -> list[dict]:
    with gzip.open(path, "rt", encoding="ascii") as handle:
        return [json.loads(line) for line in handle]


def entries(path) -> dict[str, str]:
    return {e.path: e.sha256 for e in m.Manifest(str(path)).entries()}


def tree(root, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def settle() -> int:
    """A recording time well after the files' ctimes (outside the one-second racy window)."""
    return time.time_ns() + 3 * 10**9


# --- the incremental decision ------------------------------------------------------------------------------------

OLD = m.Entry("/srv/a", "0" * 64, 512, 10, 20, 7)


@pytest.mark.parametrize(("st", "reason"), [
    (stat_of(), None),
    (stat_of(size=513), "size"),
    (stat_of(mtime=11), "mtime"),
    (stat_of(ctime=21), "ctime"),
    (stat_of(inode=8), "inode"),
])
def test_needs_hash_compares_size_mtime_ctime_inode(st, reason):
    assert m.needs_hash(OLD, st) == reason


def test_needs_hash_forced_new_legacy_and_racy():
    assert m.needs_hash(OLD, stat_of(), full=True) == "full re-hash"
    assert m.needs_hash(None, stat_of()) == "new"
    assert m.needs_hash(m.Entry("/srv/a", "0" * 64), stat_of()) == "no metadata"
    # changed within the last tick before the previous recording began: read again
    assert m.needs_hash(OLD, stat_of(), racy_from_ns=20) == "racy"
    assert m.needs_hash(OLD, stat_of(), racy_from_ns=21) is None


def test_full_hash_due_every_n_days():
    now = 1_800_000_000 * 10**9
    header = {"full_hash": m.iso(now - 3 * DAY_NS)}
    assert m.full_hash_due(header, now, 30) is False
    assert m.full_hash_due(header, now, 3) is True
    assert m.full_hash_due(header, now, 0) is False
    assert m.full_hash_due({}, now, 0) is True


# --- the walk ----------------------------------------------------------------------------------------------------


def test_walk_is_sorted_by_path_and_skips_links_and_excluded(tmp_path):
    names = ["a/x", "a-b/y", "a.c", "a b", "a0/z", "b", "ctx/manifest", "deep/er/f"]
    tree(tmp_path, dict.fromkeys(names, b"."))
    (tmp_path / "link").symlink_to(tmp_path / "b")
    (tmp_path / "dirlink").symlink_to(tmp_path / "a")
    os.mkfifo(tmp_path / "fifo")
    walked = [p for p, _st in m.walk([str(tmp_path)], exclude=[str(tmp_path / "ctx")])]
    expected = sorted(str(tmp_path / n) for n in names if not n.startswith("ctx/"))
    assert walked == expected


def test_walk_tops_nested_files_and_missing(tmp_path):
    tree(tmp_path, {"srv/a": b"1", "srv/a-b/c": b"2", "etc/f": b"3"})
    tops = [str(tmp_path / "srv" / "a-b"), str(tmp_path / "srv" / "a"), str(tmp_path / "srv"),
            str(tmp_path / "etc" / "f"), str(tmp_path / "nothing")]
    walked = [p for p, _st in m.walk(tops)]
    assert walked == sorted(str(tmp_path / n) for n in ("srv/a", "srv/a-b/c", "etc/f"))
    assert m.distinct_tops(["/srv/app/", "/srv", "/srvx"]) == ["/srv", "/srvx"]


# --- the format --------------------------------------------------------------------------------------------------


def write_manifest(path, rows, header=None, trailer=True):
    buf = io.BytesIO()
    writer = m.Writer(buf, header or {"format": m.FORMAT, "version": 2, "algorithm": "sha256", "paths": ["/"],
                                      "full_hash": "2026-01-01T00:00:00Z", "walk_started": "2026-01-01T00:00:00Z"})
    for name, digest in rows:
        writer.write(m.entry_line(name, stat_of(), digest))
    if trailer:
        writer.close(512 * len(rows))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_format_2_round_trip_is_plain_gzip_json_lines(tmp_path):
    path = tmp_path / m.NAME
    rows = [(f"/srv/{i:05d}", sha(str(i).encode())) for i in range(3000)]
    write_manifest(path, rows)
    got = lines(path)
    assert got[0]["format"] == "restoreops.dr/manifest" and got[0]["version"] == 2
    assert got[-1] == {"end": True, "files": 3000, "bytes": 3000 * 512}
    assert [(r["path"], r["sha256"]) for r in got[1:-1]] == rows
    assert [e.path for e in m.Manifest(str(path)).entries()] == [r[0] for r in rows]
    out = subprocess.run(["gzip", "-dc", str(path)], capture_output=True, check=True).stdout
    assert out.count(b"\n") == 3002


def test_unchanged_stretches_compress_to_the_same_bytes(tmp_path):
    rows = [(f"/srv/{i:06d}", sha(str(i).encode())) for i in range(40000)]
    before = write_manifest(tmp_path / "a", rows)
    rows[20000] = (rows[20000][0], sha(b"changed"))
    after = write_manifest(tmp_path / "b", rows)
    prefix = next(i for i, (x, y) in enumerate(zip(before, after, strict=False)) if x != y)
    suffix = next(i for i, (x, y) in enumerate(zip(before[::-1], after[::-1], strict=False)) if x != y)
    assert before != after
    assert prefix + suffix > 0.9 * len(before)  # only the member around the change differs


def test_incomplete_out_of_order_and_foreign_manifests_are_refused(tmp_path):
    write_manifest(tmp_path / "cut", [("/a", "0" * 64)], trailer=False)
    with pytest.raises(m.ManifestError, match="incomplete"):
        list(m.Manifest(str(tmp_path / "cut")).entries())
    write_manifest(tmp_path / "order", [("/b", "0" * 64), ("/a", "0" * 64)])
    with pytest.raises(m.ManifestError, match="out of order"):
        list(m.Manifest(str(tmp_path / "order")).entries())
    write_manifest(tmp_path / "v3", [], header={"format": m.FORMAT, "version": 3, "algorithm": "sha256"})
    with pytest.raises(m.ManifestError, match="version 3"):
        m.Manifest(str(tmp_path / "v3"))
    (tmp_path / "other.gz").write_bytes(gzip.compress(b'{"hello": 1}\n'))
    with pytest.raises(m.ManifestError, match=r"not a restoreops\.dr manifest"):
        m.Manifest(str(tmp_path / "other.gz"))
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(m.ManifestError, match="cannot be read"):
        m.Manifest(str(tmp_path / "junk.json"))
    with pytest.raises(FileNotFoundError):
        m.Manifest(str(tmp_path / "none"))


def test_format_1_reads_whole_and_sorted(tmp_path):
    path = tmp_path / m.LEGACY_NAME
    path.write_text(json.dumps({"files": {"/srv/b": "SHA256:" + "A" * 64, "srv/a": "b" * 64}}))
    manifest = m.Manifest(str(path))
    assert manifest.version == 1
    assert list(manifest.entries(m.absolute)) == [m.Entry("/srv/a", "b" * 64), m.Entry("/srv/b", "a" * 64)]
    assert manifest.digests(["/srv/b", "/srv/none"]) == {"/srv/b": "a" * 64}
    assert manifest.digests(["base/srv/a"], key=lambda p: "base/" + p.strip("/")) == {"base/srv/a": "b" * 64}
    (tmp_path / "flat.json").write_text(json.dumps({"x": "c" * 64}))
    assert m.Manifest(str(tmp_path / "flat.json")).digests(["/x"]) == {"/x": "c" * 64}
    (tmp_path / "bad.json").write_text(json.dumps({"files": {"x": 1}}))
    with pytest.raises(m.ManifestError, match="no 'files'"):
        m.Manifest(str(tmp_path / "bad.json"))


# --- recording ---------------------------------------------------------------------------------------------------


def test_record_then_nothing_changed_reads_and_writes_nothing(tmp_path):
    data = tmp_path / "data"
    tree(data, {"a/1": b"one", "a/2": b"two", "b": b"three"})
    out = tmp_path / m.NAME
    first = m.record([str(data)], str(out), now_ns=settle())
    assert first.changed and first.hashed == 3 and first.full
    assert entries(out) == {str(data / "a/1"): sha(b"one"), str(data / "a/2"): sha(b"two"),
                            str(data / "b"): sha(b"three")}
    before = os.stat(out)
    second = m.record([str(data)], str(out), now_ns=settle())
    assert (second.changed, second.hashed, second.reused, second.full) == (False, 0, 3, False)
    after = os.stat(out)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_record_rereads_what_changed_and_merges_new_and_removed(tmp_path):
    data = tmp_path / "data"
    tree(data, {f"d/{i:03d}": str(i).encode() for i in range(50)})
    out = tmp_path / m.NAME
    m.record([str(data)], str(out), now_ns=settle())
    (data / "d" / "010").write_bytes(b"new content")  # size and mtime
    os.chmod(data / "d" / "020", 0o600)  # ctime only: read again, same digest
    (data / "d" / "030").unlink()
    (data / "d" / "030b").write_bytes(b"added")
    os.rename(data / "d" / "040", data / "d" / "041x")
    result = m.record([str(data)], str(out), now_ns=settle())
    assert result.changed and not result.full
    assert (result.hashed, result.removed, result.files) == (4, 2, 50)
    assert entries(out) == {p: m.sha256_file(p) for p, _st in m.walk([str(data)])}
    assert m.record([str(data)], str(out), now_ns=settle()).changed is False


def test_record_replaced_inode_same_size_and_times_is_read_again(tmp_path):
    data = tmp_path / "data"
    tree(data, {"f": b"aaaa"})
    out = tmp_path / m.NAME
    m.record([str(data)], str(out), now_ns=settle())
    old = os.stat(data / "f")
    tree(data, {"g": b"bbbb"})
    os.utime(data / "g", ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(data / "g", data / "f")
    result = m.record([str(data)], str(out), now_ns=settle())
    assert result.hashed == 1 and entries(out) == {str(data / "f"): sha(b"bbbb")}


def test_full_rehash_every_n_days_and_bit_rot_shows(tmp_path):
    data = tmp_path / "data"
    tree(data, {"a": b"alpha", "b": b"beta"})
    out = tmp_path / m.NAME
    start = settle()
    m.record([str(data)], str(out), now_ns=start, rehash_days=7)
    assert m.record([str(data)], str(out), now_ns=start + 6 * DAY_NS, rehash_days=7).hashed == 0
    # silent corruption: the recorded digest no longer matches bytes whose metadata did not change
    rows = lines(out)
    first_file = next(row for row in rows if "path" in row)
    first_file["sha256"] = sha(b"what was written once")
    buf = io.BytesIO()
    writer = m.Writer(buf, rows[0])
    for row in rows[1:-1]:
        writer.write(json.dumps(row, separators=(",", ":")).encode())
    writer.close(rows[-1]["bytes"])
    out.write_bytes(buf.getvalue())
    result = m.record([str(data)], str(out), now_ns=start + 8 * DAY_NS, rehash_days=7)
    assert (result.full, result.hashed, result.rot_count, result.rot) == (True, 2, 1, [str(data / "a")])
    assert lines(out)[0]["full_hash"] == m.iso(start + 8 * DAY_NS)
    forced = m.record([str(data)], str(out), now_ns=start + 9 * DAY_NS, force_full=True)
    assert forced.full and forced.hashed == 2 and forced.changed  # the time of the full re-hash is recorded


def test_racy_files_are_read_again_until_the_manifest_is_rewritten(tmp_path):
    data = tmp_path / "data"
    tree(data, {"hot": b"x", "cold": b"y"})
    out = tmp_path / m.NAME
    ctime = os.stat(data / "hot").st_ctime_ns
    m.record([str(data)], str(out), now_ns=ctime)  # recorded in the same second the files changed
    again = m.record([str(data)], str(out), now_ns=settle())
    assert (again.changed, again.hashed) == (False, 2)


def test_record_survives_a_corrupt_previous_manifest_and_unreadable_files(tmp_path, monkeypatch):
    data = tmp_path / "data"
    tree(data, {"a": b"1", "b": b"2"})
    out = tmp_path / m.NAME
    out.write_bytes(b"\x1f\x8bnot gzip")
    warnings: list[str] = []
    real = m.sha256_file

    def flaky(path, bufsize=1 << 20):
        if path.endswith("/b"):
            raise PermissionError(13, "Permission denied")
        return real(path, bufsize)

    monkeypatch.setattr(m, "sha256_file", flaky)
    result = m.record([str(data)], str(out), now_ns=settle(), warn=warnings.append)
    assert result.changed and result.skipped == [str(data / "b")] and list(entries(out)) == [str(data / "a")]
    assert "unusable" in warnings[0] and "Permission denied" in warnings[1]


def test_record_starts_over_when_the_previous_manifest_breaks_part_way(tmp_path):
    data = tmp_path / "data"
    tree(data, {f"{i:04d}": str(i).encode() for i in range(3000)})
    out = tmp_path / m.NAME
    m.record([str(data)], str(out), now_ns=settle())
    out.write_bytes(out.read_bytes()[:-2000])  # cut inside the entries
    warnings: list[str] = []
    result = m.record([str(data)], str(out), now_ns=settle(), warn=warnings.append)
    assert (result.changed, result.full, result.hashed) == (True, True, 3000)
    assert "ends in the middle" in warnings[0] and len(entries(out)) == 3000


def test_record_merge_equals_a_fresh_recording(tmp_path):
    data = tmp_path / "data"
    tree(data, {f"{d}/{i}": f"{d}{i}".encode() for d in "abc" for i in range(30)})
    out = tmp_path / m.NAME
    m.record([str(data)], str(out), now_ns=settle())
    for i in range(0, 30, 7):
        (data / "b" / str(i)).write_bytes(b"changed")
    (data / "a" / "0").unlink()
    (data / "c" / "new").write_bytes(b"new")
    m.record([str(data)], str(out), now_ns=settle())
    fresh = tmp_path / "fresh" / m.NAME
    fresh.parent.mkdir()
    m.record([str(data)], str(fresh), now_ns=settle())
    assert lines(out)[1:] == lines(fresh)[1:]


# --- verification ------------------------------------------------------------------------------------------------


def restored(tmp_path, files):
    root = tmp_path / "staging"
    tree(root, {"srv/" + k: v for k, v in files.items()})
    return root


@pytest.mark.parametrize("threads", [1, 3])
def test_verify_merges_streams_and_reports_paths_in_order(tmp_path, threads):
    data = tmp_path / "host" / "srv"
    good = {f"{i:03d}": str(i).encode() for i in range(40)}
    tree(data, good)
    out = tmp_path / m.NAME
    m.record([str(data)], str(out), now_ns=settle())
    prefix = str(data)
    files = dict(good)
    files.pop("005")
    files.pop("031")
    files["010"] = b"10"[::-1]  # same size, other bytes
    files["020"] = b"a different size"
    files["unlisted"] = b"written after the recording"
    root = tmp_path / "staging"
    tree(root, {prefix.lstrip("/") + "/" + k: v for k, v in files.items()})
    result = m.verify_tree(str(root), m.Manifest(str(out)), [prefix], threads=threads, batch_size=4)
    assert result["checked"] == 40
    assert result["missing"] == [f"{prefix}/005", f"{prefix}/031"]
    assert result["mismatched"] == [f"{prefix}/010", f"{prefix}/020"]
    assert (result["missing_count"], result["mismatched_count"], result["ok"]) == (2, 2, False)
    assert result["tree_files"] == len(files) and result["tree_bytes"] == sum(len(v) for v in files.values())


def test_verify_bounds_the_lists_counts_all_and_respects_scope(tmp_path):
    listing = {f"/srv/{i:02d}": "0" * 64 for i in range(30)}
    listing["/etc/outside"] = "0" * 64
    root = restored(tmp_path, {f"{i:02d}": b"x" for i in range(30)})
    result = m.verify_tree(str(root), listing, ["/srv"], listed=5)
    assert result["checked"] == 30 and result["mismatched_count"] == 30
    assert result["mismatched"] == [f"/srv/{i:02d}" for i in range(5)]
    ok = m.verify_tree(str(root), {"srv/07": sha(b"x")}, threads=1)
    assert ok["ok"] is True and ok["checked"] == 1 and ok["tree_files"] == 30


@pytest.mark.parametrize("path", ["/a b/c", '/q"uote', "/back\\slash", "/ünï", "/\udcff-not-utf8", "/tab\tx"])
def test_entry_lines_round_trip_any_file_name(path):
    line = m.entry_line(path, stat_of(), "a" * 64)
    assert m.parse_entry(line) == m.Entry(path, "a" * 64, 512, 10, 20, 7)
    assert json.loads(line)["path"] == path


def test_names_that_are_not_utf8_are_recorded_and_verified(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    name = os.fsdecode(b"caf\xe9")  # Latin-1 name on a UTF-8 system
    (data / name).write_bytes(b"x")
    (data / "ok").write_bytes(b"y")
    out = tmp_path / m.NAME
    m.record([str(data)], str(out), now_ns=settle())
    assert set(entries(out)) == {str(data / name), str(data / "ok")}
    assert m.verify_tree("/", m.Manifest(str(out)), [str(data)])["ok"] is True
