# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One read-only probe of everything the backup policy audit observes on a host.

``playbooks/audit_policy.yml`` used to run a module task per kind of backup (borg_repo, restic_forget_prune, a
``restic snapshots`` command, key_escrow_check, pg_archiver_facts, two ``find`` and rsnapshot_config). Each Ansible
task costs a fixed share of controller CPU and a Python start on the host, whatever it does; this module runs the
same module_utils code in one process and returns each observation in the shape the registered task result had, so
:mod:`._audit` reads it unchanged:

``borg``              per repository, what ``restoreops.dr.borg_repo`` returns in check mode, with its ``item``.
``restic_forget``     per repository, the ``restoreops.dr.restic_forget_prune`` check-mode preview (``skipped`` when
                      the repository declares no retention), with its ``item``.
``restic_snapshots``  per repository, ``restic snapshots --json --no-lock --no-cache`` (``rc``, ``stdout``) for those
                      without retention (``skipped`` for the others: the preview lists their snapshots).
``escrow``            what ``restoreops.dr.key_escrow_check`` returns (``skipped`` without items).
``postgres``          what ``restoreops.dr.pg_archiver_facts`` returns (``skipped`` without connection options).
``watched``           ``{"files": [...]}``: each passphrase file and retention timer link that exists (``path``,
                      ``mode`` of the entry itself, as ``find`` reports it), with ``secret_paths`` and ``timer_dir``.
``secret_scan``       ``{"files": [{"path"}]}``: the files where a secret is assigned in clear (never the line).
``rsnapshot``         per configuration, what ``restoreops.dr.rsnapshot_config`` returns, with its ``item``.
``volumes``          per backup location, its file system (``df``) and its size (``du -s``), with its ``item``: what
                      ``playbooks/diagnose.yml`` reads about the backup volume and each repository on it.

A probe that fails is recorded as that probe's failure (``failed: true`` and ``msg``, as a failed task would be) and
never stops the others. Every probe only reads: the module_utils run with check mode forced on, whatever the play's
mode. Independent tool probes run in threads; the tools are separate processes, so the threads only wait.
"""

from __future__ import annotations

import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Sequence

from ansible_collections.restoreops.dr.plugins.module_utils import _disk, _escrow, _rsnapshot
from ansible_collections.restoreops.dr.plugins.module_utils._borg import repo as _borg_repo
from ansible_collections.restoreops.dr.plugins.module_utils._borg.cli import drop_inherited_passphrases
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, RestoreOpsError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._restic import retention as _retention
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import Restic, tool_runner
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo_files import local_repository_path
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource

# A literal value assigned to a secret variable; *_FILE, *_COMMAND, *_FD and $VAR references do not match.
CLEARTEXT_ASSIGNMENT = (r".*\b(BORG_PASSPHRASE|RESTIC_PASSWORD|PGPASSWORD|AWS_SECRET_ACCESS_KEY|RCLONE_CONFIG_PASS)="
                        r"[\"']?[^\s\"'$].*")
CLEARTEXT_RE = re.compile(CLEARTEXT_ASSIGNMENT)
SCAN_MAX_BYTES = 1024 ** 2  # files larger than 1 MiB are not scanned (the find tasks' size: -1m)
DEFAULT_SCAN_PATHS = ("/etc/systemd/system", "/etc/default", "/etc/restoreops", "/usr/local/bin", "/usr/local/sbin",
                      "/usr/local/libexec/restoreops")
RETENTION_KEYS = (*_retention.KEEP_COUNTS, "keep_within")
ESCROW_KEYS = tuple(_escrow.item_options())
POSTGRES_KEYS = ("login_host", "login_unix_socket", "port", "login_user", "login_password", "login_db",
                 "connect_timeout", "ssl_mode", "max_archive_age", "max_replay_lag", "max_replay_lag_bytes")


class ProbeModule:
    """What a module's ``main`` needs from AnsibleModule, for one probe: its own options, check mode always on.

    Tool runs and warnings go through the real module; ``_diff`` is off, so no probe builds a diff.
    """

    check_mode = True
    _diff = False

    def __init__(self, module: Any, params: dict[str, Any]) -> None:
        self.params = params
        self._module = module

    def run_command(self, *args: Any, **kwargs: Any) -> Any:
        return self._module.run_command(*args, **kwargs)

    def warn(self, msg: str) -> None:
        self._module.warn(msg)


# --- results -----------------------------------------------------------------------------------------------------

def failure(exc: BaseException) -> dict[str, Any]:
    """A probe's failure in the shape of a failed task result (as run_module would have failed it)."""
    if isinstance(exc, RestoreOpsError):
        result: dict[str, Any] = dict(exc.details)
        if isinstance(exc, ToolError):
            result.update(cmd=exc.cmd, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr)
        result.update(failed=True, msg=exc.msg)
    else:
        result = {"failed": True, "msg": f"{type(exc).__name__}: {exc}"}
    result["changed"] = False
    return result


def attempt(probe: Callable[[], dict[str, Any]], item: Any = None, with_item: bool = False) -> dict[str, Any]:
    """Run one probe; its failure becomes its result, so the other probes still run."""
    try:
        result = dict(probe())
    except Exception as exc:  # one probe's error (a bug included) must not hide the others
        result = failure(exc)
    if with_item:
        result["item"] = item
    return result


def skipped(item: Any, reason: str) -> dict[str, Any]:
    return {"changed": False, "skipped": True, "skip_reason": reason, "item": item}


# --- inputs of each probe ----------------------------------------------------------------------------------------

def borg_params(entry: Mapping[str, Any], borg_binary: str) -> dict[str, Any]:
    """``restoreops.dr.borg_repo`` options that read a repository: no lock is broken, nothing is set."""
    key_export = entry.get("key_export")
    return {
        "repo": entry["repo"], "encryption": None, "passphrase": None,
        "passphrase_file": entry.get("passphrase_file"), "passcommand": entry.get("passcommand"),
        "append_only": None, "storage_quota": None,
        "key_export": {"dest": key_export, "paper": False, "mode": "0600"} if key_export else None,
        "stale_lock": "ignore", "dead_hosts": [], "break_foreign_lock_after": None, "check": "none",
        "lock_wait": None, "rsh": entry.get("rsh"), "remote_path": entry.get("remote_path"),
        "borg_binary": borg_binary, "base_dir": entry.get("base_dir"),
    }


def has_retention(entry: Mapping[str, Any]) -> bool:
    """Whether a restic entry declares a retention (any keep_* given, even one that keeps nothing)."""
    retention = entry.get("retention") or {}
    return any(retention.get(key) is not None for key in RETENTION_KEYS)


def restic_params(entry: Mapping[str, Any], restic_binary: str) -> dict[str, Any]:
    """``restoreops.dr.restic_forget_prune`` options for a preview: dry run, stale locks left alone."""
    retention = entry.get("retention") or {}
    params: dict[str, Any] = {
        "repository": entry["repository"], "password": None, "password_file": entry.get("password_file"),
        "password_command": entry.get("password_command"), "env": dict(entry.get("env") or {}),
        "restic_binary": restic_binary, "cache_dir": None, "keep_tags": [], "group_by": "host,paths",
        "host": [], "tags": [], "paths": [], "prune": bool(entry.get("prune")), "unlock_stale": False,
        "check_after": "none",
    }
    params.update({key: retention.get(key) for key in RETENTION_KEYS})
    return params


def public_item(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry as echoed back with its result: without ``env`` (backend credentials)."""
    return {key: value for key, value in entry.items() if key != "env"}


def rsnapshot_params(path: str, max_age_hours: float, rsnapshot_binary: str) -> dict[str, Any]:
    return {"path": path, "fix": False, "configtest": True, "check_freshness": True, "interval": None,
            "max_age_hours": max_age_hours, "rsnapshot_bin": rsnapshot_binary, "fail_on_problem": False}


def timer_link(systemd_dir: str, timer: str) -> str:
    """Where ``systemctl enable`` puts a timer's link (the path _audit.normalize looks for)."""
    return f"{systemd_dir}/timers.target.wants/{timer}"


def watched_paths(secret_files: Sequence[str], restic: Sequence[Mapping[str, Any]], systemd_dir: str) -> list[str]:
    paths = list(secret_files) + [timer_link(systemd_dir, r["retention_timer"]) for r in restic
                                  if r.get("retention_timer")]
    return list(dict.fromkeys(paths))


# --- file probes (pure over the file system; no tool) ------------------------------------------------------------

def entry_info(path: str, st: os.stat_result) -> dict[str, Any]:
    """The fields of a ``find`` file entry that the audit reads (of the entry itself: links are not followed)."""
    return {"path": path, "mode": f"{stat.S_IMODE(st.st_mode):04o}", "isreg": stat.S_ISREG(st.st_mode),
            "islnk": stat.S_ISLNK(st.st_mode), "size": st.st_size, "uid": st.st_uid, "gid": st.st_gid}


def read_watched(paths: Iterable[str]) -> dict[str, Any]:
    """Each path that exists (``lstat``), as ``find`` listed the passphrase files and timer links."""
    files = []
    for path in paths:
        try:
            files.append(entry_info(path, os.lstat(path)))
        except OSError:
            continue
    return {"changed": False, "files": files, "matched": len(files)}


def line_holds_secret(line: str) -> bool:
    return CLEARTEXT_RE.match(line) is not None


def file_holds_secret(path: str) -> bool:
    """Whether a line of the file assigns a secret in clear. Undecodable bytes are replaced, never fatal."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return any(line_holds_secret(line) for line in handle)
    except OSError:
        return False


def scan_secrets(paths: Sequence[str], recurse: bool, max_bytes: int = SCAN_MAX_BYTES) -> dict[str, Any]:
    """The regular files (hidden ones too, links not followed, at most ``max_bytes``) that hold a secret in clear.

    Walks like ``ansible.builtin.find``: each path in order, top level only unless ``recurse``; a path that is not
    a directory is listed in ``skipped_paths``. Only paths are returned, never the line.
    """
    files: list[dict[str, Any]] = []
    skipped_paths: dict[str, str] = {}
    examined = 0
    for top in paths:
        if not os.path.isdir(top):
            skipped_paths[top] = f"'{top}' is not a directory"
            continue
        for root, dirs, names in os.walk(top, topdown=True):
            examined += len(names) + len(dirs)
            for name in names + dirs:
                full = os.path.normpath(os.path.join(root, name))
                try:
                    st = os.lstat(full)
                except OSError as exc:
                    skipped_paths[full] = str(exc)
                    continue
                if stat.S_ISREG(st.st_mode) and st.st_size <= max_bytes and file_holds_secret(full):
                    files.append({"path": full})
            if not recurse:
                break
    return {"changed": False, "files": files, "matched": len(files), "examined": examined,
            "skipped_paths": skipped_paths}


# --- tool probes (each the module_utils of its module) -----------------------------------------------------------

def probe_borg(module: Any, entry: Mapping[str, Any], borg_binary: str) -> dict[str, Any]:
    return _borg_repo.main(ProbeModule(module, borg_params(entry, borg_binary)))


def probe_restic_forget(module: Any, entry: Mapping[str, Any], restic_binary: str) -> dict[str, Any]:
    return _retention.main(ProbeModule(module, restic_params(entry, restic_binary)))


def probe_restic_snapshots(module: Any, entry: Mapping[str, Any], restic_binary: str) -> dict[str, Any]:
    """``restic snapshots --json --no-lock --no-cache``: repository and password through the environment."""
    password = SecretSource(file=entry.get("password_file"), command=entry.get("password_command"),
                            label="password").validate()
    if not password.given:
        raise InputError("Give the repository password as password_file or password_command.")
    restic = Restic(tool_runner(module, entry["repository"], password, entry.get("env"), None, restic_binary))
    result = restic.run(["snapshots", "--json", "--no-lock", "--no-cache"], check=False)
    if result.rc != 0:
        raise restic.failure(result, "restic snapshots failed")
    return {"changed": False, "cmd": result.cmd, "rc": result.rc, "stdout": result.stdout, "stderr": result.stderr}


def probe_escrow(module: Any, items: Sequence[Mapping[str, Any]], inherited: Sequence[str]) -> dict[str, Any]:
    if inherited:
        # key_escrow_check's own refusal, judged on the environment the module started with (see collect()).
        raise InputError(f"{', '.join(inherited)} is set in the module's environment and would be used instead of "
                         "the escrowed secret; unset it for this task.")
    params = {"items": [{key: item.get(key) for key in ESCROW_KEYS} for item in items], "max_mode": "0600",
              "fail_on_problem": False}
    return _escrow.main(ProbeModule(module, params))


def probe_postgres(options: Mapping[str, Any]) -> dict[str, Any]:
    """pg_archiver_facts' result. psycopg is imported here, only for a host that declares PostgreSQL."""
    from ansible_collections.restoreops.dr.plugins.module_utils import _postgres

    if _postgres.psycopg is None:
        raise RestoreOpsError("The psycopg (version 3) Python library is required on this host to read the "
                              "PostgreSQL archiver state.")
    params = {key: options.get(key) for key in POSTGRES_KEYS}
    return {"changed": False, "ansible_facts": {"pg_archiver": _postgres.archiver_facts(params)}}


def probe_rsnapshot(module: Any, path: str, max_age_hours: float, rsnapshot_binary: str) -> dict[str, Any]:
    return _rsnapshot.main(ProbeModule(module, rsnapshot_params(path, max_age_hours, rsnapshot_binary)))


def probe_volume(path: str, measure_tree: bool) -> dict[str, Any]:
    """``df`` of the file system holding ``path`` and, when asked, ``du -s`` of ``path``."""
    return {"changed": False, **_disk.volume_report(path, measure_tree)}


# --- the module --------------------------------------------------------------------------------------------------

# The path fields of each entry option; a repository is checked apart (it may also be a URL).
ENTRY_PATHS = {
    "borg_repositories": ("passphrase_file", "base_dir", "key_export"),
    "restic_repositories": ("password_file",),
    "key_escrow_items": ("key_file", "passphrase_file", "device"),
}


def _relative_repository(borg: bool, value: str) -> bool:
    """A repository given as a relative path (borg: neither absolute nor ssh://; restic: no backend scheme)."""
    if borg:
        return not value.startswith("ssh://") and not os.path.isabs(value)
    local = local_repository_path(value)
    return local is not None and not os.path.isabs(local)


def relative_paths(params: Mapping[str, Any]) -> list[str]:
    """Every relative path among the entries' paths and repositories, each as "option[].field (entry N: 'x')"."""
    found = []
    for option, fields in ENTRY_PATHS.items():
        for entry in params.get(option) or []:
            where = f"entry {entry.get('name')}"
            repo_key = "repository" if option == "restic_repositories" else "repo"
            repo = entry.get(repo_key)
            kind = {"borg_repositories": "borg", "restic_repositories": "restic"}.get(option, entry.get("kind"))
            if repo and kind in ("borg", "restic") and _relative_repository(kind == "borg", repo):
                found.append(f"{option}[].{repo_key} ({where}: {repo!r})")
            for field_name in fields:
                value = entry.get(field_name)
                if value and not os.path.isabs(value):
                    found.append(f"{option}[].{field_name} ({where}: {value!r})")
    socket_dir = (params.get("postgres") or {}).get("login_unix_socket")
    if socket_dir and not os.path.isabs(socket_dir):
        found.append(f"postgres.login_unix_socket ({socket_dir!r})")
    return found


def validate(params: Mapping[str, Any]) -> None:
    """What the argument spec cannot say: unique names, absolute paths, a positive age."""
    for option, entries in (("borg_repositories", params.get("borg_repositories")),
                            ("restic_repositories", params.get("restic_repositories")),
                            ("key_escrow_items", params.get("key_escrow_items"))):
        names = [entry["name"] for entry in entries or []]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise InputError(f"{option}: names must be unique; repeated: {', '.join(repeated)}.")
    for option in ("secret_files", "secret_scan_paths", "rsnapshot_configs", "volumes"):
        relative = [path for path in params.get(option) or [] if not os.path.isabs(path)]
        if relative:
            raise InputError(f"{option} must be absolute paths; got {', '.join(map(repr, relative))}.")
    relative = relative_paths(params)
    if relative:
        raise InputError(f"{'; '.join(relative)}: must be an absolute path (a relative one would be read from the "
                         "module's working directory, not from the place the policy means).")
    if not os.path.isabs(params.get("systemd_dir") or ""):
        raise InputError(f"systemd_dir must be an absolute path, got {params.get('systemd_dir')!r}.")
    for entry in params.get("restic_repositories") or []:
        timer = entry.get("retention_timer")
        if timer and "/" in timer:
            raise InputError(f"restic_repositories {entry['name']}: retention_timer is a unit name such as "
                             f"restic-forget.timer, not a path; got {timer!r}.")
    if float(params.get("rsnapshot_max_age_hours") or 0) <= 0:
        raise InputError("rsnapshot_max_age_hours must be greater than 0.")
    if int(params.get("workers") or 0) < 1:
        raise InputError("workers must be 1 or more.")


def collect(module: Any) -> dict[str, Any]:
    """Every observation of one host; only the module's own bad input fails the whole run."""
    params = module.params
    validate(params)
    borg_repos = params.get("borg_repositories") or []
    restic_repos = params.get("restic_repositories") or []
    escrow_items = params.get("key_escrow_items") or []
    postgres = params.get("postgres")
    configs = params.get("rsnapshot_configs") or []
    borg_bin, restic_bin = params.get("borg_binary") or "borg", params.get("restic_binary") or "restic"
    rsnapshot_bin = params.get("rsnapshot_binary") or "rsnapshot"
    max_age = float(params["rsnapshot_max_age_hours"])

    # borg_repo drops inherited borg passphrase variables from its (short-lived) process environment; do it once
    # here, before any thread starts a tool (run_command copies os.environ), after noting what key_escrow_check,
    # which refuses to run with them set, would have seen.
    inherited = _escrow.foreign_secret_vars() if escrow_items else []
    if borg_repos:
        drop_inherited_passphrases()

    jobs: list[Job] = []
    for index, entry in enumerate(borg_repos):
        jobs.append(Job("borg", index, partial(probe_borg, module, entry, borg_bin), public_item(entry)))
    for index, entry in enumerate(restic_repos):
        if has_retention(entry):
            jobs.append(Job("restic_forget", index, partial(probe_restic_forget, module, entry, restic_bin),
                            public_item(entry)))
        else:
            jobs.append(Job("restic_snapshots", index, partial(probe_restic_snapshots, module, entry, restic_bin),
                            public_item(entry)))
    if escrow_items:
        jobs.append(Job("escrow", 0, partial(probe_escrow, module, escrow_items, inherited), with_item=False))
    if postgres is not None:
        jobs.append(Job("postgres", 0, partial(probe_postgres, postgres), with_item=False))
    for index, path in enumerate(configs):
        jobs.append(Job("rsnapshot", index, partial(probe_rsnapshot, module, path, max_age, rsnapshot_bin), path))
    volumes = params.get("volumes") or []
    for index, path in enumerate(volumes):
        jobs.append(Job("volume", index, partial(probe_volume, path, bool(params.get("volume_sizes", True))), path))
    done = run_jobs(jobs, int(params.get("workers") or 1))

    systemd_dir = params["systemd_dir"]
    secret_files = list(params.get("secret_files") or [])
    result: dict[str, Any] = {
        "changed": False,
        "borg": [done[("borg", i)] for i in range(len(borg_repos))],
        "restic_forget": [done.get(("restic_forget", i)) or skipped(public_item(entry), "no retention declared")
                          for i, entry in enumerate(restic_repos)],
        "restic_snapshots": [done.get(("restic_snapshots", i)) or skipped(
            public_item(entry), "the retention preview lists the snapshots") for i, entry in enumerate(restic_repos)],
        "escrow": done.get(("escrow", 0)) or {"changed": False, "skipped": True,
                                              "skip_reason": "no key escrow items"},
        "postgres": done.get(("postgres", 0)) or {"changed": False, "skipped": True,
                                                  "skip_reason": "no PostgreSQL declared"},
        "watched": attempt(lambda: read_watched(watched_paths(secret_files, restic_repos, systemd_dir))),
        "secret_paths": secret_files,
        "timer_dir": systemd_dir,
        "secret_scan": attempt(lambda: scan_secrets(params.get("secret_scan_paths") or [],
                                                    bool(params.get("secret_scan_recurse")))),
        "rsnapshot": [done[("rsnapshot", i)] for i in range(len(configs))],
        "volumes": [done[("volume", i)] for i in range(len(volumes))],
    }
    return result


@dataclass(frozen=True)
class Job:
    """One tool probe: its observation key, its position in that list, and what to echo back as ``item``."""

    kind: str
    index: int
    probe: Callable[[], dict[str, Any]]
    item: Any = None
    with_item: bool = True

    def __call__(self) -> dict[str, Any]:
        return attempt(self.probe, self.item, self.with_item)


def run_jobs(jobs: Sequence[Job], workers: int) -> dict[tuple[str, int], dict[str, Any]]:
    """Run the probes, ``workers`` at a time (1: one after the other, in this thread); results by (kind, index)."""
    if workers <= 1 or len(jobs) <= 1:
        return {(job.kind, job.index): job() for job in jobs}
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {(job.kind, job.index): pool.submit(job) for job in jobs}
        return {key: future.result() for key, future in futures.items()}


def main(module: Any) -> dict[str, Any]:
    """Body of restoreops.dr.backup_policy_facts (called through run_module)."""
    return collect(module)
