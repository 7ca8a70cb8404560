from __future__ import annotations

import os
import stat
import struct

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _accounts as ac
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError

RECORDED = {
    "users": {
        "app": {"uid": 1500, "gid": 1500, "group": "app", "home": "/srv/app", "shell": "/usr/sbin/nologin",
                "system": False},
        "worker": {"uid": 1501, "gid": 1500, "group": "app", "home": "/srv/w", "shell": "/bin/sh", "system": False},
        "postgres": {"uid": 105, "gid": 111, "group": "postgres", "home": "/var/lib/postgresql", "shell": "/bin/bash",
                     "system": True},
    },
    "groups": {"app": {"gid": 1500, "members": []}, "postgres": {"gid": 111, "members": []}},
}


def by_name(plans):
    return {p.name: p for p in plans}


def test_free_numbers_are_kept_and_taken_ones_left_to_the_system():
    passwd = {"root": (0, 0), "builder": (1500, 1500), "postgres": (108, 114)}
    groups = {"root": 0, "builder": 1500, "postgres": 114}
    plans = by_name(ac.plan_accounts(RECORDED, ["app", "worker", "postgres"], passwd, groups))
    app, worker, pg = plans["app"], plans["worker"], plans["postgres"]
    assert app.create_user and app.uid_for_create is None and app.new_uid is None  # 1500 is builder's here
    assert app.create_group and app.gid_for_create is None                       # so is GID 1500
    assert worker.create_user and worker.uid_for_create == 1501 and worker.new_uid == 1501
    assert not worker.create_group  # the group comes with app, created once
    assert not pg.create_user and pg.new_uid == 108 and pg.new_gid == 114


def test_id_maps_only_hold_numbers_that_moved():
    passwd = {"app": (1501, 1502), "postgres": (105, 111)}
    groups = {"app": 1502, "postgres": 111}
    plans = ac.plan_accounts(RECORDED, ["app", "postgres"], passwd, groups)
    assert ac.id_maps(plans) == ({1500: 1501}, {1500: 1502})


def test_unknown_users_are_named():
    with pytest.raises(InputError, match="not in the account map recorded at backup time: ghost, nobody2"):
        ac.plan_accounts(RECORDED, ["app", "ghost", "nobody2"], {}, {})


class FakeStat:
    def __init__(self, mode, uid, gid, dev=1):
        self.st_mode, self.st_uid, self.st_gid, self.st_dev = mode, uid, gid, dev


def test_reown_applies_the_whole_map_at_once_and_never_chains(tmp_path):
    root = tmp_path / "srv"
    (root / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c", "sub/d"):
        (root / name).write_text(name)
    os.symlink("a", root / "link")
    owners = {str(root): (1500, 1500), str(root / "a"): (1500, 1500), str(root / "b"): (1501, 1500),
              str(root / "sub"): (0, 0), str(root / "sub" / "c"): (1501, 1501), str(root / "sub" / "d"): (7, 7),
              str(root / "link"): (1500, 1500)}
    changed = {}

    def lstat(path):
        real = os.lstat(path)
        uid, gid = owners[path]
        return FakeStat(real.st_mode, uid, gid)

    def lchown(path, uid, gid):
        changed[path] = (uid, gid)

    counts = ac.reown([str(root)], {1500: 1501, 1501: 1502}, {1500: 1600}, apply=True, lstat=lstat, lchown=lchown)
    assert changed[str(root / "a")] == (1501, 1600)
    assert changed[str(root / "b")] == (1502, 1600)     # 1501 -> 1502, not 1500 -> 1501 -> 1502
    assert changed[str(root / "sub" / "c")] == (1502, 1501)
    assert changed[str(root / "link")] == (1501, 1600)  # the link itself (lchown), never its target
    assert str(root / "sub" / "d") not in changed and str(root / "sub") not in changed
    assert counts == {"files": 5, "uid": 5, "gid": 4}


def test_reown_dry_run_counts_and_touches_nothing(tmp_path):
    (tmp_path / "f").write_text("x")
    me = os.getuid()
    calls = []
    counts = ac.reown([str(tmp_path)], {me: me + 1}, {}, apply=False, lchown=lambda *a: calls.append(a))
    assert counts["files"] == 2 and calls == []


def test_reown_stays_on_one_file_system(tmp_path):
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "inner").write_text("x")
    real = os.lstat

    def lstat(path):
        st = real(path)
        dev = 2 if path.startswith(str(tmp_path / "mnt")) else 1
        return FakeStat(st.st_mode, 1500, 0, dev)

    seen = []
    ac.reown([str(tmp_path)], {1500: 1}, {}, apply=True, lstat=lstat, lchown=lambda p, u, g: seen.append(p))
    assert str(tmp_path / "mnt") in seen            # the mount point itself belongs to the walked tree
    assert str(tmp_path / "mnt" / "inner") not in seen


def test_reown_without_moves_does_not_walk(tmp_path):
    assert ac.reown(["/"], {}, {}, apply=True, lstat=lambda p: pytest.fail("walked")) == \
        {"files": 0, "uid": 0, "gid": 0}


def test_describe():
    plans = ac.plan_accounts(RECORDED, ["app"], {"app": (1501, 1500)}, {"app": 1500})
    assert ac.describe(plans) == "app uid 1500 -> 1501"
    assert ac.describe([]) == "no users to recreate"
    assert stat.S_ISREG(os.lstat(__file__).st_mode)


def test_reown_keeps_setuid_setgid_and_file_capabilities(tmp_path):
    """The kernel clears setuid/setgid and drops security.capability when a file changes owner (root included):
    reown gives them back, so a restored sudo or ping still works after its owner was mapped."""
    capability = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)  # cap_net_bind_service=ep
    (tmp_path / "suid").write_text("x")
    os.chmod(tmp_path / "suid", 0o4750)  # noqa: S103 - the bits under test
    (tmp_path / "sgid").write_text("x")
    os.chmod(tmp_path / "sgid", 0o2755)  # noqa: S103 - the bits under test
    (tmp_path / "cap").write_text("x")
    os.setxattr(tmp_path / "cap", ac.CAPABILITY, capability)
    me = os.lstat(tmp_path / "suid").st_uid
    ac.reown([str(tmp_path)], {me: 1500}, {}, apply=True)
    assert os.stat(tmp_path / "suid").st_uid == 1500
    assert stat.S_IMODE(os.stat(tmp_path / "suid").st_mode) == 0o4750
    assert stat.S_IMODE(os.stat(tmp_path / "sgid").st_mode) == 0o2755
    assert os.getxattr(tmp_path / "cap", ac.CAPABILITY) == capability
