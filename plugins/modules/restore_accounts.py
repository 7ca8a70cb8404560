#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restore_accounts
short_description: Recreate users by name from the account map recorded at backup time, and give restored files back
version_added: 0.2.0
description:
  - borg and restic restore owners by number. A user whose number differs on the replacement host (or is taken
    there by someone else) would own nothing of its own data after a restore that "succeeded".
  - Reads C(accounts.json) (and C(host.json), returned as RV(lost_host)) from the restored context of
    C(restoreops.dr.backup_context) in O(context_dir), recreates each user in O(users) and its group by name when
    missing, keeping the recorded number when it is free here, and works out how numbers moved.
  - With O(paths), walks them once (one file system each, links not followed) and gives every file owned by a
    moved number to the new one, applying the whole map at once so that moves never chain.
  - Users and groups are created with C(useradd) and C(groupadd) (no home directory is created; the restore brings
    it back).
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports the users and groups that would be created and the files that would be re-owned; a number the
        system would pick for a new user is unknown then (V(null)).
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  context_dir:
    description: The restored context directory (C(accounts.json), C(host.json)).
    type: path
    required: true
  users:
    description: The users to recreate by name (their groups come along). Each must be in the recorded map.
    type: list
    elements: str
    default: []
  paths:
    description:
      - Restored paths whose files are given back to their owners by name. V(/) is refused.
      - A regular file keeps its setuid and setgid bits and its file capability, which the kernel removes on a change
        of owner.
    type: list
    elements: path
    default: []
"""

EXAMPLES = r"""
- name: Recreate the application user before the data moves
  restoreops.dr.restore_accounts:
    context_dir: /var/lib/restoreops/staging/context/5f1c.../var/lib/restoreops/context
    users: [app]

- name: After the restore, give the files back by name
  restoreops.dr.restore_accounts:
    context_dir: /var/lib/restoreops/staging/context/5f1c.../var/lib/restoreops/context
    users: [app]
    paths: [/srv/app]
"""

RETURN = r"""
users:
  description: One record per user.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The user name.
      type: str
    group:
      description: Its primary group.
      type: str
    old_uid:
      description: The number recorded at backup time.
      type: int
    new_uid:
      description: Its number here (V(null) in check mode for a user the system would number).
      type: int
    old_gid:
      description: The group's recorded number.
      type: int
    new_gid:
      description: The group's number here.
      type: int
    create_user:
      description: The user was (or would be) created by this run.
      type: bool
    create_group:
      description: The group was (or would be) created by this run.
      type: bool
uid_map:
  description: Old user numbers that moved, to their new numbers (keys are strings).
  returned: success
  type: dict
gid_map:
  description: Old group numbers that moved, to their new numbers (keys are strings).
  returned: success
  type: dict
reowned:
  description: Files given back (C(files)), of which C(uid) changed owner and C(gid) changed group.
  returned: success
  type: dict
lost_host:
  description: The lost host's record (C(host.json)), empty when absent.
  returned: success
  type: dict
checks:
  description: Records for the restore report.
  returned: success
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.restoreops.dr.plugins.module_utils._accounts import main as accounts_main  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            context_dir=dict(type="path", required=True),
            users=dict(type="list", elements="str", default=[]),
            paths=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    run_module(module, accounts_main)


if __name__ == "__main__":
    main()
