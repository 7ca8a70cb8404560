#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_forget_prune
short_description: Apply a restic retention policy and reclaim the space (forget + prune)
version_added: 0.1.0
description:
  - Runs C(restic forget) with a retention policy and, by default, C(--prune) in the same run, so that the data of
    forgotten snapshots really leaves the repository.
  - Returns the snapshots removed and kept (with restic's reasons), the repository size before and after, and the
    result of an optional C(restic check).
  - Stale locks (left by a killed restic) are removed with C(restic unlock), which never removes a live lock; a
    live lock stops the run before anything is removed.
  - In check mode only restic's dry runs are used (C(forget --dry-run --prune)); nothing in the repository changes.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
  - restoreops.dr.restic
attributes:
  check_mode:
    support: full
    details:
      - Runs C(restic forget --dry-run --prune --no-lock) and returns what would be removed.
  diff_mode:
    support: full
    details:
      - The diff lists the snapshots before and after retention.
  idempotent:
    support: full
    details:
      - A second run with the same policy removes nothing and reports no change.
options:
  keep_last:
    description: Keep the N most recent snapshots (C(--keep-last)).
    type: int
  keep_hourly:
    description:
      - For each of the last N hours that have snapshots, keep the newest one of that hour.
    type: int
  keep_daily:
    description: Keep the newest snapshot of each of the last N days on which there is one (C(--keep-daily)).
    type: int
  keep_weekly:
    description:
      - The same per week, for the last N weeks with a snapshot.
      - Weeks run from Monday to Sunday.
    type: int
  keep_monthly:
    description: The newest snapshot of each of the last N months that have one is kept.
    type: int
  keep_yearly:
    description:
      - The newest snapshot of each of the last N calendar years with a snapshot (C(--keep-yearly)); usually the
        rule that reaches furthest back.
    type: int
  keep_within:
    description: Keep every snapshot newer than this restic duration (for example V(30d) or V(1y6m)) relative to the
      newest snapshot.
    type: str
  keep_tags:
    description:
      - Keep every snapshot that has this tag list (each item may be V(tag1,tag2)).
      - restic before 0.17.0 forgets every snapshot of a group that keeps nothing (restic issue 4568). On those
        versions the module lists the snapshots the filters select first and refuses, in check mode too, a tag
        that no snapshot has, and a policy whose only rule is O(keep_tags) when a group has no snapshot with one of
        the tags. restic 0.17.0 and later refuse such a policy themselves.
    type: list
    elements: str
    default: []
  group_by:
    description: How restic groups snapshots before applying the policy (V(host), V(paths), V(tags), comma
      separated; an empty string disables grouping).
    type: str
    default: host,paths
  host:
    description: Only consider snapshots of these hosts.
    type: list
    elements: str
    default: []
  tags:
    description: Only consider snapshots with these tag lists.
    type: list
    elements: str
    default: []
  paths:
    description: Only consider snapshots of these absolute paths.
    type: list
    elements: str
    default: []
  prune:
    description:
      - Run the prune in the same restic call (C(forget --prune)) so the space is reclaimed.
      - V(false) only forgets (for a separate prune schedule); the result then says RV(space_reclaimed=false) and
        a warning says so.
    type: bool
    default: true
  unlock_stale:
    description:
      - Remove stale locks with C(restic unlock) (without C(--remove-all)) when they block retention.
      - A live lock is never removed; it stops the run and is reported in the error.
    type: bool
    default: true
  check_after:
    description:
      - V(none), V(structure) (C(restic check)), or a C(--read-data-subset) value such as V(5%), V(1/10) or
        V(500M) to also read that part of the data.
      - A failed check fails the task after retention has run.
    type: str
    default: none
notes:
  - A policy that keeps nothing is refused before restic runs.
  - An append-only backend (for example C(rclone serve restic --append-only)) refuses deletes; the module then
    fails with "this repository is append-only; run retention from the maintenance host with full credentials".
  - For a local repository the sizes are the bytes of its files on disk; for remote backends they come from
    C(restic stats --mode raw-data) (the unique data the snapshots reference).
"""

EXAMPLES = r"""
- name: Keep 7 daily, 4 weekly and 12 monthly snapshots and reclaim the space
  restoreops.dr.restic_forget_prune:
    repository: /srv/restic/app
    password_file: /etc/restic/app.pass
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 12
    check_after: 5%

- name: Retention of an S3 repository from the maintenance host
  restoreops.dr.restic_forget_prune:
    repository: s3:https://s3.example.org/backups
    password_command: /usr/local/bin/restic-pass app
    env:
      AWS_ACCESS_KEY_ID: "{{ vault_s3_key_id }}"
      AWS_SECRET_ACCESS_KEY: "{{ vault_s3_secret }}"
    keep_within: 30d
    host:
      - db1
  register: retention

- name: Preview what would go
  restoreops.dr.restic_forget_prune:
    repository: /srv/restic/app
    password_file: /etc/restic/app.pass
    keep_last: 10
  check_mode: true
  register: preview
"""

RETURN = r"""
removed:
  description: Snapshots removed (in check mode, that would be removed), oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Snapshot ID.
      type: str
    short_id:
      description: The first 8 characters of the ID.
      type: str
    time:
      description: Snapshot time as restic prints it (RFC 3339).
      type: str
    host:
      description: Host name recorded in the snapshot.
      type: str
    paths:
      description: Backed-up paths.
      type: list
      elements: str
    tags:
      description: Snapshot tags.
      type: list
      elements: str
  sample: [{"id": "55178cc7...", "short_id": "55178cc7", "time": "2026-01-01T10:00:00Z", "host": "db1",
            "paths": ["/srv/data"], "tags": []}]
kept:
  description: Snapshots kept, oldest first; same fields as RV(removed).
  returned: success
  type: list
  elements: dict
reasons:
  description: Why each kept snapshot was kept, from restic's JSON.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The kept snapshot's ID.
      type: str
    time:
      description: The kept snapshot's time.
      type: str
    matches:
      description: The policy rules it satisfied, for example V(daily snapshot).
      type: list
      elements: str
    counters:
      description: restic's remaining counters per rule.
      type: dict
  sample: [{"id": "7887e203...", "time": "2026-02-01T10:00:00Z", "matches": ["daily snapshot"],
            "counters": {"daily": 1}}]
prune:
  description: Whether the prune ran and the repository size around it.
  returned: success
  type: dict
  contains:
    ran:
      description: True when data was pruned in this run (never in check mode).
      type: bool
    bytes_before:
      description: Repository size before retention; null when O(prune=false).
      type: int
    bytes_after:
      description: Repository size after the prune; null when unknown (check mode, or no prune).
      type: int
  sample: {"ran": true, "bytes_before": 10485760, "bytes_after": 4194304}
space_reclaimed:
  description: True when snapshots were removed and their data pruned in this run.
  returned: success
  type: bool
check:
  description: The C(restic check) that ran after retention (O(check_after)).
  returned: success
  type: dict
  contains:
    ran:
      description: Whether a check ran.
      type: bool
    ok:
      description: Whether it passed; null when it did not run.
      type: bool
  sample: {"ran": true, "ok": true}
locks:
  description: Locks found when they had to be inspected (check mode, or when forget was blocked).
  returned: success
  type: list
  elements: dict
  sample: [{"id": "4f0ba26b...", "time": "2026-11-23T11:29:40Z", "hostname": "db1", "pid": 21735,
            "exclusive": false, "stale": true, "removed": true}]
restic_version:
  description: The restic version that ran.
  returned: success
  type: str
  sample: 0.14.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import run_restic_module
from ansible_collections.restoreops.dr.plugins.module_utils._restic.retention import main as retention_main
from ansible_collections.restoreops.dr.plugins.module_utils._restic.retention import retention_argument_spec

# With the repository options of the restoreops.dr.restic doc fragment (added by run_restic_module).
OPTIONS = dict(
    **retention_argument_spec(),
    keep_tags=dict(type="list", elements="str", default=[]),
    group_by=dict(type="str", default="host,paths"),
    host=dict(type="list", elements="str", default=[]),
    tags=dict(type="list", elements="str", default=[]),
    paths=dict(type="list", elements="str", default=[]),
    prune=dict(type="bool", default=True),
    unlock_stale=dict(type="bool", default=True),
    check_after=dict(type="str", default="none"),
)


def main() -> None:
    run_restic_module(AnsibleModule, OPTIONS, retention_main)


if __name__ == "__main__":
    main()
