# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a borg 1.x repository's files say, read without starting borg: config, key export text, lock roster.

A local repository's ``config`` holds its id, append-only flag, quota and (repokey mode) the encrypted key; the
lock files name their holders. Reading them is a file read, so its cost does not grow with the data stored. The key
export format is written here (what ``borg key export`` and ``--paper`` print) and read here (the escrow check).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import stat
import tempfile
import time
from binascii import a2b_base64
from dataclasses import dataclass
from hashlib import sha256
from typing import Mapping

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, ToolError

# --- size strings (borg's parse_file_size: decimal suffixes) ---------------------------------------------------

_SIZE_FACTORS = {"K": 1000, "M": 1000 ** 2, "G": 1000 ** 3, "T": 1000 ** 4, "P": 1000 ** 5}


def parse_size(text: str | int | None) -> int:
    """``10G`` → 10_000_000_000 (borg uses powers of 1000); ``0``, empty or None → 0."""
    if text is None:
        return 0
    value = str(text).strip()
    if not value:
        return 0
    factor = _SIZE_FACTORS.get(value[-1].upper(), 1)
    if factor != 1:
        value = value[:-1]
    try:
        return int(float(value) * factor)
    except ValueError:
        raise InputError(f"storage_quota {text!r} is not a size such as 500M, 20G or 1.5T.") from None


# --- repository config ------------------------------------------------------------------------------------------

def _squash(text: str) -> str:
    return "".join(text.split())


@dataclass
class RepoConfig:
    """The ``[repository]`` section of a repository's config (or of ``borg config --list``)."""

    repo_id: str = ""
    append_only: bool = False
    storage_quota: int = 0
    key: str = ""  # the repokey blob as stored (line breaks kept); empty for keyfile/none and remote repositories

    @property
    def blob(self) -> str:
        """The key blob without whitespace, for comparing keys."""
        return _squash(self.key)

    @property
    def mode(self) -> str:
        return "repokey" if self.key else "keyfile"


def _parser(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def parse_repo_config(text: str) -> RepoConfig:
    """Parse the INI text of a repository ``config`` file (or of ``borg config --list``)."""
    try:
        parser = _parser(text)
    except configparser.Error as exc:
        raise ToolError(f"Could not parse the repository config: {exc}") from exc
    if not parser.has_section("repository"):
        raise ToolError("The repository config has no [repository] section.")
    sect = parser["repository"]
    append_only = sect.get("append_only", "0").strip().lower() in ("1", "true", "yes")
    return RepoConfig(repo_id=sect.get("id", "").strip().lower(), append_only=append_only,
                      storage_quota=parse_size(sect.get("storage_quota", "0")), key=sect.get("key", "").strip())


def read_local_config(repo: str) -> RepoConfig:
    path = os.path.join(repo, "config")
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_repo_config(handle.read())
    except OSError as exc:
        raise InputError(f"Cannot read the repository config {path}: {exc.strerror}.") from exc


def config_with_key(text: str, blob: str | None) -> str:
    """The config text with its key replaced by ``blob`` (repokey), or re-written unchanged (``None``)."""
    parser = _parser(text)
    if blob is not None:
        parser["repository"]["key"] = blob
    out = []
    for section in parser.sections():
        out.append(f"[{section}]")
        out.extend(f"{k} = {v}".replace("\n", "\n\t") for k, v in parser[section].items())
        out.append("")
    return "\n".join(out)


def local_repo_state(repo: str) -> str:
    """``missing`` (absent or empty directory), ``repo`` (has a borg config), or ``other``."""
    if not os.path.exists(repo):
        return "missing"
    if not os.path.isdir(repo):
        return "other"
    if os.path.isfile(os.path.join(repo, "config")):
        return "repo"
    return "other" if os.listdir(repo) else "missing"


# --- key export text (what `borg key export` writes, and what the escrow reads back) ---------------------------

@dataclass(frozen=True)
class KeyExport:
    """A plain ``borg key export``: the repository id from its header and the key blob (base64, no whitespace)."""

    repo_id: str
    blob: str


def key_export_text(repo_id: str, keyblob: str) -> str:
    """The text of ``borg key export REPO`` for a repokey blob."""
    data = f"BORG_KEY {repo_id}\n{keyblob}"
    return data if data.endswith("\n") else data + "\n"


def parse_key_export(text: str) -> KeyExport:
    """Parse borg's plain export format (``BORG_KEY <id>`` then base64 lines); raise ValueError otherwise."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("BORG_KEY "):
        raise ValueError("it does not start with a 'BORG_KEY <repository id>' line (use plain `borg key export`, "
                         "not --paper or --qr-html)")
    repo_id = lines[0].split(None, 1)[1].strip().lower()
    blob = _squash("".join(lines[1:]))
    if not re.match(r"^[0-9a-f]{64}$", repo_id) or not blob:
        raise ValueError("its header or key data is malformed")
    return KeyExport(repo_id, blob)


def _grouped(text: str) -> str:
    return " ".join(text[i:i + 6] for i in range(0, len(text), 6))


def _sha256_truncated(data: bytes, num: int) -> str:
    return sha256(data).hexdigest()[:num]


def paper_key_text(repo_id: str, keyblob: str) -> str:
    """The text of ``borg key export --paper REPO`` (borg 1.x 'BORG PAPER KEY v1' format)."""
    binary = a2b_base64(keyblob)
    lines = (len(binary) + 17) // 18
    repoid = repo_id[:18]
    complete = _sha256_truncated(binary, 12)
    check = _sha256_truncated(f"{lines}/{repoid}/{complete}".encode("ascii"), 2)
    out = "To restore key use borg key import --paper /path/to/repo\n\n"
    out += "BORG PAPER KEY v1\n"
    out += f"id: {lines:d} / {_grouped(repoid)} / {_grouped(complete)} - {check}\n"
    idx = 0
    while binary:
        idx += 1
        line, binary = binary[:18], binary[18:]
        out += f"{idx:2d}: {_grouped(line.hex())} - {_sha256_truncated(idx.to_bytes(2, 'big') + line, 2)}\n"
    return out


def keys_dir(environ: Mapping[str, str] | None = None) -> str:
    """Where borg keeps keyfile-mode keys: ``BORG_KEYS_DIR``, else ``<config home>/borg/keys``."""
    env = os.environ if environ is None else environ
    if env.get("BORG_KEYS_DIR"):
        return env["BORG_KEYS_DIR"]
    if env.get("BORG_BASE_DIR"):
        config_home = os.path.join(env["BORG_BASE_DIR"], ".config")
    else:
        config_home = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(config_home, "borg", "keys")


def find_host_key(repo_id: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Path of this host's own borg key file for ``repo_id`` (keyfile mode), or None."""
    directory = keys_dir(environ)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return None
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="ascii") as handle:
                head = handle.readline().split()
        except (OSError, UnicodeDecodeError):
            continue
        if len(head) == 2 and head[0] == "BORG_KEY" and head[1].lower() == repo_id:
            return path
    return None


# --- key export destination -----------------------------------------------------------------------------------

def write_private_file(path: str, text: str, mode: int) -> None:
    """Write atomically: a temp file created with ``mode`` in the same directory, then renamed over ``path``."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".borg-key-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def file_state(path: str) -> tuple[str | None, int | None]:
    """(content, permission bits) of ``path``; (None, None) when it does not exist."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as handle:
            return handle.read(), stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"key_export.dest {path} cannot be read: {exc}.") from exc


def parse_mode(value: str | int | None) -> int:
    if value is None or value == "":
        return 0o600
    try:
        mode = int(str(value), 8)
    except ValueError:
        raise InputError(f"key_export.mode must be an octal mode such as 0600, got {value!r}.") from None
    if mode & ~0o7777:
        raise InputError(f"key_export.mode {value!r} is out of range.")
    return mode


# --- lock files -------------------------------------------------------------------------------------------------

@dataclass
class LockHolder:
    """One holder of a repository lock, as named in ``lock.exclusive/`` or ``lock.roster``."""

    host: str
    pid: int
    thread: int = 0
    kind: str = "exclusive"
    age: float = 0.0
    alive: bool | None = None  # None: cannot be known from here (another host)


def parse_lock_name(name: str) -> tuple[str, int, int] | None:
    """``<hostid>.<pid>-<thread hex>`` (borg 1.x lock file names) → (host, pid, thread); None if malformed."""
    try:
        host_pid, thread_text = name.rsplit("-", 1)
        host, pid_text = host_pid.rsplit(".", 1)
        return host, int(pid_text), int(thread_text, 16)
    except ValueError:
        return None


def parse_roster(text: str) -> list[tuple[str, str, int, int]]:
    """``lock.roster`` JSON → [(kind, host, pid, thread)]."""
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        return []
    holders = []
    if isinstance(data, dict):
        for kind in ("exclusive", "shared"):
            for entry in data.get(kind) or []:
                try:
                    host, pid, thread = entry
                    holders.append((kind, str(host), int(pid), int(thread)))
                except (TypeError, ValueError):
                    continue
    return holders


def read_lock_holders(repo: str, now: float | None = None) -> list[LockHolder]:
    """Every holder named by the lock files of a local repository (a file read; borg is not started)."""
    now = time.time() if now is None else now
    holders: dict[tuple[str, int, int], LockHolder] = {}
    lock_dir = os.path.join(repo, "lock.exclusive")
    try:
        names = os.listdir(lock_dir)
    except OSError:
        names = []
    for name in names:
        parsed = parse_lock_name(name)
        if parsed is None:
            continue
        try:
            mtime = os.stat(os.path.join(lock_dir, name)).st_mtime
        except OSError:
            continue
        holders[parsed] = LockHolder(host=parsed[0], pid=parsed[1], thread=parsed[2], kind="exclusive",
                                     age=max(0.0, now - mtime))
    roster = os.path.join(repo, "lock.roster")
    try:
        with open(roster, encoding="utf-8") as handle:
            entries = parse_roster(handle.read())
        roster_age = max(0.0, now - os.stat(roster).st_mtime)
    except OSError:
        entries, roster_age = [], 0.0
    for kind, host, pid, thread in entries:
        key = (host, pid, thread)
        if key not in holders:
            holders[key] = LockHolder(host=host, pid=pid, thread=thread, kind=kind, age=roster_age)
    return list(holders.values())
