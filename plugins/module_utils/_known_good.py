# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last known-good snapshot: the body of ``restoreops.dr.backup_known_good``.

Walks a borg or restic repository's restore points newest first (only those taken before a cutoff, such as the
infection time estimate) and gives each one the caller's validations, stopping at the first that passes:

1. ``markers``: the snapshot's listing (metadata only, the whole snapshot or ``marker_paths``) is matched against
   ransomware file names; a hit fails the snapshot without restoring anything.
2. ``restore``: a sample (``includes``, plus the manifest) is restored into a sandbox directory.
3. ``manifest``: the sample against the checksum manifest recorded at backup time inside the same snapshot.
4. ``changed``: with ``max_changed_ratio``, the share of the sample's files whose checksum differs from the next
   older snapshot's manifest (a mass rewrite is what encryption looks like).
5. ``checks``: content checks on the restored files (JSON parses, UTF-8 text, SQLite quick_check, entropy sample,
   at least N files match).

The decisions are pure functions (:func:`order_candidates`, :func:`marker_check`, :func:`content_check`,
:func:`changed_ratio`, :func:`verdict_of`, :func:`walk`); the repository is only read (restic ``--no-lock``, borg
``--bypass-lock`` unless ``repository_lock``), and the sandbox is removed when the search ends.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ansible_collections.restoreops.dr.plugins.module_utils import _content
from ansible_collections.restoreops.dr.plugins.module_utils._borg.cli import BorgCLI
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError
from ansible_collections.restoreops.dr.plugins.module_utils._manifest import ManifestError, absolute
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import Restic, tool_runner
from ansible_collections.restoreops.dr.plugins.module_utils._restore import (
    BorgBackend,
    ResticBackend,
    Snapshot,
    in_scope,
    load_manifest,
    parse_borg_items,
    tree_stats,
    verify_against_manifest,
)
from ansible_collections.restoreops.dr.plugins.module_utils._sandbox import Sandbox, check_sandbox_path, remove
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource
from ansible_collections.restoreops.dr.plugins.module_utils._time import UTC, parse_time, with_offset

CHECK_TYPES = ("exists", "json", "text", "sqlite", "entropy")
LISTED = 20  # paths listed per finding (all are counted)


# --- the manifest: one seam, so the format-2 reader of _manifest can take over in one place ----------------------


def manifest_digests(path: str, includes: Sequence[str] = ()) -> Dict[str, str]:
    """``{absolute path: sha256}`` of a restored checksum manifest's files inside ``includes`` (any format; memory
    holds the sample's entries only)."""
    manifest = load_manifest(path)
    try:
        return {absolute(e.path): e.sha256 for e in manifest.entries() if in_scope(absolute(e.path), includes)}
    except ManifestError as exc:
        raise RestoreOpsError(f"The checksum manifest {exc}.") from exc


def verify_sample(root: str, digests: Mapping[str, str], includes: Sequence[str]) -> Dict[str, Any]:
    """``checked``, ``missing``, ``mismatched``, ``ok`` of the sample restored under ``root``."""
    return verify_against_manifest(root, dict(digests), includes, threads=2)


# --- the tools, read-only ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """One member of a restore point's listing, with its path as on the backed-up host."""

    path: str
    kind: str  # file, dir, symlink or what the tool calls it
    size: int = 0
    mtime: str = ""


BORG_KINDS = {"-": "file", "d": "dir", "l": "symlink"}


class ResticReader(ResticBackend):
    """restic for a search: no repository lock for anything (``snapshots`` and ``ls`` never take one; the restore
    gets ``--no-lock``) unless ``lock``, and the listing of a snapshot's members."""

    def __init__(self, restic: Restic, lock: bool = False) -> None:
        super().__init__(restic)
        if not lock:
            self.limit.append("--no-lock")

    def listing(self, snapshot: Snapshot, paths: Sequence[str] = ()) -> List[Listed]:
        return [Listed(path=node["path"], kind=str(node.get("type") or ""), size=int(node.get("size") or 0),
                       mtime=str(node.get("mtime") or "")) for node in self.restic.ls(snapshot.id, paths)]


class BorgReader(BorgBackend):
    """borg for a search (its :class:`BorgCLI` built with ``bypass_lock`` unless the caller wants the lock): one
    ``borg extract --noflags`` per sample (no restored immutable flag can keep the sandbox from being removed), and
    the listing of an archive's members."""

    def restore(self, snapshot: Snapshot, dest: str, includes: Sequence[str], workers: int) -> Dict[str, Any]:
        self.borg.run(["extract", "--noflags", f"{self.repository}::{snapshot.name}",
                       *[p.strip("/") for p in includes]], cwd=dest, check=True,
                      error=f"borg extract of {snapshot.name} failed")
        return {"workers": 1}

    def listing(self, snapshot: Snapshot, paths: Sequence[str] = ()) -> List[Listed]:
        result = self.borg.run(["list", "--json-lines", f"{self.repository}::{snapshot.name}",
                                *[p.strip("/") for p in paths]], check=True,
                               error=f"borg list of {snapshot.name} failed")
        return [Listed(path="/" + item.path.lstrip("/"), kind=BORG_KINDS.get(item.type, item.type), size=item.size,
                       mtime=with_offset(item.mtime) or "") for item in parse_borg_items(result.stdout)]


Reader = Union[ResticReader, BorgReader]


# --- pure decisions -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckSpec:
    """One content check: files whose path matches ``path`` (a shell pattern over absolute paths)."""

    path: str
    type: str
    max_entropy: float = _content.DEFAULT_MAX_ENTROPY
    min_matches: int = 1

    @property
    def name(self) -> str:
        return f"{self.type} {self.path}"


def parse_checks(raw: Optional[Sequence[Mapping[str, Any]]], includes: Sequence[str]) -> List[CheckSpec]:
    specs = []
    for item in raw or []:
        path = str(item.get("path") or "")
        kind = str(item.get("type") or "")
        if not path.startswith("/"):
            raise InputError(f"A check's path must be an absolute path or pattern, got {path!r}.")
        if kind not in CHECK_TYPES:
            raise InputError(f"A check's type must be one of {', '.join(CHECK_TYPES)}, got {kind!r}.")
        fixed = path.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
        if not any(in_scope(fixed, [inc]) or in_scope(inc, [fixed]) for inc in includes):
            raise InputError(f"The check on {path} looks outside the restored sample ({', '.join(includes)}); add "
                             "its directory to includes.")
        max_entropy = float(item.get("max_entropy") if item.get("max_entropy") is not None
                            else _content.DEFAULT_MAX_ENTROPY)
        if not 0 < max_entropy <= 8:
            raise InputError(f"max_entropy is in bits per byte, between 0 and 8; got {max_entropy}.")
        min_matches = int(item.get("min_matches") if item.get("min_matches") is not None else 1)
        if min_matches < 0:
            raise InputError("min_matches must not be negative.")
        specs.append(CheckSpec(path=path, type=kind, max_entropy=max_entropy, min_matches=min_matches))
    return specs


def order_candidates(snapshots: Sequence[Snapshot], before: Optional[dt.datetime]
                     ) -> Tuple[List[Snapshot], List[Snapshot]]:
    """(candidates newest first, taken strictly before ``before``; the newer ones, skipped), both newest first."""
    ordered = sorted(snapshots, key=lambda s: (parse_time(s.time), s.id), reverse=True)
    if before is None:
        return ordered, []
    return ([s for s in ordered if parse_time(s.time) < before], [s for s in ordered if parse_time(s.time) >= before])


def _listed(paths: Sequence[str]) -> str:
    more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
    return ", ".join(paths[:3]) + more


def marker_check(listing: Sequence[Listed], markers: _content.MarkerPatterns) -> Dict[str, Any]:
    """The ``markers`` record: which members of the listing carry a ransomware name, and the earliest's mtime."""
    found = [entry for entry in listing if markers.matches(entry.path)]
    times = sorted(parse_time(e.mtime) for e in found if e.mtime)
    record: Dict[str, Any] = {"check": "markers", "ok": not found, "count": len(found),
                              "paths": [e.path for e in found[:LISTED]],
                              "earliest": times[0].astimezone(UTC).isoformat() if times else None}
    if found:
        record["detail"] = (f"{len(found)} file(s) named like ransomware ({_listed([e.path for e in found])}), "
                            f"the earliest modified {record['earliest'] or 'at an unknown time'}")
    else:
        record["detail"] = f"no file among {len(listing)} listed matches {len(markers.patterns)} marker pattern(s)"
    return record


def manifest_check(outcome: Mapping[str, Any], manifest: str) -> Dict[str, Any]:
    missing, mismatched = list(outcome.get("missing") or []), list(outcome.get("mismatched") or [])
    ok = bool(outcome.get("ok"))
    if ok:
        detail = f"{outcome.get('checked', 0)} file(s) of the sample match the manifest recorded at backup time"
    else:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({_listed(missing)})")
        if mismatched:
            parts.append(f"{len(mismatched)} changed since the manifest was recorded ({_listed(mismatched)})")
        detail = "the sample differs from the manifest recorded at backup time: " + "; ".join(parts)
    return {"check": "manifest", "ok": ok, "detail": detail, "manifest": manifest,
            "checked": int(outcome.get("checked") or 0), "missing": missing[:LISTED],
            "mismatched": mismatched[:LISTED]}


def changed_ratio(older: Mapping[str, str], newer: Mapping[str, str], includes: Sequence[str]
                  ) -> Tuple[int, int]:
    """(files of the older manifest inside the sample, those of them gone or with another checksum in the newer)."""
    compared = changed = 0
    for path, digest in older.items():
        if not in_scope(path, includes):
            continue
        compared += 1
        if newer.get(path) != digest:
            changed += 1
    return compared, changed


def changed_check(older: Optional[Snapshot], counts: Optional[Tuple[int, int]], limit: float) -> Dict[str, Any]:
    if older is None or counts is None or counts[0] == 0:
        if older is None:
            why = "no older snapshot to compare with"
        elif counts is None:
            why = f"the manifest of the older snapshot {older.name or older.id[:8]} could not be read"
        else:
            why = f"the manifest of the older snapshot {older.name or older.id[:8]} lists no file of the sample"
        return {"check": "changed", "ok": True, "detail": why + "; not judged", "ratio": None}
    compared, changed = counts
    ratio = round(changed / compared, 4)
    ok = ratio <= limit
    detail = (f"{changed} of {compared} sample file(s) changed or vanished since {older.name or older.id[:8]} "
              f"({ratio:.0%}, {'within' if ok else 'above'} the {limit:.0%} allowed)")
    return {"check": "changed", "ok": ok, "detail": detail, "ratio": ratio, "compared_with": older.id}


def content_check(spec: CheckSpec, files: Sequence[Tuple[str, str]],
                  judge: Optional[Callable[[str], Optional[str]]] = None) -> Dict[str, Any]:
    """The record of one content check over the sample's regular files ``(path on the host, local path)``."""
    matched = [(p, local) for p, local in files if _content.glob_matches(spec.path, p)]
    if judge is None:
        judge = judge_for(spec)
    failed = []
    for path, local in matched:
        problem = judge(local)
        if problem:
            failed.append({"path": path, "problem": problem})
    too_few = len(matched) < spec.min_matches
    parts = []
    if too_few:
        parts.append(f"{len(matched)} file(s) match, at least {spec.min_matches} expected")
    if failed:
        first = failed[0]
        parts.append(f"{len(failed)} of {len(matched)} file(s) fail: {first['path']} {first['problem']}"
                     + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""))
    detail = "; ".join(parts) if parts else f"{len(matched)} file(s) pass"
    return {"check": spec.name, "ok": not too_few and not failed, "detail": detail, "files": len(matched),
            "failed": failed[:LISTED]}


def judge_for(spec: CheckSpec) -> Callable[[str], Optional[str]]:
    if spec.type == "exists":
        return lambda _local: None
    if spec.type == "entropy":
        return lambda local: _content.entropy_problem(local, spec.max_entropy)
    return _content.CHECKS[spec.type]


def verdict_of(checks: Sequence[Mapping[str, Any]]) -> Tuple[bool, List[str]]:
    """Good when every check passed; the reasons are the failed checks' details, in the order they ran."""
    reasons = [f"{c['check']}: {c['detail']}" for c in checks if not c.get("ok")]
    return not reasons, reasons


def walk(candidates: Sequence[Snapshot], evaluate: Callable[[Snapshot, Optional[Snapshot]], Dict[str, Any]],
         limit: int = 0) -> Tuple[List[Dict[str, Any]], Optional[Snapshot]]:
    """Evaluate the candidates newest first (each with the next older one, for comparisons) until one is good.

    Returns the records of every snapshot evaluated and the good one (None when none was, within ``limit``)."""
    records: List[Dict[str, Any]] = []
    count = len(candidates) if limit <= 0 else min(limit, len(candidates))
    for index in range(count):
        older = candidates[index + 1] if index + 1 < len(candidates) else None
        record = evaluate(candidates[index], older)
        records.append(record)
        if record["verdict"] == "good":
            return records, candidates[index]
    return records, None


def skipped_record(snapshot: Snapshot, before: dt.datetime) -> Dict[str, Any]:
    return {"snapshot": snapshot.as_dict(), "verdict": "skipped", "checks": [], "seconds": 0.0,
            "reasons": [f"taken at {snapshot.time}, not before {before.isoformat()}"]}


# --- on the host ------------------------------------------------------------------------------------------------


class Search:
    """One search: the backend, the sandbox and the validations; :meth:`evaluate` judges one snapshot."""

    def __init__(self, backend: Reader, sandbox: Sandbox, params: Mapping[str, Any], specs: Sequence[CheckSpec],
                 markers: _content.MarkerPatterns, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self.sandbox = sandbox
        self.includes = [os.path.normpath(p) for p in params["includes"]]
        self.manifest = params.get("manifest_path")
        self.marker_paths = list(params.get("marker_paths") or [])
        self.max_changed = params.get("max_changed_ratio")
        self.specs = list(specs)
        self.markers = markers
        self.clock = clock
        self._manifests: Dict[str, Optional[Dict[str, str]]] = {}

    def evaluate(self, snapshot: Snapshot, older: Optional[Snapshot]) -> Dict[str, Any]:
        start = self.clock()
        checks: List[Dict[str, Any]] = []
        try:
            self._evaluate(snapshot, older, checks)
        finally:
            remove(os.path.join(self.sandbox.path, snapshot.id))
        ok, reasons = verdict_of(checks)
        return {"snapshot": snapshot.as_dict(), "verdict": "good" if ok else "bad", "reasons": reasons,
                "checks": checks, "seconds": round(self.clock() - start, 3)}

    def _evaluate(self, snapshot: Snapshot, older: Optional[Snapshot], checks: List[Dict[str, Any]]) -> None:
        if self.markers:
            try:
                listing = self.backend.listing(snapshot, self.marker_paths)
            except RestoreOpsError as exc:
                checks.append({"check": "markers", "ok": False, "detail": f"the listing failed: {exc.msg}"})
                return
            checks.append(marker_check(listing, self.markers))
            if not checks[-1]["ok"]:
                return  # no need to restore a snapshot whose names already give it away
        root = self.sandbox.sub(snapshot.id)
        wanted = self.includes + ([self.manifest] if self.manifest and not in_scope(self.manifest, self.includes)
                                  else [])
        began = self.clock()
        try:
            self.backend.restore(snapshot, root, wanted, 1)
        except RestoreOpsError as exc:
            checks.append({"check": "restore", "ok": False, "detail": f"the sample could not be restored: {exc.msg}"})
            return
        files, size = tree_stats(root)
        checks.append({"check": "restore", "ok": True, "files": files, "bytes": size,
                       "detail": f"{files} file(s), {size} bytes restored in {self.clock() - began:.1f} s"})
        if self.manifest:
            digests = self._manifest_of(snapshot, root)
            if digests is None:
                checks.append({"check": "manifest", "ok": False, "manifest": self.manifest,
                               "detail": f"the manifest {self.manifest} is not in the snapshot or cannot be read"})
            else:
                checks.append(manifest_check(verify_sample(root, digests, self.includes), self.manifest))
                if self.max_changed is not None:
                    older_digests = self._manifest_of(older) if older is not None else None
                    counts = changed_ratio(older_digests, digests, self.includes) \
                        if older_digests is not None else None
                    checks.append(changed_check(older, counts, float(self.max_changed)))
        if self.specs:
            sample = list(_content.regular_files(root))
            checks.extend(content_check(spec, sample) for spec in self.specs)

    def _manifest_of(self, snapshot: Snapshot, root: Optional[str] = None) -> Optional[Dict[str, str]]:
        """A snapshot's manifest: read from its restored sample, or restored alone (for the older neighbour)."""
        if snapshot.id in self._manifests:
            return self._manifests[snapshot.id]
        digests = None
        manifest = self.manifest or ""
        if root is None:
            root = self.sandbox.sub(snapshot.id + ".manifest")
            try:
                self.backend.restore(snapshot, root, [manifest], 1)
            except RestoreOpsError:
                root = None
        if root is not None:
            try:
                digests = manifest_digests(os.path.join(root, manifest.lstrip("/")), self.includes)
            except RestoreOpsError:
                digests = None
        remove(os.path.join(self.sandbox.path, snapshot.id + ".manifest"))
        self._manifests[snapshot.id] = digests
        return digests


def _check_params(params: Mapping[str, Any]) -> None:
    tool = params["tool"]
    repo = params["repository"]
    if tool == "borg" and "://" not in repo and not os.path.isabs(repo):
        raise InputError(f"repository must be an absolute path or an ssh:// URL for borg, got {repo!r}.")
    if tool == "restic" and ":" not in repo and not os.path.isabs(repo):
        raise InputError(f"repository must be an absolute path or a restic backend URL, got {repo!r}.")
    if params.get("key_file") and tool != "borg":
        raise InputError("key_file applies to borg keyfile repositories only.")
    includes = params.get("includes") or []
    if not includes:
        raise InputError("includes must name the sample to restore (absolute paths), for example the application "
                         "data directory and the backup context.")
    for key, values in (("includes", includes), ("marker_paths", params.get("marker_paths") or []),
                        ("manifest_path", [params["manifest_path"]] if params.get("manifest_path") else [])):
        for value in values:
            if not os.path.isabs(value):
                raise InputError(f"{key} must hold absolute paths, got {value!r}.")
    ratio = params.get("max_changed_ratio")
    if ratio is not None and not 0 <= float(ratio) <= 1:
        raise InputError(f"max_changed_ratio is a share between 0 and 1, got {ratio}.")
    if ratio is not None and not params.get("manifest_path"):
        raise InputError("max_changed_ratio compares manifests: give manifest_path.")
    if int(params.get("max_snapshots") or 0) < 0:
        raise InputError("max_snapshots must not be negative (0 examines every candidate).")


def backend_for(module: Any, params: Mapping[str, Any]) -> Reader:
    """The tool, read-only towards the repository unless ``repository_lock``."""
    secret = SecretSource(value=params.get("password"), file=params.get("password_file"),
                          command=params.get("password_command"), label="password").validate()
    lock = bool(params.get("repository_lock"))
    if params["tool"] == "restic":
        return ResticReader(Restic(tool_runner(module, params["repository"], secret, params.get("env"),
                                               params.get("cache_dir"), params.get("binary"))), lock=lock)
    borg = BorgCLI(module, secret, binary=params.get("binary"), repo=params["repository"], purpose="restore",
                   key_file=params.get("key_file"), extra_env=params.get("env"), bypass_lock=not lock)
    return BorgReader(borg, params["repository"])


def main(module: Any) -> Dict[str, Any]:
    params = module.params
    _check_params(params)
    includes = [os.path.normpath(p) for p in params["includes"]]
    specs = parse_checks(params.get("checks"), includes)
    markers = _content.MarkerPatterns(params.get("markers") or [])
    protected = [("repository", params["repository"]), ("password_file", params.get("password_file")),
                 ("key_file", params.get("key_file")), ("cache_dir", params.get("cache_dir"))]
    protected += [("includes", p) for p in includes]
    sandbox_path = check_sandbox_path(params["sandbox_dir"], protected)
    try:
        before = parse_time(params["before"], naive_tz=UTC) if params.get("before") else None
    except ValueError as exc:
        raise InputError(f"before must be an ISO 8601 time such as 2026-03-14T09:00:00+00:00: {exc}.") from None

    backend = backend_for(module, params)
    version = backend.version()
    snapshots = backend.snapshots(params.get("host"))
    candidates, newer = order_candidates(snapshots, before)
    skipped = [skipped_record(s, before) for s in newer] if before is not None else []
    limit = int(params.get("max_snapshots") or 0)
    result: Dict[str, Any] = {"changed": False, "tool_version": version, "sandbox_dir": sandbox_path,
                              "candidates": len(candidates)}
    if module.check_mode:
        planned = candidates[:limit] if limit else candidates
        result.update(walk=skipped, would_examine=[s.as_dict() for s in planned],
                      msg=f"Would examine up to {len(planned)} snapshot(s), newest first, in a sandbox at "
                          f"{sandbox_path}" + (f"; {len(skipped)} newer one(s) skipped" if skipped else "") + ".")
        return result
    if not candidates:
        raise RestoreOpsError("No snapshot is a candidate" + (f" (none was taken before {before.isoformat()})"
                                                              if before is not None else "") + ".",
                              walk=skipped, **result)
    started = time.monotonic()
    with Sandbox(sandbox_path) as sandbox:
        search = Search(backend, sandbox, {**params, "includes": includes}, specs, markers)
        records, good = walk(candidates, search.evaluate, limit)
    result.update(walk=skipped + records, examined=len(records), duration=round(time.monotonic() - started, 3))
    bad = [r for r in records if r["verdict"] == "bad"]
    if good is None:
        examined = f"{len(records)} examined" + (f" of {len(candidates)}" if len(records) < len(candidates) else "")
        raise RestoreOpsError(f"No known-good snapshot: every candidate failed its validations ({examined}); the "
                              f"newest failed with: {bad[0]['reasons'][0] if bad else 'no reason recorded'}",
                              **result)
    result["snapshot"] = good.as_dict()
    result["msg"] = (f"{good.name or good.id[:8]} ({good.time}) is the newest snapshot that passes"
                     + (f"; {len(bad)} newer one(s) failed" if bad else "")
                     + (f", {len(skipped)} were taken after the cutoff" if skipped else "") + ".")
    return result
