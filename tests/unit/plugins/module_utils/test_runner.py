from __future__ import annotations

import os
import stat

import pytest
from conftest import FakeModule as _FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils import _errors, _runner, _secrets


def FakeModule(answers=None):  # the conftest class, exit_json raising
    return _FakeModule(answers=answers, raise_on_exit=True)


Failed = _FakeModule.Failed
Exited = _FakeModule.Exited


def runner(module, **kwargs):
    return _runner.ToolRunner(module, "/bin/true", **kwargs)


def test_run_passes_list_env_and_no_expansion():
    module = FakeModule([(0, "out", "")])
    result = runner(module, env={"BORG_PASSPHRASE": "s3cret"}).run(["info", "--json"], env={"X": "1"})
    cmd, kwargs = module.calls[0]
    assert cmd == ["/bin/true", "info", "--json"]
    assert kwargs["environ_update"] == {"BORG_PASSPHRASE": "s3cret", "X": "1"}
    assert kwargs["expand_user_and_vars"] is False
    assert kwargs["check_rc"] is False
    assert "s3cret" not in " ".join(cmd)
    assert result.ok and result.stdout == "out"


def test_run_raises_tool_error_with_last_stderr_line_and_redacts():
    module = FakeModule([(2, "", "warming up\npassphrase s3cret rejected\n")])
    with pytest.raises(_errors.ToolError) as info:
        runner(module, secrets=["s3cret"]).run(["list"])
    err = info.value
    assert err.rc == 2
    assert "s3cret" not in err.msg and "s3cret" not in err.stderr
    assert err.msg.endswith("passphrase ******** rejected")


def test_run_without_check_returns_failure():
    module = FakeModule([(1, "", "nope")])
    result = runner(module).run(["x"], check=False)
    assert not result.ok and result.rc == 1


def test_run_rejects_non_string_arguments():
    with pytest.raises(_errors.InputError):
        runner(FakeModule()).run(["--keep", 3])


def test_pass_fds_and_data_are_forwarded():
    module = FakeModule([(0, "", "")])
    runner(module).run(["x"], pass_fds=[7], data="input")
    kwargs = module.calls[0][1]
    assert kwargs["pass_fds"] == [7]
    assert kwargs["data"] == "input" and kwargs["binary_data"] is True


def test_resolve_missing_binary():
    with pytest.raises(_errors.ToolNotFoundError):
        _runner.ToolRunner(FakeModule(), "definitely-not-a-tool-xyz").resolve()
    with pytest.raises(_errors.ToolNotFoundError):
        _runner.ToolRunner(FakeModule(), "/nonexistent/borg").resolve()


def test_run_json_and_bad_json():
    module = FakeModule([(0, '{"a": 1}', ""), (0, "not json", "")])
    assert runner(module).run_json(["info"]) == {"a": 1}
    with pytest.raises(_errors.ToolError, match="Could not decode"):
        runner(module).run_json(["info"])


def test_parse_json_lines_skips_blank_lines():
    assert _runner.parse_json_lines('{"a":1}\n\n{"b":2}\n') == [{"a": 1}, {"b": 2}]


@pytest.mark.parametrize(
    ("text", "version"),
    [("borg 1.2.4", (1, 2, 4)), ("restic 0.14.0 compiled with go1.19", (0, 14, 0)), ("borg 2.0", (2, 0, 0))],
)
def test_parse_version(text, version):
    assert _runner.parse_version(text) == version
    assert _runner.version_string(version).startswith(str(version[0]))


def test_parse_version_without_digits():
    with pytest.raises(_errors.ToolError):
        _runner.parse_version("unknown")


def test_run_module_boundary_fails_with_details():
    module = FakeModule()

    def main(_module):
        raise _errors.ToolError("borg failed", cmd=["borg"], rc=2, stderr="x", repo="/r")

    with pytest.raises(Failed) as info:
        _errors.run_module(module, main)
    failed = info.value.result
    assert failed["msg"] == "borg failed" and failed["rc"] == 2 and failed["repo"] == "/r"
    assert "Traceback" in failed["exception"]


def test_run_module_boundary_turns_an_os_error_into_its_own_words():
    def main(_module):
        raise OSError(18, "Invalid cross-device link", "/var/lib/pg", None, "/var/lib/pg.old")

    with pytest.raises(Failed) as info:
        _errors.run_module(FakeModule(), main)
    failed = info.value.result
    assert failed["msg"] == "Invalid cross-device link: /var/lib/pg -> /var/lib/pg.old"
    assert failed["errno"] == 18 and "Traceback" in failed["exception"]


def test_run_module_boundary_exits_with_result():
    with pytest.raises(Exited) as info:
        _errors.run_module(FakeModule(), lambda _m: {"changed": False})
    assert info.value.result == {"changed": False}


def test_secret_source_one_way_only(tmp_path):
    with pytest.raises(_errors.InputError, match="one way only"):
        _secrets.SecretSource(value="a", file="/x").validate()
    assert _secrets.SecretSource(value="a").validate().kind == "value"
    assert not _secrets.SecretSource().given


def test_secret_file_checks(tmp_path):
    with pytest.raises(_errors.InputError, match="absolute"):
        _secrets.SecretSource(file="relative/pass").validate()
    with pytest.raises(_errors.InputError, match="cannot be read"):
        _secrets.SecretSource(file=str(tmp_path / "missing")).validate()
    with pytest.raises(_errors.InputError, match="not a regular file"):
        _secrets.SecretSource(file=str(tmp_path)).validate()
    secret = tmp_path / "pass"
    secret.write_text("hunter2\nsecond line\n")
    os.chmod(secret, 0o600)
    source = _secrets.SecretSource(file=str(secret)).validate()
    assert source.read() == "hunter2"
    assert source.known_values() == ["hunter2"]


def test_command_source_cannot_be_read():
    source = _secrets.SecretSource(command="pass show borg").validate()
    assert source.kind == "command" and source.known_values() == []
    with pytest.raises(_errors.InputError):
        source.read()
    with pytest.raises(_errors.InputError, match="empty"):
        _secrets.SecretSource(command="  ").validate()


@pytest.mark.parametrize(
    ("mode", "max_mode", "ok"),
    [(0o600, 0o600, True), (0o400, 0o600, True), (0o644, 0o600, False), (0o640, 0o640, True),
     (0o660, 0o640, False), (stat.S_IFREG | 0o600, 0o600, True)],
)
def test_mode_is_at_most(mode, max_mode, ok):
    assert _secrets.mode_is_at_most(mode, max_mode) is ok


def test_run_parallel_runs_all_and_redacts(tmp_path):
    run = _runner.ToolRunner(FakeModule(), "/bin/sh", env={"TOKEN": "s3cret"}, secrets=["s3cret"])
    results = run.run_parallel([["-c", "echo one $TOKEN"], ["-c", "echo two"]], cwd=str(tmp_path))
    assert [r.stdout.strip() for r in results] == ["one ********", "two"]


def test_run_parallel_raises_on_failure():
    run = _runner.ToolRunner(FakeModule(), "/bin/sh")
    with pytest.raises(_errors.ToolError, match="boom"):
        run.run_parallel([["-c", "exit 0"], ["-c", "echo boom >&2; exit 3"]])
