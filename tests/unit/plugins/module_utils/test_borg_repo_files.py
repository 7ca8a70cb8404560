# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of what borg repository files say: sizes, config, key export text, lock files."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo_files import (
    KeyExport,
    config_with_key,
    find_host_key,
    key_export_text,
    paper_key_text,
    parse_key_export,
    parse_lock_name,
    parse_repo_config,
    parse_roster,
    parse_size,
    read_lock_holders,
)
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError

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


# --- sizes, config and key export text ----------------------------------------------------------------------

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


def test_key_export_round_trip():
    config = parse_repo_config(CONFIG)
    exported = parse_key_export(key_export_text(REPO_ID, config.key))
    assert exported == KeyExport(REPO_ID, config.blob)
    with pytest.raises(ValueError, match="BORG_KEY"):
        parse_key_export(paper_key_text(REPO_ID, config.key))


def test_config_with_key_replaces_only_the_key():
    text = config_with_key(CONFIG, "AAAA")
    assert parse_repo_config(text).blob == "AAAA" and parse_repo_config(text).repo_id == REPO_ID
    assert parse_repo_config(config_with_key(CONFIG, None)).blob == parse_repo_config(CONFIG).blob


def test_config_mode_and_lowercase_id():
    cfg = parse_repo_config(CONFIG.replace(REPO_ID, REPO_ID.upper()))
    assert cfg.repo_id == REPO_ID and cfg.mode == "repokey"
    assert parse_repo_config("[repository]\nid = ab\nkey = \n").mode == "keyfile"


def test_find_host_key(tmp_path):
    keys = tmp_path / "base" / ".config" / "borg" / "keys"
    keys.mkdir(parents=True)
    (keys / "other").write_text("BORG_KEY " + "0" * 64 + "\nAAAA\n")
    (keys / "mine").write_text(f"BORG_KEY {REPO_ID}\nAAAA\n")
    assert find_host_key(REPO_ID, {"BORG_BASE_DIR": str(tmp_path / "base")}) == str(keys / "mine")
    assert find_host_key(REPO_ID, {"BORG_KEYS_DIR": str(tmp_path / "none")}) is None


# --- lock files --------------------------------------------------------------------------------------------------

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
