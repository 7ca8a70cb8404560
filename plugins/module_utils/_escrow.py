# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Key escrow checks: is the escrowed key there, private, kept apart, able to decrypt, and still current?

Each check is one function that returns a :class:`Verdict` (a boolean and the sentences that explain a ``False``).
The tool-facing parts (borg, restic, cryptsetup) are small and go through :class:`ToolRunner`; what they print is
turned into a decision by pure functions (``parse_*``/``decide_*``) that the unit tests drive without the tools.

Nothing here writes to a repository, a device or an escrowed file. The only files written are private temporary
copies (a ``0700`` directory, ``0600`` files) that are removed before the check returns:

* borg: the repository is opened through a *shadow* directory that holds a copy of the repository's ``config``
  (for repokey mode with the escrowed key put in place of the repository's own key) and symbolic links to the
  segments and indexes, with ``BORG_BASE_DIR`` pointing into the shadow directory too. Borg then has nothing but
  the escrowed key and the escrowed passphrase to work with, takes its lock in the shadow directory, and leaves
  the caller's cache and security directories alone.
* restic: ``cat config`` with ``RESTIC_PASSWORD_FILE`` set to the escrowed password file, ``--no-lock --no-cache``.
* luks: ``cryptsetup open --test-passphrase --key-file``, which maps nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ansible_collections.restoreops.dr.plugins.module_utils._borg.cli import BorgCLI, error_ids, last_error_message
from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo_files import (
    KeyExport,
    RepoConfig,
    config_with_key,
    find_host_key,
    parse_key_export,
    parse_repo_config,
)
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import (
    EXPLANATIONS,
    Restic,
    classify_failure,
    tool_runner,
)
from ansible_collections.restoreops.dr.plugins.module_utils._runner import Result, ToolRunner
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource, mode_is_at_most

CHECKS = ("exists", "mode", "apart", "decrypts", "current")
KINDS = ("borg", "restic", "luks", "file")


def item_options() -> dict[str, Any]:
    """The argument spec of one escrowed key (key_escrow_check `items`, backup_policy_facts `key_escrow_items`)."""
    return dict(
        name=dict(type="str", required=True),
        kind=dict(type="str", required=True, choices=list(KINDS)),
        repo=dict(type="str"),
        device=dict(type="path"),
        key_file=dict(type="path", required=True, no_log=False),
        passphrase_file=dict(type="path", no_log=False),
        passcommand=dict(type="str", no_log=False),
        passphrase=dict(type="str", no_log=True),
        passphrase_place=dict(type="dict", no_log=False, options=dict(
            host_id=dict(type="str", required=True),
            dev=dict(type="int", required=True),
            path=dict(type="str", required=True),
        )),
        sha256=dict(type="str"),
        protected_paths=dict(type="list", elements="path", default=[]),
    )


# Variables that would make a tool use a secret other than the escrowed one.
FOREIGN_SECRET_VARS = (
    "BORG_PASSPHRASE", "BORG_PASSCOMMAND", "BORG_PASSPHRASE_FD", "BORG_KEY_FILE",
    "RESTIC_PASSWORD", "RESTIC_PASSWORD_COMMAND", "RESTIC_PASSWORD_FILE",
)

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class EscrowCheckFailed(RestoreOpsError):
    """At least one item failed a check and the caller asked to fail on problems."""


# --------------------------------------------------------------------------------------------------------------
# Input


@dataclass(frozen=True)
class Place:
    """Where something lives: its path, its directory, the device of its filesystem (``st_dev``) and the identity of
    the host (:func:`host_identity`; None: the host running the check)."""

    path: str
    directory: str
    dev: int
    host_id: Optional[str] = None


@dataclass(frozen=True)
class EscrowItem:
    """One escrowed secret and what it protects."""

    name: str
    kind: str
    key_file: str
    repo: Optional[str] = None
    device: Optional[str] = None
    passphrase_file: Optional[str] = None
    passcommand: Optional[str] = None
    sha256: Optional[str] = None
    protected_paths: tuple[str, ...] = ()
    passphrase: Optional[str] = None
    passphrase_place: Optional[Place] = None

    @property
    def local_repo(self) -> Optional[str]:
        """The repository as a local path, or None for a remote one (``sftp:``, ``rest:``, ``ssh://`` ...)."""
        if self.repo and os.path.isabs(self.repo) and not _URL_RE.match(self.repo):
            return self.repo
        return None


def parse_max_mode(value: Any) -> int:
    """``'0600'``, ``'600'`` or an int (YAML reads an unquoted ``0600`` as 384) into permission bits."""
    if isinstance(value, bool):
        raise InputError(f"max_mode must be an octal mode such as '0600', got {value!r}.")
    if isinstance(value, int):
        mode = value
    else:
        text = str(value).strip()
        if not re.match(r"^0?[0-7]{3,4}$", text):
            raise InputError(f"max_mode must be an octal mode such as '0600', got {value!r}.")
        mode = int(text, 8)
    if mode < 0 or mode > 0o7777:
        raise InputError(f"max_mode must be an octal mode such as '0600', got {value!r}.")
    return mode


def normalize_sha256(value: str) -> str:
    text = value.strip().lower()
    if text.startswith("sha256:"):
        text = text[len("sha256:"):]
    return text


def parse_item(raw: dict[str, Any]) -> EscrowItem:
    """Validate one entry of ``items``; raise InputError naming the item and the option."""
    name = raw.get("name") or ""
    kind = raw.get("kind")
    where = f"Item {name!r}"
    if not name:
        raise InputError("Every item needs a name.")
    if kind not in KINDS:
        raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    key_file = raw.get("key_file")
    if not key_file or not os.path.isabs(key_file):
        raise InputError(f"{where}: key_file must be an absolute path, got {key_file!r}.")
    passphrase_file = raw.get("passphrase_file")
    passcommand = raw.get("passcommand")
    passphrase = raw.get("passphrase")
    if passphrase_file is not None and passcommand is not None:
        raise InputError(f"{where}: give passphrase_file or passcommand, not both.")
    if passphrase is not None and (passphrase_file is not None or passcommand is not None):
        raise InputError(f"{where}: give passphrase, passphrase_file or passcommand, only one of them.")
    if passphrase is not None and not passphrase:
        raise InputError(f"{where}: passphrase is empty.")
    place = parse_passphrase_place(where, raw.get("passphrase_place"), passphrase_file)
    if passphrase_file is not None and not os.path.isabs(passphrase_file):
        raise InputError(f"{where}: passphrase_file must be an absolute path, got {passphrase_file!r}.")
    if passcommand is not None and not passcommand.strip():
        raise InputError(f"{where}: passcommand is empty.")
    repo = raw.get("repo")
    device = raw.get("device")
    sha256 = raw.get("sha256")
    if kind in ("borg", "restic") and not repo:
        raise InputError(f"{where}: kind {kind} needs repo.")
    if kind != "borg" and (passphrase is not None or place is not None):
        raise InputError(f"{where}: passphrase and passphrase_place apply to kind borg only.")
    if kind == "borg":
        if passphrase_file is None and passcommand is None and passphrase is None:
            raise InputError(f"{where}: kind borg needs the escrowed passphrase as passphrase_file, passcommand or "
                             "passphrase.")
        if not (os.path.isabs(repo) and not _URL_RE.match(repo)):
            raise InputError(
                f"{where}: borg repository {repo!r} is not a local path; the check opens it with only the escrowed "
                "key, which needs the repository's files on this host (mount it here, read-only is enough).")
    if kind == "restic" and (passphrase_file is not None or passcommand is not None):
        raise InputError(f"{where}: for kind restic the escrowed password file is key_file; "
                         "passphrase_file and passcommand do not apply.")
    if kind == "luks":
        if not device or not os.path.isabs(device):
            raise InputError(f"{where}: kind luks needs device as an absolute path, got {device!r}.")
        if passphrase_file is not None or passcommand is not None:
            raise InputError(f"{where}: for kind luks the escrowed key (or passphrase) file is key_file; "
                             "passphrase_file and passcommand do not apply.")
    if kind == "file":
        if not sha256 or not _SHA256_RE.match(normalize_sha256(sha256)):
            raise InputError(f"{where}: kind file needs sha256, the expected hex SHA-256 digest of the key.")
        sha256 = normalize_sha256(sha256)
    protected = tuple(raw.get("protected_paths") or ())
    for path in protected:
        if not os.path.isabs(path):
            raise InputError(f"{where}: protected_paths must be absolute paths, got {path!r}.")
    return EscrowItem(name=name, kind=kind, key_file=key_file, repo=repo, device=device,
                      passphrase_file=passphrase_file, passcommand=passcommand, sha256=sha256,
                      protected_paths=protected, passphrase=passphrase, passphrase_place=place)


def parse_passphrase_place(where: str, raw: Any, passphrase_file: Optional[str]) -> Optional[Place]:
    """Where a passphrase that is not a file on this host is kept, as observed on the host that keeps it."""
    if raw is None:
        return None
    if passphrase_file is not None:
        raise InputError(f"{where}: passphrase_place describes a passphrase kept elsewhere; a passphrase_file on this "
                         "host is examined directly, so give one or the other.")
    host_id = str(raw.get("host_id") or "").strip()
    path = raw.get("path") or ""
    dev = raw.get("dev")
    if not host_id:
        raise InputError(f"{where}: passphrase_place.host_id is empty.")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise InputError(f"{where}: passphrase_place.path must be an absolute path, got {path!r}.")
    if isinstance(dev, bool) or not isinstance(dev, int) or dev < 0:
        raise InputError(f"{where}: passphrase_place.dev must be a device number (st_dev), got {dev!r}.")
    return Place(path, os.path.dirname(path), dev, host_id)


def parse_items(raw_items: Iterable[dict[str, Any]]) -> list[EscrowItem]:
    items = [parse_item(raw) for raw in raw_items]
    if not items:
        raise InputError("items is empty: name at least one escrowed key to check.")
    names = [item.name for item in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"Item names must be unique; repeated: {', '.join(duplicates)}.")
    return items


# --------------------------------------------------------------------------------------------------------------
# Results


@dataclass
class Verdict:
    """One check's outcome: ``ok`` and, when not ok, plain sentences saying why."""

    ok: bool
    problems: list[str] = field(default_factory=list)

    @classmethod
    def passed(cls) -> Verdict:
        return cls(True, [])

    @classmethod
    def failed(cls, *problems: str) -> Verdict:
        return cls(False, list(problems))


@dataclass
class ItemResult:
    name: str
    checks: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def record(self, check: str, verdict: Verdict) -> None:
        self.checks[check] = verdict.ok
        for problem in verdict.problems:
            if problem not in self.problems:
                self.problems.append(problem)

    @property
    def ok(self) -> bool:
        return all(self.checks.get(check, False) for check in CHECKS)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "checks": dict(self.checks), "problems": list(self.problems)}


def summarize(results: list[ItemResult]) -> dict[str, Any]:
    return {"ok": all(r.ok for r in results), "results": [r.as_dict() for r in results]}


def failure_message(results: list[ItemResult]) -> str:
    bad = [r for r in results if not r.ok]
    parts = []
    for r in bad:
        failed = ", ".join(c for c in CHECKS if not r.checks.get(c, False))
        parts.append(f"{r.name} ({failed})")
    return (f"Key escrow check failed for {len(bad)} of {len(results)} item(s): {'; '.join(parts)}. "
            "See results[].problems.")


# --------------------------------------------------------------------------------------------------------------
# exists, mode, apart


def _describe(item: EscrowItem) -> str:
    return "password file" if item.kind == "restic" else "key file"


def check_exists(item: EscrowItem) -> Verdict:
    """The escrowed key (and passphrase file) are regular, readable files."""
    problems = []
    for label, path in ((f"escrowed {_describe(item)}", item.key_file),
                        ("escrowed passphrase file", item.passphrase_file)):
        if path is None:
            continue
        try:
            st = os.stat(path)
        except FileNotFoundError:
            problems.append(f"The {label} {path} does not exist.")
            continue
        except OSError as exc:
            problems.append(f"The {label} {path} cannot be examined: {exc.strerror}.")
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"The {label} {path} is not a regular file.")
        elif not os.access(path, os.R_OK):
            problems.append(f"The {label} {path} is not readable by this user.")
        elif st.st_size == 0:
            problems.append(f"The {label} {path} is empty.")
    return Verdict(not problems, problems)


def decide_mode(path: str, mode: int, max_mode: int, label: str) -> Verdict:
    if mode_is_at_most(mode, max_mode):
        return Verdict.passed()
    return Verdict.failed(
        f"The {label} {path} has mode {stat.S_IMODE(mode):04o}, looser than {max_mode:04o}: "
        f"anyone it lets in can read the escrowed secret (chmod {max_mode:04o} {path}).")


def check_mode(item: EscrowItem, max_mode: int) -> Verdict:
    verdict = Verdict.passed()
    for label, path in ((f"escrowed {_describe(item)}", item.key_file),
                        ("escrowed passphrase file", item.passphrase_file)):
        if path is None:
            continue
        one = decide_mode(path, os.stat(path).st_mode, max_mode, label)
        if not one.ok:
            verdict.ok = False
            verdict.problems.extend(one.problems)
    return verdict


def place_of(path: str, host_id: Optional[str] = None) -> Place:
    real = os.path.realpath(path)
    st = os.stat(real)
    directory = real if stat.S_ISDIR(st.st_mode) else os.path.dirname(real)
    dev = st.st_dev
    if stat.S_ISBLK(st.st_mode):
        dev = st.st_rdev  # a block device: its own filesystem is what it holds
    return Place(real, directory, dev, host_id)


def _first_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return ""


def host_identity() -> str:
    """This host as ``<machine id>/<hostname>``: containers on one VM can share the machine id (systemd derives it
    from the hardware), but one machine under two inventory names shares both. The key_escrow role reads the same two
    values (``cat /etc/machine-id /proc/sys/kernel/hostname``) on the host that keeps a passphrase."""
    machine_id = _first_line("/etc/machine-id") or _first_line("/var/lib/dbus/machine-id")
    hostname = _first_line("/proc/sys/kernel/hostname") or socket.gethostname()
    return f"{machine_id}/{hostname}"


def decide_apart(key: Place, passphrase: Optional[Place], protected: list[tuple[str, Place]]) -> Verdict:
    """Key and passphrase not on one host and filesystem; neither on a filesystem holding what they protect.

    ``key`` and the ``protected`` places are on the host running the check (their ``host_id`` is that host's, or
    None). ``passphrase`` is None when its place cannot be observed (a command or a value without a place); with a
    ``host_id`` of another host it shares nothing with this host's filesystems (device numbers of two hosts are not
    comparable). ``protected`` pairs a label (``repository``, ``device``, ``protected path``) with the place it names.
    """
    problems = []
    same_host = passphrase is not None and (passphrase.host_id is None or key.host_id is None
                                            or passphrase.host_id == key.host_id)
    if same_host and passphrase is not None:
        if passphrase.directory == key.directory:
            problems.append(
                f"The escrowed key {key.path} and its passphrase {passphrase.path} are in the same directory "
                f"({key.directory}): whoever gets one gets both. Keep the passphrase on another escrow host or in a "
                "secrets store.")
        elif passphrase.dev == key.dev:
            host = f" ({key.host_id})" if key.host_id else ""
            problems.append(
                f"The escrowed key {key.path} and its passphrase {passphrase.path} share one host{host} and one "
                f"filesystem (device {passphrase.dev}): a copy, snapshot or theft of that filesystem gives both. "
                "Keep the passphrase on another escrow host or on a filesystem of its own that your secrets tooling "
                "manages.")
    for what, escrowed in (("key", key), ("passphrase", passphrase if same_host else None)):
        if escrowed is None:
            continue
        for label, place in protected:
            if escrowed.dev == place.dev:
                problems.append(
                    f"The escrowed {what} {escrowed.path} is on the same filesystem as the {label} {place.path}: "
                    "losing that filesystem loses the data and its key together.")
    return Verdict(not problems, problems)


def check_apart(item: EscrowItem, host_id: Optional[str] = None) -> Verdict:
    """Observe the places: the key (and a passphrase file) here, a passphrase kept elsewhere as its caller saw it
    there (``passphrase_place``), nothing for a passcommand or a value without a place."""
    key = place_of(item.key_file, host_id)
    if item.passphrase_file:
        passphrase: Optional[Place] = place_of(item.passphrase_file, host_id)
    else:
        passphrase = item.passphrase_place
    protected: list[tuple[str, Place]] = []
    problems = []
    targets = []
    if item.local_repo:
        targets.append(("repository", item.local_repo))
    if item.kind == "luks" and item.device:
        targets.append(("device", item.device))
    targets.extend(("protected path", p) for p in item.protected_paths)
    for label, path in targets:
        try:
            protected.append((label, place_of(path, host_id)))
        except OSError as exc:
            problems.append(f"The {label} {path} cannot be examined ({exc.strerror}), so the escrow cannot be "
                            "shown to live apart from it.")
    verdict = decide_apart(key, passphrase, protected)
    verdict.problems.extend(problems)
    verdict.ok = verdict.ok and not problems
    return verdict


# --------------------------------------------------------------------------------------------------------------
# borg


# The repository's config and the escrowed key are read by the borg package (repo_files): one parser each.
BorgKeyExport = KeyExport
BorgRepoConfig = RepoConfig
parse_borg_key_export = parse_key_export


def decide_borg_decrypts(item: EscrowItem, exported: BorgKeyExport, config: BorgRepoConfig, rc: int,
                         stderr: str) -> Verdict:
    """Did borg open the repository with only the escrowed key and passphrase? Decided from rc and msgids."""
    repo = item.repo
    if rc == 0:
        return Verdict.passed()
    if exported.repo_id != config.repo_id:
        return Verdict.failed(
            f"The escrowed key {item.key_file} belongs to another repository (id {exported.repo_id[:12]}…), "
            f"not to {repo} (id {config.repo_id[:12]}…).")
    ids = error_ids(rc, stderr)
    if "PassphraseWrong" in ids:
        return Verdict.failed(
            f"The escrowed passphrase does not unlock the escrowed key {item.key_file} for {repo}.")
    if "KeyfileMismatchError" in ids or "KeyfileInvalidError" in ids:
        return Verdict.failed(f"The escrowed key {item.key_file} is not a key of {repo}.")
    detail = last_error_message(stderr)
    tail = f" ({detail})" if detail else ""
    return Verdict.failed(
        f"borg could not open {repo} with only the escrowed key {item.key_file} and the escrowed passphrase "
        f"(rc={rc}){tail}: the key does not decrypt this repository.")


def decide_borg_current(item: EscrowItem, exported: BorgKeyExport, config: BorgRepoConfig, decrypts: bool,
                        host_key: Optional[BorgKeyExport], host_key_path: Optional[str]) -> Verdict:
    """Is the escrowed key the repository's key *now*?

    repokey: the key blob in the repository's config is byte-for-byte the escrowed blob (``borg key
    change-passphrase`` re-encrypts the key with a fresh salt, so a stale export no longer matches).
    keyfile: the repository does not hold the key; when this host has its own key file for the repository, it must
    match the escrow; otherwise the proof is that the escrowed key opens the repository.
    """
    if exported.repo_id != config.repo_id:
        return Verdict.failed(f"The escrowed key {item.key_file} is not the current key of {item.repo}: "
                              "it was exported from another repository.")
    if config.mode == "repokey":
        if exported.blob == config.blob:
            return Verdict.passed()
        return Verdict.failed(
            f"The escrowed key {item.key_file} is stale: the key stored in {item.repo} changed after the export "
            "(for example `borg key change-passphrase`). Export the key again and escrow it with the new passphrase.")
    if host_key is not None and host_key.blob != exported.blob:
        return Verdict.failed(
            f"The escrowed key {item.key_file} is stale: this host's key file {host_key_path} for {item.repo} "
            "changed after the export (for example `borg key change-passphrase`). Export the key again and escrow "
            "it with the new passphrase.")
    if not decrypts:
        return Verdict.failed(f"The escrowed key {item.key_file} cannot be current: it does not open {item.repo}.")
    return Verdict.passed()


class BorgProbe:
    """Opens a local borg repository with only the escrowed key and passphrase (see the module docstring)."""

    def __init__(self, module: Any, binary: str = "borg") -> None:
        self.module = module
        self.binary = binary

    def run(self, item: EscrowItem) -> tuple[Verdict, Verdict]:
        repo = item.local_repo or ""
        try:
            with open(os.path.join(repo, "config"), encoding="utf-8") as handle:
                config_text = handle.read()
            config = parse_repo_config(config_text)
        except (OSError, ToolError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else exc.msg
            problem = f"{repo} cannot be read as a borg repository ({reason})."
            return Verdict.failed(problem), Verdict.failed(problem)
        try:
            with open(item.key_file, encoding="utf-8") as handle:
                exported = parse_key_export(handle.read())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            problem = f"The escrowed key {item.key_file} is not a borg key export: {exc}."
            return Verdict.failed(problem), Verdict.failed(problem)
        rc, stderr = self._open_shadow(item, repo, config_text, config, exported)
        decrypts = decide_borg_decrypts(item, exported, config, rc, stderr)
        host_key = host_key_path = None
        if config.mode == "keyfile":
            host_key_path = find_host_key(config.repo_id)
            if host_key_path and os.path.realpath(host_key_path) != os.path.realpath(item.key_file):
                try:
                    with open(host_key_path, encoding="utf-8") as handle:
                        host_key = parse_key_export(handle.read())
                except (OSError, UnicodeDecodeError, ValueError):
                    host_key = None
        current = decide_borg_current(item, exported, config, decrypts.ok, host_key, host_key_path)
        return decrypts, current

    def _open_shadow(self, item: EscrowItem, repo: str, config_text: str, config: BorgRepoConfig,
                     exported: BorgKeyExport) -> tuple[int, str]:
        shadow = tempfile.mkdtemp(prefix="restoreops-escrow-")  # mkdtemp makes it 0700
        try:
            shadow_repo = os.path.join(shadow, "repo")
            os.mkdir(shadow_repo, 0o700)
            for name in sorted(os.listdir(repo)):
                if name == "config" or name.startswith("lock."):
                    continue
                os.symlink(os.path.join(os.path.realpath(repo), name), os.path.join(shadow_repo, name))
            blob = exported.blob if config.mode == "repokey" else None
            _write_private(os.path.join(shadow_repo, "config"), config_with_key(config_text, blob))
            # Only the escrowed key and passphrase: a fresh base directory, the passphrase file by descriptor.
            secret = SecretSource(value=item.passphrase, file=item.passphrase_file, command=item.passcommand)
            borg = BorgCLI(self.module, secret, binary=self.binary, repo=repo, purpose="escrow",
                           base_dir=os.path.join(shadow, "base"),
                           key_file=item.key_file if config.mode == "keyfile" else None)
            result = borg.run(["list", "--json", "--last", "1", shadow_repo], cwd=shadow)
            return result.rc, result.stderr
        finally:
            shutil.rmtree(shadow, ignore_errors=True)


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


# --------------------------------------------------------------------------------------------------------------
# restic


def decide_restic(item: EscrowItem, result: Result) -> tuple[Verdict, Verdict]:
    """``restic cat config`` with only the escrowed password: rc 0 and a config with an id, or not."""
    if result.rc == 0:
        try:
            config = json.loads(result.stdout)
        except ValueError:
            config = None
        if isinstance(config, dict) and config.get("id"):
            return Verdict.passed(), Verdict.passed()
        problem = f"restic opened {item.repo} but printed no repository config; the repository looks damaged."
        return Verdict.failed(problem), Verdict.failed(problem)
    if (item.local_repo and not os.path.exists(os.path.join(item.local_repo, "config"))) \
            or classify_failure(result.rc, result.stderr) == "no_repository":
        problem = f"{item.repo}: {EXPLANATIONS['no_repository']}."
        return Verdict.failed(problem), Verdict.failed(problem)
    last = next((line.strip() for line in reversed(result.stderr.splitlines()) if line.strip()), "")
    decrypts = Verdict.failed(
        f"The escrowed password file {item.key_file} opens no key of {item.repo} (rc={result.rc}: {last}): "
        "a wrong password, a password of another repository, or a key removed since the export.")
    current = Verdict.failed(
        f"The escrowed password is not a current key of {item.repo}; after a key rotation (`restic key add` and "
        "`restic key remove`) escrow the new password.")
    return decrypts, current


class ResticProbe:
    def __init__(self, module: Any, binary: str = "restic") -> None:
        self.module = module
        self.binary = binary

    def run(self, item: EscrowItem) -> tuple[Verdict, Verdict]:
        # Only the escrowed password file; the repository through the environment, no lock, no cache.
        restic = Restic(tool_runner(self.module, item.repo or "", SecretSource(file=item.key_file), None, None,
                                    self.binary))
        return decide_restic(item, restic.run(["--no-lock", "--no-cache", "--quiet", "cat", "config"], check=False))


# --------------------------------------------------------------------------------------------------------------
# luks and file


def decide_luks(item: EscrowItem, result: Result) -> tuple[Verdict, Verdict]:
    """cryptsetup's documented exit codes: 0 the key opens a keyslot, 2 no keyslot accepts it, others: errors."""
    if result.rc == 0:
        return Verdict.passed(), Verdict.passed()
    if result.rc == 2:
        return (Verdict.failed(f"The escrowed key {item.key_file} opens no keyslot of {item.device}."),
                Verdict.failed(f"The escrowed key is not a current key of {item.device} (a keyslot was changed or "
                               "removed after the export?); escrow the key that opens the device now."))
    last = next((line.strip() for line in reversed(result.stderr.splitlines()) if line.strip()), "")
    problem = f"cryptsetup could not test the escrowed key against {item.device} (rc={result.rc}): {last}"
    return Verdict.failed(problem), Verdict.failed(problem)


class LuksProbe:
    def __init__(self, module: Any, binary: str = "cryptsetup") -> None:
        self.module = module
        self.binary = binary

    def run(self, item: EscrowItem) -> tuple[Verdict, Verdict]:
        runner = ToolRunner(self.module, self.binary)
        result = runner.run(["open", "--test-passphrase", "--key-file", item.key_file, item.device or ""],
                            check=False)
        return decide_luks(item, result)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def decide_file(item: EscrowItem, actual: str) -> tuple[Verdict, Verdict]:
    if actual == item.sha256:
        return Verdict.passed(), Verdict.passed()
    return (Verdict.failed(f"The escrowed key {item.key_file} has SHA-256 {actual}, not the expected {item.sha256}: "
                           "it is not the exported key."),
            Verdict.failed(f"The escrowed key {item.key_file} is not the current export; escrow the key again "
                           "after every rotation in the KMS or Vault and update sha256."))


# --------------------------------------------------------------------------------------------------------------
# The whole check


def check_item(item: EscrowItem, max_mode: int, probes: dict[str, Any], host_id: Optional[str] = None
               ) -> ItemResult:
    result = ItemResult(item.name)
    exists = check_exists(item)
    result.record("exists", exists)
    if not exists.ok:
        skipped = Verdict.failed(f"The other checks of {item.name} were not run because the escrow is incomplete.")
        for check in CHECKS[1:]:
            result.record(check, skipped)
        return result
    result.record("mode", check_mode(item, max_mode))
    result.record("apart", check_apart(item, host_id))
    if item.kind == "file":
        decrypts, current = decide_file(item, file_sha256(item.key_file))
    else:
        decrypts, current = probes[item.kind].run(item)
    result.record("decrypts", decrypts)
    result.record("current", current)
    return result


def foreign_secret_vars(environ: Optional[dict[str, str]] = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [name for name in FOREIGN_SECRET_VARS if name in env]


def main(module: Any) -> dict[str, Any]:
    params = module.params
    max_mode = parse_max_mode(params["max_mode"])
    items = parse_items(params["items"])
    foreign = foreign_secret_vars()
    if foreign:
        raise InputError(
            f"{', '.join(foreign)} is set in the module's environment and would be used instead of the escrowed "
            "secret; unset it for this task.")
    probes = {"borg": BorgProbe(module), "restic": ResticProbe(module), "luks": LuksProbe(module)}
    host_id = host_identity()
    results = [check_item(item, max_mode, probes, host_id) for item in items]
    summary = summarize(results)
    summary["changed"] = False
    summary["host_id"] = host_id
    if not summary["ok"] and params["fail_on_problem"]:
        raise EscrowCheckFailed(failure_message(results), ok=False, results=summary["results"], changed=False,
                                host_id=host_id)
    return summary
