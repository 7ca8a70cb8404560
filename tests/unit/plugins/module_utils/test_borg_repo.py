# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the borg_repo module's steps (borg answers from a script; no borg is started here)."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils._borg import repo as borg_repo
from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo import (
    summarize_listing,
    validate,
    validate_repo,
)
from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo_files import RepoConfig
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, UnsupportedVersionError


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


# --- listings ---------------------------------------------------------------------------------------------------

def test_summarize_listing_picks_newest():
    data = {"repository": {"id": "abc", "location": "/r"}, "encryption": {"mode": "repokey"},
            "archives": [{"name": "b", "start": "2026-11-23T02:00:00.000000", "end": "2026-11-23T02:01:00.000000"},
                         {"name": "a", "start": "2026-11-22T02:00:00.000000", "end": "2026-11-22T02:01:00.000000"}]}
    out = summarize_listing(data)
    assert out["archives"]["count"] == 2
    assert out["archives"]["last"]["name"] == "b"
    assert out["encryption"] == "repokey"


def test_summarize_listing_tie_goes_to_later_position():
    same = "2026-11-23T02:00:00.000000"
    data = {"archives": [{"name": "first", "start": same}, {"name": "second", "start": same}]}
    assert summarize_listing(data)["archives"]["last"]["name"] == "second"


def test_summarize_listing_times_leave_the_host_with_their_offset(monkeypatch):
    monkeypatch.setenv("TZ", "RDR-05:30")  # UTC+05:30, a POSIX zone that needs no tz database
    time.tzset()
    try:
        data = {"archives": [{"name": "a", "start": "2026-11-23T02:00:00.000000", "end": "2026-11-23T02:01:00.000000"}]}
        last = summarize_listing(data)["archives"]["last"]
        assert last["start"] == "2026-11-23T02:00:00.000000+05:30"
        assert last["end"] == "2026-11-23T02:01:00.000000+05:30"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# --- main() with a scripted borg ---------------------------------------------------------------------------------

LISTING = {"repository": {"id": "ab", "location": "/r"}, "encryption": {"mode": "repokey-blake2"}, "archives": []}


def test_main_refuses_borg2(fake_module, tool_paths, tmp_path):
    module = fake_module(params(repo=str(tmp_path / "r"), passphrase="s3cret"), [(0, "borg 2.0.0b14\n", "")])
    with pytest.raises(UnsupportedVersionError):
        borg_repo.main(module)
    assert len(module.calls) == 1
    assert not (tmp_path / "r").exists()


def test_passphrase_travels_in_env_not_argv(fake_module, tool_paths, tmp_path, monkeypatch):
    module = fake_module(params(repo=str(tmp_path / "r"), passphrase="s3cret"),
                         [(0, "borg 1.2.4\n", ""), (0, "", ""), (0, json.dumps(LISTING), "")])
    monkeypatch.setattr(borg_repo.Borg, "config", lambda self: RepoConfig(repo_id="ab"))
    result = borg_repo.main(module)
    assert result["changed"] is True and result["actions"] == ["borg init --encryption repokey-blake2"]
    for cmd, _kwargs in module.calls:
        assert "s3cret" not in " ".join(cmd)
    init_cmd, init_kwargs = module.calls[1]
    assert init_cmd[1] == "init" and init_kwargs["environ_update"]["BORG_PASSPHRASE"] == "s3cret"


def test_check_mode_reports_creation_and_touches_nothing(fake_module, tool_paths, tmp_path):
    module = fake_module(params(repo=str(tmp_path / "r"), passphrase="s3cret", append_only=True,
                                key_export={"dest": str(tmp_path / "k"), "paper": False, "mode": "0600"}),
                         [(0, "borg 1.4.0\n", "")], check_mode=True, diff=True)
    result = borg_repo.main(module)
    assert [c[0][1] for c in module.calls] == ["--version"]
    assert result["changed"] is True
    assert result["actions"] == ["borg init --encryption repokey-blake2", f"export the key to {tmp_path / 'k'}"]
    assert result["borg_version"] == "1.4.0"
    assert json.loads(result["diff"]["after"])["exists"] is True
    assert not (tmp_path / "r").exists() and not (tmp_path / "k").exists()


def test_borg14_missing_repository_by_exit_code(fake_module, tool_paths):
    module = fake_module(params(repo="ssh://backup@127.0.0.1/./r", passphrase="s3cret"),
                         [(0, "borg 1.4.0\n", ""), (13, "", "")], check_mode=True)
    result = borg_repo.main(module)
    assert result["actions"] == ["borg init --encryption repokey-blake2"]


def test_wrong_passphrase_on_borg14_is_named(fake_module, tool_paths):
    module = fake_module(params(repo="ssh://backup@127.0.0.1/./r", passphrase="nope"),
                         [(0, "borg 1.4.0\n", ""), (52, "", "")])
    with pytest.raises(borg_repo.ToolError, match="passphrase is wrong"):
        borg_repo.main(module)


@pytest.mark.parametrize("check_mode", [True, False])
def test_ensure_config_step_takes_check_mode(fake_module, tool_paths, monkeypatch, check_mode):
    module = fake_module()
    p = params(repo="/srv/r", append_only=True, storage_quota="10G")
    monkeypatch.setattr(borg_repo.Borg, "config", lambda self: RepoConfig(repo_id="ab"))
    state = borg_repo.State(params=p, secret=borg_repo.SecretSource(), changes=borg_repo.Changes(),
                            borg=borg_repo.Borg(module, p, borg_repo.SecretSource()), check_mode=check_mode,
                            listing=LISTING)
    borg_repo.ensure_config(state)
    assert state.changes.actions == ["set append_only=1", "set storage_quota=10G"]
    assert state.changes.before == {"append_only": False, "storage_quota": 0}
    assert state.config.append_only is True and state.config.storage_quota == 10_000_000_000
    sets = [c[0][1:] for c in module.calls]
    if check_mode:
        assert sets == []
    else:
        assert [s[0] for s in sets] == ["config", "config"] and sets[0][-2:] == ["append_only", "1"]


def test_existing_remote_repository_config_is_left_to_the_server(fake_module, tool_paths):
    # `borg config` refuses remote repositories ("Repository must be local"): an existing ssh:// repository is neither
    # read nor changed, whatever append_only and storage_quota say; its append-only is the server's forced command.
    repo = "ssh://borg@backup.example:2222/srv/borg/repos/db1"
    listing = {"repository": {"id": "ab", "location": repo}, "encryption": {"mode": "repokey-blake2"}, "archives": []}
    module = fake_module(params(repo=repo, passphrase="s3cret", append_only=True, storage_quota="5G"),
                         [(0, "borg 1.4.0\n", ""), (0, json.dumps(listing), "")])
    result = borg_repo.main(module)
    assert result["changed"] is False
    assert result["actions"] == []
    assert result["repo"]["append_only"] is None
    assert result["repo"]["storage_quota"] is None
    assert [cmd[1] for cmd, _kwargs in module.calls] == ["--version", "list"]


def test_new_remote_repository_gets_append_only_from_init(fake_module, tool_paths):
    # Created remotely with `borg init --append-only`; its config is then what init was told, never read back.
    repo = "ssh://borg@backup.example:2222/srv/borg/repos/db1"
    listing = {"repository": {"id": "ab", "location": repo}, "encryption": {"mode": "repokey-blake2"}, "archives": []}
    module = fake_module(params(repo=repo, passphrase="s3cret", append_only=True),
                         [(0, "borg 1.4.0\n", ""), (13, "", ""), (0, "", ""), (0, json.dumps(listing), "")])
    result = borg_repo.main(module)
    assert result["actions"] == ["borg init --encryption repokey-blake2"]
    assert result["repo"]["append_only"] is True
    init = module.calls[2][0]
    assert init[1] == "init" and "--append-only" in init
    assert "config" not in [cmd[1] for cmd, _kwargs in module.calls]


# --- the passphrase change (new_passphrase) ------------------------------------------------------------------------

REMOTE = "ssh://borg@backup.example:2222/srv/borg/repos/db1"
REMOTE_LISTING = {"repository": {"id": "ab", "location": REMOTE}, "encryption": {"mode": "repokey-blake2"},
                  "archives": []}
WRONG_PASSPHRASE = (52, "", "")  # borg 1.4's PassphraseWrong


def test_passphrase_change_runs_with_both_secrets_in_env_and_is_proven(fake_module, tool_paths):
    module = fake_module(params(repo=REMOTE, passphrase="old-s3cret", new_passphrase="N3w-s3cret"), [
        (0, "borg 1.4.0\n", ""),
        WRONG_PASSPHRASE,                        # the new passphrase does not open it yet
        (0, json.dumps(REMOTE_LISTING), ""),     # the listing, with the current passphrase
        (0, "", ""),                             # borg key change-passphrase
        (0, json.dumps(REMOTE_LISTING), ""),     # the new one opens it
        WRONG_PASSPHRASE,                        # the old one is refused
    ])
    result = borg_repo.main(module)
    assert result["passphrase_change"] == {"changed": True, "new_opens": True, "old_refused": True}
    assert result["changed"] is True and result["actions"] == ["borg key change-passphrase"]
    change_cmd, change_kwargs = module.calls[3]
    assert change_cmd[1] == "key" and "change-passphrase" in change_cmd and change_cmd[-1] == REMOTE
    environ = change_kwargs["environ_update"]
    assert environ["BORG_PASSPHRASE"] == "old-s3cret" and environ["BORG_NEW_PASSPHRASE"] == "N3w-s3cret"
    for cmd, _kwargs in module.calls:
        assert "s3cret" not in " ".join(cmd)
    assert [c[1]["environ_update"]["BORG_PASSPHRASE"] for c in module.calls[4:]] == ["N3w-s3cret", "old-s3cret"]


def test_passphrase_change_already_done_changes_nothing(fake_module, tool_paths):
    module = fake_module(params(repo=REMOTE, passphrase="old-s3cret", new_passphrase="N3w-s3cret"), [
        (0, "borg 1.4.0\n", ""), (0, json.dumps(REMOTE_LISTING), ""), (0, json.dumps(REMOTE_LISTING), "")])
    result = borg_repo.main(module)
    assert result["changed"] is False and result["passphrase_change"]["changed"] is False
    assert module.calls[2][1]["environ_update"]["BORG_PASSPHRASE"] == "N3w-s3cret"


def test_passphrase_change_in_check_mode_runs_no_change(fake_module, tool_paths):
    module = fake_module(params(repo=REMOTE, passphrase="old-s3cret", new_passphrase="N3w-s3cret"), [
        (0, "borg 1.4.0\n", ""), WRONG_PASSPHRASE, (0, json.dumps(REMOTE_LISTING), "")], check_mode=True)
    result = borg_repo.main(module)
    assert result["changed"] is True and result["passphrase_change"]["changed"] is True
    assert all("change-passphrase" not in c[0] for c in module.calls)


def test_passphrase_change_needs_the_current_one():
    with pytest.raises(InputError, match="needs the current passphrase"):
        validate(params(new_passphrase="N3w"))
    with pytest.raises(InputError, match="encryption=none"):
        validate(params(passphrase="x", new_passphrase="N3w", encryption="none"))


# --- archive_stats, and check mode around a lock ------------------------------------------------------------------

INFO = {
    "repository": {"id": "ab", "location": "/r"}, "encryption": {"mode": "repokey-blake2"},
    "cache": {"stats": {"total_size": 300, "total_csize": 200, "unique_csize": 120, "total_chunks": 6}},
    "archives": [{"name": "a2", "start": "2026-11-23T02:00:01.000000+00:00", "end": "2026-11-23T02:03:10.000000+00:00",
                  "duration": 189.2, "stats": {"original_size": 100, "compressed_size": 70, "deduplicated_size": 5,
                                               "nfiles": 3}}],
}
LISTING_TWO = {**LISTING, "archives": [{"name": "a1", "start": "2026-11-22T02:00:01.000000+00:00"},
                                       {"name": "a2", "start": "2026-11-23T02:00:01.000000+00:00"}]}


def test_summarize_info_sizes_and_totals():
    out = borg_repo.summarize_info(INFO)
    assert out["last"]["name"] == "a2" and out["last"]["duration"] == 189.2
    assert out["last"]["stats"] == {"original_size": 100, "compressed_size": 70, "deduplicated_size": 5, "nfiles": 3}
    assert out["totals"] == {"original_size": 300, "compressed_size": 200, "deduplicated_size": 120}


def test_summarize_info_without_archives_or_cache():
    assert borg_repo.summarize_info({"archives": []}) == {"last": None, "totals": None}


def local_repo(tmp_path, holder: str | None = None):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "config").write_text("[repository]\nversion = 1\nid = ab\nappend_only = 0\n")
    if holder:
        (repo / "lock.exclusive").mkdir()
        (repo / "lock.exclusive" / holder).write_text("")
        host, rest = holder.rsplit(".", 1)
        pid = int(rest.split("-")[0])
        (repo / "lock.roster").write_text(json.dumps({"exclusive": [[host, pid, 0]]}))
    return repo


def test_archive_stats_reads_borg_info_once(fake_module, tool_paths, tmp_path, monkeypatch):
    monkeypatch.setenv("BORG_HOST_ID", "me@1")
    repo = local_repo(tmp_path)
    module = fake_module(params(repo=str(repo), passphrase="s3cret", archive_stats=True),
                         [(0, "borg 1.2.4\n", ""), (0, json.dumps(LISTING_TWO), ""), (0, json.dumps(INFO), "")],
                         check_mode=True)
    result = borg_repo.main(module)
    info_cmd = module.calls[2][0]
    assert info_cmd[1:6] == ["info", "--log-json", "--json", "--last", "1"] and "--bypass-lock" not in info_cmd
    assert result["archives"]["count"] == 2
    assert result["archives"]["last"]["stats"]["deduplicated_size"] == 5
    assert result["archives"]["totals"]["deduplicated_size"] == 120
    assert result["changed"] is False


def test_archive_stats_skipped_without_archives(fake_module, tool_paths, tmp_path, monkeypatch):
    monkeypatch.setenv("BORG_HOST_ID", "me@1")
    repo = local_repo(tmp_path)
    module = fake_module(params(repo=str(repo), passphrase="s3cret", archive_stats=True),
                         [(0, "borg 1.2.4\n", ""), (0, json.dumps(LISTING), "")], check_mode=True)
    result = borg_repo.main(module)
    assert len(module.calls) == 2 and "totals" not in result["archives"]


@pytest.mark.parametrize("holder, alive", [("me@1.999999-0", False), ("other@2.4242-0", None)])
def test_check_mode_reads_around_a_lock_and_skips_the_check(fake_module, tool_paths, tmp_path, monkeypatch,
                                                            holder, alive):
    """stale_lock=ignore in check mode: borg would remove its own host's stale lock when it takes the lock (and wait
    for another host's), so every read bypasses the lock and the check does not run; the lock stays as found."""
    monkeypatch.setenv("BORG_HOST_ID", "me@1")
    monkeypatch.setattr(borg_repo, "pid_alive", lambda pid: False)
    repo = local_repo(tmp_path, holder)
    before = sorted(p.name for p in (repo / "lock.exclusive").iterdir())
    module = fake_module(params(repo=str(repo), passphrase="s3cret", stale_lock="ignore", check="repository",
                                archive_stats=True),
                         [(0, "borg 1.2.4\n", ""), (0, json.dumps(LISTING_TWO), ""), (0, json.dumps(INFO), "")],
                         check_mode=True)
    result = borg_repo.main(module)
    subcommands = [c[0][1] for c in module.calls]
    assert subcommands == ["--version", "list", "info"]
    assert all("--bypass-lock" in c[0] for c in module.calls[1:])
    assert result["lock"]["present"] and result["lock"]["holder_alive"] is alive
    assert result["check"]["ok"] is None and "locked" in result["check"]["skipped_reason"]
    assert sorted(p.name for p in (repo / "lock.exclusive").iterdir()) == before
    assert result["changed"] is False


def test_check_runs_without_a_lock_in_check_mode(fake_module, tool_paths, tmp_path, monkeypatch):
    monkeypatch.setenv("BORG_HOST_ID", "me@1")
    repo = local_repo(tmp_path)
    module = fake_module(params(repo=str(repo), passphrase="s3cret", stale_lock="ignore", check="repository"),
                         [(0, "borg 1.2.4\n", ""), (0, json.dumps(LISTING_TWO), ""), (0, "", "")], check_mode=True)
    result = borg_repo.main(module)
    assert module.calls[2][0][1:3] == ["check", "--log-json"] and "--repository-only" in module.calls[2][0]
    assert result["check"] == {"mode": "repository", "ok": True, "skipped_reason": None}


def test_failed_check_keeps_what_was_found(fake_module, tool_paths, tmp_path, monkeypatch):
    monkeypatch.setenv("BORG_HOST_ID", "me@1")
    repo = local_repo(tmp_path)
    error_line = json.dumps({"type": "log_message", "levelname": "ERROR", "message": "Index object count mismatch."})
    module = fake_module(params(repo=str(repo), passphrase="s3cret", check="repository"),
                         [(0, "borg 1.2.4\n", ""), (0, json.dumps(LISTING_TWO), ""), (1, "", error_line)],
                         check_mode=True)
    with pytest.raises(borg_repo.ToolError) as caught:
        borg_repo.main(module)
    details = caught.value.details
    assert details["check"] == {"mode": "repository", "ok": False, "skipped_reason": None}
    assert details["archives"]["last"]["name"] == "a2" and details["lock"]["present"] is False
    assert "Index object count mismatch" in caught.value.msg
