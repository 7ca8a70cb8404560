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
_PREFIX = '{"path":%s,"size":%d,"mtime_ns":%d,"ctime_ns":%d,"inode":%d,"sha256":"'
_LINE = re.compile(rb'\{"path":"([^"\\\x00-\x1f\x7f-\xff]*)","size":(\d+),"mtime_ns":(\d+),"ctime_ns":(\d+),'
                   rb'"inode":(\d+),"sha256":"([0-9a-f]{64})"\}\Z').match


class ManifestError(Exception):
    """A manifest that cannot be read, is not a manifest, or is incomplete or out of order."""


class Entry(NamedTuple):
    """One file of a manifest. Format 1 manifests carry the digest only (the metadata fields are None)."""

    path: str
    sha256: str
    size: int | None = None
    mtime_ns: int | None = None
    ctime_ns: int | None = None
    inode: int | None = None


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
         on_error: Callable[[str, OSError], None] | None = None) -> Iterator[tuple[str, os.stat_result]]:
    """Every regular file under ``tops`` (symbolic links are not followed) with its lstat, sorted by path.

    Directories in ``exclude`` are skipped whole. Memory holds the names of one directory per level of depth, never
    the tree. A top that is a regular file is yielded itself; one that does not exist yields nothing.
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
        if stat.S_ISREG(st.st_mode):
            starts.append((top, top, st))
        elif stat.S_ISDIR(st.st_mode):
            starts.append((top.rstrip("/") + "/", top, st))
    for _key, top, st in sorted(starts, key=lambda s: s[0]):
        if stat.S_ISREG(st.st_mode):
            yield top, st
        else:
            yield from _walk_dir(top, skip, on_error)


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def _listing(path: str, on_error: Callable[[str, OSError], None] | None) -> tuple[int, list[str]] | None:
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
                    elif entry.is_file(follow_symlinks=False):
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


def _walk_dir(top: str, skip: set[str], on_error: Callable[[str, OSError], None] | None
              ) -> Iterator[tuple[str, os.stat_result]]:
    """Depth first in sorted order, one stack frame per open directory; files are stat'ed relative to their
    directory's descriptor (cheaper than resolving the whole path each time)."""
    listing = _listing(top, on_error)
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
                    listing = _listing(sub, on_error)
                    if listing is not None:
                        stack.append((sub + "/", *listing))
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
                if is_reg(st.st_mode):
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


def entry_line(path: str, st: os.stat_result, digest: str) -> bytes:
    return entry_prefix(path, st) + digest.encode("ascii") + b'"}'


def parse_entry(line: bytes) -> Entry:
    match = _LINE(line)
    if match is not None:  # this writer's own spelling of a plain ASCII path: no JSON decoding needed
        path, size, mtime, ctime, inode, digest = match.groups()
        return Entry(path.decode("ascii"), digest.decode("ascii"), int(size), int(mtime), int(ctime), int(inode))
    try:
        data = json.loads(line)
        entry = Entry(data["path"], data["sha256"], data["size"], data["mtime_ns"], data["ctime_ns"], data["inode"])
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(f"an entry line is not valid: {line[:200]!r}") from exc
    if not isinstance(entry.path, str) or not isinstance(entry.sha256, str):
        raise ManifestError(f"an entry line is not valid: {line[:200]!r}")
    return entry


def trailer_of(line: bytes) -> dict[str, Any] | None:
    """The trailer's fields when ``line`` is the trailer (entry lines of this writer start with their path)."""
    if line.startswith(b'{"path":'):
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
        """Append one entry line (as :func:`entry_line` builds it, or copied from a previous manifest)."""
        self._pending.append(line)
        self._size += len(line)
        self.files += 1
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
        trailer = {"end": True, "files": self.files, "bytes": total_bytes}
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
            trailer = trailer_of(line) if not line.startswith(b'{"path":') else None
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

    def digests(self, wanted: Iterable[str], key: Callable[[str], str] = absolute) -> dict[str, str]:
        """The digests of the entries whose ``key(path)`` is one of ``wanted``, by that key; memory holds those only
        (a format 2 manifest is read through once)."""
        want = set(wanted)
        found: dict[str, str] = {}
        for entry in self.entries():
            name = key(entry.path)
            if name in want:
                found[name] = entry.sha256
        return found


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
              "full_hash": iso(now_ns) if full else old_header.get("full_hash"), "walk_started": iso(now_ns)}
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

    encode = encode_basestring_ascii
    line = next(lines, None)
    try:
        for path, st in walk(tops, exclude, note_error):
            prefix = (_PREFIX % (encode(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)).encode("ascii")
            if (not full and line is not None and line.startswith(prefix) and len(line) == len(prefix) + 66
                    and st.st_ctime_ns < racy_from):
                # the fast path: the previous line has this path and this metadata byte for byte, so it stays
                new_line = line
                line = next(lines, None)
                reused += 1
            else:
                old: Entry | None = None
                old_line = None
                while line is not None:
                    if trailer_of(line) is not None:
                        line = None
                        break
                    try:
                        candidate = parse_entry(line)
                    except ManifestError as exc:
                        raise _PreviousBroken(str(exc)) from exc
                    if candidate.path > path:
                        break
                    if candidate.path == path:
                        old, old_line = candidate, line
                    else:
                        removed += 1  # gone since the previous recording
                        out.diverge()
                    line = next(lines, None)
                    if old is not None:
                        break
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
                new_line = prefix + digest.encode("ascii") + b'"}'
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
