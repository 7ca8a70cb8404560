#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restic_repo
short_description: Create a restic repository when it is missing, remove its stale locks, optionally check it
version_added: 0.2.0
description:
  - Creates the repository with C(restic init) when there is none at O(repository), and never re-initialises an
    existing one. Whether it exists is read from the repository's C(config) (a local repository's file is looked
    at, a remote one is asked with C(restic cat config)); a wrong password is an error, never a reason to create.
  - A local path that exists, is not empty and holds no restic repository is refused.
  - Reads the repository's locks and removes the stale ones (O(stale_locks=remove)) with C(restic unlock), which
    removes only locks whose holder is provably gone, the rule M(restoreops.dr.restic_forget_prune) uses; a live lock
    is never removed and stops the run.
  - Optionally runs C(restic check), with or without reading a part of the data.
  - Optionally lists the snapshots and measures the newest one with C(restic stats) (O(snapshot_stats)).
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
  - restoreops.dr.restic
attributes:
  check_mode:
    support: full
    details:
      - Check mode writes nothing to the repository. It reports a repository it would create and the stale locks it
        would remove in RV(actions); a requested O(check) runs with C(--no-lock).
  diff_mode:
    support: full
    details:
      - Shows the creation and the stale locks removed.
  idempotent:
    support: full
options:
  state:
    description:
      - V(present) creates the repository when it is missing. There is no other state; this module never removes a
        repository.
    type: str
    choices: [present]
    default: present
  stale_locks:
    description:
      - V(remove) removes stale locks; V(fail) fails when one is found and removes nothing; V(ignore) only reports
        them in RV(locks).
      - A lock is stale when it is older than 30 minutes, when it is held on this host by a process that no longer
        exists, or when it is held by a host listed in O(dead_hosts).
      - A live lock is never removed. With V(remove) and V(fail) it fails the task, naming its holder.
    type: str
    choices: [remove, fail, ignore]
    default: remove
  dead_hosts:
    description:
      - Host names (as restic records them in its locks) that are gone, for example the server a restore replaces.
        Their locks are stale whatever their age. This host's own name is never taken as dead.
    type: list
    elements: str
    default: []
  check:
    description:
      - V(none), V(structure) (C(restic check)), or V(read_data_subset) (C(restic check --read-data-subset)) with the
        part of the data given in O(read_data_subset).
      - A failed check fails the task.
    type: str
    choices: [none, structure, read_data_subset]
    default: none
  new_password:
    description:
      - Rotate the repository's key to this password - C(restic key add) (restic reads the new password from a 0600
        file, never the command line), then C(restic key remove) of the key the current password opens, then proof
        that the current password no longer opens the repository. Idempotent - nothing happens when the new password
        opens the repository and the current one does not.
      - The rest of the run (creation check, locks, O(check)) then uses the new password.
      - Mutually exclusive with O(new_password_file).
    type: str
  new_password_file:
    description: Absolute path of a file whose first line is the new password (see O(new_password)).
    type: path
  remove_old_key:
    description:
      - With O(new_password) or O(new_password_file), remove the key the current password opens. An append-only
        server (C(rclone serve restic --append-only), rest-server C(--append-only)) refuses that; set V(false) there
        and have the server's administrator remove the key file (its id is C(old_key_id) in RV(key_rotation)).
    type: bool
    default: true
  read_data_subset:
    description:
      - With O(check=read_data_subset), the part of the data to read, such as V(5%), V(1/10) or V(500M).
    type: str
  snapshot_stats:
    description:
      - Also list the snapshots (C(restic snapshots --json --no-lock)) and read the newest one's size with
        C(restic stats --json --no-lock --mode restore-size), into RV(snapshots). Two more restic starts.
    type: bool
    default: false
    version_added: 0.3.0
notes:
  - An idempotent run starts restic twice (C(restic version) and C(restic cat config)); the locks of a local
    repository are read with restic only when its C(locks) directory holds any.
seealso:
  - module: restoreops.dr.restic_forget_prune
"""

EXAMPLES = r"""
- name: Create the repository if it is missing and remove stale locks
  restoreops.dr.restic_repo:
    repository: /srv/restic/app
    password_file: /etc/restic/app.pass

- name: An S3 repository, checked with 5% of its data read
  restoreops.dr.restic_repo:
    repository: s3:https://s3.example.org/backups
    password_command: /usr/local/bin/restic-pass app
    env:
      AWS_ACCESS_KEY_ID: "{{ vault_s3_key_id }}"
      AWS_SECRET_ACCESS_KEY: "{{ vault_s3_secret }}"
    check: read_data_subset
    read_data_subset: 5%

- name: After a server loss, release the locks the lost server left
  restoreops.dr.restic_repo:
    repository: rest:http://127.0.0.1:8000/app
    password_file: /root/.restoreops/keys/app.pass
    dead_hosts:
      - db1-old
  register: release
"""

RETURN = r"""
restic_version:
  description: The version C(restic version) reported; restic 0.17 and later give specific exit codes.
  returned: success
  type: str
  sample: 0.18.0
created:
  description: Whether the repository was created by this run (in check mode, would be).
  returned: success
  type: bool
  sample: false
repo_id:
  description: The repository's id from its config; null in check mode before it exists.
  returned: success
  type: str
  sample: 9f3c0d1e5b2a4c7d8e6f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d
repository_version:
  description: The repository format version (1 or 2); null in check mode before it exists.
  returned: success
  type: int
  sample: 2
key_rotation:
  description:
    - The key rotation, null without O(new_password) or O(new_password_file). C(changed), C(old_key_id) (the key
      the current password opened), C(new_key_id), C(new_opens), C(old_refused) (proven after the removal).
  returned: success
  type: dict
  sample: {"changed": true, "old_key_id": "04f680bc", "new_key_id": "9a1c03de", "new_opens": true, "old_refused": true}
locks:
  description: The locks found, each with whether it is stale and whether this run removed it.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: The lock's id.
      type: str
    time:
      description: When the lock was taken or last refreshed (RFC 3339).
      type: str
    hostname:
      description: The host of the lock's holder.
      type: str
    pid:
      description: The holder's process id on that host.
      type: int
    exclusive:
      description: Whether the lock is exclusive.
      type: bool
    stale:
      description: Whether the lock is stale (see O(stale_locks)).
      type: bool
    removed:
      description: Whether this run removed it.
      type: bool
  sample:
    - {"id": "9c1d77e0...", "time": "2026-11-23T08:02:11Z", "hostname": "db1-old", "pid": 4120, "exclusive": true,
       "stale": true, "removed": true}
actions:
  description: What was done (in check mode, would be done).
  returned: success
  type: list
  elements: str
  sample: ["restic init"]
check:
  description: The C(restic check) that ran (O(check)).
  returned: success
  type: dict
  contains:
    mode:
      description: The O(check) asked for.
      type: str
    ok:
      description: Whether it passed; null when it did not run.
      type: bool
  sample: {"mode": "structure", "ok": true}
snapshots:
  description:
    - With O(snapshot_stats), the number of snapshots and the newest one (by time), with the size a restore of it
      writes (C(stats.total_size), bytes) and its file count, as C(restic stats) reports them; C(last) is null when
      there is no snapshot.
    - Also returned with a failed O(check).
  returned: when O(snapshot_stats=true)
  type: dict
  contains:
    count:
      description: How many snapshots the repository holds.
      type: int
    last:
      description: The newest snapshot (C(id), C(short_id), C(time), C(hostname), C(paths), C(tags), C(stats)).
      type: dict
  sample: {"count": 14, "last": {"id": "5b2a4c7d8e6f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d9f3c0d1e",
                                 "short_id": "5b2a4c7d", "time": "2026-11-23T02:00:04.281930122+01:00",
                                 "hostname": "db1", "paths": ["/srv/app"], "tags": [],
                                 "stats": {"total_size": 5368709120, "total_file_count": 48211}}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.restoreops.dr.plugins.module_utils._restic.cli import run_restic_module
from ansible_collections.restoreops.dr.plugins.module_utils._restic.repo import main as repo_main

# With the repository options of the restoreops.dr.restic doc fragment (added by run_restic_module).
OPTIONS = dict(
    state=dict(type="str", default="present", choices=["present"]),
    stale_locks=dict(type="str", default="remove", choices=["remove", "fail", "ignore"]),
    dead_hosts=dict(type="list", elements="str", default=[]),
    check=dict(type="str", default="none", choices=["none", "structure", "read_data_subset"]),
    read_data_subset=dict(type="str"),
    new_password=dict(type="str", no_log=True),
    new_password_file=dict(type="path", no_log=False),
    remove_old_key=dict(type="bool", default=True),
    snapshot_stats=dict(type="bool", default=False),
)


def main() -> None:
    run_restic_module(AnsibleModule, OPTIONS, repo_main,
                      required_if=[("check", "read_data_subset", ("read_data_subset",))])


if __name__ == "__main__":
    main()
