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
     ({"tool": "restic", "repository": "/r", "staging_dir": "/s", "key_file": "/k"}, "borg keyfile"),
     ({"tool": "borg", "repository": "/r", "staging_dir": "/s", "borg_set_bytes": 0}, "borg_set_bytes must be 1"),
     ({"tool": "restic", "repository": "/r", "staging_dir": "/s", "ssh_command": "ssh"}, "rsnapshot only"),
     ({"tool": "rsnapshot", "repository": "/r", "staging_dir": "/s", "host": "web1"}, "host do not apply")],
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


# --- resuming -------------------------------------------------------------------------------------------------

ARCHIVE = [("srv", "d", 0), ("srv/app", "d", 0)] + [
    (f"srv/app/d{d}", "d", 0) for d in range(4)] + [
    (f"srv/app/d{d}/f{i}", "-", 1000 + 10 * i) for d in range(4) for i in range(5)]


class _FakeBorg(FakeModule):
    """borg list answers the listing above; borg extract writes each named member's files into its cwd, and fails
    for the paths in ``fail_on`` (an interruption)."""

    def __init__(self, fail_on=(), archive=ARCHIVE, links=None):
        super().__init__({})
        self.fail_on = set(fail_on)
        self.archive, self.links = archive, dict(links or {})  # links: member -> the path it is a hard link of
        self.extracted = []
        self.lock = threading.Lock()

    def run_command(self, cmd, **kwargs):
        sub = cmd[1]
        if sub == "list":
            return 0, "\n".join(json.dumps({"path": p, "type": t, "size": s, "mode": "drwxr-x---" if t == "d"
                                            else "hrw-r--r--" if p in self.links else "-rw-r--r--",
                                            "source": self.links.get(p, ""), "mtime": "2026-01-01T00:00:00.000000"})
                                for p, t, s in self.archive), ""
        assert sub == "extract" and "--sparse" in cmd, cmd
        paths = list(cmd[cmd.index("/r::host-1") + 1:])
        if self.fail_on & set(paths):
            return 2, "", '{"type": "log_message", "levelname": "ERROR", "message": "Connection closed"}'
        with self.lock:
            self.extracted.append(paths)
        for path, kind, size in self.archive:
            if kind == "-" and any(path == p or path.startswith(p + "/") for p in paths):
                target = os.path.join(kwargs["cwd"], path)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as handle:
                    handle.write(b"x" * size)
        return 0, "", ""


@pytest.fixture
def tiny_borg_sets(monkeypatch):
    monkeypatch.setattr(_restore, "MIN_SET_BYTES", 1)


def _borg_backend(module):
    return _restore.BorgBackend(_restore.borg_cli(module, {"repository": "/r", "binary": "/bin/true"},
                                                  _restore.SecretSource()), "/r")


def _ctx(partial, method, **kw):
    return _restore.ResumeContext(partial=partial, report=_restore._resume.ResumeReport(method=method), **kw)


@pytest.mark.usefixtures("tiny_borg_sets")
def test_borg_sets_record_what_finished_and_a_rerun_extracts_only_the_rest(tmp_path):
    dest = tmp_path / ("e" * 64)
    dest.mkdir()
    snap = Snapshot(id="e" * 64, name="host-1", time="2026-03-14T02:00:00Z")
    first = _FakeBorg(fail_on={"srv/app/d2/f0"})
    with pytest.raises(RestoreOpsError, match="borg extract of host-1 failed"):
        _borg_backend(first).restore(snap, str(dest), [], 1, _ctx(False, "borg-sets"))
    state = _restore._resume.read_state(_restore._resume.state_path(str(dest)))
    assert len(state["sets"]) == 16 and state["depth"] >= 4   # 20 files (the units) in the 16 sets of one worker
    failed = next(i for i, s in enumerate(state["sets"]) if "srv/app/d2/f0" in s)
    assert failed not in state["done"] and state["done"]
    # what an unfinished set leaves behind is removed before it runs again
    junk = dest / "srv/app/d2/f0"
    junk.parent.mkdir(parents=True, exist_ok=True)
    junk.write_bytes(b"half")
    second = _FakeBorg()
    resume = _ctx(True, "borg-sets")
    info = _borg_backend(second).restore(snap, str(dest), [], 1, resume)
    redone = [p for paths in second.extracted for p in paths]
    kept_sets = [state["sets"][i] for i in state["done"]]
    assert not set(redone) & {p for s in kept_sets for p in s}  # finished sets are not extracted again
    assert "srv/app/d2/f0" in redone and (dest / "srv/app/d2/f0").stat().st_size == 1000
    assert resume.report.kept_files == sum(len(s) for s in kept_sets)
    assert resume.report.kept_bytes == sum(s for p, t, s in ARCHIVE if any(p in k for k in kept_sets))
    assert info["sets"] == 16 and info["split_depth"] == state["depth"]
    assert oct(os.stat(dest / "srv/app").st_mode & 0o777) == "0o750"  # the directories above the split


class _Borg14(_FakeBorg):
    """Like borg 1.4, which fails a set whose parent directory another extract created under it: every set's
    parents must exist before the extracts start."""

    def run_command(self, cmd, **kwargs):
        if cmd[1] == "extract":
            for path in cmd[cmd.index("/r::host-1") + 1:]:
                parent = os.path.dirname(path)
                if parent and not os.path.isdir(os.path.join(kwargs["cwd"], parent)):
                    return 104, "", '{"type": "log_message", "message": "makedirs: [Errno 17] File exists"}'
        return super().run_command(cmd, **kwargs)


@pytest.mark.usefixtures("tiny_borg_sets")
def test_borg_sets_find_their_parent_directories_made(tmp_path):
    dest = tmp_path / ("e" * 64)
    dest.mkdir()
    snap = Snapshot(id="e" * 64, name="host-1", time="2026-03-14T02:00:00Z")
    info = _borg_backend(_Borg14()).restore(snap, str(dest), [], 2, _ctx(False, "borg-sets"))
    assert info["sets"] > 1 and (dest / "srv/app/d2/f0").stat().st_size == 1000


@pytest.mark.usefixtures("tiny_borg_sets")
def test_borg_sets_join_hard_links_split_between_sets_and_runs(tmp_path):
    dest = tmp_path / ("e" * 64)
    dest.mkdir()
    snap = Snapshot(id="e" * 64, name="host-1", time="2026-03-14T02:00:00Z")
    links = {"srv/app/d3/f4": "srv/app/d0/f0"}  # two sets; the link's set fails in the first run
    with pytest.raises(RestoreOpsError):
        _borg_backend(_FakeBorg(fail_on={"srv/app/d3/f4"}, links=links)).restore(snap, str(dest), [], 1,
                                                                                 _ctx(False, "borg-sets"))
    info = _borg_backend(_FakeBorg(links=links)).restore(snap, str(dest), [], 1, _ctx(True, "borg-sets"))
    assert info["hardlinks_joined"] == 1
    assert os.stat(dest / "srv/app/d3/f4").st_ino == os.stat(dest / "srv/app/d0/f0").st_ino


@pytest.mark.usefixtures("tiny_borg_sets")
def test_borg_partial_tree_without_its_record_starts_over(tmp_path):
    dest = tmp_path / ("e" * 64)
    (dest / "stray").mkdir(parents=True)
    snap = Snapshot(id="e" * 64, name="host-1", time="2026-03-14T02:00:00Z")
    module = _FakeBorg()
    resume = _ctx(True, "borg-sets")
    _borg_backend(module).restore(snap, str(dest), [], 2, resume)
    assert not (dest / "stray").exists()
    assert resume.report.kept_files == 0 and len(module.extracted) == 20  # 2 workers: 32 sets wanted, 20 units


@pytest.mark.usefixtures("tiny_borg_sets")
def test_borg_check_mode_previews_from_the_record(tmp_path):
    dest = tmp_path / ("e" * 64)
    dest.mkdir()
    snap = Snapshot(id="e" * 64, name="host-1", time="2026-03-14T02:00:00Z")
    with pytest.raises(RestoreOpsError):
        _borg_backend(_FakeBorg(fail_on={"srv/app/d3/f4"})).restore(snap, str(dest), [], 1, _ctx(False, "borg-sets"))
    before = sorted(os.listdir(tmp_path))
    module = _FakeBorg()
    resume = _ctx(True, "borg-sets")
    _borg_backend(module).preview(snap, str(dest), [], resume)
    assert module.extracted == [] and sorted(os.listdir(tmp_path)) == before
    total = sum(s for _p, t, s in ARCHIVE if t == "-")
    assert resume.report.kept_bytes + resume.report.transferred_bytes == total
    state = _restore._resume.read_state(_restore._resume.state_path(str(dest)))
    unfinished = [s for i, s in enumerate(state["sets"]) if i not in state["done"]]
    assert len(resume.report.rerun) == len(unfinished) and ["srv/app/d3/f4"] in unfinished
    assert resume.report.kept_files == 20 - sum(len(units) for units in unfinished)


def test_borg_set_count_is_bounded():
    assert [_restore.borg_set_count(w) for w in (0, 1, 2, 4, 8)] == [16, 16, 32, 64, 64]
    mib = 1 << 20
    assert _restore.borg_set_count(2, 4096 * mib) == 32      # 128 MiB sets
    assert _restore.borg_set_count(2, 640 * mib) == 10       # no set below 64 MiB
    assert _restore.borg_set_count(2, 100 * mib) == 2        # a small restore: one set per worker
    assert _restore.borg_set_count(1, 0) == 1
    assert _restore.borg_set_count(4, 10 << 30) == 64
    assert _restore.borg_set_count(2, 64 * mib, mib) == 32   # borg_set_bytes: finer sets


def test_run_pool_stops_after_the_first_failure():
    started = []

    def task(index):
        started.append(index)
        if index == 1:
            raise RestoreOpsError("set 1 failed")

    with pytest.raises(RestoreOpsError, match="set 1 failed"):
        _restore.run_pool(task, list(range(10)), 1)
    assert started == [0, 1]


def _restic_node(path, kind="file", size=0, mtime="2026-03-14T02:00:00.123456789Z", mode=0o644):
    return {"name": os.path.basename(path), "type": kind, "path": path, "size": size, "mtime": mtime,
            "uid": 0, "gid": 0, "mode": (1 << 31 | mode) if kind == "dir" else mode, "struct_type": "node"}


class _FakeRestic(FakeModule):
    """restic 0.14 (or another version): ls answers ``nodes``; restore writes the included files (all when none)
    with the content ``content`` and the snapshot's mtime into --target."""

    def __init__(self, version, nodes, content):
        super().__init__({})
        self.version, self.nodes, self.content = version, nodes, content
        self.restores = []

    def run_command(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        if self.on_run is not None:
            self.on_run(cmd, kwargs)
        sub = cmd[1]
        if sub == "version":
            return 0, f"restic {self.version} compiled with go1.19", ""
        if sub == "ls":
            return 0, "\n".join(json.dumps(n) for n in self.nodes), ""
        assert sub == "restore", cmd
        target = cmd[cmd.index("--target") + 1]
        includes = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--include"]
        self.restores.append(includes)
        for node in self.nodes:
            if node["type"] == "file" and (not includes or any(
                    node["path"] == p or node["path"].startswith(p.rstrip("/") + "/") for p in includes)):
                path = target + node["path"]
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as handle:
                    handle.write(self.content[node["path"]])
                stamp = _restore._mtime_ns(node["mtime"])
                os.utime(path, ns=(stamp, stamp))  # a file restored to its end gets its mtime
        if "--json" in cmd:
            return 0, json.dumps({"message_type": "summary", "files_skipped": 3, "bytes_skipped": 300,
                                  "bytes_restored": 100}), ""
        return 0, "", ""


def _write_manifest_v1(path, content):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump({"files": {p: hashlib.sha256(c).hexdigest() for p, c in content.items()
                             if p.startswith("/srv/app/data")}}, handle)


@pytest.mark.parametrize(("version", "sparse"), [("0.14.0", False), ("0.16.4", True)])
def test_restic_014_resume_restores_only_what_is_missing_or_wrong(tmp_path, version, sparse):
    content = {f"/srv/app/data/d{d}/f{i}": bytes([65 + d]) * (100 + i) for d in range(3) for i in range(3)}
    content["/srv/app/extra"] = b"not in the manifest"
    manifest_bytes = json.dumps({"files": {p: hashlib.sha256(c).hexdigest() for p, c in content.items()
                                           if p.startswith("/srv/app/data")}}).encode()
    content["/srv/app/manifest.json"] = manifest_bytes
    nodes = [_restic_node("/srv", "dir"), _restic_node("/srv/app", "dir", mode=0o750),
             _restic_node("/srv/app/data", "dir")]
    nodes += [_restic_node(f"/srv/app/data/d{d}", "dir") for d in range(3)]
    nodes += [_restic_node(p, size=len(c)) for p, c in content.items()]
    dest = tmp_path / "snap"
    # the interrupted attempt: d0 complete, d1/f0 preallocated but empty, d2 missing, extra without its mtime
    for i in range(3):
        (dest / "srv/app/data/d0").mkdir(parents=True, exist_ok=True)
        (dest / f"srv/app/data/d0/f{i}").write_bytes(content[f"/srv/app/data/d0/f{i}"])
        os.chmod(dest / f"srv/app/data/d0/f{i}", 0o600)
    (dest / "srv/app/data/d1").mkdir(parents=True)
    (dest / "srv/app/data/d1/f0").write_bytes(b"\0" * 100)
    (dest / "srv/app/data/d1/f1").write_bytes(content["/srv/app/data/d1/f1"])
    (dest / "srv/app/extra").write_bytes(content["/srv/app/extra"])
    removed = []  # what was still in staging when restic was asked to restore it again

    def before_restore(cmd, _kwargs):
        if cmd[1] == "restore" and len(module.restores) == 1:
            removed.extend(str(dest) + cmd[i + 1] for i, arg in enumerate(cmd)
                           if arg == "--include" and os.path.lexists(str(dest) + cmd[i + 1]))

    module = _FakeRestic(version, nodes, content)
    module.on_run = before_restore
    backend = _restore.ResticBackend(_restore.Restic(_restore.tool_runner(module, "/r", _restore.SecretSource(
        value="pw"), None, None, "/bin/true")))
    snap = Snapshot(id="f" * 64, name="ffffffff", time="2026-03-14T02:00:00Z")
    resume = _ctx(True, "missing-paths", manifest_path="/srv/app/manifest.json")
    backend.restore(snap, str(dest), ["/srv/app"], 1, resume)
    assert module.restores[0] == ["/srv/app/manifest.json"]          # the manifest first, complete
    assert [("--sparse" in call[0]) for call in module.calls if call[0][1] == "restore"] == [sparse, sparse]
    assert module.restores[1] == ["/srv/app/data/d1/f0", "/srv/app/data/d1/f2", "/srv/app/data/d2",
                                  "/srv/app/extra"]
    assert resume.report.kept_files == 5                               # d0 x3, d1/f1, the manifest itself
    assert not [p for p in removed if p.startswith(str(dest))]          # nothing restored again was left in place
    assert (dest / "srv/app/data/d1/f0").read_bytes() == content["/srv/app/data/d1/f0"]
    assert oct(os.stat(dest / "srv/app").st_mode & 0o777) == "0o750"  # directories get the snapshot's mode
    assert int(os.stat(dest / "srv/app").st_mtime) == int(dt.datetime(2026, 3, 14, 2, tzinfo=dt.UTC).timestamp())
    # The kept files were written by the killed restic but never finished (0600, the time of the restore): they get
    # the snapshot's mode and mtime, as restic gives them at the end of a restore.
    for kept in ("srv/app/data/d0/f0", "srv/app/data/d1/f1"):
        st = os.stat(dest / kept)
        assert oct(st.st_mode & 0o7777) == "0o644"
        assert st.st_mtime_ns == _restore._mtime_ns("2026-03-14T02:00:00.123456789Z")


def test_restic_014_resume_of_everything_keeps_the_staging_directory(tmp_path):
    content = {"/a": b"abc", "/b": b"defg"}
    dest = tmp_path / "snap"
    dest.mkdir(mode=0o700)
    (dest / "a").write_bytes(b"\0\0\0")  # preallocated, mtime never set: to do, as /b
    module = _FakeRestic("0.14.0", [_restic_node(p, size=len(c)) for p, c in content.items()], content)
    backend = _restore.ResticBackend(_restore.Restic(_restore.tool_runner(module, "/r", _restore.SecretSource(
        value="pw"), None, None, "/bin/true")))
    resume = _ctx(True, "missing-paths")
    backend.restore(Snapshot(id="f" * 64, time="2026-03-14T02:00:00Z"), str(dest), [], 1, resume)
    assert resume.report.rerun == ["/"] and module.restores == [["/"]]
    assert (dest / "a").read_bytes() == b"abc" and oct(dest.stat().st_mode & 0o777) == "0o700"


def test_restic_017_resume_uses_overwrite_if_changed_and_its_summary(tmp_path):
    nodes = [_restic_node("/srv/a", size=3)]
    module = _FakeRestic("0.17.3", nodes, {"/srv/a": b"abc"})
    backend = _restore.ResticBackend(_restore.Restic(_restore.tool_runner(module, "/r", _restore.SecretSource(
        value="pw"), None, None, "/bin/true")))
    snap = Snapshot(id="f" * 64, name="ffffffff", time="2026-03-14T02:00:00Z")
    assert backend.method() == "overwrite-if-changed"
    resume = _ctx(True, "overwrite-if-changed")
    backend.restore(snap, str(tmp_path), ["/srv"], 1, resume)
    cmd = module.calls[-1][0]
    assert cmd[cmd.index("--overwrite") + 1] == "if-changed" and "--dry-run" not in cmd and "--sparse" in cmd
    assert (resume.report.kept_files, resume.report.kept_bytes) == (3, 300)
    preview = _ctx(True, "overwrite-if-changed")
    backend.preview(snap, str(tmp_path), ["/srv"], preview)
    assert {"--dry-run", "--sparse"} <= set(module.calls[-1][0]) and preview.report.transferred_bytes == 100


def test_restic_014_check_mode_reads_the_partial_tree_only(tmp_path):
    nodes = [_restic_node("/srv/a", size=3, mtime="2026-03-14T02:00:00Z"), _restic_node("/srv/b", size=4)]
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv/a").write_bytes(b"abc")
    os.utime(tmp_path / "srv/a", (1773453600, 1773453600))  # 2026-03-14T02:00:00Z: finished by restic
    module = _FakeRestic("0.14.0", nodes, {})
    backend = _restore.ResticBackend(_restore.Restic(_restore.tool_runner(module, "/r", _restore.SecretSource(
        value="pw"), None, None, "/bin/true")))
    resume = _ctx(True, "missing-paths")
    backend.preview(Snapshot(id="f" * 64, time="2026-03-14T02:00:00Z"), str(tmp_path), [], resume)
    assert module.restores == []
    assert (resume.report.kept_files, resume.report.kept_bytes, resume.report.transferred_bytes) == (1, 3, 4)
    assert resume.report.rerun == ["/srv/b"]


@pytest.mark.parametrize(("mode", "bits"), [(0o755 | 1 << 31, 0o755), (0o775 | 1 << 31 | 1 << 22, 0o2775),
                                            (0o777 | 1 << 31 | 1 << 20, 0o1777), (0o755 | 1 << 23, 0o4755)])
def test_go_mode_bits(mode, bits):
    assert _restore.go_mode_bits(mode) == bits


def test_mtime_ns_keeps_restics_nanoseconds():
    assert _restore._mtime_ns("1970-01-01T00:00:01.000000123Z") == 1_000_000_123
    assert _restore._mtime_ns("1970-01-01T01:00:01.5+01:00") == 1_500_000_000
    assert _restore._mtime_ns("garbage") is None


def test_process_writes_counts_reaped_children():
    before = _restore.process_writes()
    subprocess.run(["dd", "if=/dev/zero", "of=/dev/null", "bs=65536", "count=16"], check=True,
                   stderr=subprocess.DEVNULL)
    assert _restore.process_writes() - before >= 16 * 65536


class _RealModule(FakeModule):
    """FakeModule that runs the real command (rsync), with the runner's environment."""

    def run_command(self, cmd, **kwargs):
        self.calls.append((list(cmd), kwargs))
        env = dict(os.environ, **kwargs.get("environ_update", {}))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=kwargs.get("cwd"))
        return proc.returncode, proc.stdout, proc.stderr


def _rsnapshot_root(tmp_path):
    root = tmp_path / "snapshots"
    for name, stamp, text in (("daily.0", 1773453600, "new"), ("daily.1", 1773367200, "old")):
        app = root / name / "localhost" / "srv" / "app"
        (app / "data").mkdir(parents=True)
        for i in range(4):
            (app / "data" / f"f{i}").write_text(f"{text} {i}\n" * (100 * (i + 1)))
        manifest = {"files": {f"/srv/app/data/f{i}": hashlib.sha256((f"{text} {i}\n" * (100 * (i + 1))).encode())
                              .hexdigest() for i in range(4)}}
        (app / "manifest.json").write_text(json.dumps(manifest))
        os.utime(root / name, (stamp, stamp))
    (root / "_delete.1234").mkdir()
    return root


def _rsnapshot_params(root, staging, **extra):
    params = {"tool": "rsnapshot", "repository": str(root), "snapshot": "latest", "before": None, "host": None,
              "max_age_hours": None, "allow_stale": False, "includes": ["/srv/app"], "staging_dir": str(staging),
              "manifest_path": "/srv/app/manifest.json", "parallel": 0, "password": None, "password_file": None,
              "password_command": None, "key_file": None, "env": {}, "cache_dir": None, "lock_wait": None,
              "binary": None, "estimate_size": False, "put_in_place": False, "limit_download": None,
              "progress_file": None, "expected_bytes": None, "rsnapshot_prefix": "localhost", "ssh_command": None}
    params.update(extra)
    return params


def test_rsnapshot_restore_picks_by_mtime_verifies_and_resumes(tmp_path):
    root = _rsnapshot_root(tmp_path)
    staging = tmp_path / "staging"
    result = _restore.main(_RealModule(_rsnapshot_params(root, staging)))
    assert result["snapshot"]["name"] == "daily.0" and result["snapshot"]["id"] == "20260314T020000Z"
    assert result["verify"]["ok"] and result["verify"]["checked"] == 4 and result["restored"]
    assert result["resume"]["method"] == "rsync" and result["resume"]["kept_files"] == 0
    # what rsync sent: every byte of every file, and a little of its protocol
    assert result["bytes"] <= result["resume"]["transferred_bytes"] <= result["bytes"] * 1.1
    tree = staging / "20260314T020000Z" / "srv" / "app"
    assert (tree / "data" / "f0").read_text().startswith("new 0")
    # an interrupted restore: no marker, one file lost, one half-written
    os.unlink(str(staging / "20260314T020000Z") + ".done.json")
    (tree / "data" / "f3").unlink()
    (tree / "data" / "f2").write_text("half")
    check = _RealModule(_rsnapshot_params(root, staging), check_mode=True)
    preview = _restore.main(check)
    assert preview["resumed"] and preview["resume"]["kept_files"] == 3  # f0, f1 and the manifest
    assert not (tree / "data" / "f3").exists()
    again = _restore.main(_RealModule(_rsnapshot_params(root, staging)))
    assert again["resumed"] and again["verify"]["ok"]
    assert again["resume"]["kept_files"] == 3
    size_f2_f3 = len("new 2\n" * 300) + len("new 3\n" * 400)
    assert size_f2_f3 <= again["resume"]["transferred_bytes"] <= size_f2_f3 * 1.1
    assert again["resume"]["total_bytes"] == again["bytes"] == result["bytes"]
    assert sorted(again["resume"]["rerun"]) == ["srv/app/data/f2", "srv/app/data/f3"]


def test_rsnapshot_before_and_a_named_snapshot(tmp_path):
    root = _rsnapshot_root(tmp_path)
    older = _restore.main(_RealModule(_rsnapshot_params(root, tmp_path / "s1", before="2026-03-14T00:00:00Z")))
    assert older["snapshot"]["name"] == "daily.1"
    assert (tmp_path / "s1" / older["snapshot"]["id"] / "srv/app/data/f1").read_text().startswith("old 1")
    named = _restore.main(_RealModule(_rsnapshot_params(root, tmp_path / "s2", snapshot="daily.1")))
    assert named["snapshot"]["id"] == older["snapshot"]["id"]


def test_rsnapshot_refuses_what_does_not_apply_and_missing_paths(tmp_path):
    root = _rsnapshot_root(tmp_path)
    with pytest.raises(InputError, match="password_file do not apply to rsnapshot"):
        _restore.main(_RealModule(_rsnapshot_params(root, tmp_path / "s", password_file="/p")))
    with pytest.raises(InputError, match="snapshot root as an absolute path"):
        _restore.main(_RealModule(_rsnapshot_params("relative/root", tmp_path / "s")))
    with pytest.raises(InputError, match="/srv/nope"):
        _restore.main(_RealModule(_rsnapshot_params(root, tmp_path / "s", includes=["/srv/app", "/srv/nope"])))
    assert not (tmp_path / "s").exists()


def test_rsnapshot_over_ssh_builds_rsync_arguments(tmp_path):
    module = FakeModule({}, [(0, "rsync  version 3.2.7  protocol version 31", "")])
    backend = _restore.RsnapshotBackend(module, "backup@vault.example:/var/cache/rsnapshot", "app1",
                                        "ssh -p 2222 -i /root/.ssh/restore", 5000, "/bin/true")
    assert backend.version() == "3.2.7"
    snap = Snapshot(id="20260314T020000Z", name="daily.0", time="2026-03-14T02:00:00+00:00")
    backend._rsync(snap, "/staging/x", ["/srv/app", "/etc/app"], dry_run=True)
    cmd = module.calls[-1][0]
    assert cmd[-3:] == ["backup@vault.example:/var/cache/rsnapshot/daily.0/app1/./srv/app",
                        "backup@vault.example:/var/cache/rsnapshot/daily.0/app1/./etc/app", "/staging/x/"]
    assert cmd[cmd.index("-e") + 1] == "ssh -p 2222 -i /root/.ssh/restore"
    assert {"--relative", "--dry-run", "--delete", "--numeric-ids", "--bwlimit=5000"} <= set(cmd)
    assert module.calls[-1][1]["environ_update"]["TZ"] == "UTC"


def test_restic_014_check_mode_reads_a_complete_manifest_outside_staging(tmp_path):
    content = {"/srv/a": b"abc", "/srv/b": b"defg"}
    manifest = json.dumps({"files": {p: hashlib.sha256(c).hexdigest() for p, c in content.items()}}).encode()
    content["/srv/manifest.json"] = manifest
    nodes = [_restic_node(p, size=len(c)) for p, c in content.items()]
    dest = tmp_path / "staging" / "snap"
    (dest / "srv").mkdir(parents=True)
    (dest / "srv/a").write_bytes(b"abc")                          # complete, mtime never set (killed before)
    (dest / "srv/b").write_bytes(b"\0" * 4)                       # preallocated
    (dest / "srv/manifest.json").write_bytes(b"\0" * len(manifest))  # the partial copy of the manifest: unreadable
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    module = _FakeRestic("0.14.0", nodes, content)
    backend = _restore.ResticBackend(_restore.Restic(_restore.tool_runner(module, "/r", _restore.SecretSource(
        value="pw"), None, None, "/bin/true")))
    resume = _ctx(True, "missing-paths", manifest_path="/srv/manifest.json")
    backend.preview(Snapshot(id="f" * 64, time="2026-03-14T02:00:00Z"), str(dest), [], resume)
    target = module.calls[-1][0][module.calls[-1][0].index("--target") + 1]
    assert module.restores == [["/srv/manifest.json"]] and not target.startswith(str(tmp_path))
    assert not os.path.exists(target)                              # the temporary copy is gone
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before   # staging untouched
    assert (resume.report.kept_files, resume.report.kept_bytes) == (1, 3)
    assert sorted(resume.report.rerun) == ["/srv/b", "/srv/manifest.json"]


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


def test_borg_extracts_sparse(tmp_path):
    module = FakeModule({})
    backend = _restore.BorgBackend(_restore.borg_cli(module, {"repository": "/r", "binary": "/bin/true"},
                                                     _restore.SecretSource()), "/r")
    backend.restore(Snapshot(id="e" * 64, name="host-1", time="2026-03-14T02:00:00Z"), str(tmp_path), [], 1)
    extracts = [call[0] for call in module.calls if call[0][1] == "extract"]
    assert extracts and all("--sparse" in cmd for cmd in extracts)
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


class _FailingOnceBackend(_restore.Backend):
    """restic 0.17+ as the resume sees it: the first attempt fails (a full disk), the second restores one file."""

    def __init__(self):
        self.methods = []

    def method(self):
        return "overwrite-if-changed"

    def unsupported_attributes(self):
        return ()

    def restore(self, snapshot, dest, includes, workers, resume=None):
        self.methods.append(resume.report.method)
        if len(self.methods) == 1:
            raise RestoreOpsError("restic restore failed: no space left on device")
        with open(os.path.join(dest, "f"), "w") as handle:
            handle.write("x")
        return {"workers": 1}


def test_after_a_failed_attempt_the_resume_judges_by_digests_not_size_and_mtime(tmp_path):
    staging = str(tmp_path / "staging" / ("a" * 64))
    backend = _FailingOnceBackend()
    snap = Snapshot(id="a" * 64, name="aaaaaaaa", time="2026-03-14T02:00:00Z")
    params = {"tool": "restic", "includes": [], "parallel": 1, "manifest_path": None}

    def run():
        result = {"staging_path": staging, "marker": staging + ".done.json", "changed": False}
        return _restore._restore(FakeModule(params), params, backend, snap, result)

    with pytest.raises(RestoreOpsError, match="no space"):
        run()
    assert os.path.exists(staging + _restore.FAILED_SUFFIX)
    result = run()
    # restic gives files their size and mtime even when their content failed: the partial tree is judged by the
    # manifest's digests (missing-paths) this time; once complete, the flag goes.
    assert backend.methods == ["overwrite-if-changed", "missing-paths"]
    assert result["resumed"] and result["resume"]["method"] == "missing-paths"
    assert not os.path.exists(staging + _restore.FAILED_SUFFIX)
