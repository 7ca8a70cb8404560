# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the restic key rotation (restic_repo with new_password); restic answers from a script."""

from __future__ import annotations

import json
import os

import pytest
from conftest import FakeModule

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, run_module
from ansible_collections.restoreops.dr.plugins.module_utils._restic import keys, repo

VERSION = [(0, "restic 0.14.0 compiled with go1.19.8 on linux/amd64\n", "")]
CONFIG = (0, json.dumps({"version": 2, "id": "9f3c0d1e"}), "")
WRONG = (1, "", "Fatal: wrong password or no key found\n")
OLD_KEYS = (0, json.dumps([{"current": True, "id": "0ld0ld00"}, {"current": False, "id": "0th3r000"}]), "")
NEW_KEYS = (0, json.dumps([{"current": True, "id": "n3wn3w00"}]), "")
DEFAULTS = {"repository": "rest:http://127.0.0.1:8000/app/", "password": "old-password", "password_file": None,
            "password_command": None, "env": {}, "restic_binary": "/bin/true", "cache_dir": None, "state": "present",
            "stale_locks": "ignore", "dead_hosts": [], "check": "none", "read_data_subset": None,
            "new_password": "N3w-s3cret", "new_password_file": None, "remove_old_key": True}


def run(params: dict, script: dict, check_mode: bool = False) -> FakeModule:
    module = FakeModule({**DEFAULTS, **params}, script=script, check_mode=check_mode)
    run_module(module, lambda m: repo.main(m, hostname="h1"))
    return module


@pytest.mark.parametrize(("new_opens", "old_opens", "remove_old", "steps"), [
    (False, True, True, ["add", "remove"]),
    (False, True, False, ["add"]),
    (True, True, True, ["remove"]),   # an earlier run added the key and stopped before the removal
    (True, False, True, []),          # done
    (True, True, False, []),          # kept on purpose (an append-only server)
])
def test_plan(new_opens, old_opens, remove_old, steps):
    assert keys.plan(new_opens, old_opens, remove_old) == steps


def test_plan_refuses_when_neither_password_opens():
    with pytest.raises(InputError, match="Neither the current password nor the new one"):
        keys.plan(False, False, True)


def test_rotation_adds_removes_and_proves(tmp_path):
    seen_files = []

    def on_run(cmd, kwargs):
        if cmd[1:3] == ["key", "add"]:
            path = cmd[cmd.index("--new-password-file") + 1]
            with open(path, encoding="utf-8") as handle:
                seen_files.append((path, oct(os.stat(path).st_mode & 0o777), handle.read()))

    module = FakeModule({**DEFAULTS}, script={
        "version": VERSION,
        "list": [(0, "", "")],
        # new opens? no; old opens? yes; after the add the new one opens; after the removal the old one does not;
        # then the module reads the config with the new password
        "cat": [WRONG, CONFIG, CONFIG, WRONG, CONFIG],
        "key": [OLD_KEYS, (0, "", ""), NEW_KEYS, (0, "", "")],
    }, on_run=on_run)
    run_module(module, lambda m: repo.main(m, hostname="h1"))
    rotation = module.result["key_rotation"]
    assert rotation == {"changed": True, "old_key_id": "0ld0ld00", "new_key_id": "n3wn3w00", "new_opens": True,
                        "old_refused": True}
    assert module.result["changed"] is True
    assert module.result["actions"] == ["restic key add (the new password)",
                                        "restic key remove 0ld0ld00 (the old password's key)"]
    key_calls = [c for c in module.commands() if c[0] == "key"]
    assert key_calls[0][:2] == ["key", "list"] and key_calls[-1] == ["key", "remove", "0ld0ld00"]
    # The new password reached restic in a 0600 file that is gone afterwards, never on the command line.
    (path, mode, content), = seen_files
    assert mode == "0o600" and content == "N3w-s3cret\n" and not os.path.exists(path)
    assert all("N3w-s3cret" not in " ".join(c) for c in module.commands()), module.commands()
    # The removal and the proof ran with the new password, the add with the old one.
    envs = [call["environ_update"]["RESTIC_PASSWORD"] for call in module.calls
            if call["cmd"][1] == "key"]
    assert envs == ["old-password", "old-password", "N3w-s3cret", "N3w-s3cret"]


def test_check_mode_plans_and_changes_nothing():
    module = run({}, {"version": VERSION, "list": [(0, "", "")], "cat": [WRONG, CONFIG, CONFIG], "key": [OLD_KEYS]},
                 check_mode=True)
    assert module.result["changed"] is True
    assert module.result["key_rotation"]["old_key_id"] == "0ld0ld00"
    assert [c[:2] for c in module.commands() if c[0] == "key"] == [["key", "list"]]


def test_already_rotated_is_unchanged():
    module = run({}, {"version": VERSION, "list": [(0, "", "")], "cat": [CONFIG, WRONG, CONFIG], "key": [NEW_KEYS]})
    assert module.result["changed"] is False and module.result["actions"] == []
    assert module.result["key_rotation"]["old_refused"] is True


def test_a_refused_removal_names_the_key_for_the_administrator():
    forbidden = (1, "", "Fatal: unexpected HTTP response (403): 403 Forbidden\n")
    with pytest.raises(FakeModule.Failed) as failed:
        run({}, {"version": VERSION, "list": [(0, "", "")], "cat": [WRONG, CONFIG, CONFIG],
                 "key": [OLD_KEYS, (0, "", ""), NEW_KEYS, forbidden]})
    assert "keys/0ld0ld00" in failed.value.result["msg"]
    assert failed.value.result["rotation"]["new_opens"] is True


def test_new_password_given_twice_is_refused():
    with pytest.raises(FakeModule.Failed) as failed:
        run({"new_password_file": "/etc/new.pass"}, {"version": VERSION})
    assert "one way only" in failed.value.result["msg"]
