# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BorgBackup 1.2 repositories: typed views, pure decisions, and the ``borg_repo`` module's logic.

An idempotent run starts borg twice (``borg --version`` and one ``borg list --json``); everything else about a
local repository (its config, its locks, its repokey) is read straight from the repository's files, so the cost
does not grow with the amount of data stored.
"""

from __future__ import annotations

import configparser
import errno
import json
import os
import socket
import stat
import tempfile
import time
import uuid
from binascii import a2b_base64
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from typing import Any, Callable, Iterable, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils._errors import (
    InputError,
    LockedError,
    ToolError,
    UnsupportedVersionError,
)
from ansible_collections.restoreops.dr.plugins.module_utils._runner import (
    Result,
    ToolRunner,
    parse_version,
    version_string,
)
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource

ENCRYPTION_MODES = ("repokey-blake2", "repokey", "keyfile-blake2", "keyfile", "authenticated-blake2",
                    "authenticated", "none")
DEFAULT_ENCRYPTION = "repokey-blake2"
CHECK_FLAGS = {"repository": ["--repository-only"], "archives": ["--archives-only"],
               "verify_data": ["--verify-data"]}
# Variables that would override or shadow the passphrase source this module chose.
_PASS_VARS = ("BORG_PASSPHRASE", "BORG_PASSPHRASE_FD", "BORG_PASSCOMMAND", "BORG_NEW_PASSPHRASE")


def drop_inherited_passphrases() -> None:
    """Remove borg passphrase variables inherited by the module process.

    They would take precedence over (or be confused with) the source a module chooses, and run_command can only
    add to the environment. The module process is short-lived, so its own environment is changed.
    """
    for var in _PASS_VARS:
        os.environ.pop(var, None)


# --- version --------------------------------------------------------------------------------------------------

def check_version(text: str) -> tuple[int, int, int]:
    """The borg version from ``borg --version``; borg 2 and anything before 1.2 are refused."""
    version = parse_version(text)
    if version[0] >= 2:
        raise UnsupportedVersionError(
            f"borg {version_string(version)} is installed, but restoreops.dr drives borg 1.2 only "
            "(borg 2 changed the repository format and the command line: rcreate/rinfo, no 'init'). "
            "Install borg 1.2 or point the module at a borg 1.2 executable.", borg_version=version_string(version))
    if version < (1, 2, 0):
        raise UnsupportedVersionError(
            f"borg {version_string(version)} is too old; restoreops.dr needs borg 1.2.",
            borg_version=version_string(version))
    return version


# --- repository location --------------------------------------------------------------------------------------

def is_remote(repo: str) -> bool:
    return repo.startswith("ssh://")


def validate_repo(repo: str) -> str:
    """A local absolute path (normalised) or an ``ssh://`` URL; anything else is refused."""
    if not repo:
        raise InputError("repo must not be empty.")
    if is_remote(repo):
        return repo
    if "://" in repo:
        raise InputError(f"repo {repo!r}: only local absolute paths and ssh:// URLs are supported.")
    if not os.path.isabs(repo):
        raise InputError(f"repo must be an absolute path or an ssh:// URL, got the relative path {repo!r}.")
    return os.path.normpath(repo)


def path_inside(path: str, directory: str) -> bool:
    """True when ``path`` (resolved) is ``directory`` or below it."""
    real_path = os.path.realpath(path)
    real_dir = os.path.realpath(directory)
    return real_path == real_dir or real_path.startswith(real_dir.rstrip(os.sep) + os.sep)


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


# --- repository config (local file or `borg config --list`) ----------------------------------------------------

@dataclass
class RepoConfig:
    repo_id: str = ""
    append_only: bool = False
    storage_quota: int = 0
    key: str = ""  # the repokey blob; empty for keyfile/none and for remote repositories


def parse_repo_config(text: str) -> RepoConfig:
    """Parse the INI text of a repository ``config`` file (or of ``borg config --list``)."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise ToolError(f"Could not parse the repository config: {exc}") from exc
    if not parser.has_section("repository"):
        raise ToolError("The repository config has no [repository] section.")
    sect = parser["repository"]
    append_only = sect.get("append_only", "0").strip().lower() in ("1", "true", "yes")
    return RepoConfig(repo_id=sect.get("id", "").strip(), append_only=append_only,
                      storage_quota=parse_size(sect.get("storage_quota", "0")), key=sect.get("key", "").strip())


def read_local_config(repo: str) -> RepoConfig:
    path = os.path.join(repo, "config")
    try:
        with open(path, encoding="utf-8") as handle:
            return parse_repo_config(handle.read())
    except OSError as exc:
        raise InputError(f"Cannot read the repository config {path}: {exc.strerror}.") from exc


def local_repo_state(repo: str) -> str:
    """``missing`` (absent or empty directory), ``repo`` (has a borg config), or ``other``."""
    if not os.path.exists(repo):
        return "missing"
    if not os.path.isdir(repo):
        return "other"
    if os.path.isfile(os.path.join(repo, "config")):
        return "repo"
    return "other" if os.listdir(repo) else "missing"


# --- key export text (what `borg key export` writes) -----------------------------------------------------------

def key_export_text(repo_id: str, keyblob: str) -> str:
    """The text of ``borg key export REPO`` for a repokey blob."""
    data = f"BORG_KEY {repo_id}\n{keyblob}"
    return data if data.endswith("\n") else data + "\n"


def _grouped(text: str) -> str:
    return " ".join(text[i:i + 6] for i in range(0, len(text), 6))


def _sha256_truncated(data: bytes, num: int) -> str:
    return sha256(data).hexdigest()[:num]


def paper_key_text(repo_id: str, keyblob: str) -> str:
    """The text of ``borg key export --paper REPO`` (borg 1.2 'BORG PAPER KEY v1' format)."""
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


# --- locks ------------------------------------------------------------------------------------------------------

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
    """``<hostid>.<pid>-<thread hex>`` (borg 1.2's lock file names) → (host, pid, thread); None if malformed."""
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


def _borg_getfqdn() -> str:
    """borg 1.2's own getfqdn (platform.base): the canonical name of this host, else its hostname."""
    name = socket.gethostname()
    try:
        addrs = socket.getaddrinfo(name, None, 0, socket.SOCK_DGRAM, 0, socket.AI_CANONNAME)
    except OSError:
        return name
    for addr in addrs:
        if addr[3]:
            return addr[3]
    return name


def local_host_id(environ: dict[str, str] | None = None) -> str:
    """The host id borg 1.2 writes into lock names on this machine: ``BORG_HOST_ID`` or ``<fqdn>@<node>``."""
    environ = os.environ if environ is None else environ
    return environ.get("BORG_HOST_ID") or f"{_borg_getfqdn()}@{uuid.getnode()}"


def host_id_is_stable(host_id: str, environ: dict[str, str] | None = None) -> bool:
    """False when the node part is the random number uuid.getnode() falls back to (no MAC address: for example a
    container with no network); such an id changes with every process, so borg cannot recognise its own locks."""
    environ = os.environ if environ is None else environ
    if environ.get("BORG_HOST_ID"):
        return True
    try:
        node = int(host_id.rsplit("@", 1)[1])
    except (IndexError, ValueError):
        return False
    return not (node >> 40) & 1  # RFC 4122: a random node has the multicast bit set


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host (signal 0; EPERM still means alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def annotate_alive(holders: Iterable[LockHolder], my_host: str, alive: Callable[[int], bool]) -> list[LockHolder]:
    """Fill ``alive`` for holders on this host; holders on another host stay unknown (None)."""
    out = []
    for holder in holders:
        out.append(LockHolder(host=holder.host, pid=holder.pid, thread=holder.thread, kind=holder.kind,
                              age=holder.age, alive=alive(holder.pid) if holder.host == my_host else None))
    return out


@dataclass
class LockDecision:
    """What to do about the locks found: ``none``, ``break``, ``fail`` or ``ignore``."""

    action: str
    reason: str = ""
    holder: LockHolder | None = None  # the holder reported (the one that blocks, else the first)
    breakable: list[LockHolder] = field(default_factory=list)


def decide_lock(holders: Sequence[LockHolder], *, my_host: str, mode: str = "break",
                dead_hosts: Iterable[str] = (), break_foreign_lock_after: float | None = None) -> LockDecision:
    """Decide whether the locks found may be broken. Pure: every fact comes in as an argument.

    - no holder → ``none``; ``mode=ignore`` → ``ignore`` (borg waits ``lock_wait`` and fails by itself);
    - a holder on this host whose PID is alive → ``fail``, whatever the mode: a running borg is never interrupted;
    - a holder on another host → breakable only when that host id is in ``dead_hosts`` or the lock is older than
      ``break_foreign_lock_after`` seconds; otherwise ``fail`` (its liveness cannot be seen from here);
    - a holder on this host whose PID is dead → breakable;
    - breakable holders with ``mode=fail`` → ``fail``; with ``mode=break`` → ``break``.
    """
    if not holders:
        return LockDecision("none")
    if mode == "ignore":
        return LockDecision("ignore", "stale_lock=ignore: the lock is reported and left to borg.", holders[0])
    dead = set(dead_hosts)
    breakable: list[LockHolder] = []
    for holder in holders:
        if holder.host == my_host:
            if holder.alive:
                return LockDecision(
                    "fail", f"The repository is locked by a running borg process: PID {holder.pid} on this host "
                    f"({holder.host}); nothing was broken. Wait for it to finish or stop it.", holder)
            breakable.append(holder)
            continue
        if holder.host in dead:
            breakable.append(holder)
            continue
        if break_foreign_lock_after is not None and holder.age > break_foreign_lock_after:
            breakable.append(holder)
            continue
        older = (f" and is only {int(holder.age)} s old (break_foreign_lock_after={int(break_foreign_lock_after)})"
                 if break_foreign_lock_after is not None else "")
        return LockDecision(
            "fail", f"The repository is locked by PID {holder.pid} on another host, {holder.host}{older}; "
            "its liveness cannot be checked from here, so nothing was broken. If that host is gone (for example "
            "the server this one replaces), add its host id to dead_hosts.", holder)
    first = breakable[0]
    if mode == "fail":
        return LockDecision(
            "fail", f"The repository has a stale lock held by PID {first.pid} on {first.host} "
            "(stale_lock=fail); nothing was broken.", first, breakable)
    if first.host == my_host:
        reason = f"stale lock of dead PID {first.pid} on this host"
    elif first.host in dead:
        reason = f"lock of PID {first.pid} held by {first.host}, listed in dead_hosts"
    else:
        reason = f"lock of PID {first.pid} on {first.host}, older than break_foreign_lock_after"
    return LockDecision("break", reason, first, breakable)


def lock_report(holders: Sequence[LockHolder], decision: LockDecision | None, broken: bool) -> dict[str, Any]:
    holder = decision.holder if decision and decision.holder else (holders[0] if holders else None)
    return {
        "present": bool(holders),
        "holder_host": holder.host if holder else None,
        "holder_pid": holder.pid if holder else None,
        "holder_alive": holder.alive if holder else None,
        "broken": broken,
        "holders": [asdict(h) for h in holders],
        "reason": decision.reason if decision else "",
    }


# --- listings ---------------------------------------------------------------------------------------------------

def summarize_listing(data: dict[str, Any]) -> dict[str, Any]:
    """``borg list --json`` → repository id/location/encryption and the archive summary."""
    repo = data.get("repository") or {}
    archives = data.get("archives") or []
    last = None
    if archives:
        # borg lists archives oldest first; start times have one-second resolution, so on a tie the later
        # position in borg's list wins.
        newest = archives[max(range(len(archives)),
                              key=lambda i: (archives[i].get("start") or archives[i].get("time") or "", i))]
        last = {"name": newest.get("name"), "start": newest.get("start") or newest.get("time"),
                "end": newest.get("end")}
    return {
        "id": repo.get("id"),
        "location": repo.get("location"),
        "encryption": (data.get("encryption") or {}).get("mode"),
        "archives": {"count": len(archives), "last": last},
    }


def log_msgids(stderr: str) -> list[str]:
    """The ``msgid`` of each ``--log-json`` line on stderr (borg's stable error names)."""
    ids = []
    for line in stderr.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msgid"):
            ids.append(str(entry["msgid"]))
    return ids


def log_messages(stderr: str, levels: Sequence[str] = ("ERROR", "CRITICAL")) -> list[str]:
    """The messages of ``--log-json`` lines at the given levels (plain lines are kept as they are)."""
    out = []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                out.append(line.strip())
            continue
        if isinstance(entry, dict) and entry.get("levelname") in levels and entry.get("message"):
            out.append(str(entry["message"]))
    return out


# --- borg runner ------------------------------------------------------------------------------------------------

class Borg:
    """One repository as seen through borg 1.2, with the passphrase kept off the command line."""

    def __init__(self, module: Any, params: dict[str, Any], secret: SecretSource) -> None:
        self.repo: str = params["repo"]
        self.secret = secret
        self.lock_wait: int | None = params.get("lock_wait")
        self.remote_path: str | None = params.get("remote_path")
        env = {"BORG_RELOCATED_REPO_ACCESS_IS_OK": "no", "BORG_DISPLAY_PASSPHRASE": "no",
               "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes" if params.get("encryption") == "none" else "no"}
        if params.get("rsh"):
            env["BORG_RSH"] = params["rsh"]
        if params.get("base_dir"):
            env["BORG_BASE_DIR"] = params["base_dir"]
        drop_inherited_passphrases()
        if secret.kind == "value":
            env["BORG_PASSPHRASE"] = secret.value or ""
        elif secret.kind == "command":
            env["BORG_PASSCOMMAND"] = secret.command or ""
        elif secret.kind is None:
            env["BORG_PASSPHRASE"] = ""  # never prompt: an encrypted repository then fails with PassphraseWrong
        self.runner = ToolRunner(module, params.get("borg_binary") or "borg", env=env,
                                 secrets=secret.known_values(), name="borg")

    # Every call that may need the key goes through here: a passphrase file is opened for this one call and its
    # descriptor handed to borg (BORG_PASSPHRASE_FD), because borg reads the descriptor to its end.
    def run(self, args: Sequence[str], *, check: bool = True, error: str | None = None) -> Result:
        common = ["--log-json"]
        if self.lock_wait is not None:
            common += ["--lock-wait", str(self.lock_wait)]
        if self.remote_path:
            common += ["--remote-path", self.remote_path]
        argv = [args[0], *common, *args[1:]]
        if self.secret.kind != "file":
            return self.runner.run(argv, check=check, error=error)
        fd = os.open(self.secret.file or "", os.O_RDONLY)
        try:
            return self.runner.run(argv, env={"BORG_PASSPHRASE_FD": str(fd)}, pass_fds=[fd], check=check,
                                   error=error)
        finally:
            os.close(fd)

    def fail(self, result: Result, what: str) -> ToolError:
        ids = log_msgids(result.stderr)
        messages = log_messages(result.stderr)
        reason = messages[-1] if messages else f"rc={result.rc}"
        if "PassphraseWrong" in ids:
            msg = (f"The passphrase is wrong for {self.repo} (borg: PassphraseWrong); check passphrase, "
                   "passphrase_file or passcommand.")
        elif "PasscommandFailure" in ids:
            msg = f"The passcommand failed (borg: {reason})."
        elif any(i.startswith("Lock") for i in ids):
            msg = f"{what}: the repository {self.repo} is locked and the lock could not be taken (borg: {reason})"
        elif "ConnectionClosed" in ids or "ConnectionClosedWithHint" in ids:
            remote = [m for m in log_messages(result.stderr, levels=("WARNING", "ERROR", "CRITICAL"))
                      if m.startswith("Remote:")]
            msg = f"Cannot reach {self.repo}: {remote[-1] if remote else reason}"
        else:
            msg = f"{what}: {reason}"
        return ToolError(msg, cmd=result.cmd, rc=result.rc, stdout=result.stdout[-4000:],
                         stderr=result.stderr[-4000:], borg_msgids=ids)

    def version(self) -> tuple[int, int, int]:
        result = self.runner.run(["--version"])
        return check_version(result.stdout or result.stderr)

    def listing(self, bypass_lock: bool = False) -> dict[str, Any] | None:
        """``borg list --json`` (one borg start): None when the repository does not exist.

        ``bypass_lock`` reads without taking the lock: in check mode, where a lock that would be broken must stay
        exactly as found (borg removes its own host's stale locks whenever it takes a lock).
        """
        args = ["list", "--json", "--format", "{name}{start}{end}"] + (["--bypass-lock"] if bypass_lock else [])
        result = self.run([*args, self.repo], check=False)
        if result.rc != 0:
            ids = log_msgids(result.stderr)
            if "Repository.DoesNotExist" in ids:
                return None
            raise self.fail(result, f"Could not read the repository {self.repo}")
        try:
            data = json.loads(result.stdout)
        except ValueError as exc:
            raise ToolError(f"Could not decode borg list --json: {exc}", stdout=result.stdout[-2000:]) from exc
        return data

    def init(self, encryption: str, append_only: bool, storage_quota: str | None) -> None:
        args = ["init", "--encryption", encryption, "--make-parent-dirs"]
        if append_only:
            args.append("--append-only")
        if storage_quota and parse_size(storage_quota):
            args += ["--storage-quota", storage_quota]
        result = self.run([*args, self.repo], check=False)
        if result.rc not in (0, 1):
            raise self.fail(result, f"borg init of {self.repo} failed")

    def config(self) -> RepoConfig:
        if not is_remote(self.repo):
            return read_local_config(self.repo)
        result = self.run(["config", "--list", self.repo], check=False)
        if result.rc != 0:
            raise self.fail(result, f"Could not read the config of {self.repo}")
        return parse_repo_config(result.stdout)

    def set_config(self, name: str, value: str) -> None:
        result = self.run(["config", self.repo, name, value], check=False)
        if result.rc != 0:
            raise self.fail(result, f"Could not set {name} on {self.repo}")

    def key_export(self, paper: bool) -> str:
        args = ["key", "export"] + (["--paper"] if paper else []) + [self.repo, "-"]
        result = self.run(args, check=False)
        if result.rc != 0:
            raise self.fail(result, f"Could not export the key of {self.repo}")
        return result.stdout

    def break_lock(self) -> None:
        result = self.run(["break-lock", self.repo], check=False)
        if result.rc != 0:
            raise self.fail(result, f"borg break-lock on {self.repo} failed")

    def check(self, mode: str) -> Result:
        return self.run(["check", *CHECK_FLAGS[mode], self.repo], check=False)


# --- key export file --------------------------------------------------------------------------------------------

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


# --- the module -------------------------------------------------------------------------------------------------

def validate(params: dict[str, Any]) -> tuple[dict[str, Any], SecretSource]:
    """Check the options before anything runs; returns normalised params and the passphrase source."""
    p = dict(params)
    p["repo"] = validate_repo(p["repo"])
    secret = SecretSource.from_params(p, "passphrase", "passphrase_file", "passcommand").validate()
    if p.get("base_dir") and not os.path.isabs(p["base_dir"]):
        raise InputError(f"base_dir must be an absolute path, got {p['base_dir']!r}.")
    if p.get("storage_quota") is not None:
        parse_size(p["storage_quota"])
    bfla = p.get("break_foreign_lock_after")
    if bfla is not None and bfla < 0:
        raise InputError("break_foreign_lock_after must be 0 or more seconds.")
    ke = p.get("key_export")
    if ke:
        dest = ke.get("dest")
        if not dest or not os.path.isabs(dest):
            raise InputError(f"key_export.dest must be an absolute path, got {dest!r}.")
        if not is_remote(p["repo"]) and path_inside(dest, p["repo"]):
            raise InputError(f"key_export.dest {dest} is inside the repository {p['repo']}: a key kept with its "
                             "repository is lost with it. Export it to another place (another host, ideally).")
        ke = dict(ke)
        ke["mode"] = parse_mode(ke.get("mode"))
        p["key_export"] = ke
        if p.get("encryption") == "none":
            raise InputError("key_export is not possible with encryption=none: such a repository has no key.")
    return p, secret


def main(module: Any) -> dict[str, Any]:
    params, secret = validate(module.params)
    check_mode = bool(module.check_mode)
    borg = Borg(module, params, secret)
    repo = params["repo"]
    remote = is_remote(repo)
    version = borg.version()
    result: dict[str, Any] = {"changed": False, "borg_version": version_string(version), "actions": []}
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}

    # 1. Locks: read the holders from the lock files (local repositories), decide, break only when provably safe.
    holders: list[LockHolder] = []
    decision: LockDecision | None = None
    broken = False
    my_host = local_host_id()
    result["host_id"] = my_host
    result["host_id_stable"] = host_id_is_stable(my_host)
    if not result["host_id_stable"] and hasattr(module, "warn"):
        module.warn(f"This host has no stable borg host id ({my_host} is random per process, as there is no MAC "
                    "address): borg cannot recognise its own stale locks and this module treats them as another "
                    "host's. Set BORG_HOST_ID (for example <hostname>@<a fixed number>) for borg and this module.")
    if not remote and local_repo_state(repo) == "repo":
        holders = annotate_alive(read_lock_holders(repo), my_host, pid_alive)
        decision = decide_lock(holders, my_host=my_host, mode=params["stale_lock"],
                               dead_hosts=params.get("dead_hosts") or [],
                               break_foreign_lock_after=params.get("break_foreign_lock_after"))
        if decision.action == "fail":
            raise LockedError(decision.reason, lock=lock_report(holders, decision, False))
        if decision.action == "break":
            result["changed"] = True
            result["actions"].append(f"break lock ({decision.reason})")
            if not check_mode:
                # The holders must be the very ones decided on: a new borg may have started meanwhile.
                again = annotate_alive(read_lock_holders(repo), my_host, pid_alive)
                if {(h.host, h.pid, h.thread) for h in again} - {(h.host, h.pid, h.thread) for h in holders}:
                    raise LockedError("The repository lock changed while it was being inspected; nothing was "
                                      "broken. Run again.", lock=lock_report(again, None, False))
                borg.break_lock()
                broken = True
                res = borg.check("repository")
                if res.rc != 0:
                    raise borg.fail(res, f"The stale lock on {repo} was broken, but borg check --repository-only "
                                         "then failed")
                result["actions"].append("borg check --repository-only after breaking the lock: ok")
            before["lock"] = {"holder_host": decision.holder.host if decision.holder else None,
                              "holder_pid": decision.holder.pid if decision.holder else None}
            after["lock"] = None
    result["lock"] = lock_report(holders, decision, broken)
    # In check mode a lock that would be broken stays as found: borg then reads without locking, and no check runs.
    pending_break = check_mode and decision is not None and decision.action == "break"

    # 2. Does the repository exist? One `borg list --json` answers that and gives id, encryption and archives.
    if remote:
        listing = borg.listing()
    else:
        state = local_repo_state(repo)
        if state == "other":
            raise InputError(f"{repo} exists but is not a borg repository (no config file); refusing to touch it.")
        listing = borg.listing(bypass_lock=pending_break) if state == "repo" else None
    created = False
    wanted_append = params.get("append_only")
    if listing is None:
        encryption = params.get("encryption") or DEFAULT_ENCRYPTION
        if encryption != "none" and not secret.given:
            raise InputError(f"Creating {repo} with encryption={encryption} needs a passphrase: set passphrase, "
                             "passphrase_file or passcommand.")
        result["changed"] = True
        created = True
        result["actions"].append(f"borg init --encryption {encryption}")
        before["exists"] = False
        after["exists"] = True
        if not check_mode:
            borg.init(encryption, bool(wanted_append), params.get("storage_quota"))
            listing = borg.listing()
            if listing is None:
                raise ToolError(f"borg init reported success but {repo} cannot be listed.")
    if listing is not None:
        summary = summarize_listing(listing)
    else:  # check mode, repository still to be created
        summary = {"id": None, "location": repo, "encryption": params.get("encryption") or DEFAULT_ENCRYPTION,
                   "archives": {"count": 0, "last": None}}
    if not created and params.get("encryption") and summary["encryption"] != params["encryption"]:
        raise InputError(f"{repo} already exists with encryption {summary['encryption']}, not "
                         f"{params['encryption']}; an existing repository is never re-initialised. Change the "
                         "encryption option (or omit it) to use this repository.")

    # 3. append_only and storage_quota (the repository config: a file read for local repositories). `borg config`
    # works only on local repositories: a remote one gets them at creation (borg init) and is held append-only by
    # the server's forced `borg serve --append-only`, so its config is neither read nor changed here.
    config_known = not (remote and not created)
    if not config_known:
        config = RepoConfig()
        wanted_append = None
        params = dict(params, storage_quota=None)
    elif listing is not None and not remote:
        config = borg.config()
    else:
        config = RepoConfig(append_only=bool(wanted_append), storage_quota=parse_size(params.get("storage_quota")))
    if wanted_append is not None and config.append_only != wanted_append:
        result["changed"] = True
        result["actions"].append(f"set append_only={int(wanted_append)}")
        before["append_only"] = config.append_only
        after["append_only"] = wanted_append
        if not check_mode:
            borg.set_config("append_only", "1" if wanted_append else "0")
        config.append_only = wanted_append
    quota = params.get("storage_quota")
    if quota is not None and parse_size(quota) != config.storage_quota:
        result["changed"] = True
        result["actions"].append(f"set storage_quota={quota}")
        before["storage_quota"] = config.storage_quota
        after["storage_quota"] = parse_size(quota)
        if not check_mode:
            borg.set_config("storage_quota", quota if parse_size(quota) else "0")
        config.storage_quota = parse_size(quota)
    result["repo"] = {"id": summary["id"], "location": summary["location"], "encryption": summary["encryption"],
                      "append_only": config.append_only if config_known else None,
                      "storage_quota": config.storage_quota or None}
    result["archives"] = summary["archives"]

    # 4. Key export: after creation, and whenever dest is missing or holds another key.
    ke = params.get("key_export")
    if ke:
        dest, paper, mode = ke["dest"], bool(ke.get("paper")), ke["mode"]
        # In check mode the directory may be one that an earlier task would have created.
        if not check_mode and not os.path.isdir(os.path.dirname(dest)):
            raise InputError(f"The directory of key_export.dest ({os.path.dirname(dest)}) does not exist.")
        if summary["encryption"] == "none":
            raise InputError(f"key_export is not possible: {repo} is not encrypted (encryption none), it has no key.")
        content, current_mode = file_state(dest)
        exported = False
        if listing is None:
            expected = None  # check mode before init: the key does not exist yet
        elif not remote and config.key and summary["id"]:
            expected = (paper_key_text if paper else key_export_text)(summary["id"], config.key)
        else:
            expected = borg.key_export(paper)
        if content is None or expected is None or content != expected:
            result["changed"] = True
            exported = True
            result["actions"].append(f"export the key to {dest}")
            before["key_export"] = {"dest": dest, "state": "absent" if content is None else "different key"}
            after["key_export"] = {"dest": dest, "state": "current", "mode": f"{mode:04o}"}
            if not check_mode:
                text = expected if expected is not None else borg.key_export(paper)
                write_private_file(dest, text, mode)
        elif current_mode != mode:
            result["changed"] = True
            result["actions"].append(f"chmod {mode:04o} {dest}")
            before["key_export"] = {"dest": dest, "mode": f"{current_mode:04o}"}
            after["key_export"] = {"dest": dest, "mode": f"{mode:04o}"}
            if not check_mode:
                os.chmod(dest, mode)
        result["key_export"] = {"dest": dest, "exported": exported}
    else:
        result["key_export"] = {"dest": None, "exported": False}

    # 5. Check (read-only; also in check mode, unless the repository is still to be created).
    check = params.get("check") or "none"
    result["check"] = {"mode": check, "ok": None}
    if check != "none" and listing is not None and not pending_break:
        res = borg.check(check)
        result["check"]["ok"] = res.rc == 0
        if res.rc != 0:
            error = borg.fail(res, f"borg check ({check}) of {repo} failed")
            error.details["check"] = result["check"]
            raise error

    if module._diff and result["changed"]:
        result["diff"] = {"before": json.dumps(before, indent=2, sort_keys=True) + "\n",
                          "after": json.dumps(after, indent=2, sort_keys=True) + "\n",
                          "before_header": repo, "after_header": repo}
    return result
