"""The lab's files with every kind of attribute a restore must give back, and their fingerprint.

    attributes.py make ROOT         create them under ROOT (the application directory, /srv/app)
    attributes.py fingerprint ROOT  print, as JSON, what the restore must keep of them (not owners: the restore
                                    maps the application user to another UID on the replacement)

The kinds: a setuid program and a program with a file capability (security.capability), both owned by the
application user (the kernel drops both when the restore changes the owner), a symbolic link, two hard links to one
file in different directories, a directory with a POSIX access and default ACL whose files inherit it and a file
with an access ACL of its own (the named entries name the group `backup`, GID 34 on Debian, which no restore
remaps), a user extended attribute, a sparse file, and a file with an old modification time. Run with the lab host's Python (no package needed)."""
import json
import os
import shutil
import struct
import subprocess
import sys

APP_UID = APP_GID = 1500
BACKUP_GID = 34
OLD_MTIME_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
# 64 MiB with 128 KiB written: borg gives back only the holes of chunks that are all zeros (its chunks are up to
# 8 MiB), so a short sparse file comes back whole from borg; this one keeps most of its holes.
SPARSE_SIZE = 64 * 1048576
PATHS = {
    "setuid": "bin/report-tool",
    "capability": "bin/bind-helper",
    "symlink": "current",
    "hardlink_a": "data/blobs/blob-0.bin",
    "hardlink_b": "data/shared/blob-0.link",
    "acl_dir": "data/shared",
    "acl_file": "data/shared/notes.txt",
    "xattr": "data/shared/origin.txt",
    "sparse": "data/shared/sparse.img",
    "old_mtime": "data/shared/archive-2023.txt",
}
NAMES = ("system.posix_acl_access", "system.posix_acl_default", "security.capability", "user.restoreops.origin")


def acl(user: int, group: int, other: int, named_group: tuple[int, int] | None = None) -> bytes:
    """A POSIX ACL as the kernel stores it in system.posix_acl_*: version 2, then (tag, permissions, id) entries in
    tag order (user_obj 1, group_obj 4, group 8, mask 16, other 32; id -1 where the tag has none)."""
    none = 0xFFFFFFFF
    entries = [(0x01, user, none), (0x04, group, none)]
    if named_group is not None:
        entries += [(0x08, named_group[1], named_group[0]), (0x10, group | named_group[1], none)]
    entries.append((0x20, other, none))
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def make(root: str) -> None:
    p = {k: os.path.join(root, v) for k, v in PATHS.items()}
    # The shared directory and its ACLs first: the files made in it inherit its default ACL, as files made there
    # later by the application would (and as the restore tools' new files do).
    os.makedirs(p["acl_dir"], exist_ok=True)
    os.chown(p["acl_dir"], APP_UID, APP_GID)
    os.chmod(p["acl_dir"], 0o2770)
    os.setxattr(p["acl_dir"], NAMES[0], acl(7, 7, 0, (BACKUP_GID, 5)))
    os.setxattr(p["acl_dir"], NAMES[1], acl(6, 4, 0, (BACKUP_GID, 4)))
    for key in ("setuid", "capability"):
        shutil.copyfile(shutil.which("true") or "/usr/bin/true", p[key])
        os.chown(p[key], APP_UID, APP_GID)
    os.chmod(p["setuid"], 0o4755)
    os.chmod(p["capability"], 0o750)
    subprocess.run(["setcap", "cap_net_bind_service=+ep", p["capability"]], check=True)
    if not os.path.islink(p["symlink"]):
        os.symlink("bin/demo-app.py", p["symlink"])
    if not os.path.exists(p["hardlink_b"]):
        os.link(p["hardlink_a"], p["hardlink_b"])
    with open(p["acl_file"], "w", encoding="utf-8") as handle:
        handle.write("shared with the backup group by an ACL\n")
    with open(p["xattr"], "w", encoding="utf-8") as handle:
        handle.write("this file carries a user extended attribute\n")
    with open(p["old_mtime"], "w", encoding="utf-8") as handle:
        handle.write("last year's orders, untouched since\n")
    with open(p["sparse"], "wb") as handle:  # 64 MiB long, 128 KiB written: the rest are holes
        handle.write(os.urandom(65536))
        handle.seek(SPARSE_SIZE - 65536)
        handle.write(os.urandom(65536))
    for path in (p["acl_file"], p["xattr"], p["old_mtime"], p["sparse"]):
        os.chown(path, APP_UID, APP_GID)
    os.setxattr(p["acl_file"], NAMES[0], acl(6, 6, 0, (BACKUP_GID, 6)))  # its own, wider than the inherited one
    os.setxattr(p["xattr"], NAMES[3], b"production, before the incident")
    os.utime(p["old_mtime"], ns=(OLD_MTIME_NS, OLD_MTIME_NS))


def fingerprint(root: str) -> dict:
    out = {}
    for key, rel in sorted(PATHS.items()):
        path = os.path.join(root, rel)
        st = os.lstat(path)
        record = {"mode": oct(st.st_mode)}
        if os.path.islink(path):
            record["target"] = os.readlink(path)
        else:
            record["mtime_ns"] = st.st_mtime_ns if not os.path.isdir(path) else None
            record["xattrs"] = {name: os.getxattr(path, name).hex() for name in NAMES if name in os.listxattr(path)}
        if key == "sparse":
            record["holes_kept"] = st.st_blocks * 512 <= SPARSE_SIZE // 2
        out[key] = record
    a, b = (os.stat(os.path.join(root, PATHS[k])) for k in ("hardlink_a", "hardlink_b"))
    out["hardlinked"] = (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "fingerprint"):
        sys.exit(__doc__)
    if sys.argv[1] == "make":
        make(sys.argv[2])
    print(json.dumps(fingerprint(sys.argv[2]), sort_keys=True))
