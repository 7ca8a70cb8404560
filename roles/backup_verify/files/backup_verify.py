# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nightly proof that the backups restore: sample restore, checksums, age, light repository check.

Installed by the restoreops.dr.backup_verify role as /usr/local/libexec/restoreops/backup-verify and run by
restoreops-backup-verify.service (timer) or by playbooks/verify_backups.yml. Python 3 standard library, and the
collection's module_utils the role installs next to it.

For each configured borg or restic repository:
  1. find the latest archive/snapshot (borg list --json / restic snapshots --json);
  2. restore the critical files and the checksum manifest recorded at backup time into a fresh private temporary
     directory, which is always removed;
  3. check that each critical file exists and that its SHA-256 matches the manifest;
  4. compare the latest backup's age with the threshold;
  5. run a light repository check (borg check --repository-only, restic check --read-data-subset);
  6. classify: FAIL (anything broken) > STALE (only too old) > PASS.

Then it writes Prometheus textfile metrics, sends a Slack-compatible webhook alert on anything but PASS, prints a
JSON report and exits 0 (PASS), 1 (FAIL), 2 (STALE) or 3 (unusable configuration).

The configuration is a JSON file readable by its owner only (it holds the webhook URL); secrets reach borg and
restic through their environment, a file descriptor or a password file, never through argv.

The decisions (latest backup, age, result) and the tools' command line (environment, versions, exit codes) are the
collection's own module_utils (``_verify``, ``_borg.cli``, ``_restic.cli``), which the role installs next to this
runner in ``restoreops-lib``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

_LIB = os.path.join(os.path.dirname(os.path.realpath(__file__)), "restoreops-lib")
if os.path.isdir(_LIB):
    sys.path.insert(0, _LIB)

# pylint: disable=wrong-import-position
from ansible_collections.restoreops.dr.plugins.module_utils import _manifest as manifest_lib  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._borg.cli import BorgCLI, succeeded  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._errors import RestoreOpsError  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import Restic, tool_runner  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._runner import parse_json  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._secrets import SecretSource  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._time import isoformat_utc  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._verify import (  # noqa: E402
    EXIT,
    EXIT_CONFIG,
    FAIL,
    PASS,
    RESULTS,
    NothingToVerify,
    backup_age,
    latest_borg,
    latest_restic,
    overall,
    repository_result,
)

DEFAULT_CONFIG = "/etc/restoreops/backup-verify.json"
# where restoreops.dr.backup_context writes the manifest, and where versions before format 2 wrote it
DEFAULT_MANIFEST = "var/lib/restoreops/context/" + manifest_lib.NAME
LEGACY_MANIFEST = "var/lib/restoreops/context/" + manifest_lib.LEGACY_NAME


class ConfigError(Exception):
    pass


# --- configuration -------------------------------------------------------------------------------------------
def load_config(path: str) -> dict:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration {path}: {exc.strerror}") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"the configuration {path} has mode {stat.S_IMODE(st.st_mode):04o}; it holds the "
                          "webhook URL and must be 0600 (owner only)")
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot parse the configuration {path}: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("repositories"), list):
        raise ConfigError(f"{path}: 'repositories' must be a list")
    names = set()
    for repo in config["repositories"]:
        if not isinstance(repo, dict):
            raise ConfigError("each repository must be a mapping")
        for key in ("name", "type", "repository"):
            if not repo.get(key):
                raise ConfigError(f"a repository lacks {key!r}: {sorted(repo)}")
        if repo["type"] not in ("borg", "restic"):
            raise ConfigError(f"repository {repo['name']}: type must be borg or restic, not {repo['type']!r}")
        if repo["name"] in names:
            raise ConfigError(f"repository name {repo['name']!r} is used twice")
        names.add(repo["name"])
        if not isinstance(repo.get("critical_files", []), list) or not repo.get("critical_files"):
            raise ConfigError(f"repository {repo['name']}: critical_files must be a non-empty list")
    return config


# --- running tools -------------------------------------------------------------------------------------------
class Host:
    """What the collection's tool layer needs from AnsibleModule, on a host without Ansible: run without a shell."""

    def run_command(self, args: list, environ_update: dict | None = None, cwd: str | None = None,
                    pass_fds: list | None = None, data: str | None = None, **_ignored: object) -> tuple:
        env = dict(os.environ)
        env.setdefault("LC_ALL", "C.UTF-8")
        env.update(environ_update or {})
        proc = subprocess.run(args, env=env, cwd=cwd, input=data, capture_output=True, text=True,
                              pass_fds=tuple(pass_fds or ()), check=False)
        return proc.returncode, proc.stdout, proc.stderr


def secret_of(repo: dict) -> SecretSource:
    """The passphrase (borg) or password (restic) source: the configured file, else what ``env`` names."""
    env = repo.get("env") or {}
    if repo["type"] == "borg":
        if repo.get("passphrase_file"):
            return SecretSource(file=repo["passphrase_file"])
        return SecretSource(value=env.get("BORG_PASSPHRASE"), command=env.get("BORG_PASSCOMMAND"))
    if repo.get("password_file"):
        return SecretSource(file=repo["password_file"], label="password")
    return SecretSource(value=env.get("RESTIC_PASSWORD"), file=env.get("RESTIC_PASSWORD_FILE"),
                        command=env.get("RESTIC_PASSWORD_COMMAND"), label="password")


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# --- one repository ------------------------------------------------------------------------------------------
def rel(path: str) -> str:
    return os.path.normpath(path).lstrip("/")


class Check:
    def __init__(self, repo: dict, defaults: dict) -> None:
        self.repo = repo
        self.name = repo["name"]
        self.type = repo["type"]
        self.binary = repo.get("binary") or defaults.get(f"{self.type}_binary") or self.type
        self.max_age_hours = float(repo.get("max_age_hours") or defaults.get("max_age_hours") or 25)
        self.manifest_path = repo.get("manifest_path", DEFAULT_MANIFEST)
        # by default, a backup recorded before format 2 is verified against the manifest.json it carries
        self.manifest_fallback = LEGACY_MANIFEST if "manifest_path" not in repo else None
        self.tmp_parent = defaults.get("tmp_dir") or None
        self.problems: list = []
        self.stale: list = []
        self.tool = None
        self.report: dict = {"name": self.name, "type": self.type, "repository": repo["repository"],
                             "latest": None, "backup_time": None, "backup_age_seconds": None,
                             "files": {}, "repository_check": None, "problems": self.problems,
                             "result": None, "tmp_dir": None, "tmp_removed": None}

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def execute(self, now: float) -> dict:
        started = time.time()
        try:
            self.open_tool()
            latest = self.latest()
        except OSError as exc:  # the passphrase file, opened for each borg run
            self.fail(f"cannot read the passphrase file: {exc.strerror}")
            return self.finish(started)
        except (NothingToVerify, RestoreOpsError) as exc:
            self.fail(exc.msg if isinstance(exc, RestoreOpsError) else str(exc))
            latest = None
        if latest is not None:
            ident, when = latest
            self.report["latest"] = ident
            self.report["backup_time"] = isoformat_utc(when)
            age, too_old = backup_age(ident, when, now, self.max_age_hours)
            self.report["backup_age_seconds"] = round(age, 1)
            if too_old:
                self.stale.append(too_old)
            self.sample_restore(ident)
        if self.repo.get("check", True) and self.tool is not None:
            self.repository_check()
        return self.finish(started)

    def finish(self, started: float) -> dict:
        result = repository_result(self.problems, self.stale)
        if result != FAIL:
            self.problems.extend(self.stale)
        self.report["result"] = result
        self.report["duration_seconds"] = round(time.time() - started, 3)
        return self.report

    # the tool, through the collection's command-line layer (environment, secrets, exit codes)
    def open_tool(self) -> None:
        secret = secret_of(self.repo)
        if self.type == "borg":
            self.tool = BorgCLI(Host(), secret, binary=self.binary, repo=self.repo["repository"], purpose="verify",
                                extra_env=self.repo.get("env"))
        else:
            self.tool = Restic(tool_runner(Host(), self.repo["repository"], secret, self.repo.get("env"), None,
                                           self.binary))

    # latest archive / snapshot
    def latest(self) -> tuple:
        if self.type == "borg":
            argv = ["list", "--json", "--last", "1"]
            if self.repo.get("glob_archives"):
                argv += ["--glob-archives", self.repo["glob_archives"]]
            result = self.tool.run([*argv, self.repo["repository"]])
            if result.rc != 0:
                raise NothingToVerify(f"borg list failed (rc={result.rc}): {self.tool.fail(result, 'borg list').msg}")
            return latest_borg(parse_json(result.stdout, what="output of borg list"))
        extra = []
        for host in self.repo.get("hosts") or []:
            extra += ["--host", host]
        for tag in self.repo.get("tags") or []:
            extra += ["--tag", tag]
        return latest_restic(self.tool.snapshots(extra=extra))

    # sample restore
    def sample_restore(self, ident: str) -> None:
        critical = [rel(p) for p in self.repo["critical_files"]]
        wanted = list(critical)
        if self.manifest_path:
            wanted.append(rel(self.manifest_path))
        if self.manifest_fallback:
            wanted.append(self.manifest_fallback)
        tmp = tempfile.mkdtemp(prefix=f"backup-verify-{self.name}.", dir=self.tmp_parent)
        self.report["tmp_dir"] = tmp
        try:
            os.chmod(tmp, 0o700)
            self.extract(ident, tmp, wanted)
            manifest = self.read_manifest(tmp, critical) if self.manifest_path else None
            for path in critical:
                self.report["files"][path] = self.verify_file(tmp, path, manifest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            self.report["tmp_removed"] = not os.path.exists(tmp)
            if not self.report["tmp_removed"]:
                self.fail(f"the temporary directory {tmp} could not be removed")

    def extract(self, ident: str, tmp: str, wanted: list) -> None:
        if self.type == "borg":
            result = self.tool.run(["extract", f"{self.repo['repository']}::{ident}", *wanted], cwd=tmp)
            # a warning (for example a path that never matched) is not a failure: the file checks below name it
            if not succeeded(result.rc):
                self.fail(f"borg extract failed (rc={result.rc}): {self.tool.fail(result, 'borg extract').msg}")
            return
        try:
            self.tool.restore(ident, tmp, ["/" + path for path in wanted], extra=["--no-lock"])
        except RestoreOpsError as exc:
            self.fail(f"restic restore failed (rc={getattr(exc, 'rc', None)}): {exc.msg}")

    def read_manifest(self, tmp: str, critical: list) -> dict | None:
        """The recorded digests of the critical files (the manifest streams: memory holds those only)."""
        name = rel(self.manifest_path)
        if self.manifest_fallback and not os.path.exists(os.path.join(tmp, name)):
            name = self.manifest_fallback
        try:
            manifest = manifest_lib.Manifest(os.path.join(tmp, name))
            # keys are paths as backed up; a base (from the repository's manifest_base or a format 1 manifest's own
            # "base") makes keys relative to a directory when the archive stores full paths (restic does)
            base = self.repo.get("manifest_base") or manifest.header.get("base")
            prefix = rel(base) + "/" if base else ""
            digests = manifest.digests(critical, key=lambda key: prefix + rel(key))
        except FileNotFoundError:
            self.fail(f"the checksum manifest {name} is missing from the backup")
            return None
        except manifest_lib.ManifestError as exc:
            self.fail(f"the checksum manifest {name} is unusable: {exc}")
            return None
        self.report["manifest"] = {"path": name, "format": manifest.version}
        return digests

    def verify_file(self, tmp: str, path: str, manifest: dict | None) -> dict:
        full = os.path.join(tmp, path)
        entry = {"exists": os.path.isfile(full), "sha256": None, "expected": None, "match": None}
        if not entry["exists"]:
            self.fail(f"critical file {path} is missing from {self.report['latest']}")
            return entry
        digest = hashlib.sha256()
        with open(full, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        entry["sha256"] = digest.hexdigest()
        if manifest is None:
            return entry
        expected = manifest.get(path)
        entry["expected"] = expected
        if expected is None:
            entry["match"] = False
            self.fail(f"critical file {path} has no checksum in the manifest")
        else:
            entry["match"] = expected == entry["sha256"]
            if not entry["match"]:
                self.fail(f"critical file {path} does not match its checksum: sha256 {entry['sha256']}, "
                          f"recorded {expected}")
        return entry

    def repository_check(self) -> None:
        if self.type == "borg":
            args = ["check", "--repository-only"]
            result = self.tool.run([*args, self.repo["repository"]])
            reason = self.tool.fail(result, "borg check").msg if result.rc != 0 else ""
        else:
            args = ["check", "--read-data-subset", str(self.repo.get("read_data_subset") or "5%")]
            result = self.tool.check(args)
            reason = last_line(result.stderr or result.stdout)
        ok = result.rc == 0
        self.report["repository_check"] = {"ok": ok, "rc": result.rc, "command": " ".join(args[:2])}
        if not ok:
            self.fail(f"{self.type} check failed (rc={result.rc}): {reason}")


# --- outputs -------------------------------------------------------------------------------------------------
def label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_metrics(path: str, reports: list, state: dict, now: float, overall: str) -> None:
    lines = [
        "# HELP restoreops_backup_verify_last_run_timestamp_seconds When the verification last ran.",
        "# TYPE restoreops_backup_verify_last_run_timestamp_seconds gauge",
        "# HELP restoreops_backup_verify_last_success_timestamp_seconds When the verification last gave PASS.",
        "# TYPE restoreops_backup_verify_last_success_timestamp_seconds gauge",
        "# HELP restoreops_backup_verify_backup_age_seconds Age of the latest backup at the last run.",
        "# TYPE restoreops_backup_verify_backup_age_seconds gauge",
        "# HELP restoreops_backup_verify_result 1 for the result of the last run (PASS, FAIL or STALE).",
        "# TYPE restoreops_backup_verify_result gauge",
    ]
    for rep in reports:
        name = label(rep["name"])
        lines.append(f'restoreops_backup_verify_last_run_timestamp_seconds{{repository="{name}"}} {now:.0f}')
        success = state.get("last_success", {}).get(rep["name"])
        if success is not None:
            lines.append(f'restoreops_backup_verify_last_success_timestamp_seconds{{repository="{name}"}} '
                         f"{success:.0f}")
        if rep["backup_age_seconds"] is not None:
            lines.append(f'restoreops_backup_verify_backup_age_seconds{{repository="{name}"}} '
                         f"{rep['backup_age_seconds']:.0f}")
        for result in RESULTS:
            value = 1 if rep["result"] == result else 0
            lines.append(f'restoreops_backup_verify_result{{repository="{name}",result="{result}"}} {value}')
    lines.append(f'restoreops_backup_verify_last_run_timestamp_seconds{{repository=""}} {now:.0f}')
    for result in RESULTS:
        lines.append(f'restoreops_backup_verify_result{{repository="",result="{result}"}} '
                     f"{1 if overall == result else 0}")
    atomic_write(path, "\n".join(lines) + "\n", 0o644)


def atomic_write(path: str, text: str, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".backup-verify.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_state(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def alert_payload(reports: list, overall: str, host: str) -> dict:
    bad = [r for r in reports if r["result"] != PASS]
    lines = [f"*{r['name']}* ({r['type']}): {r['result']}: " + "; ".join(r["problems"]) for r in bad]
    text = f"Backup verification on {host}: {overall}\n" + "\n".join(lines)
    return {
        "text": text,
        "attachments": [
            {
                "color": "danger" if r["result"] == FAIL else "warning",
                "title": f"{r['name']}: {r['result']}",
                "text": "\n".join(r["problems"]),
                "fields": [
                    {"title": "repository", "value": r["repository"], "short": False},
                    {"title": "latest", "value": str(r["latest"]), "short": True},
                    {"title": "backup age (h)", "short": True,
                     "value": "-" if r["backup_age_seconds"] is None else f"{r['backup_age_seconds'] / 3600:.1f}"},
                ],
            }
            for r in bad
        ],
    }


def send_webhook(url: str, payload: dict, timeout: float) -> str | None:
    """POST the alert; return None on success or a sentence saying why not (the URL is never printed)."""
    if not url.startswith(("https://", "http://")):
        return "the webhook URL is not http(s)"
    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 (scheme checked above)
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            if response.status >= 300:
                return f"the webhook answered HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"the webhook answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"the webhook could not be reached: {getattr(exc, 'reason', exc)}"
    return None


# --- main ----------------------------------------------------------------------------------------------------
def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config", default=os.environ.get("BACKUP_VERIFY_CONFIG", DEFAULT_CONFIG))
    parser.add_argument("--repository", action="append", default=[], help="verify only this one (repeatable)")
    parser.add_argument("--no-alert", action="store_true", help="do not send the webhook alert")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"backup-verify: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    repos = config["repositories"]
    if args.repository:
        unknown = set(args.repository) - {r["name"] for r in repos}
        if unknown:
            print(f"backup-verify: unknown repository {', '.join(sorted(unknown))}", file=sys.stderr)
            return EXIT_CONFIG
        repos = [r for r in repos if r["name"] in args.repository]

    now = time.time()
    reports = [Check(repo, config).execute(now) for repo in repos]
    outcome = overall(r["result"] for r in reports)

    state_dir = config.get("state_dir") or "/var/lib/restoreops/backup-verify"
    state_file = os.path.join(state_dir, "state.json")
    state = load_state(state_file)
    state.setdefault("last_success", {})
    for rep in reports:
        if rep["result"] == PASS:
            state["last_success"][rep["name"]] = now
    state["last_run"] = now
    host = config.get("host") or socket.gethostname()
    report = {"host": host, "result": outcome, "time": isoformat_utc(now),
              "repositories": reports, "alert": None}

    if outcome != PASS and config.get("webhook_url") and not args.no_alert:
        error = send_webhook(config["webhook_url"], alert_payload(reports, outcome, host),
                             float(config.get("webhook_timeout") or 10))
        report["alert"] = {"sent": error is None, "error": error}
        if error:
            print(f"backup-verify: alert not sent: {error}", file=sys.stderr)

    try:
        atomic_write(state_file, json.dumps(state, indent=2) + "\n", 0o600)
        atomic_write(os.path.join(state_dir, "last-report.json"), json.dumps(report, indent=2) + "\n", 0o600)
        if config.get("metrics_file"):
            write_metrics(config["metrics_file"], reports, state, now, outcome)
    except OSError as exc:
        print(f"backup-verify: cannot write state or metrics: {exc}", file=sys.stderr)
        if outcome == PASS:
            outcome = FAIL
            report["result"] = FAIL

    print(json.dumps(report, indent=2))
    for rep in reports:
        print(f"backup-verify: {rep['name']}: {rep['result']}"
              + (": " + "; ".join(rep["problems"]) if rep["problems"] else ""), file=sys.stderr)
    return EXIT[outcome]


if __name__ == "__main__":
    sys.exit(main())
