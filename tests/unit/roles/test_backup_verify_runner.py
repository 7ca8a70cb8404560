# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup_verify runner's own glue: where secrets come from, and how it runs a tool without Ansible."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml
from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "backup_verify" / "files" / "backup_verify.py"


def load():
    return load_script(SCRIPT, "backup_verify_runner")


def test_secret_sources():
    bv = load()
    assert bv.secret_of({"type": "borg", "passphrase_file": "/p"}).file == "/p"
    assert bv.secret_of({"type": "borg", "env": {"BORG_PASSCOMMAND": "cat /p"}}).command == "cat /p"
    assert bv.secret_of({"type": "restic", "password_file": "/r"}).file == "/r"
    assert bv.secret_of({"type": "restic", "env": {"RESTIC_PASSWORD_COMMAND": "pass x"}}).command == "pass x"


def test_host_runs_argv_with_the_environment_and_descriptors(tmp_path):
    bv = load()
    secret = tmp_path / "s"
    secret.write_text("from-fd\n")
    fd = os.open(secret, os.O_RDONLY)
    try:
        rc, out, _err = bv.Host().run_command(
            ["/bin/sh", "-c", 'printf "%s %s " "$X" "$LC_ALL"; cat "/dev/fd/$FD"'],
            environ_update={"X": "1", "FD": str(fd)}, pass_fds=[fd], expand_user_and_vars=False, check_rc=False)
    finally:
        os.close(fd)
    assert (rc, out) == (0, "1 C.UTF-8 from-fd\n")


def test_borg_runs_through_the_tool_layer(tmp_path, monkeypatch):
    """The runner's borg gets the collection's environment: the passphrase file by descriptor, never prompted."""
    bv = load()
    passphrase = tmp_path / "pass"
    passphrase.write_text("s3cret\n")
    fake_borg = tmp_path / "borg"
    fake_borg.write_text('#!/bin/sh\nprintf \'{"archives": [{"name": "a1", "time": "2026-11-23T02:00:00.000000"}]}\'\n'
                         'env > "$(dirname "$0")/env.txt"\n')
    fake_borg.chmod(0o755)
    check = bv.Check({"name": "b", "type": "borg", "repository": "/r", "passphrase_file": str(passphrase),
                      "binary": str(fake_borg), "critical_files": ["etc/x"]}, {})
    check.open_tool()
    name, _when = check.latest()
    env = dict(line.split("=", 1) for line in (tmp_path / "env.txt").read_text().splitlines() if "=" in line)
    assert name == "a1"
    assert "BORG_PASSPHRASE_FD" in env and "BORG_PASSPHRASE" not in env
    assert env["BORG_EXIT_CODES"] == "modern" and env["BORG_RELOCATED_REPO_ACCESS_IS_OK"] == "no"
    assert json.dumps(env).count("s3cret") == 0


def test_the_library_the_role_installs_holds_every_module_the_runner_imports():
    # The role copies a list of module_utils next to the runner (roles/backup_verify/vars/main.yml); a module that
    # one of them imports and the list lacks breaks the runner on the host only. Follow the imports from the runner.
    root = SCRIPT.parents[3]
    listed = set(yaml.safe_load((root / "roles/backup_verify/vars/main.yml").read_text())["__backup_verify_lib_files"])
    pattern = re.compile(r"ansible_collections\.restoreops\.dr\.plugins\.module_utils(?:\.(\w+))?(?:\.(\w+))?"
                         r"(?: import \(?([\w, \n]+)\)?)?")
    todo, seen = [SCRIPT], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for match in pattern.finditer(path.read_text()):
            parts = [p for p in match.groups()[:2] if p]
            names = [n.strip() for n in (match.group(3) or "").replace("\n", " ").split(",") if n.strip()]
            candidates = ["/".join(parts)] if parts else []
            candidates += ["/".join([*parts, n]) for n in names]
            for candidate in candidates:
                for rel in (f"{candidate}.py", f"{candidate}/__init__.py"):
                    file = root / "plugins/module_utils" / rel
                    if file.is_file():
                        assert rel in listed, f"{path.name} imports {rel}, which the role does not install"
                        todo.append(file)
    assert len(seen) > 3
