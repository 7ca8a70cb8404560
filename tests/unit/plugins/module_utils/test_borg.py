# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the borg parsing and decision logic (no borg is started here)."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _borg
from ansible_collections.restoreops.dr.plugins.module_utils._borg import (
    LockHolder,
    annotate_alive,
    check_version,
    decide_lock,
    key_export_text,
    local_host_id,
    log_msgids,
    paper_key_text,
    parse_lock_name,
    parse_repo_config,
    parse_roster,
    parse_size,
    read_lock_holders,
    summarize_listing,
    validate,
    validate_repo,
)
from ansible_collections.restoreops.dr.plugins.module_utils._errors import (
    InputError,
    UnsupportedVersionError,
)

ME = "backup1.example.org@3281355014145"
LOST = "old-server.example.org@52231123181234"

# A real borg 1.2.4 repository config and the sha256 of what `borg key export` / `--paper` printed for it.
REPO_ID = "cb06f57a686bd347990b3309577e5b693bda6e7fb7ef78d8c275cafaa6d09308"
KEYBLOB = (
    "hqlhbGdvcml0aG2mc2hhMjU2pGRhdGHaAZ6Rhq4ob9P7sTP2ZRoBQUtDl+JzakBh+AFN/7\n"
    "P5djeWmOoRnFWoObCUzlv0ATHB+uv7VBnXEdse8c0Q/U4WQkvirAM2gLL/4OaB9YSTXMHl\n"
    "6Z/ryKRN1Cr2XVpMjs7jouyAVHY2RqHsOcEj0wpW8t6ii7Ll9j/EY38Bi4okRNrhmZCIEU\n"
    "sMX2lJoemkhnq6dFlfRK0HVf+Gjr4iKEJpEx27pkXEJtcoVCPv6f/xI8Su7pOzMM10O3kh\n"
    "t+K64DOUtxaT261KLT7t0lBJeLRyUYMlGI1EVk8jTs31NEEqngU+QPA0M4hgixUq4ow2Dj\n"
    "b7l3Nzfe76lUIXaMYA3S48I5BYAyttiK7itVED0WvL83W+v3/2QpaFFx98s243kQevEVhN\n"
    "43VYh3+NJWLdzNGBOiEUmXWDZL+COeD1qubgTYlNxhtjoVDtHbCgaliZvSxdMuTMM4O/Xr\n"
    "z7d2Vf8oh8GTIB3ezqhoVMrhjU6v23IRNjA2RTBgSKF67XgWxnagjw2PSTAkz34GHf8oZD\n"
    "eaUF+cbh6QWZT5ocT9gDF7f8LAGkaGFzaNoAINpy7Cli11lZmBe7QRyJa8PetRzQabC4Z7\n"
    "CQbAppxvyIqml0ZXJhdGlvbnPOAAGGoKRzYWx02gAgpghKdvReLooq/rJja85E5xjfQ5ai\n"
    "Lnzxlq+x5AGhZ92ndmVyc2lvbgE="
)
CONFIG = "[repository]\nversion = 1\nappend_only = 1\nstorage_quota = 20G\nid = {}\nkey = {}\n".format(
    REPO_ID, KEYBLOB.replace("\n", "\n\t"))


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- version -----------------------------------------------------------------------------------------------------

def test_version_12_accepted():
    assert check_version("borg 1.2.4\n") == (1, 2, 4)


@pytest.mark.parametrize("text", ["borg 2.0.0b14", "borg 2.0.0", "borg2 2.1.0"])
def test_version_2_refused_with_clear_message(text):
    with pytest.raises(UnsupportedVersionError, match=r"borg 1\.2 only"):
        check_version(text)


def test_version_11_refused():
    with pytest.raises(UnsupportedVersionError, match="too old"):
        check_version("borg 1.1.18")


# --- inputs ------------------------------------------------------------------------------------------------------

def test_repo_relative_path_refused():
    with pytest.raises(InputError, match="relative path"):
        validate_repo("backups/repo")


def test_repo_other_scheme_refused():
    with pytest.raises(InputError, match="ssh://"):
        validate_repo("sftp://host/repo")


def test_repo_forms():
    assert validate_repo("/srv/repo/") == "/srv/repo"
    assert validate_repo("ssh://u@h:22/./r") == "ssh://u@h:22/./r"


def params(**kw):
    base = dict(repo="/srv/repo", encryption=None, passphrase=None, passphrase_file=None, passcommand=None,
                append_only=None, storage_quota=None, key_export=None, stale_lock="break", dead_hosts=[],
                break_foreign_lock_after=None, check="none", lock_wait=None, rsh=None, remote_path=None,
                borg_binary="borg", base_dir=None)
    base.update(kw)
    return base


def test_both_passphrase_and_file_refused(tmp_path):
    pf = tmp_path / "pf"
    pf.write_text("x")
    with pytest.raises(InputError, match="one way only"):
        validate(params(passphrase="x", passphrase_file=str(pf)))


def test_unreadable_passphrase_file(tmp_path):
    with pytest.raises(InputError, match="cannot be read"):
        validate(params(passphrase_file=str(tmp_path / "missing")))


def test_relative_passphrase_file():
    with pytest.raises(InputError, match="absolute path"):
        validate(params(passphrase_file="pass.txt"))


def test_key_export_inside_repo_refused(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    with pytest.raises(InputError, match="inside the repository"):
        validate(params(repo=str(repo), key_export={"dest": str(repo / "key.txt"), "paper": False, "mode": "0600"}))


def test_key_export_relative_dest_refused(tmp_path):
    with pytest.raises(InputError, match="absolute path"):
        validate(params(repo=str(tmp_path / "r"), key_export={"dest": "key.txt", "paper": False, "mode": "0600"}))


def test_key_export_with_encryption_none_refused(tmp_path):
    with pytest.raises(InputError, match="no key"):
        validate(params(repo=str(tmp_path / "r"), encryption="none",
                        key_export={"dest": str(tmp_path / "k"), "paper": False, "mode": "0600"}))


def test_key_export_mode_parsed(tmp_path):
    p = validate(params(repo=str(tmp_path / "r"),
                        key_export={"dest": str(tmp_path / "k"), "paper": False, "mode": "0640"}))[0]
    assert p["key_export"]["mode"] == 0o640


@pytest.mark.parametrize("text,expected", [("0", 0), ("10M", 10_000_000), ("20G", 20_000_000_000),
                                           ("1.5T", 1_500_000_000_000), ("12345", 12345), (None, 0)])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_parse_size_bad():
    with pytest.raises(InputError, match="storage_quota"):
        parse_size("lots")


# --- config and key export text ----------------------------------------------------------------------------------

def test_parse_repo_config():
    cfg = parse_repo_config(CONFIG)
    assert cfg.repo_id == REPO_ID
    assert cfg.append_only is True
    assert cfg.storage_quota == 20_000_000_000
    assert cfg.key == KEYBLOB


def test_key_export_text_matches_borg():
    assert sha(key_export_text(REPO_ID, parse_repo_config(CONFIG).key)) == \
        "d91c81f737c714b0c5861e3e2c553954745ad0194daf3ed03c7558cc6acb1325"


def test_paper_key_text_matches_borg():
    text = paper_key_text(REPO_ID, parse_repo_config(CONFIG).key)
    assert text.splitlines()[3] == "id: 31 / cb06f5 7a686b d34799 / f173f5 8f0770 - 30"
    assert sha(text) == "1d5dc639e64f56f1263230eab5ec66a3158909ef345b3c1cd37937b2f56a7d6e"


def test_summarize_listing_picks_newest():
    data = {"repository": {"id": "abc", "location": "/r"}, "encryption": {"mode": "repokey"},
            "archives": [{"name": "b", "start": "2026-11-23T02:00:00.000000", "end": "2026-11-23T02:01:00.000000"},
                         {"name": "a", "start": "2026-11-22T02:00:00.000000", "end": "2026-11-22T02:01:00.000000"}]}
    out = summarize_listing(data)
    assert out["archives"] == {"count": 2, "last": {"name": "b", "start": "2026-11-23T02:00:00.000000",
                                                    "end": "2026-11-23T02:01:00.000000"}}
    assert out["encryption"] == "repokey"


def test_summarize_listing_tie_goes_to_later_position():
    same = "2026-11-23T02:00:00.000000"
    data = {"archives": [{"name": "first", "start": same}, {"name": "second", "start": same}]}
    assert summarize_listing(data)["archives"]["last"]["name"] == "second"


def test_log_msgids():
    err = "\n".join([json.dumps({"type": "log_message", "levelname": "ERROR", "message": "x",
                                 "msgid": "PassphraseWrong"}), "not json", ""])
    assert log_msgids(err) == ["PassphraseWrong"]


# --- locks -------------------------------------------------------------------------------------------------------

def test_parse_lock_name_with_dotted_host():
    assert parse_lock_name("web.example.org@3281355014145.26843-0") == ("web.example.org@3281355014145", 26843, 0)
    assert parse_lock_name("garbage") is None


def test_parse_roster():
    text = json.dumps({"exclusive": [["h@1", 5, 0]], "shared": [["h@2", 7, 0], ["bad"]]})
    assert parse_roster(text) == [("exclusive", "h@1", 5, 0), ("shared", "h@2", 7, 0)]
    assert parse_roster("not json") == []


def test_read_lock_holders(tmp_path):
    lock_dir = tmp_path / "lock.exclusive"
    lock_dir.mkdir()
    (lock_dir / f"{LOST}.4242-0").write_text("")
    old = time.time() - 7200
    os.utime(lock_dir / f"{LOST}.4242-0", (old, old))
    (tmp_path / "lock.roster").write_text(json.dumps({"exclusive": [[LOST, 4242, 0]], "shared": [[ME, 99, 0]]}))
    holders = {(h.host, h.pid): h for h in read_lock_holders(str(tmp_path))}
    assert set(holders) == {(LOST, 4242), (ME, 99)}
    assert holders[(LOST, 4242)].age > 7000
    assert holders[(ME, 99)].kind == "shared"


def test_read_lock_holders_no_lock(tmp_path):
    assert read_lock_holders(str(tmp_path)) == []


def test_host_id_stability():
    assert _borg.host_id_is_stable("vm@3281355014145", {})  # 0x2fc00000001: a real MAC
    assert not _borg.host_id_is_stable("rdr-borg@62779240774033", {})  # 0x3918ee587991: multicast bit, random
    assert _borg.host_id_is_stable("rdr-borg@62779240774033", {"BORG_HOST_ID": "x@1"})
    assert not _borg.host_id_is_stable("garbage", {})


def test_local_host_id_env():
    assert local_host_id({"BORG_HOST_ID": "x@1"}) == "x@1"


def test_annotate_alive_only_for_own_host():
    hs = annotate_alive([LockHolder(ME, 10), LockHolder(LOST, 11)], ME, lambda pid: pid == 10)
    assert [h.alive for h in hs] == [True, None]


def holder(host=ME, pid=100, alive=None, age=10.0):
    return LockHolder(host=host, pid=pid, alive=alive, age=age)


def test_no_lock():
    assert decide_lock([], my_host=ME).action == "none"


def test_same_host_dead_pid_is_broken():
    d = decide_lock([holder(alive=False)], my_host=ME)
    assert d.action == "break" and "dead PID 100" in d.reason


@pytest.mark.parametrize("mode", ["break", "fail"])
def test_same_host_live_pid_fails_naming_pid(mode):
    d = decide_lock([holder(pid=4321, alive=True)], my_host=ME, mode=mode, dead_hosts=[ME],
                    break_foreign_lock_after=0)
    assert d.action == "fail" and "PID 4321" in d.reason


def test_foreign_host_refused_by_default():
    d = decide_lock([holder(host=LOST, age=10 ** 6)], my_host=ME)
    assert d.action == "fail" and LOST in d.reason and "dead_hosts" in d.reason


def test_foreign_host_in_dead_hosts_broken():
    d = decide_lock([holder(host=LOST)], my_host=ME, dead_hosts=[LOST])
    assert d.action == "break" and d.holder.host == LOST


def test_foreign_host_older_than_limit_broken():
    assert decide_lock([holder(host=LOST, age=3601)], my_host=ME, break_foreign_lock_after=3600).action == "break"


def test_foreign_host_younger_than_limit_refused():
    d = decide_lock([holder(host=LOST, age=60)], my_host=ME, break_foreign_lock_after=3600)
    assert d.action == "fail" and "60 s old" in d.reason


def test_mixed_one_live_blocks_all():
    d = decide_lock([holder(host=LOST), holder(pid=5, alive=True)], my_host=ME, dead_hosts=[LOST])
    assert d.action == "fail" and d.holder.pid == 5


def test_mode_fail_on_stale():
    assert decide_lock([holder(alive=False)], my_host=ME, mode="fail").action == "fail"


def test_mode_ignore():
    assert decide_lock([holder(alive=True)], my_host=ME, mode="ignore").action == "ignore"


# --- main() with a fake run_command: borg 2 is refused before anything else runs -----------------------------------

class FakeModule:
    def __init__(self, p, outputs):
        self.params = p
        self.check_mode = False
        self._diff = False
        self.outputs = outputs
        self.calls = []

    def run_command(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        return self.outputs.pop(0)


def test_main_refuses_borg2(tmp_path, monkeypatch):
    monkeypatch.setattr(_borg.ToolRunner, "resolve", lambda self: "/usr/bin/borg")
    module = FakeModule(params(repo=str(tmp_path / "r"), passphrase="s3cret"), [(0, "borg 2.0.0b14\n", "")])
    with pytest.raises(UnsupportedVersionError):
        _borg.main(module)
    assert len(module.calls) == 1
    assert not (tmp_path / "r").exists()


def test_passphrase_travels_in_env_not_argv(tmp_path, monkeypatch):
    monkeypatch.setattr(_borg.ToolRunner, "resolve", lambda self: "/usr/bin/borg")
    module = FakeModule(params(repo=str(tmp_path / "r"), passphrase="s3cret"),
                        [(0, "borg 1.2.4\n", ""), (0, "", ""),
                         (0, json.dumps({"repository": {"id": "ab", "location": str(tmp_path / "r")},
                                         "encryption": {"mode": "repokey-blake2"}, "archives": []}), "")])

    def fake_config(self):
        return _borg.RepoConfig(repo_id="ab")

    monkeypatch.setattr(_borg.Borg, "config", fake_config)
    result = _borg.main(module)
    assert result["changed"] is True
    for cmd, _kwargs in module.calls:
        assert "s3cret" not in " ".join(cmd)
    init_cmd, init_kwargs = module.calls[1]
    assert init_cmd[1] == "init" and init_kwargs["environ_update"]["BORG_PASSPHRASE"] == "s3cret"


def test_passphrase_file_goes_by_fd(tmp_path, monkeypatch):
    monkeypatch.setattr(_borg.ToolRunner, "resolve", lambda self: "/usr/bin/borg")
    pf = tmp_path / "pf"
    pf.write_text("from-file\n")
    module = FakeModule(params(repo=str(tmp_path / "r"), passphrase_file=str(pf)), [])
    borg = _borg.Borg(module, module.params, _borg.SecretSource(file=str(pf)))
    seen = {}

    def run_command(cmd, **kwargs):
        fd = int(kwargs["environ_update"]["BORG_PASSPHRASE_FD"])
        assert kwargs["pass_fds"] == [fd]
        seen["text"] = os.pread(fd, 100, 0).decode()
        return 0, "", ""

    module.run_command = run_command
    borg.run(["list", str(tmp_path / "r")])
    assert seen["text"] == "from-file\n"
    assert "BORG_PASSPHRASE" not in borg.runner.env


def test_existing_remote_repository_config_is_left_to_the_server(monkeypatch):
    # `borg config` refuses remote repositories ("Repository must be local"): an existing ssh:// repository is neither
    # read nor changed, whatever append_only and storage_quota say; its append-only is the server's forced command.
    monkeypatch.setattr(_borg.ToolRunner, "resolve", lambda self: "/usr/bin/borg")
    repo = "ssh://borg@backup.example:2222/srv/borg/repos/db1"
    listing = {"repository": {"id": "ab", "location": repo}, "encryption": {"mode": "repokey-blake2"}, "archives": []}
    module = FakeModule(params(repo=repo, passphrase="s3cret", append_only=True, storage_quota="5G"),
                        [(0, "borg 1.4.0\n", ""), (0, json.dumps(listing), "")])
    result = _borg.main(module)
    assert result["changed"] is False
    assert result["actions"] == []
    assert result["repo"]["append_only"] is None
    assert result["repo"]["storage_quota"] is None
    assert [cmd[1] for cmd, _kwargs in module.calls] == ["--version", "list"]
