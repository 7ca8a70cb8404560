# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of borg's command line: versions, exit codes of borg 1.2 and 1.4, messages, the environment rules."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils._borg import cli
from ansible_collections.restoreops.dr.plugins.module_utils._errors import UnsupportedVersionError
from ansible_collections.restoreops.dr.plugins.module_utils._runner import Result
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource


def log_json(msgid: str, message: str = "x", level: str = "ERROR") -> str:
    return json.dumps({"type": "log_message", "levelname": level, "message": message, "msgid": msgid}) + "\n"


# --- versions ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,version", [("borg 1.2.4\n", (1, 2, 4)), ("borg 1.4.0\n", (1, 4, 0)),
                                          ("borg 1.4.1", (1, 4, 1))])
def test_versions_12_and_14_accepted(text, version):
    assert cli.check_version(text) == version


@pytest.mark.parametrize("text", ["borg 2.0.0b14", "borg 2.0.0", "borg2 2.1.0"])
def test_version_2_refused_with_clear_message(text):
    with pytest.raises(UnsupportedVersionError, match=r"borg 1\.2 and 1\.4 only.*borg 2 changed"):
        cli.check_version(text)


def test_version_11_refused():
    with pytest.raises(UnsupportedVersionError, match="too old"):
        cli.check_version("borg 1.1.18")


def test_modern_exit_codes_from_14():
    assert not cli.has_modern_exit_codes((1, 2, 4))
    assert cli.has_modern_exit_codes((1, 4, 0))


# --- exit codes: borg 1.2 (legacy: 0/1/2 and msgids) and borg 1.4 (BORG_EXIT_CODES=modern) ------------------------

@pytest.mark.parametrize("rc,kind", [(0, "ok"), (1, "warning"), (2, "error"), (13, "error"), (52, "error"),
                                     (99, "error"), (100, "warning"), (107, "warning"), (127, "warning"),
                                     (137, "error")])
def test_rc_kind_both_generations(rc, kind):
    assert cli.rc_kind(rc) == kind
    assert cli.succeeded(rc) is (kind != "error")


@pytest.mark.parametrize("rc,stderr,name", [
    (2, log_json("PassphraseWrong"), "PassphraseWrong"),  # borg 1.2: only the log line names it
    (52, "", "PassphraseWrong"),  # borg 1.4: the exit code alone names it
    (52, log_json("PassphraseWrong"), "PassphraseWrong"),
    (2, log_json("Repository.DoesNotExist"), "Repository.DoesNotExist"),
    (13, "", "Repository.DoesNotExist"),
    (73, "", "LockTimeout"),
    (51, "", "PasscommandFailure"),
    (81, "", "ConnectionClosedWithHint"),
])
def test_error_ids_name_the_same_error_on_both_generations(rc, stderr, name):
    assert name in cli.error_ids(rc, stderr)


def test_error_ids_do_not_repeat():
    assert cli.error_ids(52, log_json("PassphraseWrong")) == ["PassphraseWrong"]
    assert cli.error_ids(2, "") == []


def test_missing_repository_both_generations():
    assert cli.is_missing_repository(2, log_json("Repository.DoesNotExist"))
    assert cli.is_missing_repository(13, "")
    assert not cli.is_missing_repository(2, log_json("PassphraseWrong"))


def test_log_msgids_and_messages():
    err = log_json("PassphraseWrong", "wrong") + "not json\n" + log_json("", "just info", "INFO")
    assert cli.log_msgids(err) == ["PassphraseWrong"]
    assert cli.log_messages(err) == ["wrong", "not json"]


def test_last_error_message_skips_local_exception():
    err = log_json("Exception", "Local Exception\nTraceback...") + log_json("X", "Repository x does not exist.")
    assert cli.last_error_message(err) == "Repository x does not exist."
    assert cli.last_error_message(log_json("Exception", "Local Exception")) == ""


@pytest.mark.parametrize("rc,stderr,fragment", [
    (2, log_json("PassphraseWrong"), "passphrase is wrong"),
    (52, "", "passphrase is wrong"),
    (51, log_json("PasscommandFailure", "cat: /p: No such file"), "passcommand failed"),
    (73, "", "is locked and the lock could not be taken"),
    (2, log_json("LockTimeout", "Failed to create/acquire the lock"), "is locked"),
    (80, log_json("ConnectionClosed", "Connection closed by remote host"), "Cannot reach /r"),
    (2, log_json("Archive.DoesNotExist", "Archive x does not exist"), "doing it: Archive x does not exist"),
])
def test_fail_names_the_cause(fake_module, rc, stderr, fragment):
    borg = cli.BorgCLI(fake_module(), SecretSource(), repo="/r")
    error = borg.fail(Result(cmd=["borg", "list"], rc=rc, stdout="", stderr=stderr), "doing it")
    assert fragment in error.msg
    assert error.rc == rc


# --- environment ------------------------------------------------------------------------------------------------

def test_environment_never_prompts_and_asks_for_modern_codes():
    env = cli.borg_environment(SecretSource())
    assert env["BORG_PASSPHRASE"] == "" and env["BORG_DISPLAY_PASSPHRASE"] == "no"
    assert env["BORG_EXIT_CODES"] == "modern"
    assert env["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] == "no"


def test_one_relocated_repository_policy():
    assert cli.borg_environment(SecretSource(), purpose="manage")["BORG_RELOCATED_REPO_ACCESS_IS_OK"] == "no"
    assert cli.borg_environment(SecretSource(), purpose="verify")["BORG_RELOCATED_REPO_ACCESS_IS_OK"] == "no"
    assert cli.borg_environment(SecretSource(), purpose="restore")["BORG_RELOCATED_REPO_ACCESS_IS_OK"] == "yes"
    # a caller's own env may say otherwise, as borg documents the variable
    env = cli.borg_environment(SecretSource(), purpose="restore", extra={"BORG_RELOCATED_REPO_ACCESS_IS_OK": "no"})
    assert env["BORG_RELOCATED_REPO_ACCESS_IS_OK"] == "no"
    with pytest.raises(ValueError):
        cli.borg_environment(SecretSource(), purpose="anything")


def test_environment_secret_sources():
    assert cli.borg_environment(SecretSource(value="v"))["BORG_PASSPHRASE"] == "v"
    cmd = cli.borg_environment(SecretSource(command="cat /p"))
    assert cmd["BORG_PASSCOMMAND"] == "cat /p" and "BORG_PASSPHRASE" not in cmd
    assert "BORG_PASSPHRASE" not in cli.borg_environment(SecretSource(file="/p"))  # by descriptor, per run


def test_environment_drops_inherited_and_caller_passphrases(monkeypatch):
    monkeypatch.setenv("BORG_PASSPHRASE", "inherited")
    monkeypatch.setenv("BORG_PASSPHRASE_FD", "9")
    extra = {"BORG_PASSPHRASE": "in-env", "BORG_RSH": "ssh -i /k"}
    env = cli.borg_environment(SecretSource(command="cat /p"), extra=extra)
    assert "BORG_PASSPHRASE" not in os.environ and "BORG_PASSPHRASE_FD" not in os.environ
    assert "BORG_PASSPHRASE" not in env and env["BORG_PASSCOMMAND"] == "cat /p" and env["BORG_RSH"] == "ssh -i /k"


def test_environment_locations():
    env = cli.borg_environment(SecretSource(), base_dir="/b", rsh="ssh -p 2", key_file="/k", unencrypted_ok=True)
    assert (env["BORG_BASE_DIR"], env["BORG_RSH"], env["BORG_KEY_FILE"]) == ("/b", "ssh -p 2", "/k")
    assert env["BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK"] == "yes"


# --- the wrapper ------------------------------------------------------------------------------------------------

def test_argv_puts_common_options_after_the_command(fake_module, tool_paths):
    borg = cli.BorgCLI(fake_module(), SecretSource(value="s3cret"), lock_wait=30, remote_path="borg-1.4")
    borg.run(["list", "--json", "/r"])
    cmd, kwargs = borg.runner.module.calls[0]
    assert cmd == ["/usr/bin/borg", "list", "--log-json", "--lock-wait", "30", "--remote-path", "borg-1.4", "--json",
                   "/r"]
    assert kwargs["environ_update"]["BORG_PASSPHRASE"] == "s3cret" and "s3cret" not in " ".join(cmd)


def test_passphrase_file_goes_by_a_descriptor_per_run(fake_module, tool_paths, tmp_path):
    pf = tmp_path / "pf"
    pf.write_text("from-file\n")
    seen = []

    def on_run(cmd, kwargs):
        fd = int(kwargs["environ_update"]["BORG_PASSPHRASE_FD"])
        assert kwargs["pass_fds"] == [fd]
        seen.append(os.pread(fd, 100, 0).decode())

    borg = cli.BorgCLI(fake_module(on_run=on_run), SecretSource(file=str(pf)))
    borg.run(["list", "/r"])
    borg.run(["info", "/r"])
    assert seen == ["from-file\n", "from-file\n"]
    assert "BORG_PASSPHRASE" not in borg.env


def test_run_check_and_warnings(fake_module, tool_paths):
    borg = cli.BorgCLI(fake_module(answers=[(1, "", ""), (107, "", ""), (1, "", ""), (13, "", "")]), SecretSource(),
                       repo="/r")
    assert borg.run(["extract", "/r::a"], check=True, warnings_ok=True).rc == 1  # 1.2 warning
    assert borg.run(["extract", "/r::a"], check=True, warnings_ok=True).rc == 107  # 1.4 warning
    with pytest.raises(cli.ToolError):
        borg.run(["extract", "/r::a"], check=True)  # a warning fails a strict run
    with pytest.raises(cli.ToolError, match="doing it"):
        borg.run(["list", "/r"], check=True, warnings_ok=True, error="doing it")


def test_version_refuses_borg2_before_anything_else(fake_module, tool_paths):
    module = fake_module(answers=[(0, "borg 2.0.0b14\n", "")])
    with pytest.raises(UnsupportedVersionError):
        cli.BorgCLI(module, SecretSource()).version()
    assert module.calls[0][0] == ["/usr/bin/borg", "--version"]


@pytest.mark.parametrize(("version", "warned"), [((1, 2, 4), True), ((1, 2, 0), True), ((1, 2, 5), False),
                                                 ((1, 2, 8), False), ((1, 4, 0), False)])
def test_archive_spoofing_warning_names_the_cve_and_the_remedy(version, warned):
    warnings = cli.security_warnings(version)
    assert bool(warnings) is warned
    if warned:
        text = warnings[0]
        assert "CVE-2023-36811" in text and "bookworm-backports" in text
        assert "borg upgrade --show-rc --check-tam" in text and "--archives-tam" in text


def test_a_damaged_segment_is_named_and_no_traceback_reaches_the_message():
    stderr = "\n".join(json.dumps(entry) for entry in [
        {"type": "log_message", "levelname": "ERROR", "msgid": "IntegrityError",
         "message": "Data integrity error: Segment entry checksum mismatch [segment 4, offset 8]"},
        {"type": "log_message", "levelname": "ERROR",
         "message": "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/borg/archiver.py\""},
    ])
    borg = cli.BorgCLI(None, SecretSource(), repo="/offsite/borg")
    error = borg.fail(Result(["borg", "extract"], 2, "", stderr), "borg extract of host-1 failed")
    assert "Traceback" not in error.msg
    assert error.msg == ("borg extract of host-1 failed: the repository /offsite/borg is damaged (borg: Data "
                         "integrity error: Segment entry checksum mismatch [segment 4, offset 8]); run borg check "
                         "on it, and restore from another archive or another copy of the repository")
