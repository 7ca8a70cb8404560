# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of restic's command line: environment, failures of restic 0.14 and 0.17+, restore's per-version
arguments and JSON output (documented restic 0.17/0.18 output; restic itself is not started)."""

from __future__ import annotations

import json

import pytest
from conftest import FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._restic import cli
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import (
    classify_failure,
    restic_env,
    secrets_of,
)
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import local_repository_path
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource


@pytest.mark.parametrize("rc,stderr,kind", [
    (1, "Fatal: wrong password or no key found\n", "wrong_password"),
    (12, "", "wrong_password"),
    (1, "Fatal: unable to open config file: stat /x/config: no such file or directory\n"
        "Is there a repository at the following location?\n", "no_repository"),
    (10, "", "no_repository"),
    (11, "", "locked"),
    (1, "Remove(<snapshot/ff971ed3a4>) returned error, retrying after 552ms: blob not removed, server response: "
        "403 Forbidden (403)\n", "forbidden"),
    (1, "Remove: AccessDenied: Access Denied\n", "forbidden"),
    (1, "unable to create lock in backend: repository is already locked by PID 1 on h1\n", "other"),
    # restic 0.14 asks "Is there a repository" when the server is down too: the network error decides
    (1, 'Fatal: unable to open config file: client.Head: Head "http://127.0.0.1:1/r/config": dial tcp '
        "127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\n"
        "rest:http://127.0.0.1:1/r\n", "unreachable"),
    (1, "Fatal: unable to open config file: Stat: Get \"http://s3.invalid/b/?location=\": dial tcp: lookup "
        "s3.invalid: no such host\n", "unreachable"),
    (1, "", "other"),
])
def test_classify_failure(rc, stderr, kind):
    assert classify_failure(rc, stderr) == kind


@pytest.mark.parametrize("repo,path", [
    ("/srv/restic", "/srv/restic"), ("local:/srv/restic", "/srv/restic"), ("rest:http://127.0.0.1:1/r", None),
    ("s3:http://127.0.0.1:1/b", None), ("sftp:user@host:/srv", None), ("weird:thing", None),
])
def test_local_repository_path(repo, path):
    assert local_repository_path(repo) == path


def test_env_carries_password_and_repository_never_argv():
    env = restic_env("rest:http://u:urlpw@127.0.0.1:1/r", SecretSource(value="pw"), {"AWS_ACCESS_KEY_ID": "AK"},
                     "/var/cache/restic")
    assert env == {"AWS_ACCESS_KEY_ID": "AK", "RESTIC_REPOSITORY": "rest:http://u:urlpw@127.0.0.1:1/r",
                   "RESTIC_REPOSITORY_FILE": "", "RESTIC_PASSWORD": "pw", "RESTIC_PASSWORD_FILE": "",
                   "RESTIC_PASSWORD_COMMAND": "", "RESTIC_CACHE_DIR": "/var/cache/restic"}
    assert set(secrets_of("rest:http://u:urlpw@127.0.0.1:1/r", SecretSource(value="pw"),
                          {"AWS_SECRET_ACCESS_KEY": "verysecret"})) == {"pw", "verysecret", "urlpw"}


# --- restic 0.17+: exit codes and the exit_error line -------------------------------------------------------------

def exit_error(code: int, message: str) -> str:
    return json.dumps({"message_type": "exit_error", "code": code, "message": message}) + "\n"


@pytest.mark.parametrize("rc,stderr,kind", [
    (12, exit_error(12, "Fatal: wrong password or no key found"), "wrong_password"),
    (10, exit_error(10, "Fatal: repository does not exist: unable to open config file"), "no_repository"),
    (11, exit_error(11, "Fatal: unable to create lock in backend"), "locked"),
    # a 0.17+ code that says nothing specific: the exit_error message is read, not the status lines around it
    (1, '{"message_type":"status","percent_done":0.5}\n' + exit_error(1, "Fatal: wrong password or no key found"),
     "wrong_password"),
    (1, exit_error(1, "Fatal: something else"), "other"),
])
def test_classify_failure_restic_017(rc, stderr, kind):
    assert classify_failure(rc, stderr) == kind


def test_exit_error_line():
    assert cli.exit_error("plain text\n") is None
    assert cli.exit_error('{"message_type": "status"}\n' + exit_error(10, "gone"))["code"] == 10


def test_explain_is_applied_once():
    first = cli.explain(ToolError("restic cat failed: wrong password", rc=12, stderr=""))
    assert first.msg.startswith("The repository did not open: wrong password")
    assert cli.explain(first) is first


def test_version_check():
    assert cli.check_version("restic 0.18.0 compiled with go1.24.1 on linux/amd64") == (0, 18, 0)
    with pytest.raises(InputError, match="too old"):
        cli.check_version("restic 0.12.1 compiled with go1.16")


# --- restore: arguments and JSON output, both generations -----------------------------------------------------------

def test_restore_args_restic_014():
    expected = ["restore", "abcd", "--target", "/t", "--include", "/srv"]
    assert cli.restore_args((0, 14, 0), "abcd", "/t", ["/srv"]) == expected
    assert "--overwrite" not in cli.restore_args((0, 14, 0), "abcd", "/t", overwrite="always")
    with pytest.raises(InputError, match=r"needs restic 0\.17"):
        cli.restore_args((0, 14, 0), "abcd", "/t", overwrite="if-changed")


def test_restore_args_restic_017_and_later():
    assert cli.restore_args((0, 18, 0), "abcd", "/t", ["/srv"], overwrite="if-changed",
                            extra=["--limit-download", "100"]) == [
        "restore", "abcd", "--target", "/t", "--limit-download", "100", "--include", "/srv", "--json",
        "--overwrite", "if-changed"]
    assert cli.restore_args((0, 17, 0), "abcd", "/t")[-1] == "--json"
    with pytest.raises(InputError, match="overwrite must be one of"):
        cli.restore_args((0, 18, 0), "abcd", "/t", overwrite="sometimes")


# The message types of `restic restore --json` as restic's scripting documentation lists them (0.17, 0.18).
RESTORE_STDOUT_018 = "\n".join([
    json.dumps({"message_type": "status", "seconds_elapsed": 1, "percent_done": 0.5, "total_files": 3,
                "files_restored": 1, "total_bytes": 300, "bytes_restored": 100}),
    json.dumps({"message_type": "verbose_status", "action": "restored", "item": "/srv/a", "size": 100}),
    json.dumps({"message_type": "summary", "seconds_elapsed": 2, "total_files": 3, "files_restored": 3,
                "files_skipped": 0, "total_bytes": 300, "bytes_restored": 300}),
]) + "\n"
RESTORE_STDERR_018 = json.dumps({"message_type": "error", "error": {"message": "permission denied"},
                                 "during": "restore", "item": "/srv/b"}) + "\n"


def test_parse_restore_output_017_and_later():
    outcome = cli.parse_restore_output((0, 18, 0), RESTORE_STDOUT_018, RESTORE_STDERR_018)
    assert outcome.summary["files_restored"] == 3 and outcome.summary["bytes_restored"] == 300
    assert outcome.errors == [{"item": "/srv/b", "message": "permission denied"}]


def test_parse_restore_output_014_has_no_json():
    outcome = cli.parse_restore_output((0, 14, 0), "restoring <Snapshot abcd> to /t\n", "")
    assert outcome.summary is None and outcome.errors == []


def test_restore_through_the_wrapper(fake_module, tool_paths):
    module = fake_module(answers=[(0, "restic 0.18.0 compiled with go1.24", ""),
                                  (0, RESTORE_STDOUT_018, "")])
    restic = cli.Restic(cli.tool_runner(module, "/r", SecretSource(value="pw"), None, None, None))
    outcome = restic.restore("a" * 64, "/t", ["/srv"])
    assert module.calls[1][0][1:] == ["restore", "a" * 64, "--target", "/t", "--include", "/srv", "--json"]
    assert outcome.summary["total_files"] == 3


def test_cat_config_missing_and_wrong_password(fake_module, tool_paths):
    module = fake_module(answers=[(10, "", exit_error(10, "repository does not exist")),
                                  (1, "", "Fatal: unable to open config file: stat /r/config: no such file\n"
                                          "Is there a repository at the following location?\n"),
                                  (12, "", "Fatal: wrong password or no key found\n"),
                                  (0, '{"version": 2, "id": "abc"}', "")])
    restic = cli.Restic(cli.tool_runner(module, "/r", SecretSource(value="pw"), None, None, None))
    assert restic.cat_config() is None  # restic 0.17+
    assert restic.cat_config() is None  # restic 0.14
    with pytest.raises(ToolError, match="did not open: wrong password"):
        restic.cat_config()
    assert restic.cat_config() == {"version": 2, "id": "abc"}


@pytest.mark.parametrize("repository", ["offsite/restic", "local:offsite/restic", "./restic", ""])
def test_a_relative_local_repository_is_refused(repository):
    with pytest.raises(InputError, match="repository must be an absolute path or a backend URL"):
        cli.check_repository(repository)


@pytest.mark.parametrize("repository", ["/srv/restic", "local:/srv/restic", "rest:http://127.0.0.1:8000/r",
                                        "s3:http://127.0.0.1:9000/bucket", "sftp:backup@host:/srv/r"])
def test_absolute_and_remote_repositories_pass(repository):
    assert cli.check_repository(repository) == repository


def test_restore_errors_of_both_generations_name_the_damage():
    old = ("ignoring error for /srv/app/conf: decrypting blob 5df1 failed: ciphertext verification failed\n"
           "ignoring error for /srv/app/data/f: ciphertext verification failed\n"
           "ignoring error for /srv/app/conf: decrypting blob 5df1 failed: ciphertext verification failed\n"
           "Fatal: There were 3 errors\n")
    assert cli.restore_errors(old) == [
        ("/srv/app/conf", "decrypting blob 5df1 failed: ciphertext verification failed"),
        ("/srv/app/data/f", "ciphertext verification failed")]
    new = json.dumps({"message_type": "error", "error": {"message": "hash does not match"}, "during": "restore",
                      "item": "/srv/app/data/f"})
    assert cli.restore_errors(new + "\n") == [("/srv/app/data/f", "hash does not match")]


def test_a_failed_restore_names_the_first_errors_and_the_damage():
    stderr = ("ignoring error for /srv/app/conf: decrypting blob 5df1 failed: ciphertext verification failed\n"
              "Fatal: There were 1 errors\n")
    module = FakeModule({}, [(0, "restic 0.14.0 compiled with go1.19", ""), (1, "", stderr)])
    restic = cli.Restic(cli.tool_runner(module, "/r", SecretSource(value="pw-unit-9"), None, None, "/bin/true"))
    with pytest.raises(ToolError, match=r"failed with 1 error\(s\): /srv/app/conf: decrypting blob .*ciphertext "
                                        r"verification failed; the repository is damaged") as caught:
        restic.restore("a" * 64, "/staging")
    assert caught.value.details["restore_errors"][0]["item"] == "/srv/app/conf"


def test_an_unreachable_backend_is_named_not_taken_for_a_missing_repository():
    stderr = ('Fatal: unable to open config file: client.Head: Head "http://127.0.0.1:1/r/config": dial tcp '
              "127.0.0.1:1: connect: connection refused\nIs there a repository at the following location?\n"
              "rest:http://127.0.0.1:1/r\n")
    explained = cli.explain(ToolError("restic snapshots failed: rest:http://127.0.0.1:1/r", rc=1, stderr=stderr))
    assert explained.msg.startswith("The repository's backend did not answer: its server is down")
    assert explained.msg.endswith("(Fatal: unable to open config file: client.Head: Head "
                                  '"http://127.0.0.1:1/r/config": dial tcp 127.0.0.1:1: connect: connection refused)')
    assert "There is no restic repository" not in explained.msg


def test_a_restore_cut_off_by_its_backend_says_so_and_not_that_the_repository_is_damaged():
    refused = ('StreamPack: client.Do: Get "http://127.0.0.1:1/r/data/59": dial tcp 127.0.0.1:1: connect: '
               "connection refused")
    stderr = (f"Load(<data/596a3ff06c>, 16778666, 0) returned error, retrying after 552ms: ReadFull: unexpected EOF\n"
              f"ignoring error for /src/f7: {refused}\nignoring error for /src/f8: {refused}\n"
              "Fatal: There were 2 errors\n")
    module = FakeModule({}, [(0, "restic 0.14.0 compiled with go1.19", ""), (1, "", stderr)])
    restic = cli.Restic(cli.tool_runner(module, "rest:http://127.0.0.1:1/r", SecretSource(value="pw-unit-9"), None,
                                        None, "/bin/true"))
    with pytest.raises(ToolError, match=r"failed with 2 error\(s\): /src/f7: StreamPack: .*connection refused; .*"
                                        r"the repository's backend stopped answering during the restore") as caught:
        restic.restore("a" * 64, "/staging")
    assert "damaged" not in caught.value.msg
