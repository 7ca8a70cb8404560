# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of df and du read with the standard library (real files in a temporary directory)."""

from __future__ import annotations

import os
import shutil
import subprocess
from types import SimpleNamespace

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _disk


def test_used_percent_rounds_up_like_df():
    assert _disk.used_percent(0, 100) == 0
    assert _disk.used_percent(1, 99) == 1
    assert _disk.used_percent(901, 99) == 91  # 90.1 % is shown as 91 %
    assert _disk.used_percent(0, 0) == 0


def test_filesystem_usage_from_statvfs(tmp_path):
    fake = SimpleNamespace(f_frsize=4096, f_bsize=4096, f_blocks=1000, f_bfree=100, f_bavail=50)
    usage = _disk.filesystem_usage(str(tmp_path), statvfs=lambda path: fake)
    assert usage["total"] == 4096000 and usage["used"] == 900 * 4096 and usage["available"] == 50 * 4096
    assert usage["used_percent"] == 95  # 900 / (900 + 50), reserved blocks not counted as available
    assert os.path.ismount(usage["mount_point"]) and str(tmp_path).startswith(usage["mount_point"])


def test_mount_point_walks_up_to_the_mount():
    mounts = {"/", "/srv/backup"}
    assert _disk.mount_point("/srv/backup/borg/data", is_mount=lambda p: p in mounts) == "/srv/backup"
    assert _disk.mount_point("/etc", is_mount=lambda p: p in mounts) == "/"


def test_filesystem_usage_agrees_with_df(tmp_path):
    if shutil.which("df") is None:
        pytest.skip("no df")
    out = subprocess.run(["df", "-B1", "--output=size,used,avail,pcent", str(tmp_path)], capture_output=True,
                         text=True, check=True).stdout.splitlines()[1].split()
    usage = _disk.filesystem_usage(str(tmp_path))
    assert usage["total"] == int(out[0])
    # other processes write meanwhile: the used bytes agree to within 64 MiB, the percentage to a point
    assert abs(usage["used"] - int(out[1])) < 64 * 1024 ** 2
    assert abs(usage["used_percent"] - int(out[3].rstrip("%"))) <= 1


def test_tree_usage_counts_hard_links_once_and_does_not_follow_links(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.bin").write_bytes(b"x" * 10000)
    os.link(tree / "a.bin", tree / "sub" / "a-again.bin")  # rsnapshot's rotation: the same inode twice
    (tree / "sub" / "b.txt").write_bytes(b"y" * 100)
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"z" * 50000)
    os.symlink(outside, tree / "link")
    usage = _disk.tree_usage(str(tree))
    assert usage.apparent_bytes == 10000 + 100 + len(str(outside))
    assert usage.entries == 6 and usage.unreadable == 0
    if shutil.which("du"):
        du = subprocess.run(["du", "-s", "-B1", str(tree)], capture_output=True, text=True, check=True)
        assert usage.bytes == int(du.stdout.split()[0])


def test_tree_usage_of_a_file_and_of_nothing(tmp_path):
    (tmp_path / "f").write_bytes(b"1234")
    assert _disk.tree_usage(str(tmp_path / "f")).apparent_bytes == 4
    missing = _disk.tree_usage(str(tmp_path / "missing"))
    assert missing.entries == 0 and missing.unreadable == 1


def test_volume_report(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "data").write_bytes(b"d" * 3000)
    report = _disk.volume_report(str(tmp_path / "repo"))
    assert report["exists"] and report["size"]["apparent_bytes"] == 3000
    assert 0 <= report["filesystem"]["used_percent"] <= 100
    assert _disk.volume_report(str(tmp_path / "repo"), measure_tree=False)["size"] is None
    assert _disk.volume_report(str(tmp_path / "gone")) == {"path": str(tmp_path / "gone"), "exists": False,
                                                           "filesystem": None, "size": None}
