from __future__ import annotations

import datetime as dt
import json
import os
import shutil

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _content, _known_good
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError, UnsafeError
from ansible_collections.restoreops.dr.plugins.module_utils._known_good import Listed
from ansible_collections.restoreops.dr.plugins.module_utils._restore import Backend, Snapshot
from ansible_collections.restoreops.dr.plugins.module_utils._sandbox import MARKER, Sandbox, check_sandbox_path

UTC = dt.UTC


def snap(day: int, ident: str | None = None) -> Snapshot:
    return Snapshot(id=ident or f"id{day:02d}" + "0" * 60, time=f"2026-03-{day:02d}T02:00:00Z", name=f"s{day}")


S10, S11, S12, S13, S14 = (snap(d) for d in (10, 11, 12, 13, 14))


# --- the walk order and the walk -----------------------------------------------------------------------------------


def test_candidates_are_newest_first_and_the_cutoff_is_strict():
    cutoff = dt.datetime(2026, 3, 13, 2, 0, tzinfo=UTC)  # exactly the 13th's time: not before it
    candidates, skipped = _known_good.order_candidates([S11, S14, S10, S13, S12], cutoff)
    assert candidates == [S12, S11, S10]
    assert skipped == [S14, S13]
    assert _known_good.order_candidates([S11, S13], None) == ([S13, S11], [])


def test_walk_stops_at_the_first_good_one_and_passes_the_older_neighbour():
    seen = []

    def evaluate(snapshot, older):
        seen.append((snapshot.name, older.name if older else None))
        return {"verdict": "good" if snapshot in (S11, S10) else "bad"}

    records, good = _known_good.walk([S13, S12, S11, S10], evaluate)
    assert good == S11
    assert seen == [("s13", "s12"), ("s12", "s11"), ("s11", "s10")]
    assert [r["verdict"] for r in records] == ["bad", "bad", "good"]


def test_walk_with_a_limit_and_none_good():
    records, good = _known_good.walk([S13, S12, S11], lambda s, o: {"verdict": "bad"}, limit=2)
    assert good is None and len(records) == 2
    records, good = _known_good.walk([S13], lambda s, o: {"verdict": "bad", "older": o})
    assert good is None and records[0]["older"] is None
    assert _known_good.walk([], lambda s, o: {"verdict": "good"}) == ([], None)


# --- the verdicts ------------------------------------------------------------------------------------------------


def test_verdict_lists_every_failed_check_in_order():
    ok, reasons = _known_good.verdict_of([
        {"check": "markers", "ok": True, "detail": "none"},
        {"check": "manifest", "ok": False, "detail": "2 changed"},
        {"check": "json /x/*.json", "ok": False, "detail": "1 of 1 file(s) fail"},
    ])
    assert not ok
    assert reasons == ["manifest: 2 changed", "json /x/*.json: 1 of 1 file(s) fail"]
    assert _known_good.verdict_of([{"check": "restore", "ok": True, "detail": ""}]) == (True, [])


def test_marker_check_names_the_earliest_marker():
    listing = [Listed("/srv/app/a.csv", "file", 10, "2026-03-12T10:00:00Z"),
               Listed("/srv/app/a.csv.encrypted", "file", 10, "2026-03-12T23:59:00+01:00"),
               Listed("/srv/app/DECRYPT_README.txt", "file", 10, "2026-03-12T23:41:07Z"),
               Listed("/srv/app/b.csv.ENCRYPTED", "file", 10, "")]
    record = _known_good.marker_check(listing, _content.MarkerPatterns(_content.DEFAULT_MARKERS))
    assert not record["ok"]
    assert record["count"] == 3
    assert record["earliest"] == "2026-03-12T22:59:00+00:00"
    assert "3 file(s) named like ransomware" in record["detail"]
    clean = _known_good.marker_check(listing[:1], _content.MarkerPatterns(["*.encrypted"]))
    assert clean["ok"] and clean["earliest"] is None and "1 listed" in clean["detail"]


def test_manifest_check_sentences():
    good = _known_good.manifest_check({"ok": True, "checked": 4, "missing": [], "mismatched": []}, "/m.json")
    assert good["ok"] and "4 file(s)" in good["detail"]
    bad = _known_good.manifest_check({"ok": False, "checked": 4, "missing": ["/a"],
                                      "mismatched": ["/b", "/c", "/d", "/e"]}, "/m.json")
    assert not bad["ok"]
    assert "1 missing (/a)" in bad["detail"]
    assert "4 changed since the manifest was recorded (/b, /c, /d and 1 more)" in bad["detail"]


def test_changed_ratio_counts_only_the_sample():
    older = {"/srv/app/a": "1", "/srv/app/b": "2", "/srv/app/c": "3", "/srv/app/d": "4", "/etc/x": "5"}
    newer = {"/srv/app/a": "1", "/srv/app/b": "X", "/srv/app/c.encrypted": "9", "/srv/app/d": "4", "/etc/x": "6"}
    assert _known_good.changed_ratio(older, newer, ["/srv/app"]) == (4, 2)
    record = _known_good.changed_check(S12, (4, 2), 0.4)
    assert not record["ok"] and record["ratio"] == 0.5 and "above the 40% allowed" in record["detail"]
    assert _known_good.changed_check(S12, (4, 1), 0.4)["ok"]
    for older_snap, counts, why in ((None, None, "no older snapshot"), (S12, None, "could not be read"),
                                    (S12, (0, 0), "lists no file of the sample")):
        record = _known_good.changed_check(older_snap, counts, 0.1)
        assert record["ok"] and record["ratio"] is None and why in record["detail"]


def test_content_check_counts_matches_and_failures():
    files = [("/srv/app/a.json", "/l/a"), ("/srv/app/b.json", "/l/b"), ("/srv/app/c.txt", "/l/c")]
    spec = _known_good.CheckSpec(path="/srv/app/*.json", type="json")
    record = _known_good.content_check(spec, files, judge=lambda local: "is not valid JSON" if local == "/l/b"
                                       else None)
    assert not record["ok"]
    assert record["files"] == 2
    assert record["failed"] == [{"path": "/srv/app/b.json", "problem": "is not valid JSON"}]
    assert record["detail"] == "1 of 2 file(s) fail: /srv/app/b.json is not valid JSON"
    missing = _known_good.content_check(_known_good.CheckSpec("/srv/app/*.db", "exists", min_matches=1), files)
    assert not missing["ok"] and missing["detail"] == "0 file(s) match, at least 1 expected"
    assert _known_good.content_check(_known_good.CheckSpec("/srv/*", "exists", min_matches=3), files)["ok"]


@pytest.mark.parametrize(("raw", "message"), [
    ([{"path": "relative/*.json", "type": "json"}], "absolute path"),
    ([{"path": "/srv/app/*.json", "type": "yaml"}], "must be one of"),
    ([{"path": "/etc/*.conf", "type": "text"}], "outside the restored sample"),
    ([{"path": "/srv/app/x", "type": "entropy", "max_entropy": 9}], "between 0 and 8"),
    ([{"path": "/srv/app/x", "type": "exists", "min_matches": -1}], "must not be negative"),
])
def test_bad_checks(raw, message):
    with pytest.raises(InputError, match=message):
        _known_good.parse_checks(raw, ["/srv/app"])


def test_checks_may_sit_above_or_below_the_includes():
    specs = _known_good.parse_checks([{"path": "/srv/*", "type": "exists"},
                                      {"path": "/srv/app/data/*.json", "type": "json", "max_entropy": None}],
                                     ["/srv/app"])
    assert [s.name for s in specs] == ["exists /srv/*", "json /srv/app/data/*.json"]
    assert specs[1].max_entropy == _content.DEFAULT_MAX_ENTROPY


# --- the sandbox -------------------------------------------------------------------------------------------------


def test_sandbox_paths_that_could_hurt_are_refused():
    with pytest.raises(InputError, match="absolute"):
        check_sandbox_path("scratch")
    with pytest.raises(InputError, match="system directory"):
        check_sandbox_path("/var/tmp/")
    with pytest.raises(InputError, match="overlaps repository"):
        check_sandbox_path("/backup/repo/sandbox", [("repository", "/backup/repo")])
    with pytest.raises(InputError, match="overlaps includes /srv/app;"):
        check_sandbox_path("/srv/app/data/box", [("includes", "/srv/app")])
    with pytest.raises(InputError, match="overlaps includes /srv/app/data"):
        check_sandbox_path("/srv/app", [("includes", "/srv/app/data")])
    assert check_sandbox_path("/var/tmp/kg//", [("repository", "s3:bucket/x"), ("key_file", None)]) == "/var/tmp/kg"


def test_sandbox_lifecycle(tmp_path):
    path = tmp_path / "box"
    with Sandbox(str(path)) as box:
        assert (path / MARKER).is_file()
        assert oct(path.stat().st_mode & 0o777) == "0o700"
        sub = box.sub("abc")
        (tmp_path / "box" / "abc" / "f").write_text("x")
        assert box.sub("abc") == sub and os.listdir(sub) == []  # a fresh subdirectory each time
        with pytest.raises(InputError):
            box.sub("..", "escape")
    assert not path.exists()


def test_sandbox_refuses_foreign_data_and_reclaims_its_own(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep").write_text("data")
    with pytest.raises(UnsafeError, match="already holds data"):
        Sandbox(str(foreign)).open()
    assert (foreign / "keep").read_text() == "data"
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(UnsafeError, match="not a directory"):
        Sandbox(str(afile)).open()
    left = tmp_path / "left"
    (left / "old").mkdir(parents=True)
    (left / MARKER).write_text("")
    box = Sandbox(str(left)).open()
    assert box.reclaimed and os.listdir(left) == [MARKER]
    box.close()
    assert not left.exists()


# --- a search over a fake repository -------------------------------------------------------------------------------


class TreeBackend(Backend):
    """Snapshots as directory trees on disk: ``restore`` copies the wanted paths, ``listing`` walks the tree."""

    def __init__(self, trees: dict[str, str], fail_restore: set[str] | None = None) -> None:
        self.trees = trees
        self.fail_restore = fail_restore or set()
        self.restored: list[tuple[str, list[str]]] = []

    def listing(self, snapshot, paths=()):
        root = self.trees[snapshot.id]
        return [Listed(p, "file", 1, "2026-03-12T23:00:00Z") for p, _local in _content.regular_files(root)]

    def restore(self, snapshot, dest, includes, workers):
        self.restored.append((snapshot.name, list(includes)))
        if snapshot.id in self.fail_restore:
            raise RestoreOpsError("pack 1234 is damaged")
        root = self.trees[snapshot.id]
        for inc in includes:
            src = os.path.join(root, inc.lstrip("/"))
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(dest, inc.lstrip("/")), symlinks=True, dirs_exist_ok=True)
            elif os.path.lexists(src):
                os.makedirs(os.path.dirname(os.path.join(dest, inc.lstrip("/"))), exist_ok=True)
                shutil.copy2(src, os.path.join(dest, inc.lstrip("/")), follow_symlinks=False)
        return {"workers": 1}


def make_tree(root, files: dict[str, bytes | str]) -> str:
    digests = {}
    for path, content in files.items():
        local = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        with open(local, "wb") as handle:
            handle.write(data)
        digests[path] = __import__("hashlib").sha256(data).hexdigest()
    return json.dumps({"files": digests})


def test_search_judges_each_snapshot_and_cleans_up(tmp_path):
    good = {"/srv/app/orders.json": json.dumps([{"id": 1}]), "/srv/app/notes.txt": "hello\n"}
    trees = {}
    # the 12th: the manifest recorded before the data was overwritten
    for snapshot, files, manifest_of in ((S11, good, good),
                                         (S12, {**good, "/srv/app/orders.json": os.urandom(4000)}, good),
                                         (S13, {**good, "/srv/app/DECRYPT_README.txt": "pay"}, None)):
        root = str(tmp_path / "trees" / snapshot.name)
        manifest = make_tree(root, manifest_of or files)
        make_tree(root, files)
        os.makedirs(os.path.join(root, "ctx"), exist_ok=True)
        with open(os.path.join(root, "ctx", "manifest.json"), "w") as handle:
            handle.write(manifest)
        trees[snapshot.id] = root
    os.symlink("/etc/passwd", os.path.join(trees[S11.id], "srv", "app", "passwd.json"))
    backend = TreeBackend(trees)
    params = {"includes": ["/srv/app"], "manifest_path": "/ctx/manifest.json", "max_changed_ratio": 0.9}
    specs = _known_good.parse_checks([{"path": "/srv/app/*.json", "type": "json"}], ["/srv/app"])
    with Sandbox(str(tmp_path / "box")) as box:
        search = _known_good.Search(backend, box, params, specs, _content.MarkerPatterns(_content.DEFAULT_MARKERS))
        records, chosen = _known_good.walk([S13, S12, S11], search.evaluate)
        assert os.listdir(box.path) == [MARKER]  # every sample removed after its verdict
    assert chosen == S11
    assert [r["verdict"] for r in records] == ["bad", "bad", "good"]
    assert [c["check"] for c in records[0]["checks"]] == ["markers"]
    checks12 = {c["check"]: c for c in records[1]["checks"]}
    assert checks12["manifest"]["mismatched"] == ["/srv/app/orders.json"]
    assert not checks12["json /srv/app/*.json"]["ok"]
    assert checks12["changed"]["ok"]  # one of two files: 50% <= 90%
    # the link to /etc/passwd was restored as a link and never read
    assert records[2]["checks"][-1] == {"check": "json /srv/app/*.json", "ok": True, "detail": "1 file(s) pass",
                                        "files": 1, "failed": []}
    # the 13th was never restored; the 11th's manifest was restored alone once (for the 12th's comparison) and
    # then reused, not read again from the 11th's sample
    assert backend.restored == [("s12", ["/srv/app", "/ctx/manifest.json"]), ("s11", ["/ctx/manifest.json"]),
                                ("s11", ["/srv/app", "/ctx/manifest.json"])]
    assert not (tmp_path / "box").exists()


def test_a_snapshot_that_cannot_be_restored_is_bad_not_fatal(tmp_path):
    root = str(tmp_path / "t")
    make_tree(root, {"/srv/app/a": "x"})
    backend = TreeBackend({S12.id: root, S11.id: root}, fail_restore={S12.id})
    with Sandbox(str(tmp_path / "box")) as box:
        search = _known_good.Search(backend, box, {"includes": ["/srv/app"]}, [], _content.MarkerPatterns([]))
        records, chosen = _known_good.walk([S12, S11], search.evaluate)
    assert chosen == S11
    assert records[0]["reasons"] == ["restore: the sample could not be restored: pack 1234 is damaged"]


# --- read-only towards the repository ----------------------------------------------------------------------------

RESTIC_LS = "\n".join([
    json.dumps({"time": "2026-03-13T02:00:00Z", "paths": ["/srv"], "id": "a" * 64, "struct_type": "snapshot"}),
    json.dumps({"name": "srv", "type": "dir", "path": "/srv", "mtime": "2026-03-13T01:00:00Z",
                "struct_type": "node"}),
    json.dumps({"name": "a.encrypted", "type": "file", "path": "/srv/a.encrypted", "size": 12,
                "mtime": "2026-03-12T23:00:00.5Z", "struct_type": "node", "message_type": "node"}),
])
BORG_LS = "\n".join([
    json.dumps({"type": "d", "mode": "drwxr-xr-x", "path": "srv", "mtime": "2026-03-13T01:00:00.000000",
                "size": 0}),
    json.dumps({"type": "-", "mode": "-rw-r--r--", "path": "srv/a.encrypted", "mtime": "2026-03-12T23:00:00.500000",
                "size": 12}),
    json.dumps({"type": "l", "mode": "lrwxrwxrwx", "path": "srv/link", "mtime": "2026-03-12T23:00:00.000000",
                "size": 0}),
])


def test_restic_searches_without_any_lock(fake_module, tool_paths, tmp_path):
    module = fake_module({}, [(0, RESTIC_LS, ""), (0, "restic 0.14.0 compiled with go1.19", ""), (0, "", "")])
    params = {"tool": "restic", "repository": "/r", "password": "pw", "env": {}, "binary": None, "cache_dir": None}
    backend = _known_good.backend_for(module, params)
    listing = backend.listing(S13, ["/srv"])
    backend.restore(S13, str(tmp_path), ["/srv/app"], 1)
    assert listing == [Listed("/srv", "dir", 0, "2026-03-13T01:00:00Z"),
                       Listed("/srv/a.encrypted", "file", 12, "2026-03-12T23:00:00.5Z")]
    ls_cmd, restore_cmd = module.commands()[0], module.commands()[2]
    assert ls_cmd == ["ls", "--json", "--no-lock", S13.id, "--recursive", "/srv"]
    assert restore_cmd[:4] == ["restore", S13.id, "--target", str(tmp_path)] and "--no-lock" in restore_cmd
    locked = _known_good.backend_for(fake_module({}, [(0, "restic 0.14.0", ""), (0, "", "")]),
                                     {**params, "repository_lock": True})
    locked.restore(S13, str(tmp_path), ["/srv/app"], 1)
    assert "--no-lock" not in locked.restic.runner.module.commands()[1]


def test_borg_searches_without_any_lock_and_without_flags(fake_module, tool_paths, tmp_path):
    module = fake_module({}, [(0, BORG_LS, ""), (0, "", "")])
    params = {"tool": "borg", "repository": "/r", "password": "pw", "env": {}, "binary": None, "key_file": None}
    backend = _known_good.backend_for(module, params)
    listing = backend.listing(S13, ["/srv/"])
    backend.restore(S13, str(tmp_path), ["/srv/app"], 1)
    kinds = [(e.path, e.kind, e.size) for e in listing]
    assert kinds == [("/srv", "dir", 0), ("/srv/a.encrypted", "file", 12), ("/srv/link", "symlink", 0)]
    assert listing[1].mtime.startswith("2026-03-12T23:00:00.5")  # borg's local time, with this host's offset
    assert module.commands() == [["list", "--log-json", "--bypass-lock", "--json-lines", "/r::s13", "srv"],
                                 ["extract", "--log-json", "--bypass-lock", "--noflags", "/r::s13", "srv/app"]]
    assert module.calls[1]["cwd"] == str(tmp_path)
    locked = _known_good.backend_for(fake_module({}), {**params, "repository_lock": True})
    assert "--bypass-lock" not in locked.borg.argv(["list", "/r"])


@pytest.mark.parametrize(("change", "message"), [
    ({"repository": "relative"}, "absolute path or an ssh:// URL"),
    ({"tool": "restic", "repository": "relative"}, "absolute path or a restic backend URL"),
    ({"tool": "restic", "key_file": "/k"}, "key_file applies to borg"),
    ({"includes": []}, "includes must name the sample"),
    ({"marker_paths": ["srv"]}, "marker_paths must hold absolute paths"),
    ({"max_changed_ratio": 1.5}, "between 0 and 1"),
    ({"max_changed_ratio": 0.5, "manifest_path": None}, "give manifest_path"),
    ({"max_snapshots": -1}, "must not be negative"),
])
def test_check_params(change, message):
    params = {"tool": "borg", "repository": "/r", "includes": ["/srv"], "manifest_path": "/ctx/m.json",
              "max_snapshots": 0, **change}
    with pytest.raises(InputError, match=message):
        _known_good._check_params(params)
