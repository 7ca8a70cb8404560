#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_policy_facts
short_description: Read everything the backup policy audit checks on a host, in one read-only run
version_added: 0.1.0
description:
  - Gathers in one module run what C(playbooks/audit_policy.yml) judges on a host, by running the same code as the
    collection's modules, always read-only
    (C(restoreops.dr.borg_repo), C(restoreops.dr.restic_forget_prune), C(restoreops.dr.key_escrow_check),
    C(restoreops.dr.pg_archiver_facts) and C(restoreops.dr.rsnapshot_config) with check mode forced on), plus the
    mode of each passphrase file, the retention timers' enablement links and a scan for secrets written in clear;
    and, for C(playbooks/diagnose.yml), how full each backup volume is and how much each repository on it holds.
  - Each observation has the shape the module's own registered result has (with its C(item) for per-entry probes),
    so the C(restoreops.dr.audit_evaluate) filter takes the whole result as it is.
  - A probe that fails (a wrong passphrase, a repository that is gone, PostgreSQL down) is recorded as that probe's
    failure, with C(failed=true) and C(msg), and the other probes still run. Only bad options fail the task (an
    unknown key, a repeated name, or a relative path anywhere among the paths and local repositories, which would be
    read from the module's working directory).
  - Tool probes run in parallel threads (O(workers)); each tool is its own process.
  - Nothing is written, locked or unlocked, in any mode. Passphrases and passwords are given as files or commands
    and reach the tools through their environment or a file descriptor, never the command line; they are never
    returned, and neither are the backend credentials in O(restic_repositories[].env) nor the lines where the scan
    found a secret.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same probes in and outside check mode.
  diff_mode:
    support: none
    details:
      - Nothing changes, so there is nothing to diff.
  idempotent:
    support: full
    details:
      - Always C(changed=false).
options:
  borg_repositories:
    description:
      - The borg repositories to read as C(restoreops.dr.borg_repo) does in check mode, with C(stale_lock=ignore)
        (a lock is reported, never broken).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: A name for the repository (unique); the audit's findings name it.
        type: str
        required: true
      repo:
        description: The repository, a local absolute path or an C(ssh://) URL.
        type: str
        required: true
      passphrase_file:
        description: Absolute path of the file holding the passphrase (handed to borg as a file descriptor).
        type: path
      passcommand:
        description: A command that prints the passphrase (E(BORG_PASSCOMMAND)).
        type: str
      base_dir:
        description: E(BORG_BASE_DIR) for borg.
        type: path
      rsh:
        description: The ssh command for C(ssh://) repositories (E(BORG_RSH)).
        type: str
      remote_path:
        description: Path of borg on the remote host (C(--remote-path)).
        type: str
      key_export:
        description:
          - Where the exported key must be. C(key_export.exported=true) in RV(borg) says it is missing or holds
            another key (it would have to be written); nothing is written.
        type: path
  restic_repositories:
    description:
      - The restic repositories. One with a O(restic_repositories[].retention) gets the
        C(restoreops.dr.restic_forget_prune) check-mode preview (C(restic forget --dry-run --no-lock)), which also
        lists its snapshots; one without is listed with C(restic snapshots --json --no-lock --no-cache).
        Either way the repository is opened once.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: A name for the repository (unique).
        type: str
        required: true
      repository:
        description: The repository (passed as E(RESTIC_REPOSITORY), never on the command line).
        type: str
        required: true
      password_file:
        description: Absolute path of the password file (E(RESTIC_PASSWORD_FILE)).
        type: path
      password_command:
        description: A command that prints the password (E(RESTIC_PASSWORD_COMMAND)).
        type: str
      env:
        description: Extra environment for restic (backend credentials); never returned.
        type: dict
        default: {}
      retention:
        description:
          - The declared retention policy, as the C(keep_*) options of M(restoreops.dr.restic_forget_prune) document
            each rule.
        type: dict
        suboptions:
          keep_within:
            description: Keep the snapshots within this restic duration of the newest one (for example V(30d)).
            type: str
          keep_last: {type: int, description: The count of C(--keep-last).}
          keep_hourly: {type: int, description: The count of C(--keep-hourly).}
          keep_daily: {type: int, description: The count of C(--keep-daily).}
          keep_weekly: {type: int, description: The count of C(--keep-weekly).}
          keep_monthly: {type: int, description: The count of C(--keep-monthly).}
          keep_yearly: {type: int, description: The count of C(--keep-yearly).}
      prune:
        description: Whether the declared retention prunes (C(forget --prune)).
        type: bool
        default: false
      retention_timer:
        description:
          - The systemd timer unit that runs the retention (for example V(restic-forget-db1.timer)); its link under
            C(<systemd_dir>/timers.target.wants/) is read.
        type: str
  key_escrow_items:
    description:
      - The escrowed keys, checked by C(restoreops.dr.key_escrow_check) (with C(max_mode=0600)); the same fields as
        its O(restoreops.dr.key_escrow_check#module:items) option.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: A name for the item (unique).
        type: str
        required: true
      kind:
        description: What the key protects.
        type: str
        required: true
        choices: [borg, restic, luks, file]
      repo:
        description: The repository (kinds V(borg) and V(restic)).
        type: str
      device:
        description: The LUKS device or container file (kind V(luks)).
        type: path
      key_file:
        description: The escrowed key copy.
        type: path
        required: true
      passphrase_file:
        description: The escrowed passphrase of a V(borg) key, in a file.
        type: path
      passcommand:
        description: A command that prints the escrowed passphrase of a V(borg) key.
        type: str
      passphrase:
        description: The escrowed passphrase of a V(borg) key as a value (read from where it is kept).
        type: str
      passphrase_place:
        description: Where a passphrase given as a value is kept, as observed there (for the C(apart) check).
        type: dict
        suboptions:
          host_id:
            description: That host's identity, C(<machine id>/<hostname>).
            type: str
            required: true
          dev:
            description: The device number (C(st_dev)) of the filesystem holding the passphrase there.
            type: int
            required: true
          path:
            description: The passphrase file's path there.
            type: str
            required: true
      sha256:
        description: Kind V(file) only. The expected SHA-256 digest.
        type: str
      protected_paths:
        description: Where the protected data lives; the escrowed files must not be on these filesystems.
        type: list
        elements: path
        default: []
  postgres:
    description:
      - Connection options and thresholds of C(restoreops.dr.pg_archiver_facts). Omitted, PostgreSQL is not
        read (and the C(psycopg) library is not imported).
    type: dict
    suboptions:
      login_host:
        description: Host name or IP address of the server.
        type: str
      login_unix_socket:
        description: Directory of the server's unix socket; takes precedence over O(postgres.login_host).
        type: str
      port:
        description: Port of the server (also the suffix of the unix socket file).
        type: int
        default: 5432
      login_user:
        description: The role to log in as (it needs C(pg_monitor)).
        type: str
        default: postgres
      login_password:
        description: Password of O(postgres.login_user), handed to libpq as a keyword.
        type: str
      login_db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for the connection.
        type: int
        default: 10
      ssl_mode:
        description: libpq's C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      max_archive_age:
        description: Seconds since the last archived WAL segment before it is a problem.
        type: float
      max_replay_lag:
        description: Seconds of replay lag on a standby before it is a problem.
        type: float
      max_replay_lag_bytes:
        description: Bytes of replay lag on a standby before it is a problem.
        type: int
  secret_files:
    description: Passphrase and password files whose existence and mode are read (the entry itself, not a link target).
    type: list
    elements: path
    default: []
  systemd_dir:
    description: Where the retention timers' C(timers.target.wants) links are looked for.
    type: path
    default: /etc/systemd/system
  secret_scan_paths:
    description:
      - Directories whose regular files (hidden ones too, up to 1 MiB, links not followed) are scanned for a
        literal value assigned to C(BORG_PASSPHRASE), C(RESTIC_PASSWORD), C(PGPASSWORD), C(AWS_SECRET_ACCESS_KEY)
        or C(RCLONE_CONFIG_PASS). C(*_FILE), C(*_COMMAND), C(*_FD) and C($VAR) references do not count.
      - A path that is not a directory is listed in C(skipped_paths) of RV(secret_scan).
    type: list
    elements: path
    default: [/etc/systemd/system, /etc/default, /etc/restoreops, /usr/local/bin, /usr/local/sbin,
              /usr/local/libexec/restoreops]
  secret_scan_recurse:
    description: Scan the subdirectories of O(secret_scan_paths) too.
    type: bool
    default: false
  rsnapshot_configs:
    description: rsnapshot configuration files, each checked by C(restoreops.dr.rsnapshot_config) (no fix).
    type: list
    elements: path
    default: []
  volumes:
    description:
      - Backup locations (a repository directory, an rsnapshot C(snapshot_root), a backup mount) whose file system is
        read as C(df) does and whose size is measured as C(du -s) does, into RV(volumes).
      - What C(playbooks/diagnose.yml) reads about the backup volume and each repository on it.
    type: list
    elements: path
    default: []
    version_added: 0.3.0
  volume_sizes:
    description:
      - Measure the size of each of O(volumes) (a walk over the whole tree, as C(du -s)). V(false) reads only the
        file systems, which costs nothing whatever the tree holds.
    type: bool
    default: true
    version_added: 0.3.0
  rsnapshot_max_age_hours:
    description: The newest rsnapshot snapshot may be at most this many hours old (the audit passes its RPO).
    type: float
    default: 25
  borg_binary:
    description: The borg executable.
    type: str
    default: borg
  restic_binary:
    description: The restic executable.
    type: str
    default: restic
  rsnapshot_binary:
    description: The rsnapshot executable.
    type: str
    default: rsnapshot
  workers:
    description:
      - How many tool probes run at the same time. V(1) runs them one after the other.
      - More workers shorten the wall time on a host with idle cores; the CPU spent is the same.
    type: int
    default: 4
notes:
  - The observations are meant for the C(restoreops.dr.audit_evaluate) filter; C(docs/audit-policy.md) describes
    the rules, and C(docs/modules/backup_policy_facts.md) the module.
  - A host without a kind of backup leaves that option empty; its observation is then an empty list or
    C(skipped=true).
seealso:
  - module: restoreops.dr.borg_repo
  - module: restoreops.dr.restic_forget_prune
  - module: restoreops.dr.key_escrow_check
  - module: restoreops.dr.pg_archiver_facts
  - module: restoreops.dr.rsnapshot_config
"""

EXAMPLES = r"""
- name: Read what the backup policy audit checks on this host
  restoreops.dr.backup_policy_facts:
    borg_repositories:
      - name: db1-borg
        repo: /srv/offsite/borg/db1
        passphrase_file: /etc/restoreops/borg.pass
        key_export: /srv/escrow/keys/db1-borg.key
    restic_repositories:
      - name: db1-restic
        repository: rest:http://127.0.0.1:8000/db1
        password_file: /etc/restoreops/restic.pass
        retention:
          keep_daily: 7
          keep_weekly: 4
        prune: true
        retention_timer: restic-forget-db1.timer
    key_escrow_items:
      - name: db1-restic
        kind: restic
        repo: /srv/offsite/restic/db1
        key_file: /srv/escrow/keys/db1-restic.pass
    postgres:
      login_unix_socket: /var/run/postgresql
      max_archive_age: 3600
    secret_files:
      - /etc/restoreops/borg.pass
      - /etc/restoreops/restic.pass
    rsnapshot_configs:
      - /etc/rsnapshot.conf
  register: policy_facts

- name: Judge them against the policy
  ansible.builtin.set_fact:
    audit_result: "{{ policy_facts | restoreops.dr.audit_evaluate([], rpo_hours=25) }}"
"""

RETURN = r"""
borg:
  description: Per entry of O(borg_repositories), in order, what C(restoreops.dr.borg_repo) returns in check mode
    (C(repo), C(archives), C(key_export), C(lock), ...), or C(failed) and C(msg); with the entry as C(item).
  returned: always
  type: list
  elements: dict
  sample: [{"repo": {"append_only": true, "encryption": "repokey"}, "archives": {"count": 1, "last": {
            "name": "n1", "start": "2026-11-23T02:00:01.000000", "end": "2026-11-23T02:03:10.000000"}},
            "key_export": {"dest": "/srv/escrow/keys/db1-borg.key", "exported": false},
            "item": {"name": "db1-borg", "repo": "/srv/offsite/borg/db1"}}]
restic_forget:
  description: Per entry of O(restic_repositories), the C(restoreops.dr.restic_forget_prune) check-mode preview
    (C(kept), C(removed), ...), or C(failed) and C(msg), or C(skipped) without a retention; with C(item) (without
    C(env)).
  returned: always
  type: list
  elements: dict
restic_snapshots:
  description: Per entry of O(restic_repositories), the snapshot listing (C(rc), C(stdout) as restic printed its
    JSON) of a repository without retention, or C(failed) and C(msg), or C(skipped); with C(item).
  returned: always
  type: list
  elements: dict
escrow:
  description: What C(restoreops.dr.key_escrow_check) returns (C(ok), C(results)), or C(failed) and C(msg), or
    C(skipped) without O(key_escrow_items).
  returned: always
  type: dict
postgres:
  description: What C(restoreops.dr.pg_archiver_facts) returns (C(ansible_facts.pg_archiver)), or C(failed) and
    C(msg), or C(skipped) without O(postgres).
  returned: always
  type: dict
watched:
  description: The passphrase files and retention timer links that exist, as C(files) (C(path), C(mode) of the
    entry itself, C(isreg), C(islnk), C(size), C(uid), C(gid)).
  returned: always
  type: dict
  sample: {"files": [{"path": "/etc/restoreops/borg.pass", "mode": "0600", "isreg": true, "islnk": false,
                      "size": 25, "uid": 0, "gid": 0}], "matched": 1}
secret_paths:
  description: O(secret_files), as read.
  returned: always
  type: list
  elements: str
timer_dir:
  description: O(systemd_dir), as used for the timer links.
  returned: always
  type: str
  sample: /etc/systemd/system
secret_scan:
  description: The files that hold a secret in clear, as C(files) (only C(path); never the line), with
    C(matched), C(examined) and C(skipped_paths).
  returned: always
  type: dict
  sample: {"files": [{"path": "/etc/systemd/system/backup.service"}], "matched": 1, "examined": 12,
           "skipped_paths": {"/usr/local/libexec/restoreops": "'/usr/local/libexec/restoreops' is not a directory"}}
rsnapshot:
  description: Per entry of O(rsnapshot_configs), what C(restoreops.dr.rsnapshot_config) returns (C(ok),
    C(problems), ...), or C(failed) and C(msg); with the path as C(item).
  returned: always
  type: list
  elements: dict
volumes:
  description:
    - Per entry of O(volumes), with the path as C(item) and C(path) - C(exists); C(filesystem), the file system
      holding it as C(df) reports it (C(mount_point), C(total), C(used), C(available) in bytes, C(used_percent)
      rounded up as C(df) prints it); C(size) as C(du -s) measures it (C(bytes) allocated, C(apparent_bytes),
      C(entries), C(unreadable)), each inode counted once, or null with O(volume_sizes=false). A path that does not
      exist has C(exists=false) and null C(filesystem) and C(size).
  returned: always
  type: list
  elements: dict
  version_added: 0.3.0
  sample: [{"item": "/srv/backup/borg", "path": "/srv/backup/borg", "exists": true,
            "filesystem": {"mount_point": "/srv/backup", "total": 107374182400, "used": 96636764160,
                           "available": 10737418240, "used_percent": 90},
            "size": {"bytes": 52613349376, "apparent_bytes": 52610000000, "entries": 1204, "unreadable": 0}}]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (modules keep their docs first)

from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._escrow import item_options  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._policy_facts import DEFAULT_SCAN_PATHS, main  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._restic.retention import (  # noqa: E402
    retention_argument_spec,
)


def build_module() -> AnsibleModule:
    borg_spec = dict(
        name=dict(type="str", required=True),
        repo=dict(type="str", required=True),
        passphrase_file=dict(type="path", no_log=False),
        passcommand=dict(type="str", no_log=False),
        base_dir=dict(type="path"),
        rsh=dict(type="str"),
        remote_path=dict(type="str"),
        key_export=dict(type="path", no_log=False),
    )
    restic_spec = dict(
        name=dict(type="str", required=True),
        repository=dict(type="str", required=True),
        password_file=dict(type="path", no_log=False),
        password_command=dict(type="str", no_log=False),
        env=dict(type="dict", default={}, no_log=True),
        retention=dict(type="dict", options=retention_argument_spec()),
        prune=dict(type="bool", default=False),
        retention_timer=dict(type="str"),
    )
    postgres_spec = dict(
        login_host=dict(type="str"),
        login_unix_socket=dict(type="str"),
        port=dict(type="int", default=5432),
        login_user=dict(type="str", default="postgres"),
        login_password=dict(type="str", no_log=True),
        login_db=dict(type="str", default="postgres"),
        connect_timeout=dict(type="int", default=10),
        ssl_mode=dict(type="str", default="prefer",
                      choices=["allow", "disable", "prefer", "require", "verify-ca", "verify-full"]),
        max_archive_age=dict(type="float"),
        max_replay_lag=dict(type="float"),
        max_replay_lag_bytes=dict(type="int"),
    )
    return AnsibleModule(
        argument_spec=dict(
            borg_repositories=dict(type="list", elements="dict", default=[], options=borg_spec,
                                   mutually_exclusive=[("passphrase_file", "passcommand")]),
            restic_repositories=dict(type="list", elements="dict", default=[], options=restic_spec,
                                     mutually_exclusive=[("password_file", "password_command")]),
            key_escrow_items=dict(type="list", elements="dict", default=[], options=item_options(), no_log=False,
                                  mutually_exclusive=[("passphrase_file", "passcommand")]),
            postgres=dict(type="dict", options=postgres_spec),
            secret_files=dict(type="list", elements="path", default=[], no_log=False),
            systemd_dir=dict(type="path", default="/etc/systemd/system"),
            secret_scan_paths=dict(type="list", elements="path", default=list(DEFAULT_SCAN_PATHS), no_log=False),
            secret_scan_recurse=dict(type="bool", default=False, no_log=False),
            rsnapshot_configs=dict(type="list", elements="path", default=[]),
            volumes=dict(type="list", elements="path", default=[]),
            volume_sizes=dict(type="bool", default=True),
            rsnapshot_max_age_hours=dict(type="float", default=25),
            borg_binary=dict(type="str", default="borg"),
            restic_binary=dict(type="str", default="restic"),
            rsnapshot_binary=dict(type="str", default="rsnapshot"),
            workers=dict(type="int", default=4),
        ),
        supports_check_mode=True,
    )


def entry() -> None:
    run_module(build_module(), main)


if __name__ == "__main__":
    entry()
