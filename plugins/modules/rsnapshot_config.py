#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: rsnapshot_config
short_description: Check an rsnapshot configuration for spaces instead of tabs, run configtest, check freshness
version_added: 0.1.0
description:
  - rsnapshot splits each configuration line on TAB characters only. A line whose fields are separated by spaces
    is refused with a cryptic message, or read as a backup point with a wrong source. This module reads the file
    itself and reports each such line with its line number and the line with tabs that fixes it.
  - Runs C(rsnapshot -c PATH configtest) and reports its verdict (by exit code) and its C(ERROR) lines.
  - Checks that the newest snapshot directory of the lowest retain level (for example C(daily.0) or C(alpha.0)
    under C(snapshot_root)) exists and is younger than O(max_age_hours), by its modification time (rsnapshot sets
    it at the end of each run).
  - With O(fix=true) the fixable lines are rewritten with tabs (atomically, mode and owner kept); every other line
    is left byte for byte.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(fix=true) check mode reports what would be rewritten, and runs C(configtest) on a temporary copy
        with the fix applied; the file is not touched.
  diff_mode:
    support: full
    details:
      - With O(fix=true) the diff shows the file before and after the rewrite.
  idempotent:
    support: full
    details:
      - A fixed file has nothing left to fix; a second run reports no change.
options:
  path:
    description: The rsnapshot configuration file (an absolute path).
    type: path
    default: /etc/rsnapshot.conf
  fix:
    description:
      - Rewrite the lines where spaces stand in for tabs (and strip whitespace around directives).
      - Lines with an unknown directive are reported but never rewritten.
    type: bool
    default: false
  configtest:
    description: Run C(rsnapshot -c PATH configtest).
    type: bool
    default: true
  check_freshness:
    description: Check the age of the newest snapshot directory.
    type: bool
    default: true
  interval:
    description:
      - The retain level whose C(.0) directory is the newest snapshot.
      - Defaults to the first C(retain) (or C(interval)) line of the file, which is the most frequent level.
    type: str
  max_age_hours:
    description: The newest snapshot may be at most this many hours old.
    type: float
    default: 25
  rsnapshot_bin:
    description: The rsnapshot executable (name on PATH or absolute path).
    type: str
    default: rsnapshot
  fail_on_problem:
    description:
      - Fail the task when any problem is found. The failed result still carries every return value.
      - Set to V(false) to collect the findings and decide in the playbook (as the policy audit does).
    type: bool
    default: true
notes:
  - C(include_conf) files are not followed; check each of them with its own task.
  - With O(fix=true) the fix is written before the other checks are judged; when C(configtest) or the freshness
    check then fails (and O(fail_on_problem=true)), the task fails with RV(fixed=true) and the file fixed. Bad input
    (a missing file, an unknown O(interval)) fails before anything is written.
  - A value that may legitimately hold spaces (a command with arguments, rsync options, a path) is only flagged
    when the directive itself is separated from it by spaces, or when the line has fewer tab-separated fields than
    the directive needs.
"""

EXAMPLES = r"""
- name: Check the rsnapshot configuration and the age of daily.0
  restoreops.dr.rsnapshot_config:
    path: /etc/rsnapshot.conf
    interval: daily
    max_age_hours: 25

- name: Replace spaces with tabs where rsnapshot needs them, showing the diff
  restoreops.dr.rsnapshot_config:
    path: /etc/rsnapshot.conf
    fix: true
    check_freshness: false
  diff: true

- name: Collect findings without failing (for an audit)
  restoreops.dr.rsnapshot_config:
    path: /etc/rsnapshot.conf
    fail_on_problem: false
  register: rsnapshot_check

- name: Show each line to fix
  ansible.builtin.debug:
    msg: "{{ item.line }}: {{ item.fix }}"
  loop: "{{ rsnapshot_check.lines }}"
  loop_control:
    label: "{{ item.line }}"
"""

RETURN = r"""
path:
  description: The configuration file checked.
  type: str
  returned: always
  sample: /etc/rsnapshot.conf
ok:
  description: True when no problem was found (no bad line, configtest passed, newest snapshot fresh).
  type: bool
  returned: always
problems:
  description: Every problem found, one sentence each.
  type: list
  elements: str
  returned: always
  sample:
    - "line 4: spaces separate the fields of 'retain'; rsnapshot needs tabs. Fix: 'retain\\tdaily\\t7'"
    - "The newest snapshot /srv/snapshots/daily.0 is 49.2 h old, older than 25 h."
lines:
  description: The lines rsnapshot would misread, in file order (also those already fixed by this run).
  type: list
  elements: dict
  returned: always
  contains:
    line:
      description: Line number, starting at 1.
      type: int
    directive:
      description: The directive of the line.
      type: str
    kind:
      description:
        - V(spaces) spaces separate fields, V(leading_whitespace), V(trailing_whitespace), or
          V(unknown_directive) (reported, never fixed).
      type: str
    text:
      description: The line as it is in the file.
      type: str
    fix:
      description: The line with tabs, or null when there is no safe fix.
      type: str
    message:
      description: One sentence naming the line and the fix.
      type: str
fixed:
  description: Whether the file was (or in check mode would be) rewritten.
  type: bool
  returned: always
configtest:
  description: The outcome of C(rsnapshot configtest).
  type: dict
  returned: always
  contains:
    ran:
      description: Whether configtest ran.
      type: bool
    ok:
      description: Exit code 0.
      type: bool
    rc:
      description: Exit code.
      type: int
    errors:
      description: The C(ERROR) lines rsnapshot printed.
      type: list
      elements: str
    output:
      description: The end of rsnapshot's output.
      type: str
snapshot:
  description: The freshness check of the newest snapshot directory.
  type: dict
  returned: always
  contains:
    checked:
      description: Whether the freshness check ran.
      type: bool
    path:
      description: The directory checked, C(<snapshot_root>/<interval>.0).
      type: str
    interval:
      description: The retain level.
      type: str
    exists:
      description: Whether the directory exists.
      type: bool
    mtime:
      description: Its modification time (seconds since the epoch).
      type: float
    age_hours:
      description: Its age in hours.
      type: float
    max_age_hours:
      description: The threshold.
      type: float
    fresh:
      description: True when it exists and is not older than the threshold.
      type: bool
    message:
      description: Why it is not fresh.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (modules keep their docs first)

from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._rsnapshot import main  # noqa: E402


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/rsnapshot.conf"),
            fix=dict(type="bool", default=False),
            configtest=dict(type="bool", default=True),
            check_freshness=dict(type="bool", default=True),
            interval=dict(type="str"),
            max_age_hours=dict(type="float", default=25),
            rsnapshot_bin=dict(type="str", default="rsnapshot"),
            fail_on_problem=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )


def entry() -> None:
    run_module(build_module(), main)


if __name__ == "__main__":
    entry()
