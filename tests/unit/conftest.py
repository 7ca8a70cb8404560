# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The unit tests' one fake AnsibleModule and the command-runner fixture.

``fake_module`` gives the :class:`FakeModule` class: options in ``params``, ``run_command`` answered from a queue
(``answers``) or a script keyed by the tool's subcommand (``script``), every call recorded, ``fail_json`` raising
:class:`Failed` (so a test sees the failure and its result), ``exit_json`` keeping the result.
``tool_paths`` makes every :class:`ToolRunner` find its binary at ``/usr/bin/<name>`` without looking at PATH.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils._runner import ToolRunner


class Failed(Exception):
    """What FakeModule.fail_json raises; ``result`` holds the keyword arguments it was given."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(result.get("msg"))
        self.result = result


class Exited(Exception):
    """What FakeModule.exit_json raises when built with ``raise_on_exit``."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__("exit_json")
        self.result = result


class Call(tuple):
    """One run_command call: a ``(cmd, kwargs)`` pair that also answers ``call["cmd"]`` and ``call[<kwarg>]``."""

    def __new__(cls, cmd: list[str], kwargs: dict[str, Any]) -> Call:
        return super().__new__(cls, (cmd, kwargs))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            cmd, kwargs = tuple.__getitem__(self, 0), tuple.__getitem__(self, 1)
            return cmd if key == "cmd" else kwargs[key]
        return tuple.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


class FakeModule:
    """Just enough of AnsibleModule for module_utils; see the module documentation."""

    Failed = Failed
    Exited = Exited

    def __init__(self, params: dict[str, Any] | None = None, answers: list[tuple[int, str, str]] | None = None, *,
                 script: dict[str, list[tuple[int, str, str]]] | None = None, check_mode: bool = False,
                 diff: bool = False, on_run: Callable[[list[str], dict[str, Any]], None] | None = None,
                 raise_on_exit: bool = False) -> None:
        self.params = dict(params or {})
        self.answers = list(answers or [])
        self.script = {key: list(value) for key, value in (script or {}).items()}
        self.check_mode = check_mode
        self._diff = diff
        self.on_run = on_run
        self.raise_on_exit = raise_on_exit
        self.calls: list[Call] = []
        self.warnings: list[str] = []
        self.result: dict[str, Any] = {}

    def run_command(self, cmd: list[str], **kwargs: Any) -> tuple[int, str, str]:
        cmd = list(cmd)
        self.calls.append(Call(cmd, kwargs))
        if self.on_run is not None:
            self.on_run(cmd, kwargs)
        if self.script:
            answers = self.script.get(cmd[1])
            if not answers:
                raise AssertionError(f"unexpected call {cmd}")
            return answers.pop(0) if len(answers) > 1 else answers[0]
        return self.answers.pop(0) if self.answers else (0, "", "")

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)

    def fail_json(self, **kwargs: Any) -> None:
        self.result = kwargs
        raise Failed(kwargs)

    def exit_json(self, **kwargs: Any) -> None:
        self.result = kwargs
        if self.raise_on_exit:
            raise Exited(kwargs)

    def commands(self) -> list[list[str]]:
        """Each call's arguments without the binary."""
        return [call[0][1:] for call in self.calls]


def load_script(path: Path, name: str) -> ModuleType:
    """A script the roles ship (no .py name, or outside the package tree) imported as a module."""
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.fixture
def fake_module() -> type[FakeModule]:
    return FakeModule


@pytest.fixture
def tool_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ToolRunner, "resolve", lambda self: f"/usr/bin/{self.name}")
