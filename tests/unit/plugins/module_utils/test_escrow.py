# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the escrow decisions; tool runs are replaced by a fake ``run_command``."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from conftest import FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils import _escrow as escrow
from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo_files import (
    config_with_key,
    find_host_key,
    parse_repo_config,
)
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError
from ansible_collections.restoreops.dr.plugins.module_utils._runner import Result

REPO_ID = "4aeafec09604a207d06537d2894691d7c09e09724e4f21ee5dc662866059b410"
OTHER_ID = "c4a0f6ff89ce0000000000000000000000000000000000000000000000000000"
BLOB_LINES = ["hqlhbGdvcml0aG2mc2hhMjU2pGRhdGHaAN6j2xaGEmZbo99bTv8gjXT6k/K3RbrAbMXV+w",
              "AUxQOmywtrdxd5r/OpKQH4ZIxEkOvGcXLshCFYWndmVyc2lvbgE="]
BLOB = "".join(BLOB_LINES)


def export_text(repo_id: str = REPO_ID, lines: list[str] | None = None) -> str:
    return "BORG_KEY " + repo_id + "\n" + "\n".join(lines or BLOB_LINES) + "\n"


def config_text(repo_id: str = REPO_ID, lines: list[str] | None = None) -> str:
    key_lines = lines if lines is not None else BLOB_LINES
    key = ("\n\t".join(key_lines)) if key_lines else ""
    return ("[repository]\nversion = 1\nsegments_per_dir = 1000\nappend_only = 0\n"
            f"id = {repo_id}\nkey = {key}\n")


class ShadowWatcher:
    """Records what the shadow repository looks like while borg runs (the conftest FakeModule's on_run hook)."""

    def __init__(self) -> None:
        self.snapshots: list[dict] = []

    def __call__(self, cmd, kwargs) -> None:
        repo_arg = cmd[-1]
        if not os.path.isdir(repo_arg):
            return
        snap = {"dir": repo_arg, "entries": sorted(os.listdir(repo_arg)),
                "dir_mode": os.stat(os.path.dirname(repo_arg)).st_mode}
        config = os.path.join(repo_arg, "config")
        if os.path.exists(config):
            with open(config, encoding="utf-8") as handle:
                snap["config"] = handle.read()
            snap["config_mode"] = os.stat(config).st_mode & 0o777
        fd = kwargs.get("environ_update", {}).get("BORG_PASSPHRASE_FD")
        if fd:
            snap["fd_text"] = os.pread(int(fd), 100, 0).decode()
        self.snapshots.append(snap)


def borg_module(answers=None):
    watcher = ShadowWatcher()
    module = FakeModule(answers=answers, on_run=watcher)
    module.snapshots = watcher.snapshots
    return module


def item(**kw) -> escrow.EscrowItem:
    raw = {"name": "x", "kind": "borg", "key_file": "/k/key", "repo": "/srv/repo", "passphrase_file": "/p/pass"}
    raw.update(kw)
    return escrow.parse_item(raw)


# --- input ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, fragment", [
    ({"name": "", "kind": "file"}, "needs a name"),
    ({"name": "a", "kind": "zfs", "key_file": "/k"}, "kind must be one of"),
    ({"name": "a", "kind": "file", "key_file": "rel/k", "sha256": "0" * 64}, "absolute path"),
    ({"name": "a", "kind": "borg", "key_file": "/k", "repo": "/r"}, "needs the escrowed passphrase"),
    ({"name": "a", "kind": "borg", "key_file": "/k", "repo": "ssh://h/r", "passphrase_file": "/p"}, "not a local"),
    ({"name": "a", "kind": "borg", "key_file": "/k", "repo": "/r", "passphrase_file": "/p", "passcommand": "x"},
     "not both"),
    ({"name": "a", "kind": "restic", "key_file": "/k"}, "needs repo"),
    ({"name": "a", "kind": "restic", "key_file": "/k", "repo": "/r", "passphrase_file": "/p"}, "do not apply"),
    ({"name": "a", "kind": "luks", "key_file": "/k"}, "needs device"),
    ({"name": "a", "kind": "file", "key_file": "/k", "sha256": "abc"}, "needs sha256"),
    ({"name": "a", "kind": "file", "key_file": "/k", "sha256": "0" * 64, "protected_paths": ["x"]}, "absolute"),
])
def test_parse_item_rejects(raw, fragment):
    with pytest.raises(InputError, match=fragment):
        escrow.parse_item(raw)


def test_parse_items_unique_and_nonempty():
    raw = {"name": "a", "kind": "file", "key_file": "/k", "sha256": "sha256:" + "A" * 64}
    with pytest.raises(InputError, match="repeated: a"):
        escrow.parse_items([raw, raw])
    with pytest.raises(InputError, match="empty"):
        escrow.parse_items([])
    assert escrow.parse_items([raw])[0].sha256 == "a" * 64


def test_restic_remote_repo_is_not_local():
    assert escrow.parse_item({"name": "r", "kind": "restic", "key_file": "/k", "repo": "rest:http://127.0.0.1:1/"}
                             ).local_repo is None
    assert item().local_repo == "/srv/repo"


@pytest.mark.parametrize("value, expected", [
    ("0600", 0o600), ("600", 0o600), ("0640", 0o640), (0o400, 0o400), (384, 0o600)])
def test_parse_max_mode(value, expected):
    assert escrow.parse_max_mode(value) == expected


@pytest.mark.parametrize("value", ["rw", "0800", "12345", True, 0o17777])
def test_parse_max_mode_rejects(value):
    with pytest.raises(InputError):
        escrow.parse_max_mode(value)


# --- mode and apart ---------------------------------------------------------------------------------------------

def test_decide_mode():
    assert escrow.decide_mode("/k", 0o100600, 0o600, "key").ok
    assert escrow.decide_mode("/k", 0o100400, 0o600, "key").ok
    bad = escrow.decide_mode("/k", 0o100644, 0o600, "escrowed key file")
    assert not bad.ok
    assert "mode 0644, looser than 0600" in bad.problems[0]


def test_decide_apart_cases():
    key = escrow.Place("/e/keys/k", "/e/keys", 10)
    pw_same_dir = escrow.Place("/e/keys/p", "/e/keys", 10)
    pw_same_fs = escrow.Place("/e/pass/p", "/e/pass", 10)
    pw_apart = escrow.Place("/run/secrets/p", "/run/secrets", 30)
    repo_other_fs = ("repository", escrow.Place("/srv/repo", "/srv/repo", 20))
    repo_same_fs = ("repository", escrow.Place("/srv/repo", "/srv/repo", 10))

    assert escrow.decide_apart(key, pw_apart, [repo_other_fs]).ok
    same_dir = escrow.decide_apart(key, pw_same_dir, [repo_other_fs])
    assert not same_dir.ok and "same directory" in same_dir.problems[0]
    assert len(same_dir.problems) == 1  # the directory says it; the filesystem is not said twice
    same_fs = escrow.decide_apart(key, pw_same_fs, [repo_other_fs])
    assert not same_fs.ok
    assert "share one host and one filesystem (device 10)" in same_fs.problems[0]
    on_repo_fs = escrow.decide_apart(key, pw_apart, [repo_same_fs])
    assert not on_repo_fs.ok
    assert on_repo_fs.problems == [
        "The escrowed key /e/keys/k is on the same filesystem as the repository /srv/repo: losing that filesystem "
        "loses the data and its key together."]
    both = escrow.decide_apart(key, escrow.Place("/srv/p", "/srv", 10), [repo_same_fs])
    assert len(both.problems) == 3  # one filesystem for key and passphrase, each of them with the repository
    assert escrow.decide_apart(key, None, [("protected path", escrow.Place("/d", "/d", 10))]).ok is False


def test_decide_apart_by_host_identity():
    here = "m1/escrow1"
    key = escrow.Place("/e/keys/k", "/e/keys", 10, here)
    repo = [("repository", escrow.Place("/srv/repo", "/srv/repo", 20, here))]
    # Another host: device numbers of two hosts say nothing about each other, even when equal.
    other = escrow.Place("/e/pass/p", "/e/pass", 10, "m1/escrow2")
    assert escrow.decide_apart(key, other, repo).ok
    assert escrow.decide_apart(key, escrow.Place("/e/pass/p", "/e/pass", 20, "m2/escrow2"), repo).ok
    # The same host seen from elsewhere (the caller's observation): same device fails, another device passes.
    same = escrow.decide_apart(key, escrow.Place("/e/pass/p", "/e/pass", 10, here), repo)
    assert not same.ok and "share one host (m1/escrow1) and one filesystem" in same.problems[0]
    assert escrow.decide_apart(key, escrow.Place("/run/s/p", "/run/s", 11, here), repo).ok
    # No place to observe (passcommand, or a value without a place): the key alone is judged.
    assert escrow.decide_apart(key, None, repo).ok


def test_check_apart_on_real_files(tmp_path):
    keys, secrets = tmp_path / "keys", tmp_path / "secrets"
    keys.mkdir()
    secrets.mkdir()
    (keys / "k").write_text("key")
    (secrets / "p").write_text("pass")
    (tmp_path / "repo").mkdir()
    base = {"name": "b", "kind": "borg", "repo": str(tmp_path / "repo"), "key_file": str(keys / "k")}
    one_fs = escrow.check_apart(escrow.parse_item({**base, "passphrase_file": str(secrets / "p")}), "h")
    assert not one_fs.ok and "share one host (h) and one filesystem" in one_fs.problems[0]
    elsewhere = {"host_id": "other/escrow2", "dev": os.stat(keys / "k").st_dev, "path": "/srv/p"}
    apart = escrow.check_apart(escrow.parse_item({**base, "passphrase": "pw", "passphrase_place": elsewhere}), "h")
    assert [p for p in apart.problems if "passphrase" in p] == []


def test_host_identity_reads_machine_id_and_hostname(monkeypatch):
    files = {"/etc/machine-id": "abc\n", "/proc/sys/kernel/hostname": "escrow1\n"}
    monkeypatch.setattr(escrow, "_first_line", lambda path: files.get(path, "").strip())
    assert escrow.host_identity() == "abc/escrow1"


@pytest.mark.parametrize("extra, message", [
    ({"passphrase": "pw", "passphrase_file": "/p"}, "only one of them"),
    ({"passphrase": ""}, "passphrase is empty"),
    ({"passphrase_file": "/p", "passphrase_place": {"host_id": "h", "dev": 1, "path": "/p"}},
     "give one or the other"),
    ({"passphrase": "pw", "passphrase_place": {"host_id": " ", "dev": 1, "path": "/p"}}, "host_id is empty"),
    ({"passphrase": "pw", "passphrase_place": {"host_id": "h", "dev": -1, "path": "/p"}}, "dev must be"),
    ({"passphrase": "pw", "passphrase_place": {"host_id": "h", "dev": 1, "path": "p"}}, "absolute path"),
])
def test_parse_item_passphrase_elsewhere_rejects(extra, message):
    raw = {"name": "b", "kind": "borg", "repo": "/srv/repo", "key_file": "/k", **extra}
    with pytest.raises(InputError, match=message):
        escrow.parse_item(raw)


def test_parse_item_passphrase_only_for_borg():
    with pytest.raises(InputError, match="kind borg only"):
        escrow.parse_item({"name": "r", "kind": "restic", "repo": "/srv/r", "key_file": "/k", "passphrase": "pw"})
    item = escrow.parse_item({"name": "b", "kind": "borg", "repo": "/srv/repo", "key_file": "/k", "passphrase": "pw",
                              "passphrase_place": {"host_id": "h", "dev": 7, "path": "/p/b.pass"}})
    assert item.passphrase_place == escrow.Place("/p/b.pass", "/p", 7, "h")


def test_check_apart_reports_missing_protected_path(tmp_path):
    (tmp_path / "k").write_text("x")
    it = escrow.parse_item({"name": "f", "kind": "file", "key_file": str(tmp_path / "k"), "sha256": "0" * 64,
                            "protected_paths": [str(tmp_path / "gone")]})
    verdict = escrow.check_apart(it)
    assert not verdict.ok
    assert "cannot be examined" in verdict.problems[0]


# --- borg -------------------------------------------------------------------------------------------------------

def test_parse_borg_key_export_and_config():
    exported = escrow.parse_borg_key_export(export_text())
    assert exported == escrow.BorgKeyExport(REPO_ID, BLOB)
    config = parse_repo_config(config_text())
    assert config.repo_id == REPO_ID and config.blob == BLOB and config.mode == "repokey"
    assert parse_repo_config(config_text(lines=[])).mode == "keyfile"
    with pytest.raises(ValueError, match="BORG_KEY"):
        escrow.parse_borg_key_export("To restore key use borg key import --paper /path/to/repo\n")


def test_shadow_config_puts_the_escrowed_blob_in_place():
    text = config_with_key(config_text(lines=["AAAA", "BBBB"]), BLOB)
    assert parse_repo_config(text).blob == BLOB
    assert parse_repo_config(text).repo_id == REPO_ID
    unchanged = config_with_key(config_text(lines=[]), None)
    assert parse_repo_config(unchanged).blob == ""


def log_json(msgid: str, message: str = "x") -> str:
    return json.dumps({"type": "log_message", "levelname": "ERROR", "message": message, "msgid": msgid}) + "\n"


def test_decide_borg_decrypts():
    it = item()
    exported = escrow.BorgKeyExport(REPO_ID, BLOB)
    config = escrow.BorgRepoConfig(REPO_ID, key=BLOB)
    assert escrow.decide_borg_decrypts(it, exported, config, 0, "").ok
    wrong_pw = escrow.decide_borg_decrypts(it, exported, config, 2, log_json("PassphraseWrong"))
    assert not wrong_pw.ok and "passphrase does not unlock" in wrong_pw.problems[0]
    other = escrow.decide_borg_decrypts(it, escrow.BorgKeyExport(OTHER_ID, BLOB), config, 2, log_json("Exception"))
    assert not other.ok and "belongs to another repository" in other.problems[0]
    mismatch = escrow.decide_borg_decrypts(it, exported, config, 2, log_json("KeyfileMismatchError"))
    assert "is not a key of /srv/repo" in mismatch.problems[0]
    generic = escrow.decide_borg_decrypts(it, exported, config, 2,
                                          "not json\n" + log_json("Exception", "Local Exception")
                                          + log_json("IntegrityError", "MAC Authentication failed"))
    assert "MAC Authentication failed" in generic.problems[0]


def test_decide_borg_current_repokey_and_keyfile():
    it = item()
    exported = escrow.BorgKeyExport(REPO_ID, BLOB)
    assert escrow.decide_borg_current(it, exported, escrow.BorgRepoConfig(REPO_ID, key=BLOB), True, None, None).ok
    stale = escrow.decide_borg_current(it, exported, escrow.BorgRepoConfig(REPO_ID, key="CHANGED"), True, None, None)
    assert not stale.ok and "stale" in stale.problems[0]
    keyfile = escrow.BorgRepoConfig(REPO_ID, key="")
    assert escrow.decide_borg_current(it, exported, keyfile, True, None, None).ok
    assert not escrow.decide_borg_current(it, exported, keyfile, False, None, None).ok
    host = escrow.BorgKeyExport(REPO_ID, "NEWER")
    stale_kf = escrow.decide_borg_current(it, exported, keyfile, True, host, "/root/.config/borg/keys/r")
    assert not stale_kf.ok and "/root/.config/borg/keys/r" in stale_kf.problems[0]
    other = escrow.decide_borg_current(it, escrow.BorgKeyExport(OTHER_ID, BLOB), keyfile, False, None, None)
    assert "another repository" in other.problems[0]


def test_find_host_borg_key(tmp_path):
    keys = tmp_path / "base" / ".config" / "borg" / "keys"
    keys.mkdir(parents=True)
    (keys / "other").write_text(export_text(OTHER_ID))
    (keys / "mine").write_text(export_text())
    assert find_host_key(REPO_ID, {"BORG_BASE_DIR": str(tmp_path / "base")}) == str(keys / "mine")
    assert find_host_key(REPO_ID, {"BORG_KEYS_DIR": str(tmp_path / "none")}) is None


def make_borg_repo(tmp_path, lines):
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "config").write_text(config_text(lines=lines))
    (repo / "index.5").write_text("i")
    (repo / "lock.roster").write_text("{}")
    return repo


def escrow_files(tmp_path, export=None):
    (tmp_path / "keys").mkdir()
    (tmp_path / "pass").mkdir()
    key = tmp_path / "keys" / "k"
    key.write_text(export or export_text())
    pw = tmp_path / "pass" / "p"
    pw.write_text("sekrit\n")
    return key, pw


def test_borg_probe_repokey_opens_a_shadow_with_the_escrowed_key(tmp_path):
    repo = make_borg_repo(tmp_path, ["OLDKEY"])
    key, pw = escrow_files(tmp_path)
    module = borg_module([(0, '{"archives": []}', "")])
    it = escrow.parse_item({"name": "b", "kind": "borg", "repo": str(repo), "key_file": str(key),
                            "passphrase_file": str(pw)})
    decrypts, current = escrow.BorgProbe(module).run(it)
    assert decrypts.ok
    assert not current.ok and "stale" in current.problems[0]  # the repository's blob differs from the escrow
    call = module.calls[0]
    assert call["cmd"][1:-1] == ["list", "--log-json", "--json", "--last", "1"]
    env = call["environ_update"]
    assert "BORG_PASSPHRASE_FD" in env and "BORG_KEY_FILE" not in env
    assert env["BORG_BASE_DIR"].startswith(os.path.dirname(call["cmd"][-1]).rsplit("/", 1)[0])
    assert all("sekrit" not in arg for arg in call["cmd"])
    assert call["pass_fds"] == [int(env["BORG_PASSPHRASE_FD"])]
    snap = module.snapshots[0]
    assert snap["fd_text"] == "sekrit\n"
    assert snap["entries"] == ["config", "data", "index.5"]  # no lock files, the rest linked
    assert parse_repo_config(snap["config"]).blob == BLOB
    assert snap["config_mode"] == 0o600 and snap["dir_mode"] & 0o777 == 0o700
    assert not os.path.exists(snap["dir"])  # shadow removed
    assert (repo / "config").read_text() == config_text(lines=["OLDKEY"])  # repository untouched


def test_borg_probe_keyfile_uses_borg_key_file_and_passcommand(tmp_path, monkeypatch):
    monkeypatch.setenv("BORG_KEYS_DIR", str(tmp_path / "nokeys"))
    repo = make_borg_repo(tmp_path, [])
    key, _pw = escrow_files(tmp_path)
    module = borg_module([(2, "", log_json("PassphraseWrong"))])
    it = escrow.parse_item({"name": "b", "kind": "borg", "repo": str(repo), "key_file": str(key),
                            "passcommand": "cat /elsewhere"})
    decrypts, current = escrow.BorgProbe(module).run(it)
    env = module.calls[0]["environ_update"]
    assert env["BORG_KEY_FILE"] == str(key) and env["BORG_PASSCOMMAND"] == "cat /elsewhere"
    assert not decrypts.ok and "passphrase does not unlock" in decrypts.problems[0]
    assert not current.ok
    assert parse_repo_config(module.snapshots[0]["config"]).blob == ""


def test_borg_probe_not_an_export(tmp_path):
    repo = make_borg_repo(tmp_path, ["X"])
    key, pw = escrow_files(tmp_path, export="To restore key use borg key import --paper\n")
    it = escrow.parse_item({"name": "b", "kind": "borg", "repo": str(repo), "key_file": str(key),
                            "passphrase_file": str(pw)})
    module = borg_module()
    decrypts, _current = escrow.BorgProbe(module).run(it)
    assert not decrypts.ok and "not a borg key export" in decrypts.problems[0]
    assert module.calls == []


# --- restic, luks, file -----------------------------------------------------------------------------------------

def test_decide_restic(tmp_path):
    (tmp_path / "config").write_text("x")
    it = escrow.parse_item({"name": "r", "kind": "restic", "key_file": "/k", "repo": str(tmp_path)})
    ok = escrow.decide_restic(it, Result([], 0, '{"version": 2, "id": "abc"}', ""))
    assert ok[0].ok and ok[1].ok
    bad = escrow.decide_restic(it, Result([], 1, "", "Fatal: wrong password or no key found\n"))
    assert not bad[0].ok and "opens no key" in bad[0].problems[0]
    assert not bad[1].ok and "key rotation" in bad[1].problems[0]
    gone = escrow.parse_item({"name": "r", "kind": "restic", "key_file": "/k", "repo": str(tmp_path / "nope")})
    assert "There is no restic repository at this location" in \
        escrow.decide_restic(gone, Result([], 1, "", ""))[0].problems[0]


def test_restic_probe_passes_the_password_file_by_environment():
    module = FakeModule(answers=[(0, '{"id": "abc"}', "")])
    it = escrow.parse_item({"name": "r", "kind": "restic", "key_file": "/e/pw", "repo": "/srv/r"})
    decrypts, current = escrow.ResticProbe(module).run(it)
    assert decrypts.ok and current.ok
    call = module.calls[0]
    assert call["cmd"][1:] == ["--no-lock", "--no-cache", "--quiet", "cat", "config"]
    assert call["environ_update"]["RESTIC_PASSWORD_FILE"] == "/e/pw"
    assert call["environ_update"]["RESTIC_REPOSITORY"] == "/srv/r"
    assert call["environ_update"]["RESTIC_PASSWORD"] == "" and call["environ_update"]["RESTIC_PASSWORD_COMMAND"] == ""


@pytest.mark.parametrize("rc, decrypts_ok, fragment", [
    (0, True, None),
    (2, False, "opens no keyslot"),
    (4, False, "could not test"),
])
def test_luks_probe(rc, decrypts_ok, fragment):
    module = FakeModule(answers=[(rc, "", "Device /dev/x does not exist or access denied.\n" if rc == 4 else "")])
    it = escrow.parse_item({"name": "l", "kind": "luks", "key_file": "/e/k", "device": "/dev/x"})
    decrypts, current = escrow.LuksProbe(module).run(it)
    assert decrypts.ok is decrypts_ok and current.ok is decrypts_ok
    assert module.calls[0]["cmd"][1:] == ["open", "--test-passphrase", "--key-file", "/e/k", "/dev/x"]
    if fragment:
        assert fragment in decrypts.problems[0]


def test_file_kind_digest(tmp_path):
    key = tmp_path / "kms.json"
    key.write_bytes(b'{"key": "material"}')
    digest = hashlib.sha256(key.read_bytes()).hexdigest()
    it = escrow.parse_item({"name": "f", "kind": "file", "key_file": str(key), "sha256": digest})
    assert escrow.decide_file(it, escrow.file_sha256(str(key)))[0].ok
    bad = escrow.decide_file(it, "0" * 64)
    assert not bad[0].ok and "not the expected" in bad[0].problems[0]


# --- the whole check --------------------------------------------------------------------------------------------

def file_params(tmp_path, mode=0o600, **extra):
    key = tmp_path / "kms.key"
    key.write_bytes(b"material")
    key.chmod(mode)
    raw = {"name": "kms", "kind": "file", "key_file": str(key),
           "sha256": hashlib.sha256(b"material").hexdigest(), "protected_paths": []}
    raw.update(extra)
    return {"items": [raw], "max_mode": "0600", "fail_on_problem": True}


def test_main_ok_and_changed_false(tmp_path, monkeypatch):
    for name in escrow.FOREIGN_SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(escrow, "host_identity", lambda: "m1/escrow1")
    result = escrow.main(FakeModule(params=file_params(tmp_path)))
    assert result == {"ok": True, "changed": False, "host_id": "m1/escrow1", "results": [
        {"name": "kms", "ok": True, "problems": [],
         "checks": {"exists": True, "mode": True, "apart": True, "decrypts": True, "current": True}}]}


def test_main_fail_on_problem_carries_results(tmp_path, monkeypatch):
    for name in escrow.FOREIGN_SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    params = file_params(tmp_path, mode=0o644)
    with pytest.raises(escrow.EscrowCheckFailed) as info:
        escrow.main(FakeModule(params=params))
    assert "kms (mode)" in info.value.msg
    assert info.value.details["ok"] is False
    assert info.value.details["results"][0]["checks"]["mode"] is False
    params["fail_on_problem"] = False
    result = escrow.main(FakeModule(params=params))
    assert result["ok"] is False and result["results"][0]["checks"]["decrypts"] is True


def test_main_missing_key_skips_the_rest(tmp_path, monkeypatch):
    for name in escrow.FOREIGN_SECRET_VARS:
        monkeypatch.delenv(name, raising=False)
    params = file_params(tmp_path)
    params["items"][0]["key_file"] = str(tmp_path / "missing")
    params["fail_on_problem"] = False
    result = escrow.main(FakeModule(params=params))["results"][0]
    assert result["checks"] == dict.fromkeys(escrow.CHECKS, False)
    assert "does not exist" in result["problems"][0]


def test_main_refuses_a_foreign_secret_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BORG_PASSPHRASE", "whatever")
    with pytest.raises(InputError, match="BORG_PASSPHRASE is set"):
        escrow.main(FakeModule(params=file_params(tmp_path)))
