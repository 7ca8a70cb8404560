# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a passphrase comes from, and how it reaches a tool without touching argv.

A secret is given in exactly one of three ways: a value (``no_log`` option), a file, or a command that prints it.
:class:`SecretSource` validates the choice once; the tool wrappers turn it into their own environment variables
(``BORG_PASSPHRASE``/``BORG_PASSPHRASE_FD``/``BORG_PASSCOMMAND``, ``RESTIC_PASSWORD``/``RESTIC_PASSWORD_FILE``/
``RESTIC_PASSWORD_COMMAND``).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError


@dataclass(frozen=True)
class SecretSource:
    """One of value, file or command; ``label`` names the options in messages (for example ``passphrase``)."""

    value: str | None = None
    file: str | None = None
    command: str | None = None
    label: str = "passphrase"

    @classmethod
    def from_params(cls, params: dict, value_key: str, file_key: str, command_key: str) -> SecretSource:
        return cls(value=params.get(value_key), file=params.get(file_key), command=params.get(command_key),
                   label=value_key)

    @property
    def given(self) -> bool:
        return any(x is not None for x in (self.value, self.file, self.command))

    @property
    def kind(self) -> str | None:
        if self.value is not None:
            return "value"
        if self.file is not None:
            return "file"
        if self.command is not None:
            return "command"
        return None

    def validate(self) -> SecretSource:
        """Raise InputError for more than one source, a relative path, or an unreadable file."""
        count = sum(x is not None for x in (self.value, self.file, self.command))
        if count > 1:
            raise InputError(f"Give the {self.label} in one way only: a value, a file or a command.")
        if self.file is not None:
            check_secret_file(self.file, self.label)
        if self.command is not None and not self.command.strip():
            raise InputError(f"The {self.label} command is empty.")
        return self

    def read(self) -> str:
        """The secret's text for value and file sources (a command is run by the tool itself)."""
        if self.value is not None:
            return self.value
        if self.file is not None:
            return read_secret_file(self.file, self.label)
        raise InputError(f"The {self.label} comes from a command; it cannot be read here.")

    def known_values(self) -> list[str]:
        """Values worth scrubbing from output (only those we hold in memory)."""
        if self.value:
            return [self.value]
        if self.file is not None:
            try:
                return [v for v in (read_secret_file(self.file, self.label),) if v]
            except InputError:
                return []
        return []


def check_secret_file(path: str, label: str = "passphrase") -> os.stat_result:
    """Absolute, existing, a regular file and readable; returns its stat."""
    if not os.path.isabs(path):
        raise InputError(f"The {label} file must be an absolute path, got {path!r}.")
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"The {label} file {path} cannot be read: {exc.strerror}.") from exc
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"The {label} file {path} is not a regular file.")
    if not os.access(path, os.R_OK):
        raise InputError(f"The {label} file {path} is not readable by this user.")
    return st


def read_secret_file(path: str, label: str = "passphrase") -> str:
    """The file's first line without its line ending (how borg and restic read such files)."""
    check_secret_file(path, label)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"The {label} file {path} cannot be read: {exc}.") from exc


def mode_is_at_most(mode: int, max_mode: int) -> bool:
    """True when ``mode`` grants nothing that ``max_mode`` does not (permission bits only)."""
    return (stat.S_IMODE(mode) & ~max_mode) == 0
