from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import threading
import zlib

import pytest
from conftest import FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils import _manifest, _restore
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError
from ansible_collections.restoreops.dr.plugins.module_utils._restore import Item, Snapshot

SNAPS = [
    Snapshot(id="a" * 64, name="aaaaaaaa", time="2026-03-12T02:00:00.123456789+00:00"),
    Snapshot(id="b" * 64, name="bbbbbbbb", time="2026-03-13T02:00:00+00:00"),
    Snapshot(id="c" * 64, name="cccccccc", time="2026-03-14T02:00:00Z"),
]


def test_select_latest_and_before():
    assert _restore.select_snapshot(SNAPS).name == "cccccccc"
    before = _restore.parse_time("2026-03-14T00:00:00+00:00")
    assert _restore.select_snapshot(SNAPS, before=before).name == "bbbbbbbb"


def test_select_by_id_prefix_and_name():
    assert _restore.select_snapshot(SNAPS, "bbbbbbbb").id == "b" * 64
    assert _restore.select_snapshot(SNAPS, "a" * 10).name == "aaaaaaaa"
    with pytest.raises(InputError, match="No snapshot"):
        _restore.select_snapshot(SNAPS, "zzzzzzzz")


def test_select_named_snapshot_must_respect_before():
    with pytest.raises(InputError, match="not older"):
        _restore.select_snapshot(SNAPS, "cccccccc", before=_restore.parse_time("2026-03-14T00:00:00Z"))


def test_select_errors_when_nothing_qualifies():
    with pytest.raises(RestoreOpsError, match="no snapshots"):
        _restore.select_snapshot([])
    with pytest.raises(RestoreOpsError, match="known-good"):
        _restore.select_snapshot(SNAPS, before=_restore.parse_time("2020-01-01T00:00:00Z"))


def test_parse_tool_listings():
    restic = _restore.parse_restic_snapshots([{"id": "f" * 64, "short_id": "ffffffff", "time": "2026-01-01T00:00:00Z",
                                               "hostname": "db1", "paths": ["/srv"], "tags": None}])
    assert restic[0].host == "db1" and restic[0].paths == ("/srv",) and restic[0].tags == ()
    archive = {"id": "1" * 64, "name": "db1-2026", "start": "2026-01-01T00:00:00.000000",
               "time": "2026-01-01T00:00:00.000000"}
    borg = _restore.parse_borg_archives({"archives": [archive]})
    assert borg[0].name == "db1-2026"
    assert dt.datetime.fromisoformat(borg[0].time).utcoffset() is not None  # borg's local time, offset added


def items(*spec):
    return [Item(path=p, type=t, size=s, mode="drwxr-x---" if t == "d" else "-rw-r--r--") for p, t, s in spec]


def test_plan_splits_into_balanced_disjoint_groups():
    listing = items(("srv", "d", 0), ("srv/app", "d", 0),
                    *[(f"srv/app/f{i}", "-", 100 * (i + 1)) for i in range(10)],
                    ("etc", "d", 0), ("etc/app.conf", "-", 50))
    plan = _restore.plan_parallel_extract(listing, 2, min_units_per_worker=2)
    assert plan.workers == 2
    flat = [p for g in plan.groups for p in g]
    assert len(flat) == len(set(flat))                        # disjoint
    covered = {i.path for i in listing if i.type != "d"}
    assert all(any(path == u or path.startswith(u + "/") for u in flat) for path in covered)  # complete
    loads = [sum(i.size for i in listing if any(i.path == u or i.path.startswith(u + "/") for u in g))
             for g in plan.groups]
    assert max(loads) - min(loads) <= 1000                    # balanced within the largest unit
    assert {d.path for d in plan.upper_dirs} <= {"srv", "srv/app", "etc"}


def test_plan_single_worker_or_single_unit_is_not_split():
    assert _restore.plan_parallel_extract(items(("a", "-", 5)), 4).workers == 1
    assert _restore.plan_parallel_extract(items(("a", "-", 5), ("b", "-", 5)), 1).workers == 1


@pytest.mark.parametrize(("mode", "bits"), [("drwxr-x---", 0o750), ("-rw-r--r--", 0o644), ("-rwsr-xr-x", 0o4755),
                                            ("drwxrwsr-x", 0o2775), ("drwxrwxrwt", 0o1777), ("-rwSr--r--", 0o4644)])
def test_mode_bits(mode, bits):
    assert _restore.mode_bits(mode) == bits


def test_restore_dir_metadata(tmp_path):
    listing = [Item(path="srv/app", type="d", mode="drwxr-x---", user="root", group="root", uid=0, gid=0,
                    mtime="2026-01-01T00:00:00.000000")]
    assert _restore.restore_dir_metadata(str(tmp_path), listing) == 1
    st = os.stat(tmp_path / "srv" / "app")
    assert st.st_mode & 0o777 == 0o750
    assert int(st.st_mtime) == int(dt.datetime(2026, 1, 1).timestamp())  # borg's zone-less times are local time


def test_in_scope():
    assert _restore.in_scope("/srv/app/x", ["/srv/app"])
    assert not _restore.in_scope("/srv/apple", ["/srv/app"])
    assert _restore.in_scope("/anything", [])


def test_verify_against_manifest(tmp_path):
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "good").write_bytes(b"good")
    (tmp_path / "srv" / "bad").write_bytes(b"tampered")
    files = {"/srv/good": hashlib.sha256(b"good").hexdigest(), "/srv/bad": hashlib.sha256(b"bad").hexdigest(),
             "/srv/gone": "0" * 64, "/etc/outside": "0" * 64}
    result = _restore.verify_against_manifest(str(tmp_path), files, ["/srv"])
    assert result == {"checked": 3, "missing": ["/srv/gone"], "mismatched": ["/srv/bad"], "ok": False,
                      "missing_count": 1, "mismatched_count": 1, "tree_files": 2, "tree_bytes": 12}
    assert _restore.verify_against_manifest(str(tmp_path), {"/srv/good": files["/srv/good"]})["ok"] is True


def test_verify_reads_both_manifest_formats(tmp_path):
    """A restore from an old backup (manifest.json) still verifies; so does one recorded today (streamed)."""
    data = tmp_path / "srv"
    data.mkdir()
    (data / "f").write_bytes(b"payload")
    legacy = tmp_path / "manifest.json"
    legacy.write_text(json.dumps({"files": {str(data / "f"): hashlib.sha256(b"payload").hexdigest()}}))
    current = tmp_path / "manifest.jsonl.gz"
    _manifest.record([str(data)], str(current))
    for path, version in ((legacy, 1), (current, 2)):
        opened = _restore.load_manifest(str(path))
        assert opened.version == version
        result = _restore.verify_against_manifest("/", opened, [str(data)])
        assert (result["ok"], result["checked"]) == (True, 1)
    (data / "f").write_bytes(b"PAYLOAD")
    assert _restore.verify_against_manifest("/", _restore.load_manifest(str(current)), [str(data)])["mismatched"] == [
        str(data / "f")]
    whole = current.read_bytes()
    comp = zlib.compressobj(_manifest.LEVEL, zlib.DEFLATED, 31)
    # one file, and its directory (recorded for its mode, ACLs and extended attributes)
    trailer = comp.compress(b'{"end":true,"files":1,"bytes":7,"others":1}\n') + comp.flush()
    assert whole.endswith(trailer)
    for cut, problem in ((whole[:-len(trailer)], "is incomplete"), (whole[:-20], "cannot be read")):
        current.write_bytes(cut)  # a manifest cut at a gzip member boundary still decompresses: the trailer tells
        with pytest.raises(RestoreOpsError, match=problem):
            _restore.verify_against_manifest("/", _restore.load_manifest(str(current)), [str(data)])


def test_load_manifest_errors(tmp_path):
    with pytest.raises(RestoreOpsError, match="not in the restored data"):
        _restore.load_manifest(str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nofiles": 1}))
    with pytest.raises(RestoreOpsError, match="no 'files'"):
        _restore.load_manifest(str(bad))


def test_restic_repository_and_password_stay_off_argv(tmp_path):
    passfile = tmp_path / "pass"
    passfile.write_text("restic-password\n")
    params = {"tool": "restic", "repository": "rest:https://user:s3cret-url@backup.example/repo",
              "password_file": str(passfile), "password": None, "password_command": None, "snapshot": "latest",
              "before": None, "host": None, "includes": [], "staging_dir": "/nonexistent/staging",
              "manifest_path": None, "parallel": 0, "key_file": None, "env": {"AWS_SECRET_ACCESS_KEY": "awssecret"},
              "cache_dir": None, "lock_wait": None, "binary": "/bin/true", "estimate_size": False,
              "limit_download": None}
    snaps = '[{"id": "%s", "short_id": "aaaaaaaa", "time": "2026-03-14T02:00:00Z", "paths": ["/srv"]}]' % ("a" * 64)
    module = FakeModule(params, [(0, "restic 0.14.0 compiled with go1.19", ""), (0, snaps, "")], check_mode=True)
    result = _restore.main(module)
    assert result["changed"] and result["snapshot"]["name"] == "aaaaaaaa"
    for cmd, kwargs in module.calls:
        assert not any("s3cret-url" in arg or "awssecret" in arg or "backup.example" in arg for arg in cmd)
        env = kwargs["environ_update"]
        assert env["RESTIC_REPOSITORY"] == params["repository"]
        assert env["RESTIC_PASSWORD_FILE"] == str(passfile) and env["RESTIC_PASSWORD"] == ""
        assert "restic-password" not in " ".join(cmd)
        assert env["AWS_SECRET_ACCESS_KEY"] == "awssecret"


def test_borg_restore_follows_the_restore_policy(monkeypatch):
    # An inherited BORG_PASSPHRASE would win over the BORG_PASSCOMMAND chosen here: it must not reach borg.
    monkeypatch.setenv("BORG_PASSPHRASE", "inherited")
    monkeypatch.setenv("BORG_PASSPHRASE_FD", "9")
    params = {"repository": "/r", "env": {"BORG_RSH": "ssh -i /k"}, "key_file": "/etc/borg/key", "lock_wait": 30,
              "binary": None}
    borg = _restore.borg_cli(FakeModule(params), params, _restore.SecretSource(command="cat /p"))
    assert "BORG_PASSPHRASE" not in os.environ and "BORG_PASSPHRASE_FD" not in os.environ
    assert borg.env["BORG_PASSCOMMAND"] == "cat /p" and "BORG_PASSPHRASE" not in borg.env
    assert borg.env["BORG_KEY_FILE"] == "/etc/borg/key" and borg.env["BORG_RSH"] == "ssh -i /k"
    assert borg.env["BORG_RELOCATED_REPO_ACCESS_IS_OK"] == "yes"
    assert borg.argv(["list", "/r"]) == ["list", "--log-json", "--lock-wait", "30", "/r"]
    assert borg.runner.binary == "borg"


def test_borg_version_check_is_shared():
    backend = _restore.BorgBackend(_restore.borg_cli(FakeModule(answers=[(0, "borg 1.1.18", "")]),
                                                     {"repository": "/r", "binary": "/bin/true"},
                                                     _restore.SecretSource()), "/r")
    with pytest.raises(RestoreOpsError, match="too old"):
        backend.version()


@pytest.mark.parametrize(
    ("params", "message"),
    [({"tool": "borg", "repository": "relative/repo", "staging_dir": "/s"}, "absolute path or an ssh"),
     ({"tool": "restic", "repository": "/r", "staging_dir": "rel"}, "staging_dir must be an absolute"),
     ({"tool": "restic", "repository": "/r", "staging_dir": "/s", "key_file": "/k"}, "borg keyfile")],
)
def test_check_params(params, message):
    with pytest.raises(InputError, match=message):
        _restore._check_params(params)


def test_restore_lock_makes_a_second_run_wait_for_the_first(tmp_path):
    lock = str(tmp_path / "snap.lock")
    order: list[str] = []
    with _restore.restore_lock(lock) as waited:
        assert waited == 0.0
        assert oct(os.stat(lock).st_mode & 0o777) == "0o600"
        results: list[float] = []

        def second() -> None:
            with _restore.restore_lock(lock) as second_waited:
                order.append("second")
                results.append(second_waited)

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.3)
        assert thread.is_alive(), "the second holder did not wait for the first"
        order.append("first")
    thread.join(5)
    assert order == ["first", "second"]
    assert results[0] > 0
    with _restore.restore_lock(lock) as again:
        assert again == 0.0


class _RsyncModule:
    """Just enough of AnsibleModule for put_in_place: the real rsync."""

    def get_bin_path(self, name, required=False):
        return shutil.which(name)

    def run_command(self, argv):
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        return proc.returncode, proc.stdout, proc.stderr


def _staged(root, rel, files):
    for name, text in files.items():
        target = root / rel.lstrip("/") / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_put_in_place_renames_merges_and_leaves_what_is_in_place(tmp_path):
    staging = tmp_path / "staging" / "snap"
    live = tmp_path / "live"
    absent, empty, full, done = (str(live / n) for n in ("absent", "empty", "full", "done"))
    for path in (absent, empty, full):
        _staged(staging, path, {"a.txt": "restored " + os.path.basename(path), "sub/b.txt": "b"})
    os.makedirs(empty)
    os.makedirs(full)
    (live / "full" / "local.txt").write_text("kept")
    (live / "full" / "a.txt").write_text("stale")
    os.makedirs(done)

    module = _RsyncModule()
    predicted = _restore.put_in_place(module, str(staging), [absent, empty, full, done], check_mode=True)
    assert [(p["how"], p["changed"]) for p in predicted] == [
        ("renamed", True), ("renamed", True), ("merged", True), ("in place", False)]
    assert not os.path.exists(absent) and os.listdir(empty) == []

    placed = _restore.put_in_place(module, str(staging), [absent, empty, full, done])
    assert [p["how"] for p in placed] == ["renamed", "renamed", "merged", "in place"]
    assert (live / "absent" / "a.txt").read_text() == "restored absent"
    assert (live / "empty" / "sub" / "b.txt").read_text() == "b"
    assert (live / "full" / "a.txt").read_text() == "restored full"
    assert (live / "full" / "local.txt").read_text() == "kept"
    assert not any(os.path.lexists(str(staging) + p) for p in (absent, empty, full))

    again = _restore.put_in_place(module, str(staging), [absent, empty, full, done])
    assert all(p["how"] == "in place" and not p["changed"] for p in again)


def test_put_in_place_needs_includes():
    with pytest.raises(InputError, match="put_in_place needs includes"):
        _restore._check_params({"tool": "restic", "repository": "/r", "staging_dir": "/s", "put_in_place": True,
                                "includes": []})


@pytest.mark.parametrize("value", ["garbage", "2026-13-45", "2026-03-14T25:00", "14/03/2026 09:00",
                                   "2026-03-14T09:00+25:00", "1773478800"])
def test_before_that_cannot_be_read_names_the_option_and_the_formats(value):
    with pytest.raises(InputError, match=r"^before must be an ISO 8601 time, YYYY-MM-DDTHH:MM.*got") as caught:
        _restore.parse_before(value)
    assert "Traceback" not in caught.value.msg


def test_before_without_offset_is_utc():
    assert _restore.parse_before("2026-03-14 09:00").isoformat() == "2026-03-14T09:00:00+00:00"
    assert _restore.parse_before(None) is None


@pytest.mark.parametrize(
    ("params", "message"),
    [({"includes": ["srv/app"]}, "includes must be absolute paths.*'srv/app'"),
     ({"includes": ["/srv/app", "*.conf"]}, "includes must be absolute paths.*'\\*.conf'"),
     ({"staging_dir": "/"}, "staging_dir must not be /"),
     ({"staging_dir": "/srv/../"}, "staging_dir must not be /"),
     ({"staging_dir": "/offsite/restic/data/x"}, "staging_dir .* is inside the repository /offsite/restic"),
     ({"repository": "local:/offsite/restic", "staging_dir": "/offsite/restic"}, "inside the repository"),
     ({"tool": "borg", "repository": "/offsite/borg", "staging_dir": "/offsite/borg/stage"}, "inside the repository"),
     ({"parallel": -1}, "parallel must be 0 or more"),
     ({"before": "yesterday"}, "before must be an ISO 8601 time")],
)
def test_check_params_refuses_before_anything_runs(params, message):
    base = {"tool": "restic", "repository": "/offsite/restic", "staging_dir": "/var/lib/restoreops/staging"}
    with pytest.raises(InputError, match=message):
        _restore._check_params({**base, **params})


def test_check_params_accepts_a_remote_repository_and_normalises_includes():
    params = {"tool": "restic", "repository": "rest:http://127.0.0.1:8000/r", "staging_dir": "/srv/staging",
              "includes": ["/srv/app/", "/etc//ssh"]}
    assert _restore._check_params(params) is None
    assert params["includes"] == ["/srv/app", "/etc/ssh"]


class _ListingBackend(_restore.Backend):
    def __init__(self, missing):
        self.missing = missing

    def missing_includes(self, snapshot, includes):
        return [p for p in includes if p in self.missing]


def test_missing_includes_are_refused_with_what_the_snapshot_holds():
    snap = Snapshot(id="d" * 64, name="dddddddd", time="2026-03-14T02:00:00Z", paths=("/srv",))
    with pytest.raises(InputError, match=r"not in restic dddddddd .*: /srv/ap; nothing was restored\. "
                                         r"It holds /srv\.") as caught:
        _restore.refuse_missing_includes(_ListingBackend({"/srv/ap"}), snap, ["/srv/app", "/srv/ap"], "restic")
    assert caught.value.details["missing_includes"] == ["/srv/ap"]
    _restore.refuse_missing_includes(_ListingBackend(set()), snap, ["/srv/app"], "restic")


def test_restic_existing_paths_reads_ls_json():
    listing = "\n".join(json.dumps(x) for x in [
        {"time": "2026-03-14T02:00:00Z", "paths": ["/srv"], "id": "d" * 64},
        {"name": "app", "type": "dir", "path": "/srv/app"},
        {"name": "conf", "type": "dir", "path": "/srv/app/conf"},
    ])
    module = FakeModule({}, [(0, listing, "")])
    restic = _restore.Restic(_restore.tool_runner(module, "/r", _restore.SecretSource(value="pw-unit-9"), None, None,
                                                  "/bin/true"))
    backend = _restore.ResticBackend(restic)
    snap = Snapshot(id="d" * 64, time="2026-03-14T02:00:00Z")
    assert backend.missing_includes(snap, ["/srv/app", "/srv/nope"]) == ["/srv/nope"]
    cmd = module.calls[0][0]
    assert cmd[1:] == ["ls", "--json", "--no-lock", "d" * 64, "/srv/app", "/srv/nope"]


def test_borg_missing_includes_reads_one_listing():
    items = "\n".join(json.dumps({"path": p, "type": t}) for p, t in
                      [("srv/app", "d"), ("srv/app/conf", "d"), ("srv/app/conf/a.conf", "-")])
    module = FakeModule({}, [(1, items, '{"type": "log_message", "levelname": "WARNING", '
                                        '"message": "Include pattern \'srv/nope\' never matched."}')])
    backend = _restore.BorgBackend(_restore.borg_cli(module, {"repository": "/r", "binary": "/bin/true"},
                                                     _restore.SecretSource()), "/r")
    snap = Snapshot(id="e" * 64, name="host-1", time="2026-03-14T02:00:00Z")
    assert backend.missing_includes(snap, ["/srv/app/conf", "/srv/nope", "/srv"]) == ["/srv/nope"]
    assert len(module.calls) == 1


def test_a_restore_point_older_than_the_rpo_is_refused():
    snap = Snapshot(id="f" * 64, name="ffffffff", time="2026-03-14T02:00:00Z")
    now = dt.datetime(2026, 3, 15, 4, 0, tzinfo=dt.UTC)
    with pytest.raises(InputError, match=r"is 26\.0 h old, older than max_age_hours=25 .*allow_stale") as caught:
        _restore.refuse_stale(snap, 25, now)
    assert caught.value.details["age_hours"] == 26.0
    _restore.refuse_stale(snap, 27, now)
    _restore.refuse_stale(snap, None, now)
    with pytest.raises(InputError, match="max_age_hours must be greater than 0"):
        _restore._check_params({"tool": "restic", "repository": "/r", "staging_dir": "/s", "max_age_hours": 0})


@pytest.mark.parametrize(("version", "sparse", "unsupported"), [
    ("restic 0.14.0 compiled with go1.19", [], ("sparse",)),
    ("restic 0.15.0 compiled with go1.19", ["--sparse"], ()),
    ("restic 0.18.0 compiled with go1.24", ["--sparse"], ()),
])
def test_restic_restores_sparse_where_it_can_and_says_what_it_cannot(tmp_path, version, sparse, unsupported):
    module = FakeModule({}, [(0, version, ""), (0, "", "")])
    restic = _restore.Restic(_restore.tool_runner(module, "/r", _restore.SecretSource(value="pw-unit-9"), None, None,
                                                  "/bin/true"))
    backend = _restore.ResticBackend(restic)
    backend.restore(Snapshot(id="d" * 64, time="2026-03-14T02:00:00Z"), str(tmp_path), [], 1)
    restore = module.calls[-1][0]
    assert restore[1:4] == ["restore", "d" * 64, "--target"]
    assert ("--sparse" in restore) == bool(sparse)
    assert backend.unsupported_attributes() == unsupported


def test_borg_extracts_sparse():
    module = FakeModule({}, [(0, "", "")])
    backend = _restore.BorgBackend(_restore.borg_cli(module, {"repository": "/r", "binary": "/bin/true"},
                                                     _restore.SecretSource()), "/r")
    backend.restore(Snapshot(id="e" * 64, name="host-1", time="2026-03-14T02:00:00Z"), "/tmp", [], 1)
    cmd = module.calls[0][0]
    assert "extract" in cmd and "--sparse" in cmd
    assert backend.unsupported_attributes() == ()


def test_hard_links_split_by_parallel_extraction_are_joined_again(tmp_path):
    listing = "\n".join(json.dumps(x) for x in [
        {"type": "-", "mode": "-rw-r--r--", "path": "srv/a/f1", "source": "", "size": 3},
        {"type": "-", "mode": "hrw-r--r--", "path": "srv/b/link", "source": "srv/a/f1", "size": 0},
        {"type": "-", "mode": "hrw-r--r--", "path": "srv/b/orphan", "source": "srv/not/restored", "size": 0},
        {"type": "l", "mode": "lrwxrwxrwx", "path": "srv/b/sym", "source": "../a/f1", "linktarget": "../a/f1"},
    ])
    items = _restore.parse_borg_items(listing)
    assert [i.source for i in items] == ["", "srv/a/f1", "srv/not/restored", ""]  # a symlink's target is no source
    for rel in ("srv/a/f1", "srv/b/link", "srv/b/orphan"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"abc")  # as two borg processes leave them: copies
    assert _restore.relink_hardlinks(str(tmp_path), items) == 1
    assert os.stat(tmp_path / "srv/b/link").st_ino == os.stat(tmp_path / "srv/a/f1").st_ino
    assert os.stat(tmp_path / "srv/a/f1").st_nlink == 2
    assert (tmp_path / "srv/b/orphan").read_bytes() == b"abc"  # its source is not here: it keeps its copy
    assert _restore.relink_hardlinks(str(tmp_path), items) == 0  # already one inode
    assert sorted(p.name for p in (tmp_path / "srv/b").iterdir()) == ["link", "orphan"]
