# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``restoreops.dr.borg_repo`` module: a borg 1.x repository created and guarded in small steps.

Each ``ensure_*`` step takes ``check_mode``, does (or in check mode only reports) one thing, and records what it
changed in a :class:`Changes`; :func:`main` runs them in order. An idempotent run starts borg twice
(``borg --version`` and one ``borg list --json``); everything else about a local repository (its config, its locks,
its repokey) is read from the repository's files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.restoreops.dr.plugins.module_utils._borg.cli import (
    BorgCLI,
    is_missing_repository,
    is_wrong_passphrase,
    security_warnings,
)
from ansible_collections.restoreops.dr.plugins.module_utils._borg.locks import (
    LockDecision,
    annotate_alive,
    decide_lock,
    host_id_is_stable,
    local_host_id,
    lock_report,
)
from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo_files import (
    LockHolder,
    RepoConfig,
    file_state,
    key_export_text,
    local_repo_state,
    paper_key_text,
    parse_mode,
    parse_repo_config,
    parse_size,
    read_local_config,
    read_lock_holders,
    write_private_file,
)
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, LockedError, ToolError
from ansible_collections.restoreops.dr.plugins.module_utils._paths import path_inside
from ansible_collections.restoreops.dr.plugins.module_utils._runner import Result, pid_alive, version_string
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource
from ansible_collections.restoreops.dr.plugins.module_utils._time import with_offset

ENCRYPTION_MODES = ("repokey-blake2", "repokey", "keyfile-blake2", "keyfile", "authenticated-blake2",
                    "authenticated", "none")
DEFAULT_ENCRYPTION = "repokey-blake2"
CHECK_FLAGS = {"repository": ["--repository-only"], "archives": ["--archives-only"],
               "verify_data": ["--verify-data"]}


# --- repository location ----------------------------------------------------------------------------------------

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


# --- listings ---------------------------------------------------------------------------------------------------

def summarize_listing(data: dict[str, Any]) -> dict[str, Any]:
    """``borg list --json`` → repository id/location/encryption and the archive summary.

    The newest archive's times leave this host, so they carry their offset (borg prints local times without one).
    """
    repo = data.get("repository") or {}
    archives = data.get("archives") or []
    last = None
    if archives:
        # borg lists archives oldest first; start times have one-second resolution, so on a tie the later
        # position in borg's list wins.
        newest = archives[max(range(len(archives)),
                              key=lambda i: (archives[i].get("start") or archives[i].get("time") or "", i))]
        last = {"name": newest.get("name"), "start": with_offset(newest.get("start") or newest.get("time")),
                "end": with_offset(newest.get("end"))}
    return {
        "id": repo.get("id"),
        "location": repo.get("location"),
        "encryption": (data.get("encryption") or {}).get("mode"),
        "archives": {"count": len(archives), "last": last},
    }


def summarize_info(data: dict[str, Any]) -> dict[str, Any]:
    """``borg info --json --last 1`` → the newest archive (name, times, sizes) and the repository's totals.

    Sizes are bytes as borg counts them: ``original`` (the files), ``compressed`` and ``deduplicated`` (what this
    archive alone adds to the repository); the totals are over every archive (``unique_csize`` is what the
    repository holds after deduplication and compression).
    """
    archives = data.get("archives") or []
    newest = archives[-1] if archives else None
    last = None
    if newest is not None:
        stats = newest.get("stats") or {}
        last = {"name": newest.get("name"), "start": with_offset(newest.get("start")),
                "end": with_offset(newest.get("end")), "duration": newest.get("duration"),
                "stats": {"original_size": stats.get("original_size"),
                          "compressed_size": stats.get("compressed_size"),
                          "deduplicated_size": stats.get("deduplicated_size"), "nfiles": stats.get("nfiles")}}
    cache = (data.get("cache") or {}).get("stats") or {}
    totals = {"original_size": cache.get("total_size"), "compressed_size": cache.get("total_csize"),
              "deduplicated_size": cache.get("unique_csize")} if cache else None
    return {"last": last, "totals": totals}


# --- the repository as borg_repo sees it -----------------------------------------------------------------------

class Borg:
    """One repository through borg 1.x (:class:`BorgCLI`), with the commands borg_repo needs."""

    def __init__(self, module: Any, params: dict[str, Any], secret: SecretSource) -> None:
        self.repo: str = params["repo"]
        self.cli = BorgCLI(module, secret, binary=params.get("borg_binary"), repo=self.repo, purpose="manage",
                           unencrypted_ok=params.get("encryption") == "none", base_dir=params.get("base_dir"),
                           rsh=params.get("rsh"), lock_wait=params.get("lock_wait"),
                           remote_path=params.get("remote_path"))
        self.runner = self.cli.runner

    def run(self, args: list[str], *, check: bool = False, error: str | None = None,
            env: dict[str, str] | None = None) -> Result:
        return self.cli.run(args, check=check, error=error, env=env)

    def fail(self, result: Result, what: str) -> ToolError:
        return self.cli.fail(result, what)

    def version(self) -> tuple[int, int, int]:
        return self.cli.version()

    def listing(self, bypass_lock: bool = False) -> dict[str, Any] | None:
        """``borg list --json`` (one borg start): None when the repository does not exist.

        ``bypass_lock`` reads without taking the lock: in check mode, where a lock that would be broken must stay
        exactly as found (borg removes its own host's stale locks whenever it takes a lock).
        """
        args = ["list", "--json", "--format", "{name}{start}{end}"] + (["--bypass-lock"] if bypass_lock else [])
        result = self.run([*args, self.repo])
        if result.rc != 0:
            if is_missing_repository(result.rc, result.stderr):
                return None
            raise self.fail(result, f"Could not read the repository {self.repo}")
        try:
            return json.loads(result.stdout)
        except ValueError as exc:
            raise ToolError(f"Could not decode borg list --json: {exc}", stdout=result.stdout[-2000:]) from exc

    def init(self, encryption: str, append_only: bool, storage_quota: str | None) -> None:
        args = ["init", "--encryption", encryption, "--make-parent-dirs"]
        if append_only:
            args.append("--append-only")
        if storage_quota and parse_size(storage_quota):
            args += ["--storage-quota", storage_quota]
        self.cli.run([*args, self.repo], check=True, warnings_ok=True, error=f"borg init of {self.repo} failed")

    def config(self) -> RepoConfig:
        if not is_remote(self.repo):
            return read_local_config(self.repo)
        result = self.run(["config", "--list", self.repo], check=True,
                          error=f"Could not read the config of {self.repo}")
        return parse_repo_config(result.stdout)

    def set_config(self, name: str, value: str) -> None:
        self.run(["config", self.repo, name, value], check=True, error=f"Could not set {name} on {self.repo}")

    def key_export(self, paper: bool) -> str:
        args = ["key", "export"] + (["--paper"] if paper else []) + [self.repo, "-"]
        return self.run(args, check=True, error=f"Could not export the key of {self.repo}").stdout

    def break_lock(self) -> None:
        self.run(["break-lock", self.repo], check=True, error=f"borg break-lock on {self.repo} failed")

    def check(self, mode: str) -> Result:
        return self.run(["check", *CHECK_FLAGS[mode], self.repo])

    def newest_archive_info(self, bypass_lock: bool = False) -> dict[str, Any]:
        """``borg info --json --last 1`` (one borg start): the newest archive with its sizes, and the repository's
        totals from borg's cache. Reads through the client cache below ``base_dir`` (synced when it is behind)."""
        args = ["info", "--json", "--last", "1"] + (["--bypass-lock"] if bypass_lock else [])
        result = self.run([*args, self.repo], check=True, error=f"Could not read the archive sizes of {self.repo}")
        try:
            return json.loads(result.stdout)
        except ValueError as exc:
            raise ToolError(f"Could not decode borg info --json: {exc}", stdout=result.stdout[-2000:]) from exc


# --- inputs -----------------------------------------------------------------------------------------------------

def validate(params: dict[str, Any]) -> tuple[dict[str, Any], SecretSource]:
    """Check the options before anything runs; returns normalised params and the passphrase source."""
    p = dict(params)
    p["repo"] = validate_repo(p["repo"])
    secret = SecretSource.from_params(p, "passphrase", "passphrase_file", "passcommand").validate()
    new = SecretSource(value=p.get("new_passphrase"), file=p.get("new_passphrase_file"), label="new_passphrase")
    new.validate()
    if new.given and not secret.given:
        raise InputError("new_passphrase needs the current passphrase (passphrase, passphrase_file or passcommand).")
    if new.value is not None and not new.value:
        raise InputError("new_passphrase is empty.")
    if new.given and p.get("encryption") == "none":
        raise InputError("new_passphrase is not possible with encryption=none: such a repository has no key.")
    p["_new_secret"] = new if new.given else None
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


# --- the steps --------------------------------------------------------------------------------------------------

@dataclass
class Changes:
    """What the steps changed (or in check mode would change): the actions, and the diff's two sides."""

    changed: bool = False
    actions: list[str] = field(default_factory=list)
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)

    def record(self, action: str, key: str | None = None, before: Any = None, after: Any = None) -> None:
        self.changed = True
        self.actions.append(action)
        if key is not None:
            self.before[key] = before
            self.after[key] = after

    def diff(self, header: str) -> dict[str, str]:
        return {"before": json.dumps(self.before, indent=2, sort_keys=True) + "\n",
                "after": json.dumps(self.after, indent=2, sort_keys=True) + "\n",
                "before_header": header, "after_header": header}


@dataclass
class State:
    """What the earlier steps found, for the later ones."""

    params: dict[str, Any]
    secret: SecretSource
    borg: Borg
    changes: Changes
    check_mode: bool
    listing: dict[str, Any] | None = None
    created: bool = False
    pending_break: bool = False
    # Check mode with a lock in place: borg reads with --bypass-lock and no check runs (see ensure_lock).
    read_around_lock: bool = False
    summary: dict[str, Any] = field(default_factory=dict)
    config: RepoConfig = field(default_factory=RepoConfig)
    config_known: bool = True
    rotation: dict[str, Any] | None = None

    @property
    def repo(self) -> str:
        return self.params["repo"]


def ensure_lock(state: State, my_host: str) -> dict[str, Any]:
    """Read the holders from the lock files (local repositories), decide, break only when provably safe.

    Returns the ``lock`` report. In check mode a lock that would be broken stays as found.
    """
    params, borg, repo = state.params, state.borg, state.repo
    holders: list[LockHolder] = []
    decision: LockDecision | None = None
    broken = False
    if not is_remote(repo) and local_repo_state(repo) == "repo":
        holders = annotate_alive(read_lock_holders(repo), my_host, pid_alive)
        decision = decide_lock(holders, my_host=my_host, mode=params["stale_lock"],
                               dead_hosts=params.get("dead_hosts") or [],
                               break_foreign_lock_after=params.get("break_foreign_lock_after"))
        if decision.action == "fail":
            raise LockedError(decision.reason, lock=lock_report(holders, decision, False))
        if decision.action == "break":
            holder = decision.holder
            state.changes.record(f"break lock ({decision.reason})", "lock",
                                 {"holder_host": holder.host if holder else None,
                                  "holder_pid": holder.pid if holder else None}, None)
            if state.check_mode:
                state.pending_break = True
            else:
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
                state.changes.actions.append("borg check --repository-only after breaking the lock: ok")
    # In check mode a lock must stay exactly as found: borg removes its own host's stale locks whenever it takes a
    # lock, and waits for (then fails on) another host's. So every read then bypasses the lock, and no check runs.
    state.read_around_lock = state.pending_break or (state.check_mode and bool(holders))
    return lock_report(holders, decision, broken)


def ensure_exists(state: State) -> None:
    """One ``borg list --json`` says whether the repository exists (and gives id, encryption and archives);
    a missing one is created with ``borg init``, never an existing one re-initialised."""
    params, borg, repo = state.params, state.borg, state.repo
    if is_remote(repo):
        state.listing = borg.listing()
    else:
        local = local_repo_state(repo)
        if local == "other":
            raise InputError(f"{repo} exists but is not a borg repository (no config file); refusing to touch it.")
        state.listing = borg.listing(bypass_lock=state.read_around_lock) if local == "repo" else None
    if state.listing is None:
        encryption = params.get("encryption") or DEFAULT_ENCRYPTION
        if encryption != "none" and not state.secret.given:
            raise InputError(f"Creating {repo} with encryption={encryption} needs a passphrase: set passphrase, "
                             "passphrase_file or passcommand.")
        state.created = True
        state.changes.record(f"borg init --encryption {encryption}", "exists", False, True)
        if not state.check_mode:
            borg.init(encryption, bool(params.get("append_only")), params.get("storage_quota"))
            state.listing = borg.listing()
            if state.listing is None:
                raise ToolError(f"borg init reported success but {repo} cannot be listed.")
    if state.listing is not None:
        state.summary = summarize_listing(state.listing)
    else:  # check mode, repository still to be created
        state.summary = {"id": None, "location": repo, "encryption": params.get("encryption") or DEFAULT_ENCRYPTION,
                         "archives": {"count": 0, "last": None}}
    wanted = params.get("encryption")
    if not state.created and wanted and state.summary["encryption"] != wanted:
        raise InputError(f"{repo} already exists with encryption {state.summary['encryption']}, not {wanted}; an "
                         "existing repository is never re-initialised. Change the encryption option (or omit it) to "
                         "use this repository.")


def ensure_config(state: State) -> None:
    """``append_only`` and ``storage_quota`` (the repository config: a file read for local repositories).

    ``borg config`` works only on local repositories: a remote one gets both at creation (``borg init``, whose flags
    are then what the config says) and is held append-only by the server's forced ``borg serve --append-only``, so a
    remote config is never read, and an existing one never changed (``config_known`` false: the result reports null
    for both)."""
    params = state.params
    wanted_append = params.get("append_only")
    if is_remote(state.repo) and not state.created:
        state.config = RepoConfig()
        state.config_known = False
        return
    if state.listing is not None and not is_remote(state.repo):
        state.config = state.borg.config()
    else:
        state.config = RepoConfig(append_only=bool(wanted_append),
                                  storage_quota=parse_size(params.get("storage_quota")))
    config = state.config
    if wanted_append is not None and config.append_only != wanted_append:
        state.changes.record(f"set append_only={int(wanted_append)}", "append_only", config.append_only,
                             wanted_append)
        if not state.check_mode:
            state.borg.set_config("append_only", "1" if wanted_append else "0")
        config.append_only = wanted_append
    quota = params.get("storage_quota")
    if quota is not None and parse_size(quota) != config.storage_quota:
        state.changes.record(f"set storage_quota={quota}", "storage_quota", config.storage_quota, parse_size(quota))
        if not state.check_mode:
            state.borg.set_config("storage_quota", quota if parse_size(quota) else "0")
        config.storage_quota = parse_size(quota)


def expected_key_export(state: State, paper: bool) -> str | None:
    """What the export must hold: from the config's repokey for a local repository (no borg start), else borg's own
    export; None in check mode before the repository exists."""
    if state.listing is None:
        return None
    if not is_remote(state.repo) and state.config.key and state.summary["id"]:
        return (paper_key_text if paper else key_export_text)(state.summary["id"], state.config.key)
    return state.borg.key_export(paper)


def opens(borg: Borg) -> bool:
    """Whether this passphrase opens the repository (``borg list --json --bypass-lock --last 1``); a wrong
    passphrase is False, any other failure raises."""
    result = borg.run(["list", "--json", "--bypass-lock", "--last", "1", "--format", "{name}", borg.repo])
    if result.rc == 0:
        return True
    if is_wrong_passphrase(result.rc, result.stderr):
        return False
    raise borg.fail(result, f"Could not open {borg.repo} to change its passphrase")


def plan_passphrase(state: State, make_borg: Any) -> None:
    """Before anything else reads the repository: when the new passphrase already opens it, the change is done
    (an earlier run) and the rest of the run uses the new one; otherwise the change is pending."""
    new = state.params.get("_new_secret")
    if new is None:
        return
    new_borg = make_borg(new)
    if opens(new_borg):
        state.borg, state.secret = new_borg, new
        state.rotation = {"changed": False, "pending": False, "new_opens": True, "old_refused": None}
    else:
        state.rotation = {"changed": False, "pending": True, "new_opens": False, "old_refused": False}


def ensure_passphrase(state: State, make_borg: Any) -> dict[str, Any] | None:
    """``borg key change-passphrase`` (the new passphrase in E(BORG_NEW_PASSPHRASE), never argv), then proof: the
    new passphrase opens the repository and the old one no longer does."""
    rotation = state.rotation
    if rotation is None or not rotation.pop("pending"):
        return rotation
    new = state.params["_new_secret"]
    rotation["changed"] = True
    state.changes.record("borg key change-passphrase", "passphrase", "the current passphrase", "the new passphrase")
    if state.check_mode:
        return rotation
    value = new.read()
    state.borg.runner.secrets.append(value)
    state.borg.run(["key", "change-passphrase", state.repo], check=True, env={"BORG_NEW_PASSPHRASE": value},
                   error=f"borg key change-passphrase of {state.repo} failed; the passphrase is unchanged")
    old_borg, new_borg = state.borg, make_borg(new)
    if not opens(new_borg):
        raise ToolError(f"borg key change-passphrase succeeded, but the new passphrase does not open {state.repo}.")
    if opens(old_borg):
        raise ToolError(f"After borg key change-passphrase the old passphrase still opens {state.repo}.")
    rotation.update(new_opens=True, old_refused=True)
    state.borg, state.secret = new_borg, new
    if not is_remote(state.repo):
        state.config = state.borg.config()  # the repokey in the config is re-encrypted: export the new one
    return rotation


def ensure_key_export(state: State) -> dict[str, Any]:
    """The key at ``key_export.dest``: after creation, and whenever dest is missing or holds another key."""
    ke = state.params.get("key_export")
    if not ke:
        return {"dest": None, "exported": False}
    dest, paper, mode = ke["dest"], bool(ke.get("paper")), ke["mode"]
    # In check mode the directory may be one that an earlier task would have created.
    if not state.check_mode and not os.path.isdir(os.path.dirname(dest)):
        raise InputError(f"The directory of key_export.dest ({os.path.dirname(dest)}) does not exist.")
    if state.summary["encryption"] == "none":
        raise InputError(f"key_export is not possible: {state.repo} is not encrypted (encryption none), it has no key.")
    content, current_mode = file_state(dest)
    expected = expected_key_export(state, paper)
    exported = False
    if content is None or expected is None or content != expected:
        exported = True
        state.changes.record(f"export the key to {dest}", "key_export",
                             {"dest": dest, "state": "absent" if content is None else "different key"},
                             {"dest": dest, "state": "current", "mode": f"{mode:04o}"})
        if not state.check_mode:
            write_private_file(dest, expected if expected is not None else state.borg.key_export(paper), mode)
    elif current_mode != mode:
        state.changes.record(f"chmod {mode:04o} {dest}", "key_export", {"dest": dest, "mode": f"{current_mode:04o}"},
                             {"dest": dest, "mode": f"{mode:04o}"})
        if not state.check_mode:
            os.chmod(dest, mode)
    return {"dest": dest, "exported": exported}


def archive_stats(state: State) -> dict[str, Any] | None:
    """With ``archive_stats``: the newest archive's sizes and the repository's totals (``borg info``), or None."""
    if not state.params.get("archive_stats") or state.listing is None or not state.summary["archives"]["count"]:
        return None
    return summarize_info(state.borg.newest_archive_info(bypass_lock=state.read_around_lock))


def run_check(state: State) -> dict[str, Any]:
    """``borg check`` (also in check mode, unless the repository is still to be created or a lock is in place: borg
    would take the lock, and so remove its own host's stale one)."""
    mode = state.params.get("check") or "none"
    report: dict[str, Any] = {"mode": mode, "ok": None, "skipped_reason": None}
    if mode != "none" and state.listing is not None and state.read_around_lock:
        report["skipped_reason"] = ("the repository is locked (see lock), and borg check would take the lock, which "
                                    "check mode leaves as found")
    elif mode != "none" and state.listing is None:
        report["skipped_reason"] = "the repository does not exist yet"
    if mode != "none" and state.listing is not None and not state.read_around_lock:
        res = state.borg.check(mode)
        report["ok"] = res.rc == 0
        if res.rc != 0:
            error = state.borg.fail(res, f"borg check ({mode}) of {state.repo} failed")
            error.details["check"] = report
            raise error
    return report


def main(module: Any) -> dict[str, Any]:
    """Body of restoreops.dr.borg_repo (called through run_module)."""
    params, secret = validate(module.params)
    borg = Borg(module, params, secret)
    version = borg.version()
    state = State(params=params, secret=secret, borg=borg, changes=Changes(), check_mode=bool(module.check_mode))
    result: dict[str, Any] = {"borg_version": version_string(version)}
    for warning in security_warnings(version):
        if hasattr(module, "warn"):
            module.warn(warning)

    my_host = local_host_id()
    result["host_id"] = my_host
    result["host_id_stable"] = host_id_is_stable(my_host)
    if not result["host_id_stable"] and hasattr(module, "warn"):
        module.warn(f"This host has no stable borg host id ({my_host} is random per process, as there is no MAC "
                    "address): borg cannot recognise its own stale locks and this module treats them as another "
                    "host's. Set BORG_HOST_ID (for example <hostname>@<a fixed number>) for borg and this module.")

    def make_borg(new_secret: SecretSource) -> Borg:
        return Borg(module, params, new_secret)

    result["lock"] = ensure_lock(state, my_host)
    plan_passphrase(state, make_borg)
    ensure_exists(state)
    ensure_config(state)
    result["passphrase_change"] = ensure_passphrase(state, make_borg)
    summary, config = state.summary, state.config
    result["repo"] = {"id": summary["id"], "location": summary["location"], "encryption": summary["encryption"],
                      "append_only": config.append_only if state.config_known else None,
                      "storage_quota": (config.storage_quota or None) if state.config_known else None}
    result["archives"] = dict(summary["archives"])
    stats = archive_stats(state)
    if stats is not None:
        result["archives"]["last"] = stats["last"] or result["archives"]["last"]
        result["archives"]["totals"] = stats["totals"]
    result["key_export"] = ensure_key_export(state)
    try:
        result["check"] = run_check(state)
    except ToolError as error:
        # A failed check still says what was found (the archives, the lock), so a caller that reports rather than
        # stops (a diagnosis) has every observation.
        for key in ("borg_version", "host_id", "lock", "repo", "archives"):
            error.details.setdefault(key, result[key])
        raise
    result["changed"] = state.changes.changed
    result["actions"] = state.changes.actions
    if module._diff and state.changes.changed:
        result["diff"] = state.changes.diff(state.repo)
    return result
