# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scope of a ransomware event on a live host: the body of ``restoreops.dr.ransomware_scan``.

Walks the given trees without following symbolic links, matches every name against the marker patterns
(``_content.MarkerPatterns``: renamed files and ransom notes) and takes the cheap entropy sample of
``_content.sample_entropy`` from files changed since a cutoff. Everything only reads, and reads a bounded number of
bytes per file. The summary (:func:`summarize`: affected directories, the earliest marker time that becomes the
infection time estimate) is a pure function over the hits, so it is unit-tested without a filesystem.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import os
import stat
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from ansible_collections.restoreops.dr.plugins.module_utils._content import MarkerPatterns, sample_entropy
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError
from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time

# Formats that are compressed or encrypted by design: their entropy says nothing about ransomware.
DEFAULT_ENTROPY_EXCLUDES = (
    "*.gz", "*.tgz", "*.xz", "*.zst", "*.bz2", "*.zip", "*.7z", "*.rar", "*.jpg", "*.jpeg", "*.png", "*.gif",
    "*.webp", "*.mp3", "*.mp4", "*.mkv", "*.pdf", "*.docx", "*.xlsx", "*.pptx", "*.odt", "*.deb", "*.rpm",
    "*.gpg", "*.asc", "*.pem", "*.key", "*.pack", "*.idx",
)


def iso(stamp: float) -> str:
    return _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).isoformat(timespec="seconds")


def walk(paths: Sequence[str], excludes: Sequence[str], one_file_system: bool) -> Iterator[Tuple[str, os.stat_result]]:
    """Every regular file below ``paths`` (lstat, links never followed), minus the excluded trees."""
    for top in paths:
        try:
            top_st = os.lstat(top)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(top_st.st_mode):
            yield top, top_st
            continue
        stack = [top]
        while stack:
            current = stack.pop()
            try:
                entries = list(os.scandir(current))
            except OSError:
                continue
            for entry in entries:
                path = entry.path
                if any(path == e or path.startswith(e.rstrip("/") + "/") for e in excludes):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if one_file_system and st.st_dev != top_st.st_dev:
                        continue
                    stack.append(path)
                elif stat.S_ISREG(st.st_mode):
                    yield path, st


def scan(paths: Sequence[str], markers: Sequence[str], since: float, max_entropy: float, entropy_sample: int,
         entropy_excludes: Sequence[str], excludes: Sequence[str], one_file_system: bool = True,
         max_files: int = 0) -> Dict[str, Any]:
    """Marker hits and high-entropy recently changed files, plus the counts of what was looked at."""
    patterns = MarkerPatterns(markers)
    skip_entropy = [p.lower() for p in entropy_excludes]
    hits: List[Dict[str, Any]] = []
    hot: List[Dict[str, Any]] = []
    files = recent = sampled = 0
    truncated = False
    for path, st in walk(paths, excludes, one_file_system):
        files += 1
        if max_files and files > max_files:
            truncated = True
            break
        if patterns and patterns.matches(path):
            hits.append({"path": path, "mtime": iso(st.st_mtime), "size": st.st_size})
            continue
        if st.st_mtime < since and st.st_ctime < since:
            continue
        recent += 1
        name = os.path.basename(path).lower()
        if sampled >= entropy_sample or any(fnmatch.fnmatchcase(name, p) for p in skip_entropy):
            continue
        try:
            value = sample_entropy(path)
        except OSError:
            continue
        if value is None:
            continue
        sampled += 1
        if value > max_entropy:
            hot.append({"path": path, "mtime": iso(st.st_mtime), "size": st.st_size, "entropy": value})
    return {"markers": hits, "high_entropy": hot, "files_seen": files, "recent_files": recent,
            "sampled": sampled, "truncated": truncated}


def affected_directories(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The directories holding hits, each with its count, most affected first (then by path)."""
    counts: Dict[str, int] = {}
    for record in records:
        directory = os.path.dirname(record["path"]) or "/"
        counts[directory] = counts.get(directory, 0) + 1
    return [{"path": d, "count": n} for d, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def summarize(found: Dict[str, Any], override: Optional[str]) -> Dict[str, Any]:
    """The verdict: affected or not, the affected directories, the earliest marker time and the infection time
    estimate (the override when given, else the earliest marker, else the earliest high-entropy file)."""
    markers = sorted(found["markers"], key=lambda r: r["mtime"])
    hot = sorted(found["high_entropy"], key=lambda r: r["mtime"])
    earliest_marker = markers[0]["mtime"] if markers else None
    earliest_hot = hot[0]["mtime"] if hot else None
    if override:
        estimate, source = iso(parse_time(override).timestamp()), "override"
    elif earliest_marker:
        estimate, source = earliest_marker, "earliest marker"
    elif earliest_hot:
        estimate, source = earliest_hot, "earliest high-entropy file"
    else:
        estimate, source = None, "none"
    return {
        "affected": bool(markers or hot),
        "markers": markers,
        "marker_count": len(markers),
        "high_entropy": hot,
        "high_entropy_count": len(hot),
        "affected_paths": affected_directories(markers + hot),
        "earliest_marker_time": earliest_marker,
        "earliest_high_entropy_time": earliest_hot,
        "infection_time": estimate,
        "infection_time_source": source,
    }


def validate(params: Dict[str, Any]) -> float:
    for path in list(params["paths"]) + list(params["excludes"]):
        if not os.path.isabs(path):
            raise InputError(f"paths and excludes must be absolute, not {path!r}")
    if not params["paths"]:
        raise InputError("paths must name at least one tree to scan")
    if params["entropy_sample"] < 0 or params["max_files"] < 0:
        raise InputError("entropy_sample and max_files must not be negative")
    if not 0 < params["max_entropy"] <= 8:
        raise InputError("max_entropy is in bits per byte, above 0 and at most 8")
    if params["infection_time"]:
        try:
            parse_time(params["infection_time"])
        except ValueError as exc:
            raise InputError(f"infection_time is not an ISO 8601 time: {exc}") from None
    if params["changed_since"]:
        try:
            return parse_time(params["changed_since"]).timestamp()
        except ValueError as exc:
            raise InputError(f"changed_since is not an ISO 8601 time: {exc}") from None
    if params["changed_within"] <= 0:
        raise InputError("changed_within must be a positive number of seconds")
    return time.time() - params["changed_within"]


def main(module: Any) -> Dict[str, Any]:
    params = module.params
    since = validate(params)
    started = time.monotonic()
    found = scan(params["paths"], params["markers"], since, params["max_entropy"], params["entropy_sample"],
                 params["entropy_excludes"], params["excludes"], params["one_file_system"], params["max_files"])
    result = summarize(found, params["infection_time"] or None)
    result.update(changed=False, changed_since=iso(since), files_seen=found["files_seen"],
                  recent_files=found["recent_files"], sampled=found["sampled"], truncated=found["truncated"],
                  duration=round(time.monotonic() - started, 3))
    return result
