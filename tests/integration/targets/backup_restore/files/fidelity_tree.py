"""Build a tree with one file or directory for each attribute a restore must give back beyond the bytes: a setuid
and a setgid file, a sticky directory, an old mtime, symbolic links, a hard-link pair, a POSIX ACL, a file
capability, a user extended attribute, a sparse file (64 MiB with 8 KiB of data, like a VM image), and two
directories of 20 files each with a hard link between them (a parallel borg extract splits them apart). Standard
library only: the ACL and the capability are written as the kernel's xattr encodings (no setfacl/setcap needed)."""

import os
import struct
import sys

ACL = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, ident) for tag, perm, ident in (
    (0x01, 6, 0xFFFFFFFF), (0x02, 4, 1234), (0x04, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)))
CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)  # cap_net_bind_service=ep
OLD_NS = 1_000_000_000_123_456_789


def write(path, data=b"x", mode=None):
    with open(path, "wb") as handle:
        handle.write(data)
    if mode is not None:
        os.chmod(path, mode)


def main(root):
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "spool"))
    os.chmod(os.path.join(root, "spool"), 0o1777)  # noqa: S103 - the bits under test
    write(os.path.join(root, "bin", "setuid"), b"#!/bin/true\n", 0o4755)
    write(os.path.join(root, "bin", "setgid"), b"#!/bin/true\n", 0o2755)
    write(os.path.join(root, "bin", "cap"), b"#!/bin/true\n", 0o755)
    os.setxattr(os.path.join(root, "bin", "cap"), "security.capability", CAPABILITY)
    write(os.path.join(root, "old"), b"written long ago\n")
    os.utime(os.path.join(root, "old"), ns=(OLD_NS, OLD_NS))
    os.symlink("bin/setuid", os.path.join(root, "link"))
    os.symlink("/nowhere/at/all", os.path.join(root, "dangling"))
    write(os.path.join(root, "hard1"), b"one inode, two names\n")
    os.link(os.path.join(root, "hard1"), os.path.join(root, "spool", "hard2"))
    write(os.path.join(root, "acl"), b"shared with uid 1234\n", 0o640)
    os.setxattr(os.path.join(root, "acl"), "system.posix_acl_access", ACL)
    write(os.path.join(root, "xattr"), b"labelled\n")
    os.setxattr(os.path.join(root, "xattr"), "user.restoreops", b"keep me")
    for part in ("a", "b"):
        os.makedirs(os.path.join(root, "bulk", part))
        for number in range(20):
            write(os.path.join(root, "bulk", part, f"f{number}"), os.urandom(65536))
    os.link(os.path.join(root, "bulk", "a", "f0"), os.path.join(root, "bulk", "b", "link-to-a-f0"))
    with open(os.path.join(root, "sparse.img"), "wb") as handle:
        handle.write(b"head" * 1024)
        handle.seek(64 << 20)
        handle.write(b"tail" * 1024)


if __name__ == "__main__":
    main(sys.argv[1])
