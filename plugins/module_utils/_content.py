# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a file's name and content say about ransomware: marker names, a cheap entropy sample, content checks.

Used on restored samples (``restoreops.dr.backup_known_good``) and meant for scans of live hosts too, so everything
here only reads, never follows a symbolic link (a restored link may point at a live file outside the sandbox), and
reads a bounded number of bytes per file. The checks return ``None`` when a file is fine, else a short reason.
"""

from __future__ import annotations

import collections
import contextlib
import fnmatch
import json
import math
import os
import re
import sqlite3
import stat
from typing import Iterator, List, Optional, Sequence, Tuple

# File names ransomware leaves behind: renamed files and ransom notes (matched case-insensitively). Callers add the
# extension of the strain they see; these are the generic ones.
DEFAULT_MARKERS = (
    "*.encrypted",
    "*.locked",
    "*.crypt",
    "*.crypted",
    "DECRYPT_README*",
    "README_DECRYPT*",
    "HOW_TO_DECRYPT*",
    "HOW_TO_RESTORE*",
    "RESTORE_FILES*",
    "*_RECOVER_INSTRUCTIONS*",
)
BLOCK = 4096
MIN_ENTROPY_BYTES = 1024
DEFAULT_MAX_ENTROPY = 7.5
MAX_PARSE_BYTES = 64 << 20


class MarkerPatterns:
    """Shell patterns matched case-insensitively against a file's name, or its whole path when they hold a ``/``."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = [p for p in patterns if p]
        self._names = self._compile([p for p in self.patterns if "/" not in p])
        self._paths = self._compile([p for p in self.patterns if "/" in p])

    @staticmethod
    def _compile(patterns: Sequence[str]) -> Optional[re.Pattern[str]]:
        if not patterns:
            return None
        return re.compile("|".join(f"(?:{fnmatch.translate(p.lower())})" for p in patterns))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str) -> bool:
        lowered = path.lower()
        name = lowered.rstrip("/").rsplit("/", 1)[-1]
        if self._names is not None and self._names.match(name):
            return True
        return self._paths is not None and bool(self._paths.match(lowered))


def glob_matches(pattern: str, path: str) -> bool:
    """``fnmatch`` over an absolute path; ``*`` also crosses ``/``, so ``/srv/app/*`` is the whole tree below."""
    return fnmatch.fnmatchcase(path, pattern)


def shannon_entropy(data: bytes) -> float:
    """Bits per byte (0 for empty data, at most 8)."""
    if not data:
        return 0.0
    total = len(data)
    return -sum(n / total * math.log2(n / total) for n in collections.Counter(data).values())


def _open_regular(path: str) -> Tuple[int, os.stat_result]:
    """A descriptor on a regular file, never through a symbolic link; OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0))
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd, st


def sample_blocks(path: str, block: int = BLOCK) -> List[bytes]:
    """The head, the middle and the tail (``block`` bytes each) of a file, or the whole of a small one.

    Several blocks rather than one: some strains encrypt only the start of a file, others every Nth megabyte.
    """
    fd, st = _open_regular(path)
    try:
        if st.st_size <= 3 * block:
            return [os.read(fd, st.st_size)]
        return [os.pread(fd, block, offset) for offset in (0, (st.st_size - block) // 2, st.st_size - block)]
    finally:
        os.close(fd)


def sample_entropy(path: str, block: int = BLOCK, min_bytes: int = MIN_ENTROPY_BYTES) -> Optional[float]:
    """The highest entropy of the sampled blocks, or None for a file shorter than ``min_bytes`` (too few bytes
    for the estimate to tell encrypted data from text)."""
    blocks = [b for b in sample_blocks(path, block) if len(b) >= min_bytes]
    if not blocks:
        return None
    return round(max(shannon_entropy(b) for b in blocks), 3)


def entropy_problem(path: str, max_entropy: float = DEFAULT_MAX_ENTROPY) -> Optional[str]:
    value = sample_entropy(path)
    if value is not None and value > max_entropy:
        return f"high-entropy content ({value} bits/byte > {max_entropy}), as encrypted data has"
    return None


def _read_bounded(path: str, limit: int = MAX_PARSE_BYTES) -> bytes:
    fd, st = _open_regular(path)
    try:
        if st.st_size > limit:
            raise OSError(f"larger than {limit} bytes; not parsed")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def json_problem(path: str) -> Optional[str]:
    try:
        json.loads(_read_bounded(path))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except ValueError as exc:
        return f"is not valid JSON ({str(exc)[:120]})"
    return None


def text_problem(path: str) -> Optional[str]:
    try:
        data = _read_bounded(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if b"\x00" in data:
        return "is not text (holds NUL bytes)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not UTF-8 text (byte {exc.start})"
    return None


def sqlite_problem(path: str) -> Optional[str]:
    """SQLite's own ``quick_check`` on the file, opened read-only and immutable (nothing is written beside it)."""
    try:
        fd, _st = _open_regular(path)
        os.close(fd)
        uri = "file:" + path.replace("?", "%3f").replace("#", "%23") + "?mode=ro&immutable=1"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            rows = conn.execute("PRAGMA quick_check").fetchall()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except sqlite3.Error as exc:
        return f"is not a sound SQLite database ({exc})"
    if rows != [("ok",)]:
        return "fails SQLite's quick_check: " + "; ".join(str(r[0]) for r in rows[:3])
    return None


CHECKS = {"json": json_problem, "text": text_problem, "sqlite": sqlite_problem}


def regular_files(root: str, top: str = "/") -> Iterator[Tuple[str, str]]:
    """``(path as on the backed-up host, local path)`` of every regular file restored under ``root`` below ``top``.
    Symbolic links are neither followed nor returned."""
    base = os.path.normpath(root)
    start = os.path.join(base, top.lstrip("/"))
    for dirpath, dirnames, names in os.walk(start, followlinks=False):
        dirnames.sort()
        for name in sorted(names):
            local = os.path.join(dirpath, name)
            try:
                mode = os.lstat(local).st_mode
            except OSError:
                continue
            if stat.S_ISREG(mode):
                yield "/" + os.path.relpath(local, base), local
