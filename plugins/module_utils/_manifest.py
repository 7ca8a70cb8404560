# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checksum manifest recorded with every backup: its format, a streaming writer and reader, the incremental
recording decision and the verification of a restored tree, all in memory that does not grow with the file count.

Python 3.9+ standard library only: the restoreops.dr.backup_context and backup_verify roles install this file next
to their on-host scripts (under ``restoreops-lib/``, as a package tree), and the backup_restore module imports it as
module_utils.

Format 2, ``manifest.jsonl.gz``: gzip-compressed JSON lines, readable with ``zcat`` and ``jq``.

- line 1, the header: ``{"algorithm": "sha256", "format": "restoreops.dr/manifest", "full_hash": ..., "paths": [...],
  "version": 2, "walk_started": ...}`` (``full_hash``: when every digest was last computed from the bytes;
  ``walk_started``: when the recording that wrote the file began, both UTC ISO 8601);
- one line per regular file, strictly sorted by path (Python string order, which is byte order for UTF-8 names):
  ``{"path": "/abs/path", "size": 512, "mtime_ns": ..., "ctime_ns": ..., "inode": ..., "sha256": "<hex>"}``;
- the trailer: ``{"end": true, "files": <entries>, "bytes": <their total size>}``; a manifest without it is
  incomplete and is refused.

What a restore must give back beyond the bytes (fidelity), recorded since the header says ``"kinds": ["dir", "file",
"symlink"]`` (a format 2 manifest without these fields verifies its content as before):

- an entry line goes on after its digest with ``"mode": <st_mode>, "blocks": <st_blocks>``, then
  ``"link": "<dev>:<inode>"`` for a file with more than one hard link (its hard-link group), then ``"xattrs":
  {"<name>": "<first 32 hex digits of the SHA-256 of the value>"}`` for a file with extended attributes (POSIX ACLs
  are the ``system.posix_acl_access``/``system.posix_acl_default`` attributes; ``security.selinux`` is left out, as
  the target's policy labels files);
- a symbolic link: ``{"symlink": "/abs/path", "target": "...", "mtime_ns": ..., "ctime_ns": ..., "inode": ...}``;
- a directory: ``{"dir": "/abs/path/", "mode": ..., "ctime_ns": ..., "inode": ...}`` and its ``"xattrs"``; the
  trailing slash sorts it where the walk meets it (before its contents, after ``/abs/path.txt``).

All lines are in strictly increasing order of their path; the trailer counts the entry lines (files) only and adds
``"others"`` for symbolic links and directories.

The header and the trailer each sit in a gzip member of their own, and the entries are cut into members at lines
chosen by their content (about one in 4096), so a change re-compresses only the member around it and the backup
tools' deduplication keeps the rest of yesterday's manifest. ``gzip``/``zcat`` read the members as one stream.

Format 1, ``manifest.json`` (before incremental recording): ``{"files": {"/abs/path": "<sha256>"}}``. It is read
whole (as it always was) and verifies as before; it carries no file metadata, so the first recording after an upgrade
reads every file once.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import stat
import tempfile
import time
import zlib
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple, Sequence

NAME = "manifest.jsonl.gz"
LEGACY_NAME = "manifest.json"
FORMAT = "restoreops.dr/manifest"
VERSION = 2
ALGORITHM = "sha256"
GZIP_MAGIC = b"\x1f\x8b"
# A file whose ctime lies less than this before the recording began may have changed again within the same tick of
# the file system's clock after it was read (coarse or one-second time stamps): the next recording reads it again.
RACY_NS = 1_000_000_000
MEMBER_MASK = 0xFFF  # an entry line whose CRC-32 has these bits clear ends a gzip member (about 1 in 4096)
LEVEL = 6
LISTED = 100  # verification lists at most this many paths per kind of problem (all are counted)
KINDS = ["dir", "file", "symlink"]  # what the walk of a recording meets (the header says so)
ATTRIBUTES = ("mode", "mtime", "symlink", "hardlink", "acl", "xattr", "sparse")
ACL_NAMES = ("system.posix_acl_access", "system.posix_acl_default")
SKIPPED_XATTRS = ("security.selinux",)  # labelled by the target's own policy, not restored as data
SHOWN = 5  # paths listed per differing attribute
CHECKED, DIFFERING, UNSUPPORTED, NOT_RECORDED = "checked", "differing", "not supported by the tool", "not recorded"
_FIDELITY = b'","mode":'  # what follows the digest in an entry line that carries the fidelity fields
_PREFIX = '{"path":%s,"size":%d,"mtime_ns":%d,"ctime_ns":%d,"inode":%d,"sha256":"'
_LINE = re.compile(rb'\{"path":"([^"\\\x00-\x1f\x7f-\xff]*)","size":(\d+),"mtime_ns":(\d+),"ctime_ns":(\d+),'
                   rb'"inode":(\d+),"sha256":"([0-9a-f]{64})"(?:,"mode":(\d+),"blocks":(\d+)(?:,"link":"(\d+:\d+)")?'
                   rb'(?:,"xattrs":(\{[^}]*\}))?)?\}\Z').match


class ManifestError(Exception):
    """A manifest that cannot be read, is not a manifest, or is incomplete or out of order."""


class Entry(NamedTuple):
    """One file of a manifest. Format 1 manifests carry the digest only (the metadata fields are None); format 2
    lines written before fidelity was recorded have no ``mode``, ``blocks``, ``link`` or ``xattrs``."""

    path: str
    sha256: str
    size: int | None = None
    mtime_ns: int | None = None
    ctime_ns: int | None = None
    inode: int | None = None
    mode: int | None = None
    blocks: int | None = None
    link: str | None = None
    xattrs: Mapping[str, str] | None = None


class Other(NamedTuple):
    """A symbolic link or a directory of a manifest (``kind``), by its path (a directory's ends with a slash)."""

    kind: str
    path: str
    data: Mapping[str, Any]


# --- small helpers -----------------------------------------------------------------------------------------------


def sha256_file(path: str, bufsize: int = 1 << 20) -> str:
    """The file's SHA-256. Plain descriptor reads: a small file costs an open, one read and a close (a buffered file
    object and a 1 MiB read buffer per file would cost more than hashing it), a large one reads ``bufsize`` at once."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        chunk = os.read(fd, 1 << 16)
        while chunk:
            digest.update(chunk)
            chunk = os.read(fd, bufsize)
    finally:
        os.close(fd)
    return digest.hexdigest()


def iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: Any) -> int | None:
    """Nanoseconds since the epoch of a header time (None when absent or unreadable)."""
    try:
        when = dt.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return int(when.timestamp()) * 1_000_000_000


def absolute(path: str) -> str:
    """A manifest key as an absolute path (format 1 writers sometimes left the leading slash off)."""
    return "/" + path.strip("/")


def in_scope(path: str, includes: Sequence[str]) -> bool:
    """Is ``path`` (absolute) inside one of the include paths (all when none)?"""
    if not includes:
        return True
    path = absolute(path)
    for inc in includes:
        inc = absolute(inc)
        if path == inc or path.startswith(inc.rstrip("/") + "/"):
            return True
    return False


def distinct_tops(paths: Iterable[str]) -> list[str]:
    """Absolute, normalised paths without the ones inside another (sorted)."""
    norm = sorted({os.path.normpath(os.path.abspath(p)) for p in paths})
    kept: list[str] = []
    for path in norm:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


# --- the walk ----------------------------------------------------------------------------------------------------


def walk(tops: Iterable[str], exclude: Iterable[str] = (),
         on_error: Callable[[str, OSError], None] | None = None, *, every_kind: bool = False
         ) -> Iterator[tuple[str, os.stat_result]]:
    """Every regular file under ``tops`` (symbolic links are not followed) with its lstat, sorted by path.

    Directories in ``exclude`` are skipped whole. Memory holds the names of one directory per level of depth, never
    the tree. A top that is a regular file is yielded itself; one that does not exist yields nothing. With
    ``every_kind`` symbolic links come too, and every directory (a top included) with a trailing slash, before what
    it holds (other kinds of files never).
    """
    skip = {os.path.normpath(os.path.abspath(p)) for p in exclude}
    starts: list[tuple[str, str, os.stat_result]] = []
    for top in distinct_tops(tops):
        if top in skip:
            continue
        try:
            st = os.lstat(top)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if on_error:
                on_error(top, exc)
            continue
        if stat.S_ISREG(st.st_mode) or (every_kind and stat.S_ISLNK(st.st_mode)):
            starts.append((top, top, st))
        elif stat.S_ISDIR(st.st_mode):
            starts.append((top.rstrip("/") + "/", top, st))
    for key, top, st in sorted(starts, key=lambda s: s[0]):
        if not stat.S_ISDIR(st.st_mode):
            yield top, st
        else:
            if every_kind:
                yield key, st
            yield from _walk_dir(top, skip, on_error, every_kind)


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _listing(path: str, on_error: Callable[[str, OSError], None] | None, links: bool = False
             ) -> tuple[int, list[str]] | None:
    """An open descriptor of the directory and its names, directories with a trailing slash (which sorts them where
    their paths sort), in reverse order to pop from the end."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if on_error:
            on_error(path, exc)
        return None
    names: list[str] = []
    try:
        with os.scandir(fd) as it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        names.append(entry.name + "/")
                    elif entry.is_file(follow_symlinks=False) or (links and entry.is_symlink()):
                        names.append(entry.name)
                except OSError:
                    continue
    except OSError as exc:
        os.close(fd)
        if on_error:
            on_error(path, exc)
        return None
    names.sort(reverse=True)
    return fd, names


def _walk_dir(top: str, skip: set[str], on_error: Callable[[str, OSError], None] | None, every_kind: bool = False
              ) -> Iterator[tuple[str, os.stat_result]]:
    """Depth first in sorted order, one stack frame per open directory; files are stat'ed relative to their
    directory's descriptor (cheaper than resolving the whole path each time)."""
    listing = _listing(top, on_error, every_kind)
    if listing is None:
        return
    stack = [(top.rstrip("/") + "/", *listing)]
    lstat = os.stat
    is_reg = stat.S_ISREG
    try:
        while stack:
            prefix, fd, names = stack[-1]
            while names:
                name = names.pop()
                if name[-1] == "/":
                    sub = prefix + name[:-1]
                    if sub in skip:
                        continue
                    listing = _listing(sub, on_error, every_kind)
                    if listing is not None:
                        stack.append((sub + "/", *listing))
                        if every_kind:
                            yield sub + "/", os.fstat(listing[0])
                        break
                    continue
                try:
                    st = lstat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed since the listing
                except OSError as exc:
                    if on_error:
                        on_error(prefix + name, exc)
                    continue
                if is_reg(st.st_mode) or (every_kind and stat.S_ISLNK(st.st_mode)):
                    yield prefix + name, st
            else:
                os.close(fd)
                stack.pop()
    finally:
        for _prefix, fd, _names in stack:
            os.close(fd)


# --- format 2: lines ---------------------------------------------------------------------------------------------
# Lines travel without their newline; the writer adds it.


def entry_prefix(path: str, st: os.stat_result) -> bytes:
    """The bytes of an entry line up to its digest. The same path and metadata give the same bytes, so a recorder
    tells an unchanged entry by comparing bytes instead of parsing the previous line."""
    return (_PREFIX % (encode_basestring_ascii(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            ).encode("ascii")


def xattr_digests(path: str) -> dict[str, str]:
    """The extended attributes of ``path`` (not followed when a link) by name, each value as the first 32 hex digits of
    its SHA-256; empty where the file system has none. ``security.selinux`` is left out."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found = {}
    for name in sorted(names):
        if name in SKIPPED_XATTRS:
            continue
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
        found[name] = hashlib.sha256(value).hexdigest()[:32]
    return found


def _xattrs_field(path: str) -> bytes:
    found = xattr_digests(path)
    if not found:
        return b""
    return b',"xattrs":' + json.dumps(found, sort_keys=True, separators=(",", ":")).encode("ascii")


def fidelity_fields(path: str, st: os.stat_result) -> bytes:
    """What an entry line records after its digest: mode, allocated blocks, hard-link group, extended attributes."""
    fields = b',"mode":%d,"blocks":%d' % (st.st_mode, st.st_blocks)
    if st.st_nlink > 1:
        fields += b',"link":"%d:%d"' % (st.st_dev, st.st_ino)
    return fields + _xattrs_field(path)


def entry_line(path: str, st: os.stat_result, digest: str, fidelity: bytes = b"") -> bytes:
    """An entry line; ``fidelity`` is what :func:`fidelity_fields` read (a recording always gives it)."""
    return entry_prefix(path, st) + digest.encode("ascii") + b'"' + fidelity + b"}"


def other_line(path: str, st: os.stat_result) -> bytes | None:
    """The line of a symbolic link or a directory (``path`` with its trailing slash), None for anything else (or a
    link that went away since the walk met it)."""
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:
            return None
        link = (f'{{"symlink":{encode_basestring_ascii(path)},"target":{encode_basestring_ascii(target)},'
                f'"mtime_ns":{st.st_mtime_ns},"ctime_ns":{st.st_ctime_ns},"inode":{st.st_ino}}}')
        return link.encode("ascii")
    if stat.S_ISDIR(st.st_mode):
        head = (f'{{"dir":{encode_basestring_ascii(path)},"mode":{st.st_mode},"ctime_ns":{st.st_ctime_ns},'
                f'"inode":{st.st_ino}')
        return head.encode("ascii") + _xattrs_field(path.rstrip("/") or "/") + b"}"
    return None


def parse_entry(line: bytes) -> Entry:
    match = _LINE(line)
    if match is not None:  # this writer's own spelling of a plain ASCII path: no JSON decoding needed
        path, size, mtime, ctime, inode, digest, mode, blocks, link, xattrs = match.groups()
        return Entry(path.decode("ascii"), digest.decode("ascii"), int(size), int(mtime), int(ctime), int(inode),
                     None if mode is None else int(mode), None if blocks is None else int(blocks),
                     None if link is None else link.decode("ascii"), None if xattrs is None else json.loads(xattrs))
    try:
        data = json.loads(line)
        entry = Entry(data["path"], data["sha256"], data["size"], data["mtime_ns"], data["ctime_ns"], data["inode"],
                      data.get("mode"), data.get("blocks"), data.get("link"), data.get("xattrs"))
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(f"an entry line is not valid: {line[:200]!r}") from exc
    if not isinstance(entry.path, str) or not isinstance(entry.sha256, str):
        raise ManifestError(f"an entry line is not valid: {line[:200]!r}")
    return entry


def parse_other(line: bytes) -> Other | None:
    """A symbolic link's or a directory's line, None for any other line."""
    if not (line.startswith(b'{"symlink":') or line.startswith(b'{"dir":')):
        return None
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise ManifestError(f"a line is not valid: {line[:200]!r}") from exc
    kind = "symlink" if "symlink" in data else "dir"
    path = data.get(kind)
    if not isinstance(path, str):
        raise ManifestError(f"a line is not valid: {line[:200]!r}")
    return Other(kind, path, data)


def line_key(line: bytes) -> str | None:
    """The path a line sorts by (None for the trailer)."""
    if line.startswith(b'{"path":'):
        return parse_entry(line).path
    other = parse_other(line)
    if other is not None:
        return other.path
    if trailer_of(line) is not None:
        return None
    raise ManifestError(f"a line is not valid: {line[:200]!r}")


def trailer_of(line: bytes) -> dict[str, Any] | None:
    """The trailer's fields when ``line`` is the trailer (entry lines of this writer start with their path)."""
    if line.startswith(b'{"path":') or line.startswith(b'{"symlink":') or line.startswith(b'{"dir":'):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("end") is True else None


def _line_blocks(path: str) -> Iterator[list[bytes]]:
    """The lines of a gzip file of one or more members, in lists (one per decompressed block)."""
    try:
        with open(path, "rb") as handle:
            decomp = zlib.decompressobj(31)
            fed = False
            rest = b""
            while True:
                block = handle.read(1 << 20)
                if not block:
                    break
                while block:
                    fed = True
                    out = decomp.decompress(block)
                    if decomp.eof:  # the next member starts in what is left
                        block = decomp.unused_data
                        decomp = zlib.decompressobj(31)
                        fed = False
                    else:
                        block = b""
                    if out:
                        lines = (rest + out).split(b"\n")
                        rest = lines.pop()
                        yield lines
            if fed:
                raise ManifestError(f"{path} cannot be read: the compressed data ends in the middle of a member")
            if rest:
                yield [rest]
    except (OSError, zlib.error) as exc:
        raise ManifestError(f"{path} cannot be read: {exc}") from exc


def read_lines(path: str) -> Iterator[bytes]:
    """Every line of a format 2 manifest (header, entries, trailer), without newlines, decompressed in blocks."""
    return itertools.chain.from_iterable(_line_blocks(path))


class Writer:
    """Write a format 2 manifest: header, entry lines (in path order: the caller's duty), trailer.

    Gzip members end at lines chosen by their content, so an unchanged run of lines compresses to the same bytes in
    every version of the file (which lets borg and restic deduplicate the unchanged stretches of a large manifest).
    """

    def __init__(self, handle: Any, header: Mapping[str, Any], level: int = LEVEL) -> None:
        self._out = handle
        self._level = level
        self._pending: list[bytes] = []
        self._size = 0
        self._comp: Any = None
        self.files = 0
        self.others = 0
        self._member(json.dumps(header, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n")

    def _member(self, data: bytes) -> None:
        comp = zlib.compressobj(self._level, zlib.DEFLATED, 31)
        self._out.write(comp.compress(data) + comp.flush())

    def _compress_pending(self) -> None:
        if self._comp is None:
            self._comp = zlib.compressobj(self._level, zlib.DEFLATED, 31)
        self._pending.append(b"")
        self._out.write(self._comp.compress(b"\n".join(self._pending)))
        self._pending = []
        self._size = 0

    def write(self, line: bytes) -> None:
        """Append one line (as :func:`entry_line` or :func:`other_line` builds it, or copied from a previous
        manifest)."""
        self._pending.append(line)
        self._size += len(line)
        if line.startswith(b'{"path":'):
            self.files += 1
        else:
            self.others += 1
        if not zlib.crc32(line) & MEMBER_MASK:
            self._end_member()
        elif self._size >= 1 << 16:
            self._compress_pending()

    def _end_member(self) -> None:
        if self._pending:
            self._compress_pending()
        if self._comp is not None:
            self._out.write(self._comp.flush())
            self._comp = None

    def close(self, total_bytes: int) -> None:
        """End the entries and write the trailer (the handle stays open)."""
        self._end_member()
        trailer: dict[str, Any] = {"end": True, "files": self.files, "bytes": total_bytes}
        if self.others:
            trailer["others"] = self.others
        self._member(json.dumps(trailer, separators=(",", ":")).encode("ascii") + b"\n")


def _check_header(header: Any, path: str) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ManifestError(f"{path} is not a restoreops.dr manifest (its first line has no format {FORMAT!r})")
    if header.get("version") != VERSION:
        raise ManifestError(f"{path} is manifest format version {header.get('version')!r}; this reader knows "
                            f"version {VERSION} (and format 1, manifest.json)")
    if header.get("algorithm") != ALGORITHM:
        raise ManifestError(f"{path} uses checksum algorithm {header.get('algorithm')!r}, not {ALGORITHM}")
    return header


def _digest(value: str) -> str:
    value = value.strip().lower()
    return value[7:] if value.startswith("sha256:") else value


class Manifest:
    """An open manifest of either format, told apart by content (gzip or JSON), not by name.

    Opening reads the header (format 2) or the whole file (format 1); :meth:`entries` streams format 2 and checks its
    order and its trailer as it goes. A missing file raises FileNotFoundError; anything else unusable ManifestError.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.header: dict[str, Any] = {}
        self._files: dict[str, Any] | None = None
        try:
            with open(path, "rb") as handle:
                gzipped = handle.read(2) == GZIP_MAGIC
                if not gzipped:
                    handle.seek(0)
                    data = json.loads(handle.read())
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise ManifestError(f"{path} cannot be read: {exc}") from exc
        if gzipped:
            self.version = VERSION
            blocks = _line_blocks(path)
            try:
                first = next(iter(next(blocks, [b""])), b"")
            finally:
                blocks.close()
            try:
                header = json.loads(first)
            except ValueError as exc:
                raise ManifestError(f"{path} has no readable header line") from exc
            self.header = _check_header(header, path)
            return
        self.version = 1
        files = data.get("files", data) if isinstance(data, dict) else None
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise ManifestError(f"{path} has no 'files' mapping of path to sha256")
        self._files = files
        self.header = {"version": 1, "base": data.get("base") if "files" in data else None}

    def raw_lines(self) -> Iterator[bytes]:
        """Format 2: the lines after the header as stored, the trailer last, unchecked (nothing for format 1)."""
        if self._files is not None:
            return iter(())
        lines = read_lines(self.path)
        next(lines, None)
        return lines

    def entries(self, normalize: Callable[[str], str] | None = None) -> Iterator[Entry]:
        """Every entry in path order. Format 1 keys pass through ``normalize`` first (and are sorted after it)."""
        if self._files is not None:
            norm = normalize or (lambda p: p)
            for path, digest in sorted((norm(p), _digest(d)) for p, d in self._files.items()):
                yield Entry(path, digest)
            return
        count = 0
        last = None
        trailer: dict[str, Any] | None = None
        for line in self.raw_lines():
            if not line.startswith(b'{"path":'):
                if line.startswith(b'{"symlink":') or line.startswith(b'{"dir":'):
                    continue  # symbolic links and directories: see records()
                trailer = trailer_of(line)
                if trailer is not None:
                    break
            entry = parse_entry(line)
            if last is not None and entry.path <= last:
                raise ManifestError(f"{self.path} is out of order at {entry.path!r}")
            last = entry.path
            count += 1
            yield entry
        if trailer is None or trailer.get("files") != count:
            found = "no trailer" if trailer is None else f"a trailer that counts {trailer.get('files')}"
            raise ManifestError(f"{self.path} is incomplete: {count} entries and {found}")

    def records(self) -> Iterator[Entry | Other]:
        """Format 2: every file entry, symbolic link and directory in path order (their order and the trailer are
        checked as they go); format 1: its entries."""
        if self._files is not None:
            yield from self.entries()
            return
        count = others = 0
        last = None
        trailer: dict[str, Any] | None = None
        for line in self.raw_lines():
            record: Entry | Other | None
            if line.startswith(b'{"path":'):
                record = parse_entry(line)
                count += 1
            else:
                record = parse_other(line)
                if record is None:
                    trailer = trailer_of(line)
                    if trailer is None:
                        raise ManifestError(f"{self.path} has a line that is not valid: {line[:200]!r}")
                    break
                others += 1
            if last is not None and record.path <= last:
                raise ManifestError(f"{self.path} is out of order at {record.path!r}")
            last = record.path
            yield record
        if trailer is None or trailer.get("files") != count or trailer.get("others", 0) != others:
            found = "no trailer" if trailer is None else f"a trailer that counts {trailer.get('files')}"
            raise ManifestError(f"{self.path} is incomplete: {count} entries and {found}")

    def digests(self, wanted: Iterable[str], key: Callable[[str], str] = absolute) -> dict[str, str]:
        """The digests of the entries whose ``key(path)`` is one of ``wanted``, by that key; memory holds those only
        (a format 2 manifest is read through once)."""
        return self.digests_and_links(wanted, key)[0]

    def digests_and_links(self, wanted: Iterable[str], key: Callable[[str], str] = absolute
                          ) -> tuple[dict[str, str], list[list[str]]]:
        """:meth:`digests`, and the hard-link groups recorded among those entries (the names, by key, of each group
        with two or more of them; none in a manifest recorded without the fidelity fields)."""
        found, groups, _carrying = self.resume_facts(wanted, key)
        return found, groups

    def resume_facts(self, wanted: Iterable[str], key: Callable[[str], str] = absolute
                     ) -> tuple[dict[str, str], list[list[str]], set[str]]:
        """:meth:`digests_and_links`, and the names among ``wanted`` whose entries recorded extended attributes
        (ACLs among them), in one pass over the manifest."""
        want = set(wanted)
        found: dict[str, str] = {}
        groups: dict[str, list[str]] = {}
        carrying: set[str] = set()
        for entry in self.entries():
            name = key(entry.path)
            if name in want:
                found[name] = entry.sha256
                if entry.link:
                    groups.setdefault(entry.link, []).append(name)
                if entry.xattrs:
                    carrying.add(name)
        return found, [names for names in groups.values() if len(names) > 1], carrying


# --- recording ---------------------------------------------------------------------------------------------------


def needs_hash(old: Entry | None, st: os.stat_result, *, full: bool = False, racy_from_ns: int | None = None
               ) -> str | None:
    """Why a file must be read again, or None when its recorded digest still holds (the incremental decision).

    The digest is reused only when size, mtime, ctime and inode all equal what was recorded, no full re-hash is due,
    and the file's ctime lies before ``racy_from_ns`` (so it cannot have changed unseen within one tick of the file
    system's clock while the previous recording read it).
    """
    if full:
        return "full re-hash"
    if old is None:
        return "new"
    if old.size is None:
        return "no metadata"
    if old.size != st.st_size:
        return "size"
    if old.mtime_ns != st.st_mtime_ns:
        return "mtime"
    if old.ctime_ns != st.st_ctime_ns:
        return "ctime"
    if old.inode != st.st_ino:
        return "inode"
    if racy_from_ns is not None and st.st_ctime_ns >= racy_from_ns:
        return "racy"
    return None


def full_hash_due(header: Mapping[str, Any], now_ns: int, rehash_days: float) -> bool:
    """Is a full re-hash due? (Always without a previous full hash; ``rehash_days`` 0 never forces one.)"""
    last = parse_iso(header.get("full_hash"))
    if last is None:
        return True
    return rehash_days > 0 and now_ns - last >= rehash_days * 86400 * 1_000_000_000


class RecordResult(NamedTuple):
    changed: bool
    files: int
    bytes: int
    hashed: int
    reused: int
    bytes_hashed: int
    removed: int
    full: bool
    rot: list[str]  # a full re-hash read other bytes under unchanged metadata (first LISTED paths)
    rot_count: int
    skipped: list[str]  # unreadable, left out (first LISTED paths)

    def stats(self) -> dict[str, Any]:
        return {k: v for k, v in self._asdict().items() if k not in ("rot", "skipped")}


class _LazyOutput:
    """The new manifest, opened only at the first difference from the previous one (whose identical leading lines
    it then copies): an unchanged recording writes nothing."""

    def __init__(self, out_path: str, header: Mapping[str, Any], previous: Manifest | None, level: int) -> None:
        self.out_path = out_path
        self.header = header
        self.previous = previous
        self.level = level
        self.same = 0  # leading entries equal to the previous manifest's, not yet written
        self.writer: Writer | None = None
        self._handle: Any = None
        self._tmp = ""

    def diverge(self) -> None:
        if self.writer is not None:
            return
        fd, self._tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(self.out_path)), prefix=".tmp-manifest-")
        os.fchmod(fd, 0o600)
        self._handle = os.fdopen(fd, "wb")
        self.writer = Writer(self._handle, self.header, self.level)
        if self.same and self.previous is not None:
            try:
                for line in itertools.islice(self.previous.raw_lines(), self.same):
                    self.writer.write(line)
            except ManifestError as exc:
                raise _PreviousBroken(str(exc)) from exc

    def commit(self, total_bytes: int) -> bool:
        if self.writer is None:
            return False
        self.writer.close(total_bytes)
        self._handle.close()
        os.replace(self._tmp, self.out_path)
        self._handle = None
        return True

    def abandon(self) -> None:
        if self._handle is not None:
            self._handle.close()
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)


def record(tops: Sequence[str], out_path: str, *, exclude: Iterable[str] = (), rehash_days: float = 30,
           force_full: bool = False, now_ns: int | None = None, level: int = LEVEL,
           warn: Callable[[str], None] | None = None) -> RecordResult:
    """Record the manifest of ``tops`` into ``out_path`` (format 2), reusing the digest of every file whose metadata
    did not change since the manifest already there (everything is read when there is none, it is format 1 or
    unusable, or a full re-hash is due: ``rehash_days`` after the last one, or ``force_full``).

    The walk and the previous manifest are merged in path order. The file is replaced (atomically) only when an
    entry, the paths or the time of the last full re-hash changed; until the first difference nothing is written, so
    an unchanged run costs the walk, one lstat per file and one read of the previous manifest.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    try:
        previous: Manifest | None = Manifest(out_path)
    except FileNotFoundError:
        previous = None
    except ManifestError as exc:
        if warn:
            warn(f"the previous manifest is unusable ({exc}); every file is read again")
        previous = None
    if previous is not None and previous.version != VERSION:
        previous = None
    try:
        return _record(tops, out_path, previous, exclude, rehash_days, force_full, now_ns, level, warn)
    except _PreviousBroken as exc:
        if warn:
            warn(f"the previous manifest is unusable ({exc}); every file is read again")
        return _record(tops, out_path, None, exclude, rehash_days, force_full, now_ns, level, warn)


class _PreviousBroken(Exception):
    """The previous manifest failed part-way through (the recording starts again without it)."""


def _previous_lines(previous: Manifest | None) -> Iterator[bytes]:
    if previous is None:
        return
    try:
        yield from previous.raw_lines()
    except ManifestError as exc:
        raise _PreviousBroken(str(exc)) from exc


def _record(tops: Sequence[str], out_path: str, previous: Manifest | None, exclude: Iterable[str],
            rehash_days: float, force_full: bool, now_ns: int, level: int,
            warn: Callable[[str], None] | None) -> RecordResult:
    old_header = previous.header if previous is not None else {}
    full = force_full or not old_header or full_hash_due(old_header, now_ns, rehash_days)
    started = parse_iso(old_header.get("walk_started"))
    racy_from = 0 if started is None else started - RACY_NS  # 0: every file counts as racy
    header = {"format": FORMAT, "version": VERSION, "algorithm": ALGORITHM, "paths": distinct_tops(tops),
              "full_hash": iso(now_ns) if full else old_header.get("full_hash"), "walk_started": iso(now_ns),
              "kinds": KINDS}
    out = _LazyOutput(out_path, header, previous, level)
    if not old_header or any(header[k] != old_header.get(k) for k in header if k != "walk_started"):
        out.diverge()

    lines = _previous_lines(previous)
    skipped: list[str] = []
    rot: list[str] = []
    files = total = hashed = reused = bytes_hashed = removed = rot_count = 0

    def note_error(path: str, exc: OSError) -> None:
        if len(skipped) < LISTED:
            skipped.append(path)
        if warn:
            warn(f"{path}: {exc.strerror or exc}; left out of the manifest")

    def previous_at(path: str) -> bytes | None:
        """Move past the previous lines before ``path`` (gone since then) and return the one at ``path``."""
        nonlocal line, removed
        while line is not None:
            try:
                key = line_key(line)
            except ManifestError as exc:
                raise _PreviousBroken(str(exc)) from exc
            if key is None:  # the trailer
                line = None
                break
            if key > path:
                break
            found, line = line, next(lines, None)
            if key == path:
                return found
            if found.startswith(b'{"path":'):
                removed += 1
            out.diverge()
        return None

    encode = encode_basestring_ascii
    is_reg = stat.S_ISREG
    line = next(lines, None)
    try:
        for path, st in walk(tops, exclude, note_error, every_kind=True):
            if not is_reg(st.st_mode):  # a symbolic link or a directory: read again every time, it costs an lstat
                other = other_line(path, st)
                if other is None:
                    continue
                if previous_at(path) != other:
                    out.diverge()
                if out.writer is None:
                    out.same += 1
                else:
                    out.writer.write(other)
                continue
            prefix = (_PREFIX % (encode(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)).encode("ascii")
            cut = len(prefix) + 64
            if (not full and line is not None and line.startswith(prefix) and line[cut:cut + 9] == _FIDELITY
                    and st.st_ctime_ns < racy_from):
                # the fast path: the previous line has this path and this metadata byte for byte, so it stays (mode,
                # links and extended attributes cannot change without changing the ctime)
                new_line = line
                line = next(lines, None)
                reused += 1
            else:
                old_line = previous_at(path)
                old: Entry | None = None
                if old_line is not None:
                    if old_line.startswith(b'{"path":'):
                        try:
                            old = parse_entry(old_line)
                        except ManifestError as exc:
                            raise _PreviousBroken(str(exc)) from exc
                    else:
                        out.diverge()  # was a symbolic link or a directory
                reason = needs_hash(old, st, full=full, racy_from_ns=racy_from)
                if reason is None and old is not None:
                    digest = old.sha256
                    reused += 1
                else:
                    try:
                        digest = sha256_file(path)
                    except OSError as exc:
                        if not isinstance(exc, FileNotFoundError):
                            note_error(path, exc)
                        if old is not None:
                            removed += 1
                            out.diverge()
                        continue
                    hashed += 1
                    bytes_hashed += st.st_size
                    if reason == "full re-hash" and old is not None and old.sha256 != digest \
                            and needs_hash(old, st) is None:
                        rot_count += 1
                        if len(rot) < LISTED:
                            rot.append(path)
                new_line = prefix + digest.encode("ascii") + b'"' + fidelity_fields(path, st) + b"}"
                if new_line != old_line:
                    out.diverge()
            files += 1
            total += st.st_size
            if out.writer is None:
                out.same += 1
            else:
                out.writer.write(new_line)
        while line is not None:
            if trailer_of(line) is None:
                if line.startswith(b'{"path":'):
                    removed += 1
                out.diverge()
            line = next(lines, None)
        changed = out.commit(total)
    finally:
        out.abandon()
    return RecordResult(changed, files, total, hashed, reused, bytes_hashed, removed, full, rot, rot_count, skipped)


# --- verification ------------------------------------------------------------------------------------------------


def _check_batch(batch: list[tuple[str, str | None, str | None]]) -> list[tuple[str, str]]:
    """For each (manifest path, local path or None when missing, digest or None when the size already differs),
    the problems in order as (path, "missing" | "mismatched")."""
    problems = []
    for path, local, digest in batch:
        if local is None:
            problems.append((path, "missing"))
            continue
        if digest is None:
            problems.append((path, "mismatched"))
            continue
        try:
            if sha256_file(local) != digest:
                problems.append((path, "mismatched"))
        except OSError:
            problems.append((path, "missing"))
    return problems


def verify_tree(root: str, manifest: Manifest | Mapping[str, str], includes: Sequence[str] = (), *,
                threads: int = 2, listed: int = LISTED, batch_size: int = 256) -> dict[str, Any]:
    """Merge the manifest, in path order, with a sorted walk of the restored tree under ``root`` (the manifest's
    path P is ``root + P`` there) and hash every listed file inside ``includes`` (all when none) on ``threads``.

    Returns ``checked`` (entries in scope), ``missing`` and ``mismatched`` (the first ``listed`` paths, in path
    order) with their counts ``missing_count`` and ``mismatched_count``, ``ok``, and the walked tree's regular files
    and bytes (``tree_files``, ``tree_bytes``). A file whose size differs from the recorded one is mismatched without
    being read. Memory stays bounded for format 2; a format 1 manifest (or a mapping) is held whole, as it always was.
    """
    base = os.path.normpath(os.path.abspath(root)).rstrip("/")
    if isinstance(manifest, Manifest):
        entries: Iterable[Entry] = manifest.entries(absolute)
    else:
        entries = [Entry(p, d) for p, d in sorted((absolute(k), _digest(v)) for k, v in manifest.items())]
    scope = distinct_tops(absolute(i) for i in includes) if includes else ["/"]
    tree = walk([base + top for top in scope])
    counts = {"checked": 0, "missing": 0, "mismatched": 0, "files": 0, "bytes": 0}
    lists: dict[str, list[str]] = {"missing": [], "mismatched": []}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
    inflight: collections.deque[Any] = collections.deque()
    batch: list[tuple[str, str | None, str | None]] = []

    def collect(problems: list[tuple[str, str]]) -> None:
        for path, kind in problems:
            counts[kind] += 1
            if len(lists[kind]) < listed:
                lists[kind].append(path)

    def flush() -> None:
        nonlocal batch
        if pool is None:
            collect(_check_batch(batch))
        else:
            inflight.append(pool.submit(_check_batch, batch))
            while len(inflight) > 2 * threads:
                collect(inflight.popleft().result())
        batch = []

    def next_file() -> tuple[str, str, int] | None:
        item = next(tree, None)
        if item is None:
            return None
        counts["files"] += 1
        counts["bytes"] += item[1].st_size
        return item[0][len(base):], item[0], item[1].st_size

    try:
        current = next_file()
        for entry in entries:
            if includes and not in_scope(entry.path, includes):
                continue
            counts["checked"] += 1
            while current is not None and current[0] < entry.path:
                current = next_file()  # restored but not listed (written after the recording)
            if current is None or current[0] != entry.path:
                batch.append((entry.path, None, None))
            elif entry.size is not None and entry.size != current[2]:
                batch.append((entry.path, current[1], None))
            else:
                batch.append((entry.path, current[1], entry.sha256))
            if current is not None and current[0] == entry.path:
                current = next_file()
            if len(batch) >= batch_size:
                flush()
        flush()
        while inflight:
            collect(inflight.popleft().result())
        while current is not None:
            current = next_file()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return {"checked": counts["checked"], "missing": lists["missing"], "mismatched": lists["mismatched"],
            "missing_count": counts["missing"], "mismatched_count": counts["mismatched"],
            "ok": not counts["missing"] and not counts["mismatched"],
            "tree_files": counts["files"], "tree_bytes": counts["bytes"]}


# --- fidelity beyond bytes -----------------------------------------------------------------------------------------


class _Tally:
    """One attribute's count: entries compared, entries that carried it at backup time, and those that differ."""

    def __init__(self) -> None:
        self.checked = 0
        self.recorded = 0
        self.differing = 0
        self.paths: list[str] = []

    def note(self, path: str, differs: bool, carried: bool = True) -> None:
        self.checked += 1
        self.recorded += carried
        if differs:
            self.differing += 1
            if len(self.paths) < SHOWN:
                self.paths.append(path)


def _split_xattrs(found: Mapping[str, str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """(POSIX ACLs, the other extended attributes)."""
    acl: dict[str, str] = {}
    other: dict[str, str] = {}
    for name, value in (found or {}).items():
        if name in SKIPPED_XATTRS:
            continue
        (acl if name in ACL_NAMES else other)[name] = value
    return acl, other


def sparse_kept(size: int, recorded_blocks: int, restored_blocks: int) -> bool:
    """A file that was sparse (fewer bytes allocated than its size) is still sparse when its restored copy allocates
    no more than what it had plus half of its holes: the tools find holes by their own granularity (borg by chunk,
    restic by run of zeros), so the allocation is compared with room to spare, but a copy written out in full fails."""
    allocated = recorded_blocks * 512
    holes = max(0, size - allocated)
    return restored_blocks * 512 <= allocated + holes // 2


def verify_fidelity(root: str, manifest: Manifest | Mapping[str, str], includes: Sequence[str] = (),
                    unsupported: Iterable[str] = (), shown: int = SHOWN) -> dict[str, Any]:
    """Compare what the manifest recorded beyond the bytes with the restored tree under ``root`` (the manifest's
    path P is ``root + P`` there), one entry per attribute of :data:`ATTRIBUTES`, in that order:

    ``mode`` (permission bits with setuid, setgid and sticky, of files and directories), ``mtime`` (files and
    symbolic links, to the nanosecond), ``symlink`` (a symbolic link with the same target), ``hardlink`` (the files
    of one hard-link group share one inode), ``acl`` (``system.posix_acl_access``/``_default``), ``xattr`` (every
    other extended attribute, ``security.capability`` among them) and ``sparse`` (:func:`sparse_kept`).

    Each entry: ``attribute``, ``status`` (``checked``; ``differing`` with ``differing`` counted and the first
    ``shown`` ``paths``; ``not supported by the tool`` for the attributes in ``unsupported``, counted all the same;
    ``not recorded`` when the manifest predates the attribute), ``checked`` (entries compared), ``recorded`` (entries
    that carried the attribute: special mode bits, an ACL, extended attributes, holes, a hard link, a link).
    A file missing from the tree is left to the content check. Memory: the hard-link groups met, nothing else.
    """
    tallies = {name: _Tally() for name in ATTRIBUTES}
    known: set[str] = set()
    skip = set(unsupported)
    base = os.path.normpath(os.path.abspath(root)).rstrip("/")
    groups: dict[str, tuple[int, int]] = {}
    if isinstance(manifest, Manifest) and manifest.version == VERSION:
        if "symlink" in (manifest.header.get("kinds") or ()):
            known.add("symlink")
        for record in manifest.records():
            path = record.path
            bare = path.rstrip("/") or "/"
            if includes and not in_scope(bare, includes):
                continue
            local = base + bare if bare != "/" else base or "/"
            try:
                st: os.stat_result | None = os.lstat(local)
            except OSError:
                st = None
            if isinstance(record, Entry):
                if record.mode is None or st is None or not stat.S_ISREG(st.st_mode):
                    continue  # recorded before fidelity, or missing (the content check says so)
                known.update(("mode", "mtime", "hardlink", "acl", "xattr", "sparse"))
                _compare_common(tallies, path, record.mode, record.xattrs, st, local)
                tallies["mtime"].note(path, record.mtime_ns != st.st_mtime_ns)
                if record.size and record.blocks is not None and record.blocks * 512 < record.size:
                    tallies["sparse"].note(path, not sparse_kept(record.size, record.blocks, st.st_blocks))
                if record.link:
                    first = groups.setdefault(record.link, (st.st_dev, st.st_ino))
                    tallies["hardlink"].note(path, first != (st.st_dev, st.st_ino))
            elif record.kind == "symlink":
                target = None
                if st is not None and stat.S_ISLNK(st.st_mode):
                    try:
                        target = os.readlink(local)
                    except OSError:
                        target = None
                tallies["symlink"].note(path, target != record.data.get("target"))
                if st is not None and target == record.data.get("target"):  # a wrong link: said once, above
                    tallies["mtime"].note(path, record.data.get("mtime_ns") != st.st_mtime_ns)
            else:
                known.update(("mode", "acl", "xattr"))
                if st is None or not stat.S_ISDIR(st.st_mode):
                    tallies["mode"].note(path, True, bool(int(record.data.get("mode") or 0) & 0o7000))
                    continue
                _compare_common(tallies, path, int(record.data.get("mode") or 0), record.data.get("xattrs"), st,
                                local)
    results = []
    for name in ATTRIBUTES:
        tally = tallies[name]
        if name in skip:
            status = UNSUPPORTED
        elif name not in known:
            status = NOT_RECORDED
        else:
            status = DIFFERING if tally.differing else CHECKED
        results.append({"attribute": name, "status": status, "checked": tally.checked, "recorded": tally.recorded,
                        "differing": tally.differing, "paths": tally.paths[:shown]})
    return {"fidelity": results, "fidelity_ok": all(r["status"] != DIFFERING for r in results)}


def _compare_common(tallies: Mapping[str, _Tally], path: str, mode: int, xattrs: Mapping[str, str] | None,
                    st: os.stat_result, local: str) -> None:
    """Mode, ACLs and the other extended attributes of a file or a directory."""
    tallies["mode"].note(path, stat.S_IMODE(mode) != stat.S_IMODE(st.st_mode), bool(mode & 0o7000))
    acl, other = _split_xattrs(xattrs)
    now_acl, now_other = _split_xattrs(xattr_digests(local))
    tallies["acl"].note(path, acl != now_acl, bool(acl))
    tallies["xattr"].note(path, other != now_other, bool(other))
