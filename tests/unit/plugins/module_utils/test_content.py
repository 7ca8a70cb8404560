from __future__ import annotations

import json
import os
import sqlite3

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _content


@pytest.mark.parametrize(("path", "hit"), [
    ("/srv/app/data/orders.csv.encrypted", True),
    ("/srv/app/data/ORDERS.CSV.ENCRYPTED", True),
    ("/srv/app/DECRYPT_README.txt", True),
    ("/srv/app/decrypt_readme.html", True),
    ("/home/u/HOW_TO_DECRYPT_FILES.txt", True),
    ("/srv/app/data/orders.csv", False),
    ("/srv/app/encrypted/orders.csv", False),  # a directory named like a marker is not one
    ("/srv/app/README.md", False),
    ("/etc/yarn.lock", False),
])
def test_default_markers(path, hit):
    assert _content.MarkerPatterns(_content.DEFAULT_MARKERS).matches(path) is hit


def test_patterns_with_a_slash_match_the_whole_path():
    markers = _content.MarkerPatterns(["/srv/app/*/ransom*", "*.lockbit"])
    assert markers.matches("/srv/app/x/RANSOM.txt")
    assert not markers.matches("/tmp/ransom.txt")
    assert markers.matches("/tmp/a.LockBit")
    assert not _content.MarkerPatterns([])
    assert not _content.MarkerPatterns([]).matches("/x.encrypted")


def test_glob_crosses_directories():
    assert _content.glob_matches("/srv/app/*", "/srv/app/a/b/c.json")
    assert _content.glob_matches("/srv/app/*.json", "/srv/app/a/b/c.json")
    assert not _content.glob_matches("/srv/app/*.json", "/srv/other/c.json")


def test_shannon_entropy_bounds():
    assert _content.shannon_entropy(b"") == 0.0
    assert _content.shannon_entropy(b"aaaa") == 0.0
    assert _content.shannon_entropy(bytes(range(256))) == pytest.approx(8.0)
    assert _content.shannon_entropy(b"abab") == pytest.approx(1.0)


def test_sample_entropy_tells_random_from_text(tmp_path):
    text = tmp_path / "orders.csv"
    text.write_text("".join(f"{i},customer {i % 97},{i * 3.5:.2f}\n" for i in range(5000)))
    noise = tmp_path / "orders.csv.encrypted"
    noise.write_bytes(os.urandom(50000))
    small = tmp_path / "small"
    small.write_bytes(os.urandom(500))
    assert _content.sample_entropy(str(text)) < 5
    assert _content.sample_entropy(str(noise)) > 7.9
    assert _content.sample_entropy(str(small)) is None  # too short to judge
    assert _content.entropy_problem(str(text)) is None
    assert "high-entropy" in _content.entropy_problem(str(noise))
    assert _content.entropy_problem(str(noise), max_entropy=8.0) is None


def test_partial_encryption_is_caught_by_the_head_block(tmp_path):
    """Some strains encrypt only the start of each file: the head block gives it away."""
    path = tmp_path / "big.csv"
    body = "".join(f"{i},text\n" for i in range(20000)).encode()
    path.write_bytes(os.urandom(4096) + body[4096:])
    assert _content.sample_entropy(str(path)) > 7.9
    blocks = _content.sample_blocks(str(path))
    assert len(blocks) == 3 and all(len(b) == 4096 for b in blocks)


def test_links_are_never_followed(tmp_path):
    target = tmp_path / "live.json"
    target.write_text("{not json")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert "cannot be read" in _content.json_problem(str(link))
    with pytest.raises(OSError):
        _content.sample_blocks(str(link))
    assert list(_content.regular_files(str(tmp_path))) == [("/live.json", str(target))]


def test_json_text_and_sqlite(tmp_path):
    good = tmp_path / "a.json"
    good.write_text(json.dumps({"orders": [1, 2]}))
    bad = tmp_path / "b.json"
    bad.write_bytes(os.urandom(300))
    assert _content.json_problem(str(good)) is None
    assert "not valid JSON" in _content.json_problem(str(bad))
    assert _content.text_problem(str(good)) is None
    assert _content.text_problem(str(bad)) is not None
    db = tmp_path / "orders.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE o (id int, total real)")
        conn.executemany("INSERT INTO o VALUES (?, ?)", [(i, i * 1.5) for i in range(100)])
    conn.close()
    before = sorted(os.listdir(tmp_path))
    assert _content.sqlite_problem(str(db)) is None
    assert sorted(os.listdir(tmp_path)) == before  # read-only: no journal or WAL file next to it
    trashed = tmp_path / "trashed.db"
    trashed.write_bytes(os.urandom(8192))
    assert "SQLite" in _content.sqlite_problem(str(trashed))


def test_regular_files_lists_host_paths(tmp_path):
    (tmp_path / "srv" / "app").mkdir(parents=True)
    (tmp_path / "srv" / "app" / "a").write_text("x")
    (tmp_path / "srv" / "b").write_text("y")
    # a directory's own files first, then its subdirectories, each in name order
    assert [p for p, _local in _content.regular_files(str(tmp_path))] == ["/srv/b", "/srv/app/a"]
    assert [p for p, _local in _content.regular_files(str(tmp_path), "/srv/app")] == ["/srv/app/a"]
