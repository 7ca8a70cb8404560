from __future__ import annotations

import os

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _resume
from ansible_collections.restoreops.dr.plugins.module_utils._resume import FileNode


@pytest.mark.parametrize("version, method", [
    ((0, 14, 0), "missing-paths"),
    ((0, 16, 5), "missing-paths"),
    ((0, 17, 0), "overwrite-if-changed"),
    ((0, 18, 0), "overwrite-if-changed"),
    ((1, 0, 0), "overwrite-if-changed"),
])
def test_restic_method_switches_at_0_17(version, method):
    assert _resume.restic_method(version) == method


def _stat(tmp_path, name, data, mtime_ns=None):
    path = tmp_path / name
    path.write_bytes(data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_classify_keeps_manifest_matches_and_finished_metadata(tmp_path):
    stamp = 1_700_000_000_123_456_000
    _stat(tmp_path, "good", b"a" * 10)             # in the manifest, content matches
    _stat(tmp_path, "gap", b"\0" * 10)             # preallocated, content missing: same size, wrong digest
    _stat(tmp_path, "done", b"b" * 5, stamp)       # not in the manifest, size and mtime as in the snapshot
    _stat(tmp_path, "unset", b"c" * 5)             # not in the manifest, mtime never set: not finished
    _stat(tmp_path, "short", b"d" * 3)             # wrong size
    nodes = [FileNode("/good", 10), FileNode("/gap", 10), FileNode("/done", 5, stamp + 999),
             FileNode("/unset", 5, stamp), FileNode("/short", 5, stamp), FileNode("/absent", 1, stamp)]
    digests = {"/good": "G", "/gap": "G2"}
    hashed = []

    def matches(path, digest):
        hashed.append(path)
        return path == "/good"

    def local(path):
        try:
            return os.lstat(str(tmp_path) + path)
        except OSError:
            return None

    kept, todo = _resume.classify(nodes, local, digests, matches)
    assert [n.path for n in kept] == ["/good", "/done"]
    assert [n.path for n in todo] == ["/gap", "/unset", "/short", "/absent"]
    assert hashed == ["/good", "/gap"]  # only same-size files listed in the manifest are read


def test_complete_by_metadata_needs_a_regular_file_and_an_mtime(tmp_path):
    path = _stat(tmp_path, "f", b"x", 1_000_000_000)
    st = os.lstat(path)
    assert _resume.complete_by_metadata(FileNode("/f", 1, 1_000_000_000), st)
    assert not _resume.complete_by_metadata(FileNode("/f", 1, None), st)
    assert not _resume.complete_by_metadata(FileNode("/f", 1, 2_000_000_000), st)
    assert not _resume.complete_by_metadata(FileNode("/f", 1, 1_000_000_000), None)
    assert not _resume.complete_by_metadata(FileNode("/f", 1, 1_000_000_000), os.lstat(tmp_path))


ALL = [f"/srv/app/{d}/f{i}" for d in ("a", "b", "c") for i in range(4)] + ["/srv/app/top"]


def test_group_paths_names_a_directory_whose_files_are_all_missing():
    todo = [f"/srv/app/b/f{i}" for i in range(4)] + ["/srv/app/c/f1"]
    assert _resume.group_paths(todo, ALL) == ["/srv/app/b", "/srv/app/c/f1"]


def test_group_paths_everything_missing_collapses_to_the_top_include():
    assert _resume.group_paths(ALL, ALL, tops=["/srv/app"]) == ["/srv/app"]
    assert _resume.group_paths([], ALL) == []


def test_group_paths_stays_within_the_limit_by_climbing():
    todo = ["/srv/app/a/f0", "/srv/app/b/f1", "/srv/app/c/f2", "/srv/app/top"]
    assert _resume.group_paths(todo, ALL, limit=10) == todo
    coarse = _resume.group_paths(todo, ALL, limit=3)
    assert len(coarse) <= 3
    for path in todo:  # every missing file is still covered
        assert any(path == p or path.startswith(p + "/") for p in coarse)


def test_group_paths_never_climbs_above_the_includes():
    files = [f"/etc/x{i}" for i in range(5)] + [f"/srv/y{i}" for i in range(5)]
    todo = ["/etc/x0", "/etc/x1", "/srv/y0", "/srv/y1"]
    grouped = _resume.group_paths(todo, files, limit=1, tops=["/etc", "/srv"])
    assert grouped == ["/etc", "/srv"]  # cannot be fewer without restoring outside the includes


def test_group_paths_bounded_for_many_files():
    files = [f"/data/d{d:03d}/f{i:03d}" for d in range(300) for i in range(20)]
    todo = files[1::2]
    grouped = _resume.group_paths(todo, files, limit=200, tops=["/data"])
    assert 0 < len(grouped) <= 200
    assert all(any(t.startswith(g + "/") or t == g for g in grouped) for t in todo[:50])


def test_restic_pattern_escapes_glob_characters():
    assert _resume.restic_pattern("/srv/a*b/[x]?\\") == "/srv/a\\*b/\\[x\\]\\?\\\\"
    assert _resume.restic_pattern("/plain/path") == "/plain/path"


def test_borg_state_round_trip_and_pending_sets(tmp_path):
    path = _resume.state_path(str(tmp_path / "abc"))
    assert path.endswith("abc.resume.json")
    state = _resume.new_state("abc", ["/srv"], [["srv/a"], ["srv/b"], ["srv/c"]])
    assert _resume.pending_sets(state) == [0, 1, 2]
    state["done"] = [1]
    _resume.write_state(path, state)
    back = _resume.read_state(path)
    assert _resume.usable_state(back, "abc", ["/srv"])
    assert _resume.pending_sets(back) == [0, 2]
    assert not _resume.usable_state(back, "other", ["/srv"])   # another snapshot
    assert not _resume.usable_state(back, "abc", [])           # other includes
    assert not _resume.usable_state({**back, "done": [7]}, "abc", ["/srv"])
    assert not _resume.usable_state(None, "abc", ["/srv"])
    _resume.clear_state(path)
    _resume.clear_state(path)
    assert _resume.read_state(path) is None


def test_report_as_dict_lists_a_bounded_rerun():
    report = _resume.ResumeReport("missing-paths", 3, 30, 70, 100, [f"/p{i}" for i in range(50)])
    data = report.as_dict()
    assert data["method"] == "missing-paths" and data["rerun_count"] == 50 and len(data["rerun"]) == 20
    assert {"kept_files", "kept_bytes", "transferred_bytes", "total_bytes"} <= set(data)


def test_with_link_groups_sends_a_kept_name_again_with_its_missing_partner():
    kept = [FileNode("/a/h1", 3, 1), FileNode("/a/other", 1, 1), FileNode("/b/g1", 2, 1), FileNode("/b/g2", 2, 1)]
    todo = [FileNode("/c/h2", 3, 1)]
    groups = [["/a/h1", "/c/h2"], ["/b/g1", "/b/g2"]]
    again_kept, again_todo = _resume.with_link_groups(kept, todo, groups)
    assert [n.path for n in again_kept] == ["/a/other", "/b/g1", "/b/g2"]  # a group with nothing to do stays
    assert [n.path for n in again_todo] == ["/c/h2", "/a/h1"]
    assert _resume.with_link_groups(kept, todo, []) == (kept, todo)
