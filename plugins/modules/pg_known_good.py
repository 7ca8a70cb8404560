#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_known_good
short_description: Find the latest PostgreSQL recovery target whose data passes a validation query, by bisection
version_added: 0.3.0
description:
  - For logical corruption that the WAL archive captured faithfully (a bad deploy, a wrong UPDATE, ransomware inside
    the database). Given O(query) and a time window, bisects the recovery target - each trial recovers a sandbox
    cluster to the middle of the window, runs the query, and halves the window - until the latest passing target
    is known within O(tolerance). Returns it as RV(target_time), ready for
    O(restoreops.dr.pg_pitr#module:target_time), and reports each trial.
  - Each trial is a point-in-time recovery with the code of C(restoreops.dr.pg_pitr) - the base backup that serves
    the target (the newest one that ended before it), the archived WAL through the collection's restore command
    (which tells a gap in the archive from its end), C(recovery.signal) - into a sandbox below O(sandbox_dir) -
    its own data directory, configuration files and unix socket, its own O(port), no TCP listener. The server
    pauses at the target as a read-only hot standby (C(recovery_target_action=pause), see O(target_action)), so
    it never starts a new timeline; O(query) runs in a read-only session, and the server is stopped (immediate)
    and its data directory removed before the next trial.
  - The live cluster is never touched, the WAL archive and the base backups are only read. Settings that would
    reach outside the sandbox are overridden on the postmaster's command line, above every configuration file of
    the base backup (C(postgresql.auto.conf) included) - C(archive_mode=off), empty C(archive_command),
    C(archive_cleanup_command), C(recovery_end_command), C(primary_conninfo), C(listen_addresses); the data
    directory's own C(postgresql.conf) and C(pg_hba.conf) are not read (the sandbox's own files are).
  - A failing trial moves the window's end down to the last transaction that trial replayed, when that is earlier
    than its target (the state there is already bad), so the answer usually lands right before the corrupting
    commit. A target that recovery cannot reach (after the end of the archive, behind a gap) counts as not good.
  - Fails when the data is bad already at the window's start, when a query cannot be judged (an SQL error, a
    result that is neither a boolean nor a number), or when a trial times out; the sandbox is removed in every case.
    A search whose window's end passes returns it with RV(found=false).
  - Assumes that the data, once bad, stays bad within the window.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the base backups, resolves the window and returns the most trials it would take; nothing is
        unpacked or started.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Reads only; the sandbox is removed when the module ends. C(changed) is always false.
options:
  query:
    description:
      - SQL that judges the data, run in a read-only session on the recovered sandbox. It returns a boolean that is
        true when the data is good (C(SELECT NOT EXISTS (SELECT 1 FROM orders WHERE total < 0))), or a count that is
        zero when it is good (C(SELECT count(*) FROM orders WHERE total < 0)), see O(expect).
    type: str
    required: true
  expect:
    description:
      - How the first column of the first row is read. V(auto) - C(t) passes and C(f) fails, a number passes when
        it is zero. V(true) - only a boolean. V(zero) - only a number. V(no_rows) - the query passes when it returns
        no row.
    type: str
    choices: [auto, "true", zero, no_rows]
    default: auto
  database:
    description: The database the query runs in.
    type: str
    default: postgres
  login_user:
    description: The database role the query runs as (the sandbox trusts local connections); default O(os_user).
    type: str
  window_start:
    description:
      - The earliest target considered, C(YYYY-MM-DD HH:MM:SS[.ffffff]) in UTC or ISO 8601 with an offset; the data
        is expected to be good here. Default the end of the earliest base backup.
    type: str
  window_end:
    description:
      - The latest target considered, for example when the corruption was noticed or the infection time estimate;
        the data is expected to be bad here. Same formats as O(window_start).
    type: str
    required: true
  tolerance:
    description: Seconds; the search stops when the latest passing and the earliest failing target are this close.
    type: float
    default: 1.0
  max_trials:
    description:
      - The most sandbox recoveries allowed; a window and tolerance that may need more are refused before any trial
        (a window of a day at one second needs up to 19).
    type: int
    default: 30
  basebackup_dir:
    description: Where the base backups are, one directory each with C(base.tar.gz) and C(restoreops-backup.json).
    type: path
    required: true
  wal_archive_dir:
    description: The WAL archive (only read).
    type: path
    required: true
  sandbox_dir:
    description:
      - The scratch directory for the trials, owned by O(os_user) with mode 0700 and removed at the end. It must be
        absent, empty or left by an earlier run of this module (whose server, if still running, is stopped first),
        and apart from the archive and the base backups. Needs room for one unpacked base backup and its WAL.
    type: path
    required: true
  port:
    description:
      - The sandbox server's port. It only names the unix socket inside the sandbox (no TCP listener), so it cannot
        collide with the live cluster's.
    type: int
    default: 54329
  bin_dir:
    description: The PostgreSQL binaries; default C(/usr/lib/postgresql/<major>/bin) for the base backup's version.
    type: path
  os_user:
    description: The OS user the sandbox server runs as.
    type: str
    default: postgres
  os_group:
    description: The OS group of the sandbox's files.
    type: str
    default: postgres
  settings:
    description:
      - Extra server settings for the sandbox (for example C(shared_preload_libraries) when the query needs an
        extension's library). Settings that keep the sandbox apart (port, sockets, configuration files,
        archiving, C(primary_conninfo), C(hot_standby)) cannot be changed.
    type: dict
    default: {}
  target_action:
    description:
      - What the sandbox server does at the target. V(pause) - it stays a read-only hot standby; the query runs in a
        read-only session. V(promote) - it ends recovery and becomes a primary on a new timeline of its own (never
        archived, C(archive_mode) is off), for a query that must write (a temporary table, a function that
        records); it writes into the sandbox only, which is thrown away.
    type: str
    choices: [pause, promote]
    default: pause
  trial_timeout:
    description: Seconds one sandbox recovery may take to reach its target.
    type: int
    default: 600
  query_timeout:
    description: Seconds the query may run (C(statement_timeout)).
    type: int
    default: 300
notes:
  - The sandbox recovers with C(recovery_target_inclusive=true) - a target keeps the transactions that committed at
    it - exactly as C(restoreops.dr.pg_pitr) recovers to RV(target_time).
  - A recovery target can only lie after the end of a base backup, so O(window_start) cannot lie before the end of
    the earliest one.
seealso:
  - module: restoreops.dr.pg_pitr
  - module: restoreops.dr.backup_known_good
"""

EXAMPLES = r"""
- name: Find the latest recovery target before the negative totals appeared
  restoreops.dr.pg_known_good:
    query: SELECT count(*) FROM orders WHERE total < 0
    database: shop
    window_start: "2026-03-13 00:00:00"
    window_end: "2026-03-14 09:00:00"
    basebackup_dir: /var/lib/restoreops/pg/base
    wal_archive_dir: /var/lib/restoreops/pg/wal
    sandbox_dir: /var/tmp/restoreops-pg-known-good
  register: clean_point

- name: Recover the cluster to it
  restoreops.dr.pg_pitr:
    data_dir: /var/lib/postgresql/15/main
    basebackup_dir: /var/lib/restoreops/pg/base
    wal_archive_dir: /var/lib/restoreops/pg/wal
    target_time: "{{ clean_point.target_time }}"
    service: postgresql@15-main
"""

RETURN = r"""
target_time:
  description: The latest target whose recovered data passed the query (C(YYYY-MM-DD HH:MM:SS[.ffffff]+00), UTC).
  returned: success, not in check mode
  type: str
  sample: "2026-03-14 08:12:31.406250+00"
found:
  description: Whether a trial saw the data bad (false when the query passes at the window's end).
  returned: success, not in check mode
  type: bool
first_bad_time:
  description:
    - The earliest point known to be bad - a trial's target, or the last transaction a failing trial replayed
      (the corrupting commit, when the search got that close). Null when no trial failed.
  returned: success, not in check mode
  type: str
last_good_transaction:
  description: Commit time of the last transaction replayed in the trial at RV(target_time) (UTC).
  returned: success, not in check mode
  type: str
base_backup:
  description: The base backup the trial at RV(target_time) recovered from.
  returned: success, not in check mode
  type: str
trials:
  description: Every trial in the order it ran. Also returned when the module fails.
  returned: when not in check mode
  type: list
  elements: dict
  contains:
    target: {description: The recovery target., type: str}
    outcome:
      description: C(pass), C(fail), C(unreachable) or C(error).
      type: str
    value: {description: What the query returned (first column of the first row)., type: str}
    detail: {description: The verdict in a sentence., type: str}
    last_replayed_transaction: {description: Commit time of the last transaction replayed (UTC)., type: str}
    base_backup: {description: The base backup recovered from., type: str}
    seconds:
      description: Seconds the trial took (unpack, replay, query, stop, removal).
      type: float
  sample:
    - {target: "2026-03-14 04:30:00+00", outcome: fail, value: "3", detail: "the query returned 3, not 0",
       last_replayed_transaction: "2026-03-14 02:11:09.734210", base_backup: 20260314T020000Z, seconds: 41.2}
window:
  description: The window searched (C(start), C(end)).
  returned: always
  type: dict
tolerance:
  description: The tolerance in seconds.
  returned: always
  type: float
max_trials_needed:
  description: The most trials this window and tolerance take.
  returned: always
  type: int
leftover_servers_stopped:
  description: PIDs of sandbox servers an interrupted earlier run had left running, stopped before this search.
  returned: when not in check mode
  type: list
  elements: int
sandbox_dir:
  description: The sandbox used (removed again).
  returned: always
  type: str
duration:
  description: Seconds the search took.
  returned: success, not in check mode
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module
from ansible_collections.restoreops.dr.plugins.module_utils._pg_known_good import main as known_good_main


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            query=dict(type="str", required=True),
            expect=dict(type="str", choices=["auto", "true", "zero", "no_rows"], default="auto"),
            database=dict(type="str", default="postgres"),
            login_user=dict(type="str"),
            window_start=dict(type="str"),
            window_end=dict(type="str", required=True),
            tolerance=dict(type="float", default=1.0),
            max_trials=dict(type="int", default=30),
            basebackup_dir=dict(type="path", required=True),
            wal_archive_dir=dict(type="path", required=True),
            sandbox_dir=dict(type="path", required=True),
            port=dict(type="int", default=54329),
            bin_dir=dict(type="path"),
            os_user=dict(type="str", default="postgres"),
            os_group=dict(type="str", default="postgres"),
            settings=dict(type="dict", default={}),
            trial_timeout=dict(type="int", default=600),
            query_timeout=dict(type="int", default=300),
            target_action=dict(type="str", choices=["pause", "promote"], default="pause"),
        ),
        supports_check_mode=True,
    )
    run_module(module, known_good_main)


if __name__ == "__main__":
    main()
