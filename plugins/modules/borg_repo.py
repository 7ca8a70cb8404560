#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: borg_repo
short_description: Create and guard a BorgBackup 1.x repository (encryption, append-only, key export, stale locks)
version_added: 0.1.0
description:
  - Creates a borg 1.x repository if it does not exist, with the requested encryption mode, and never re-initialises
    an existing one. An existing repository whose encryption differs from O(encryption) is an error.
  - Enforces the repository's C(append_only) and C(storage_quota) settings.
  - Exports the repository key to O(key_export.dest) right after creation and whenever that file is missing or
    holds another key, with a private file mode. A destination inside the repository is refused.
  - Reads the holders of a repository lock from the lock files and breaks a lock only when its holder is provably
    dead (same host and PID gone, a host listed in O(dead_hosts), or a foreign lock older than
    O(break_foreign_lock_after)); after breaking it runs C(borg check --repository-only).
  - Optionally runs C(borg check), and reads the newest archive's sizes (O(archive_stats)).
  - The passphrase reaches borg through its environment (E(BORG_PASSPHRASE), E(BORG_PASSPHRASE_FD) or
    E(BORG_PASSCOMMAND)), never through the command line.
  - An idempotent run starts borg twice (C(borg --version) and one C(borg list --json)); for local repositories the
    config, the locks and the repokey are read from the repository's files.
  - Detects borg 2 and refuses it with a clear message.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - Check mode writes nothing. It reports what would be done (create, set append_only or storage_quota, export
        the key, break a lock) in RV(actions). A requested O(check) still runs (borg rewrites the repository's
        C(config) file with the same content at the start of every check, to forget a partial check).
      - When a lock is found in check mode, borg reads the repository with C(--bypass-lock) and O(check) does not run
        (RV(check.skipped_reason) says so), so the lock stays exactly as found, whatever O(stale_lock) says.
  diff_mode:
    support: full
    details:
      - Shows creation, append_only, storage_quota, key export and lock changes.
  idempotent:
    support: full
options:
  repo:
    description:
      - The repository. A local absolute path or an C(ssh://) URL.
      - Lock inspection (O(stale_lock)) works for local repositories only; for C(ssh://) repositories borg's own
        locking applies (see O(lock_wait)).
    type: str
    required: true
  encryption:
    description:
      - Encryption mode used when the repository is created. When omitted a new repository gets V(repokey-blake2).
      - For an existing repository it is only compared; a different mode is an error.
    type: str
    choices: [repokey-blake2, repokey, keyfile-blake2, keyfile, authenticated-blake2, authenticated, none]
  passphrase:
    description:
      - The passphrase, passed to borg as E(BORG_PASSPHRASE).
      - Mutually exclusive with O(passphrase_file) and O(passcommand).
    type: str
  passphrase_file:
    description:
      - Absolute path of a file holding the passphrase. The module opens it and hands borg the open file descriptor
        (E(BORG_PASSPHRASE_FD)).
    type: path
  passcommand:
    description:
      - A command that prints the passphrase (E(BORG_PASSCOMMAND)); borg runs it without a shell.
    type: str
  new_passphrase:
    description:
      - Change the repository key's passphrase to this one (C(borg key change-passphrase); borg reads it from
        E(BORG_NEW_PASSPHRASE), never the command line), then prove that the new passphrase opens the repository and
        the current one no longer does. Idempotent - when the new passphrase already opens the repository nothing
        is changed. The rest of the run (key export, O(check)) uses the new passphrase.
      - After a change, O(key_export) writes the re-encrypted key again.
      - Needs the current passphrase (O(passphrase), O(passphrase_file) or O(passcommand)). Mutually exclusive with
        O(new_passphrase_file).
    type: str
  new_passphrase_file:
    description: Absolute path of a file whose first line is the new passphrase (see O(new_passphrase)).
    type: path
  append_only:
    description:
      - Whether the repository is append-only. Omitted leaves the current setting as it is.
      - For an C(ssh://) repository it applies only when the repository is created (C(borg init --append-only)).
        C(borg config) works only on local repositories, so an existing remote repository's config is neither read
        nor changed. There the server enforces append-only with a forced C(borg serve --append-only) for the
        client's key (the C(restoreops.dr.borg) role sets that up).
    type: bool
  storage_quota:
    description:
      - Repository storage quota, such as V(20G) (powers of 1000, as borg reads it). V(0) removes the quota.
        Omitted leaves it as it is.
    type: str
  key_export:
    description:
      - Export the repository key (C(borg key export)).
    type: dict
    suboptions:
      dest:
        description: Absolute path of the exported key file. Must not be inside the repository.
        type: path
        required: true
      paper:
        description: Export in borg's printable paper format (C(--paper)).
        type: bool
        default: false
      mode:
        description: File mode of the exported key.
        type: raw
        default: '0600'
  stale_lock:
    description:
      - What to do with a repository lock found when the module starts.
      - V(break) breaks it only when the holder is provably dead; a live holder on this host always fails the task
        with its PID, and a holder on another host fails unless O(dead_hosts) or O(break_foreign_lock_after) allows it.
      - V(fail) fails on any lock, V(ignore) reports it and leaves it to borg.
    type: str
    choices: [break, fail, ignore]
    default: break
  dead_hosts:
    description:
      - Borg host ids (C(<fqdn>@<node>), or the value of E(BORG_HOST_ID) there) of hosts known to be gone, such as
        the server this host replaces. Their locks are broken without waiting, and reported.
    type: list
    elements: str
    default: []
  break_foreign_lock_after:
    description:
      - Break a lock held by another host once it is older than this many seconds. Omitted never breaks such a lock.
    type: int
  check:
    description:
      - Run C(borg check) after the other steps. V(repository) is C(--repository-only), V(archives) is
        C(--archives-only), V(verify_data) is C(--verify-data), which reads all data and is slow.
    type: str
    choices: [none, repository, archives, verify_data]
    default: none
  archive_stats:
    description:
      - Also read the newest archive's sizes (original, compressed, deduplicated, file count) and the repository's
        totals with one C(borg info --json --last 1), into C(stats) of RV(archives.last) and RV(archives.totals).
      - borg reads them through its client cache below O(base_dir); give the O(base_dir) the backups use, or borg
        builds a new cache first (it reads every archive's index once).
    type: bool
    default: false
    version_added: 0.3.0
  lock_wait:
    description: Seconds borg waits for a lock (C(--lock-wait)).
    type: int
  rsh:
    description: The ssh command borg uses for C(ssh://) repositories (E(BORG_RSH)).
    type: str
  remote_path:
    description: Path of borg on the remote host (C(--remote-path)).
    type: str
  borg_binary:
    description: The borg executable.
    type: str
    default: borg
  base_dir:
    description:
      - E(BORG_BASE_DIR) for borg (its config, keys and cache live below it). Matters for C(keyfile) modes, where the
        key lives in that directory rather than in the repository.
    type: path
notes:
  - Works with borg 1.2 and 1.4; with 1.4 the module reads borg's specific exit codes (it sets
    E(BORG_EXIT_CODES=modern)). borg 2 is detected and refused.
  - borg before 1.2.5 is open to archive spoofing (CVE-2023-36811; Debian 12 ships 1.2.4). The module warns on
    such a borg, with the remedy (borg 1.2.6 or newer on every client; on Debian 12, borg 1.4 from
    bookworm-backports through C(restoreops.dr.backup_tools) with C(backup_tools_borg_from_backports=true); then
    the C(borg upgrade --check-tam) steps borg documents, as C(docs/reliability.md) lists them).
  - In append-only mode a client can still delete archives, but borg only appends a new transaction; the old one
    stays on disk and can be restored. See the module guide in the collection's C(docs/modules/borg_repo.md).
seealso:
  - name: borg key export
    description: How borg exports a repository key.
    link: https://borgbackup.readthedocs.io/en/1.2-maint/usage/key.html
"""

EXAMPLES = r"""
- name: Create an encrypted repository, append-only, with the key exported
  restoreops.dr.borg_repo:
    repo: /srv/backup/borg
    encryption: repokey-blake2
    passphrase_file: /etc/restoreops/borg.pass
    append_only: true
    key_export:
      dest: /root/borg-key.export
      mode: '0600'

- name: Break the lock left behind by the server this host replaces
  restoreops.dr.borg_repo:
    repo: /srv/backup/borg
    passphrase_file: /etc/restoreops/borg.pass
    dead_hosts:
      - old-server.example.com@52231123181234
    check: repository

- name: Verify a remote repository, passphrase from a command
  restoreops.dr.borg_repo:
    repo: ssh://borg@backup.example.com/./repo
    passcommand: cat /etc/restoreops/borg.pass
    rsh: ssh -i /root/.ssh/borg_ed25519
    check: archives
"""

RETURN = r"""
repo:
  description: The repository.
  returned: always
  type: dict
  contains:
    id:
      description: Repository id (null in check mode before creation).
      type: str
      sample: f429d3e880e5406a314580ddb4d895480ac97c17bee7b5f6e81d983e06cd5895
    location:
      description: Location as borg reports it.
      type: str
      sample: /srv/backup/borg
    encryption:
      description: Encryption mode.
      type: str
      sample: repokey-blake2
    append_only:
      description:
        - Whether the repository is append-only.
        - Null for an existing C(ssh://) repository, whose config cannot be read remotely (see O(append_only)).
      type: bool
      sample: true
    storage_quota:
      description: Storage quota in bytes, null when none (and for an existing C(ssh://) repository).
      type: int
      sample: 20000000000
passphrase_change:
  description:
    - The passphrase change, null without O(new_passphrase) or O(new_passphrase_file). C(changed) (in check mode,
      would change), C(new_opens), C(old_refused) (proven after the change; null when an earlier run changed it).
  returned: always
  type: dict
  sample: {"changed": true, "new_opens": true, "old_refused": true}
archives:
  description: Archive summary.
  returned: always
  type: dict
  contains:
    count:
      description: Number of archives.
      type: int
      sample: 12
    last:
      description:
        - Newest archive (name, start, end), null when there is none.
        - With O(archive_stats), also C(duration) (seconds) and C(stats) (C(original_size), C(compressed_size),
          C(deduplicated_size) in bytes, C(nfiles)), as C(borg info) reports the newest archive.
      type: dict
      sample: {"name": "web-2026-11-23", "start": "2026-11-23T02:00:01.000000+01:00",
               "end": "2026-11-23T02:03:10.000000+01:00", "duration": 189.2,
               "stats": {"original_size": 5368709120, "compressed_size": 2147483648, "deduplicated_size": 73400320,
                         "nfiles": 48211}}
    totals:
      description:
        - With O(archive_stats) and at least one archive, the sizes over every archive in bytes (C(original_size),
          C(compressed_size), and C(deduplicated_size), which is what the repository holds).
      type: dict
      returned: when O(archive_stats=true) and the repository has an archive
      sample: {"original_size": 53687091200, "compressed_size": 21474836480, "deduplicated_size": 2684354560}
lock:
  description: The lock found when the module started, and what was done about it.
  returned: always
  type: dict
  contains:
    present:
      description: Whether a lock was found.
      type: bool
    holder_host:
      description: Borg host id of the holder.
      type: str
    holder_pid:
      description: PID of the holder.
      type: int
    holder_alive:
      description: Whether the holder runs (null when it is on another host).
      type: bool
    broken:
      description: Whether the lock was broken.
      type: bool
    holders:
      description: Every holder found (host, pid, thread, kind, age in seconds, alive).
      type: list
      elements: dict
    reason:
      description: Why the lock was broken, kept, or refused.
      type: str
key_export:
  description: The key export.
  returned: always
  type: dict
  contains:
    dest:
      description: The export file (null without O(key_export)).
      type: str
    exported:
      description: Whether the key was (or in check mode would be) written.
      type: bool
check:
  description: The borg check run.
  returned: always
  type: dict
  contains:
    mode:
      description: The O(check) mode.
      type: str
    ok:
      description: Whether it passed (null when not run).
      type: bool
    skipped_reason:
      description: Why a requested check did not run (a lock found in check mode, a repository still to create).
      type: str
host_id:
  description:
    - This host's borg host id, as borg writes it into lock names (C(<fqdn>@<node>) or E(BORG_HOST_ID)).
    - Record it while the host is alive; after its loss, its replacement passes it in O(dead_hosts).
  returned: always
  type: str
  sample: web1.example.org@52231123181234
host_id_stable:
  description:
    - False when the host id is random per process (no MAC address, for example a container without network and
      without E(BORG_HOST_ID)); the module then warns, and locks of this host look like another host's.
  returned: always
  type: bool
borg_version:
  description: The borg version found.
  returned: always
  type: str
  sample: 1.2.4
actions:
  description: What was done (or in check mode would be done).
  returned: always
  type: list
  elements: str
  sample: ["borg init --encryption repokey-blake2", "export the key to /root/borg-key.export"]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.restoreops.dr.plugins.module_utils._borg.repo import ENCRYPTION_MODES, main  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402


def build_module() -> AnsibleModule:
    argument_spec = dict(
        repo=dict(type="str", required=True),
        encryption=dict(type="str", choices=list(ENCRYPTION_MODES)),
        passphrase=dict(type="str", no_log=True),
        passphrase_file=dict(type="path", no_log=False),
        new_passphrase=dict(type="str", no_log=True),
        new_passphrase_file=dict(type="path", no_log=False),
        passcommand=dict(type="str", no_log=False),
        append_only=dict(type="bool"),
        storage_quota=dict(type="str"),
        key_export=dict(type="dict", no_log=False, options=dict(
            dest=dict(type="path", required=True),
            paper=dict(type="bool", default=False),
            mode=dict(type="raw", default="0600"),
        )),
        stale_lock=dict(type="str", default="break", choices=["break", "fail", "ignore"]),
        dead_hosts=dict(type="list", elements="str", default=[]),
        break_foreign_lock_after=dict(type="int"),
        check=dict(type="str", default="none", choices=["none", "repository", "archives", "verify_data"]),
        archive_stats=dict(type="bool", default=False),
        lock_wait=dict(type="int"),
        rsh=dict(type="str"),
        remote_path=dict(type="str"),
        borg_binary=dict(type="str", default="borg"),
        base_dir=dict(type="path"),
    )
    return AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("passphrase", "passphrase_file", "passcommand"),
                            ("new_passphrase", "new_passphrase_file")],
        supports_check_mode=True,
    )


def run() -> None:
    run_module(build_module(), main)


if __name__ == "__main__":
    run()
