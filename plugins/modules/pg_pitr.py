#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_pitr
short_description: Recover a PostgreSQL cluster to a point in time from a base backup and archived WAL
version_added: 0.2.0
description:
  - Chooses a base backup taken by C(restoreops.dr.pg_wal_archive) (the newest one that ended before the target,
    or the one named in O(backup)), stops the server, moves the current data directory aside (it is kept, never
    deleted), unpacks the base backup and the WAL streamed with it, writes C(restore_command) and the recovery
    target into C(postgresql.auto.conf), creates C(recovery.signal) and starts the server, which replays the archived
    WAL to O(target_time) (or the end of the archive) and promotes.
  - Waits for the end of recovery by looking at C(recovery.signal) and the postmaster (no database connection per
    poll), then reads where recovery stopped (last replayed transaction, timeline) and proves the target was
    reached. The recovery settings are then removed from C(postgresql.auto.conf).
  - A segment missing from the archive while later ones are there is a gap. The restore command of
    C(restoreops.dr.pg_wal_archive) then aborts the recovery instead of letting the server promote without
    everything after the gap, and this module fails naming the segment and the window of changes that is lost. A
    segment that was never archived (the archive ends early) fails the same way when the target lies beyond it.
  - With O(progress_file), reports its progress there (unpacking, then WAL segments replayed out of those archived)
    for C(restoreops.dr.await_jobs) to show while it runs as a background job.
  - Records a completed recovery next to the data directory (C(<data_dir>.pitr-done.json)); a second run with the
    same base backup and target changes nothing.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - Chooses the base backup, counts the archived segments and reports the plan; nothing is stopped or moved.
  diff_mode:
    support: partial
    details:
      - Says which backup and target the data directory would be recovered from.
  idempotent:
    support: full
    details:
      - Through the record of the completed recovery; O(force=true) recovers again.
options:
  data_dir:
    description: The cluster's data directory (it is moved aside, never deleted).
    type: path
    required: true
  basebackup_dir:
    description: Where the base backups are, one directory each with C(base.tar.gz) and C(restoreops-backup.json).
    type: path
    required: true
  wal_archive_dir:
    description: The WAL archive the restore command reads (and this module counts segments in).
    type: path
    required: true
  target_time:
    description:
      - V(latest) for the end of the archive, or a time, either C(YYYY-MM-DD HH:MM:SS[.ffffff]) in UTC or ISO 8601
        with an offset.
    type: str
    default: latest
  backup:
    description: The base backup's directory name, or V(auto) for the newest one that ended before the target.
    type: str
    default: auto
  restore_script:
    description: The restore command's script (installed by C(restoreops.dr.pg_wal_archive)).
    type: path
    default: /usr/local/sbin/restoreops-wal-restore
  restore_command:
    description:
      - The complete C(restore_command) instead of the one built from O(restore_script), O(wal_archive_dir) and
        O(state_file). Gap detection needs the state file the collection's script writes.
    type: str
  state_file:
    description: Where the restore command records what it restored and what it missed.
    type: path
  control:
    description: How the server is stopped and started.
    type: str
    choices: [systemd, pg_ctl]
    default: systemd
  service:
    description: The systemd unit (for example V(postgresql@17-main)); required with O(control=systemd).
    type: str
  bin_dir:
    description: PostgreSQL's programs; default C(/usr/lib/postgresql/<major>/bin) from the backup's C(PG_VERSION).
    type: path
  os_user:
    description: The operating-system user the server runs as.
    type: str
    default: postgres
  os_group:
    description: Its group.
    type: str
    default: postgres
  socket_dir:
    description: The server's unix socket directory (for C(pg_isready) and C(psql)).
    type: path
    default: /var/run/postgresql
  port:
    description: The server's port.
    type: int
    default: 5432
  timeout:
    description: Seconds the replay may take before the module stops the server and fails.
    type: int
    default: 600
  progress_file:
    description: Write progress here (for C(restoreops.dr.await_jobs)).
    type: path
  force:
    description: Recover again even when the same recovery already completed.
    type: bool
    default: false
notes:
  - Runs on the PostgreSQL host, as root (it switches to O(os_user) with C(runuser) for C(tar), C(pg_ctl) and C(psql)).
seealso:
  - module: restoreops.dr.pg_archiver_facts
  - module: restoreops.dr.await_jobs
"""

EXAMPLES = r"""
- name: Recover to just before the bad deploy
  restoreops.dr.pg_pitr:
    data_dir: /var/lib/postgresql/17/main
    basebackup_dir: /var/lib/postgresql/base-backups
    wal_archive_dir: /var/lib/postgresql/wal-archive
    target_time: "2026-03-14 15:30:00"
    service: postgresql@17-main

- name: Recover to the end of the archive in the background, with progress
  restoreops.dr.pg_pitr:
    data_dir: /var/lib/postgresql/15/main
    basebackup_dir: /offsite/pg/base
    wal_archive_dir: /offsite/pg/wal
    service: postgresql@15-main
    progress_file: /var/lib/restoreops/pitr.progress
  async: 3600
  poll: 0
  register: pitr_job
"""

RETURN = r"""
base_backup:
  description: The base backup used.
  returned: always
  type: dict
  contains:
    name:
      description: Its directory name.
      type: str
    start_wal:
      description: The first WAL segment it needs.
      type: str
    end_time:
      description: When it ended (UTC).
      type: str
target:
  description: The recovery target, V(latest) or C(YYYY-MM-DD HH:MM:SS[.ffffff]+00).
  returned: always
  type: str
archived_segments:
  description: Archived segments at or after the backup's first one (the most the replay can use).
  returned: always
  type: int
segments_restored:
  description: Segments the restore command handed to PostgreSQL.
  returned: when the recovery ran
  type: int
last_restored_wal:
  description: The last segment restored from the archive.
  returned: when the recovery ran
  type: str
last_replayed_transaction:
  description: Commit time of the last transaction replayed (UTC, empty when none was).
  returned: success, not in check mode
  type: str
timeline:
  description: The server's timeline after promotion.
  returned: success, not in check mode
  type: int
previous_data_dir:
  description: Where the data directory that was there before was moved.
  returned: when the recovery ran
  type: str
plan:
  description: What the module does (or would do).
  returned: when a recovery is needed
  type: str
duration:
  description: Seconds the recovery took.
  returned: success, not in check mode
  type: float
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._pitr import main as pitr_main  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            data_dir=dict(type="path", required=True),
            basebackup_dir=dict(type="path", required=True),
            wal_archive_dir=dict(type="path", required=True),
            target_time=dict(type="str", default="latest"),
            backup=dict(type="str", default="auto"),
            restore_script=dict(type="path", default="/usr/local/sbin/restoreops-wal-restore"),
            restore_command=dict(type="str"),
            state_file=dict(type="path"),
            control=dict(type="str", choices=["systemd", "pg_ctl"], default="systemd"),
            service=dict(type="str"),
            bin_dir=dict(type="path"),
            os_user=dict(type="str", default="postgres"),
            os_group=dict(type="str", default="postgres"),
            socket_dir=dict(type="path", default="/var/run/postgresql"),
            port=dict(type="int", default=5432),
            timeout=dict(type="int", default=600),
            progress_file=dict(type="path"),
            force=dict(type="bool", default=False),
        ),
        required_if=[("control", "systemd", ("service",))],
        supports_check_mode=True,
    )
    run_module(module, pitr_main)


if __name__ == "__main__":
    main()
