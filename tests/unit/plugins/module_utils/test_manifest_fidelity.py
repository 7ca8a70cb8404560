"""Fidelity beyond bytes: what the manifest records of modes, times, links, ACLs, extended attributes and holes, and
how a restored tree is compared with it. Real files in tmp_path (run as root, as the collection's tests are: a
setuid bit, security.capability and a POSIX ACL need it)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import time

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _manifest as m

# user::rw-, user:1234:r--, group::r--, mask::r--, other::--- in the kernel's xattr encoding of a POSIX ACL
ACL = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, ident) for tag, perm, ident in (
    (0x01, 6, 0xFFFFFFFF), (0x02, 4, 1234), (0x04, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)))
# a v2 file capability: cap_net_bind_service (bit 10) permitted and effective
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)
OLD_NS = 1_000_000_000_123_456_789


def settle() -> int:
    return time.time_ns() + 3 * 10**9


def build(root) -> None:
    """One file or directory for each attribute the manifest records."""
    root.mkdir()
    (root / "setuid").write_bytes(b"s")
    os.chmod(root / "setuid", 0o4755)  # noqa: S103 - the bits under test
    (root / "sticky").mkdir()
    os.chmod(root / "sticky", 0o1777)  # noqa: S103 - the bits under test
    (root / "sticky" / "f").write_bytes(b"f")
    (root / "old").write_bytes(b"o")
    os.utime(root / "old", ns=(OLD_NS, OLD_NS))
    (root / "link").symlink_to("sticky/f")
    (root / "hard1").write_bytes(b"h")
    os.link(root / "hard1", root / "sticky" / "hard2")
    (root / "acl").write_bytes(b"a")
    os.setxattr(root / "acl", "system.posix_acl_access", ACL)
    (root / "cap").write_bytes(b"c")
    os.setxattr(root / "cap", "security.capability", CAPABILITY)
    (root / "xattr").write_bytes(b"x")
    os.setxattr(root / "xattr", "user.restoreops", b"hello")
    with open(root / "sparse", "wb") as handle:
        handle.write(b"head")
        handle.seek(8 << 20)
        handle.write(b"tail")


def copy(src, dest) -> None:
    """A faithful copy (GNU cp keeps modes, times, links, ACLs, xattrs and holes)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", "--sparse=always", str(src), str(dest)], check=True)


def by_attribute(result) -> dict[str, dict]:
    return {entry["attribute"]: entry for entry in result["fidelity"]}


@pytest.fixture
def recorded(tmp_path):
    src = tmp_path / "src"
    build(src)
    out = tmp_path / m.NAME
    m.record([str(src)], str(out), now_ns=settle())
    return src, out


def test_the_recording_holds_each_kind(recorded):
    src, out = recorded
    with gzip.open(out, "rt", encoding="ascii") as handle:
        rows = [json.loads(line) for line in handle]
    header, body, trailer = rows[0], rows[1:-1], rows[-1]
    assert header["kinds"] == ["dir", "file", "symlink"]
    files = {r["path"]: r for r in body if "path" in r}
    others = {r.get("dir") or r.get("symlink"): r for r in body if "path" not in r}
    assert files[f"{src}/setuid"]["mode"] & 0o7777 == 0o4755
    assert others[f"{src}/sticky/"]["mode"] & 0o7777 == 0o1777
    assert others[f"{src}/link"]["target"] == "sticky/f"
    assert files[f"{src}/old"]["mtime_ns"] == OLD_NS
    assert files[f"{src}/hard1"]["link"] == files[f"{src}/sticky/hard2"]["link"]
    assert "link" not in files[f"{src}/old"]
    assert set(files[f"{src}/acl"]["xattrs"]) == {"system.posix_acl_access"}
    assert set(files[f"{src}/cap"]["xattrs"]) == {"security.capability"}
    assert files[f"{src}/sparse"]["blocks"] * 512 < files[f"{src}/sparse"]["size"]
    assert trailer == {"end": True, "files": len(files), "bytes": sum(f["size"] for f in files.values()),
                       "others": len(others)}
    # every line in path order; the readers see files only (entries) or everything (records)
    keys = [r.get("path") or r.get("dir") or r.get("symlink") for r in body]
    assert keys == sorted(keys)
    manifest = m.Manifest(str(out))
    assert [e.path for e in manifest.entries()] == sorted(files)
    assert [r.path for r in manifest.records()] == keys


def test_digests_and_links_name_the_hard_link_groups_among_the_wanted(recorded):
    src, out = recorded
    manifest = m.Manifest(str(out))
    wanted = [f"{src}/hard1", f"{src}/sticky/hard2", f"{src}/old"]
    digests, groups = manifest.digests_and_links(wanted)
    assert set(digests) == set(wanted) and digests == manifest.digests(wanted)
    assert groups == [[f"{src}/hard1", f"{src}/sticky/hard2"]]
    assert manifest.digests_and_links([f"{src}/hard1", f"{src}/old"])[1] == []  # a group of one name is none


def test_resume_facts_name_the_wanted_entries_with_acls_or_other_attributes(recorded):
    src, out = recorded
    manifest = m.Manifest(str(out))
    wanted = [f"{src}/acl", f"{src}/cap", f"{src}/xattr", f"{src}/old", f"{src}/hard1"]
    assert manifest.resume_facts(wanted)[2] == {f"{src}/acl", f"{src}/cap", f"{src}/xattr"}
    assert manifest.resume_facts([f"{src}/old"])[2] == set()


def test_a_faithful_copy_checks_every_attribute(recorded, tmp_path):
    src, out = recorded
    restored = tmp_path / "restored"
    copy(src, restored / str(src).lstrip("/"))
    result = m.verify_fidelity(str(restored), m.Manifest(str(out)))
    table = by_attribute(result)
    assert list(table) == list(m.ATTRIBUTES)
    assert result["fidelity_ok"] is True
    assert {name: entry["status"] for name, entry in table.items()} == dict.fromkeys(m.ATTRIBUTES, "checked")
    assert (table["symlink"]["recorded"], table["hardlink"]["recorded"], table["sparse"]["recorded"]) == (1, 2, 1)
    assert table["mode"]["recorded"] == 2  # the setuid file and the sticky directory
    assert (table["acl"]["recorded"], table["xattr"]["recorded"]) == (1, 2)  # user.* and security.capability
    # the content check agrees (it reads files only)
    assert m.verify_tree(str(restored), m.Manifest(str(out)))["ok"]


def breakers(root):
    def unlink_hard2():
        os.unlink(root / "sticky" / "hard2")
        shutil.copy2(root / "hard1", root / "sticky" / "hard2")  # same bytes and mtime, its own inode

    def relink():
        os.unlink(root / "link")
        os.symlink("elsewhere", root / "link")

    def fill_holes():
        st = os.stat(root / "sparse")
        data = (root / "sparse").read_bytes()
        os.unlink(root / "sparse")
        (root / "sparse").write_bytes(data)
        os.utime(root / "sparse", ns=(st.st_atime_ns, st.st_mtime_ns))

    return {
        "mode": lambda: os.chmod(root / "setuid", 0o755),  # noqa: S103 - the bits under test
        "mtime": lambda: os.utime(root / "old", ns=(OLD_NS, OLD_NS + 1000)),
        "symlink": relink,
        "hardlink": unlink_hard2,
        "acl": lambda: os.removexattr(root / "acl", "system.posix_acl_access"),
        "xattr": lambda: os.removexattr(root / "cap", "security.capability"),
        "sparse": fill_holes,
    }


@pytest.mark.parametrize("attribute", m.ATTRIBUTES)
def test_each_attribute_differs_alone(recorded, tmp_path, attribute):
    src, out = recorded
    restored = tmp_path / "restored"
    copy(src, restored / str(src).lstrip("/"))
    breakers(restored / str(src).lstrip("/"))[attribute]()
    table = by_attribute(m.verify_fidelity(str(restored), m.Manifest(str(out))))
    differing = {name for name, entry in table.items() if entry["status"] == "differing"}
    assert differing == {attribute}
    assert table[attribute]["differing"] == 1 and len(table[attribute]["paths"]) == 1
    assert table[attribute]["paths"][0].startswith(str(src) + "/")


def test_unsupported_attributes_are_said_so_not_called_differences(recorded, tmp_path):
    src, out = recorded
    restored = tmp_path / "restored"
    copy(src, restored / str(src).lstrip("/"))
    breakers(restored / str(src).lstrip("/"))["sparse"]()
    result = m.verify_fidelity(str(restored), m.Manifest(str(out)), unsupported=["sparse"])
    sparse = by_attribute(result)["sparse"]
    assert (sparse["status"], sparse["differing"]) == ("not supported by the tool", 1)
    assert result["fidelity_ok"] is True


def test_includes_narrow_the_comparison(recorded, tmp_path):
    src, out = recorded
    restored = tmp_path / "restored"
    copy(src / "sticky", restored / str(src / "sticky").lstrip("/"))
    table = by_attribute(m.verify_fidelity(str(restored), m.Manifest(str(out)), [str(src / "sticky")]))
    assert table["mode"]["status"] == "checked" and table["mode"]["recorded"] == 1  # the sticky directory
    # hard2 is compared, hard1 was not restored: one member of its group, nothing to tell apart
    assert (table["hardlink"]["checked"], table["hardlink"]["differing"]) == (1, 0)


def test_a_manifest_without_the_new_fields_verifies_as_before(tmp_path):
    """Format 2 lines written before fidelity was recorded: the content check as before, fidelity not recorded."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"payload")
    st = os.stat(src / "f")
    out = tmp_path / m.NAME
    with open(out, "wb") as handle:
        when = m.iso(settle())  # recorded well after the file last changed (not racy)
        writer = m.Writer(handle, {"format": m.FORMAT, "version": 2, "algorithm": "sha256", "paths": [str(src)],
                                   "full_hash": when, "walk_started": when})
        writer.write(m.entry_line(str(src / "f"), st, m.sha256_file(str(src / "f"))))
        writer.close(st.st_size)
    manifest = m.Manifest(str(out))
    assert m.verify_tree("/", manifest)["ok"]
    result = m.verify_fidelity("/", manifest)
    assert {e["status"] for e in result["fidelity"]} == {"not recorded"}
    assert result["fidelity_ok"] is True
    # the next recording adds the fields without reading the file again
    again = m.record([str(src)], str(out), now_ns=settle() + 10**9)
    assert (again.changed, again.hashed, again.reused) == (True, 0, 1)
    entry = next(m.Manifest(str(out)).entries())
    assert entry.mode == st.st_mode and entry.blocks == st.st_blocks


def test_an_unchanged_tree_is_not_rewritten_and_a_chmod_is_seen(recorded, tmp_path):
    src, out = recorded
    before = out.read_bytes()
    again = m.record([str(src)], str(out), now_ns=settle())
    assert (again.changed, again.hashed) == (False, 0)
    assert out.read_bytes() == before
    os.chmod(src / "setuid", 0o755)  # noqa: S103 - the bits under test
    os.symlink("old", src / "link2")
    third = m.record([str(src)], str(out), now_ns=settle())
    assert third.changed and third.hashed == 1  # a chmod changes the ctime: the file is read again
    records = {r.path: r for r in m.Manifest(str(out)).records()}
    assert records[f"{src}/setuid"].mode & 0o7777 == 0o755
    assert records[f"{src}/link2"].data["target"] == "old"


@pytest.mark.parametrize(("size", "recorded", "restored", "kept"), [
    (8 << 20, 16, 16, True),                       # the same holes
    (8 << 20, 16, (4 << 20) // 512, True),         # half of the holes filled: still counted as kept
    (8 << 20, 16, (8 << 20) // 512, False),        # written out in full
    (8 << 20, 16, ((4 << 20) + 16 * 512) // 512 + 1, False),
])
def test_sparse_kept(size, recorded, restored, kept):
    assert m.sparse_kept(size, recorded, restored) is kept


def test_records_refuse_lines_out_of_order(tmp_path):
    out = tmp_path / m.NAME
    with open(out, "wb") as handle:
        writer = m.Writer(handle, {"format": m.FORMAT, "version": 2, "algorithm": "sha256", "paths": ["/"]})
        writer.write(b'{"dir":"/b/","mode":16877,"ctime_ns":1,"inode":2}')
        writer.write(b'{"symlink":"/a","target":"x","mtime_ns":1,"ctime_ns":1,"inode":3}')
        writer.close(0)
    with pytest.raises(m.ManifestError, match="out of order"):
        list(m.Manifest(str(out)).records())
    assert list(m.Manifest(str(out)).entries()) == []  # files only: none here
