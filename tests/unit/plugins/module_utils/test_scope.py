from __future__ import annotations

import os
import time

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _scope
from ansible_collections.restoreops.dr.plugins.module_utils._content import DEFAULT_MARKERS
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError

HOUR = 3600.0
T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def params(**over):
    base = {"paths": ["/srv"], "excludes": [], "markers": list(DEFAULT_MARKERS), "changed_within": 604800,
            "changed_since": "", "entropy_sample": 500, "max_entropy": 7.5,
            "entropy_excludes": list(_scope.DEFAULT_ENTROPY_EXCLUDES), "one_file_system": True, "max_files": 0,
            "infection_time": ""}
    base.update(over)
    return base


def write(path, data: bytes, mtime: float) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.utime(path, (mtime, mtime))
    return str(path)


@pytest.fixture()
def tree(tmp_path):
    """An application tree hit by ransomware at T0: two files renamed and encrypted, a note, one file encrypted in
    place (no rename), text changed after the infection, an old archive (compressed by design), a link outside."""
    app = tmp_path / "srv" / "app"
    write(app / "data" / "a.csv.encrypted", os.urandom(8192), T0 + 10)
    write(app / "data" / "b.csv.encrypted", os.urandom(8192), T0)
    write(app / "DECRYPT_README.txt", b"pay us", T0 + 20)
    write(app / "data" / "settings.json", os.urandom(6000), T0 + 5)
    write(app / "data" / "c.csv", b"id,total\n" + b"1,2\n" * 2000, T0 + 30)
    write(app / "archive" / "old.tar.gz", os.urandom(8192), T0 + 40)
    write(app / "docs" / "readme.md", b"hello\n" * 400, T0 - 30 * 24 * HOUR)
    os.symlink("/etc/passwd", app / "data" / "link.encrypted")
    return tmp_path


def test_scan_finds_markers_and_encrypted_content_but_not_compressed_or_text(tree):
    found = _scope.scan([str(tree / "srv")], DEFAULT_MARKERS, since=T0 - HOUR, max_entropy=7.5, entropy_sample=100,
                        entropy_excludes=_scope.DEFAULT_ENTROPY_EXCLUDES, excludes=[])
    names = sorted(os.path.basename(r["path"]) for r in found["markers"])
    assert names == ["DECRYPT_README.txt", "a.csv.encrypted", "b.csv.encrypted"]  # the link is not a file
    assert [os.path.basename(r["path"]) for r in found["high_entropy"]] == ["settings.json"]
    assert found["high_entropy"][0]["entropy"] > 7.5
    # readme.md is older than the cutoff: not sampled; old.tar.gz is excluded by name; c.csv is text.
    assert found["sampled"] == 2
    assert found["files_seen"] == 7


def test_scan_excludes_trees_and_respects_the_sample_limit(tree):
    app = str(tree / "srv" / "app")
    found = _scope.scan([app], DEFAULT_MARKERS, since=T0 - HOUR, max_entropy=7.5, entropy_sample=0,
                        entropy_excludes=(), excludes=[app + "/data"])
    assert [os.path.basename(r["path"]) for r in found["markers"]] == ["DECRYPT_README.txt"]
    assert found["sampled"] == 0 and found["high_entropy"] == []


def test_scan_stops_at_max_files(tree):
    found = _scope.scan([str(tree)], DEFAULT_MARKERS, since=0, max_entropy=7.5, entropy_sample=10,
                        entropy_excludes=(), excludes=[], max_files=3)
    assert found["truncated"] is True and found["files_seen"] == 4


def test_summary_takes_the_earliest_marker_as_the_infection_time():
    found = {"markers": [{"path": "/srv/app/x.encrypted", "mtime": "2027-01-15T08:00:10+00:00"},
                         {"path": "/srv/app/DECRYPT_README.txt", "mtime": "2027-01-15T08:00:20+00:00"},
                         {"path": "/srv/app/data/y.encrypted", "mtime": "2027-01-15T08:00:00+00:00"}],
             "high_entropy": [{"path": "/srv/app/data/s.json", "mtime": "2027-01-15T07:59:00+00:00"}]}
    summary = _scope.summarize(found, None)
    assert summary["affected"] is True
    assert summary["earliest_marker_time"] == "2027-01-15T08:00:00+00:00"
    assert summary["infection_time"] == "2027-01-15T08:00:00+00:00"
    assert summary["infection_time_source"] == "earliest marker"
    assert summary["affected_paths"] == [{"path": "/srv/app", "count": 2}, {"path": "/srv/app/data", "count": 2}]


def test_summary_falls_back_to_entropy_then_none_and_honours_the_override():
    hot = {"markers": [], "high_entropy": [{"path": "/a/b", "mtime": "2027-01-15T07:59:00+00:00"}]}
    assert _scope.summarize(hot, None)["infection_time_source"] == "earliest high-entropy file"
    clean = _scope.summarize({"markers": [], "high_entropy": []}, None)
    assert clean["affected"] is False and clean["infection_time"] is None and clean["infection_time_source"] == "none"
    forced = _scope.summarize(hot, "2027-01-15T09:30:00+01:00")
    assert forced["infection_time"] == "2027-01-15T08:30:00+00:00" and forced["infection_time_source"] == "override"


@pytest.mark.parametrize(("over", "words"), [
    ({"paths": ["srv"]}, "absolute"),
    ({"excludes": ["tmp"]}, "absolute"),
    ({"paths": []}, "at least one"),
    ({"entropy_sample": -1}, "negative"),
    ({"max_entropy": 9}, "bits per byte"),
    ({"infection_time": "yesterday"}, "infection_time"),
    ({"changed_since": "soon"}, "changed_since"),
    ({"changed_within": 0}, "positive"),
])
def test_bad_input_is_refused(over, words):
    with pytest.raises(InputError, match=words):
        _scope.validate(params(**over))


def test_the_cutoff_comes_from_changed_since_or_changed_within():
    assert _scope.validate(params(changed_since="2027-01-15T08:00:00Z")) == T0
    assert abs(_scope.validate(params(changed_within=60)) - (time.time() - 60)) < 5
