#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: await_jobs
short_description: Wait for background jobs on a host and print their progress while they run
version_added: 0.2.0
description:
  - Waits for one or more jobs started with C(async) and C(poll=0) on the same host (a data restore and a
    PostgreSQL recovery running side by side, for example) and returns each job's own result.
  - While a job runs, prints one line for it at least every O(interval) seconds in the normal C(ansible-playbook)
    output, read from the job's progress file on the host, for example
    C(restore data 42% 12.3 GiB / 29.1 GiB 210 MiB/s ETA 1m20s (host)). The rate and the time left are worked out on
    the controller from successive readings.
  - The progress file is written by the collection's long-running modules
    (for example C(restoreops.dr.backup_restore) with its C(progress_file) option). A job without one is waited for
    silently.
  - This is an action plugin with a module of the same name. Each round runs the module on the host once; it
    watches the jobs' result files for up to O(interval) seconds and returns as soon as one of them ends (so a job
    is collected within a fraction of a second of its end, not at the next round), with every job's progress.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - Only reads; a job whose O(jobs[].jid) is empty (its task was skipped, as in check mode) is listed in
        RV(skipped_jobs) and not waited for. A finished job's result file is left in place (O(cleanup) applies
        outside check mode only).
  diff_mode:
    support: none
  idempotent:
    support: N/A
    details:
      - It reports the jobs' own C(changed).
options:
  jobs:
    description: The jobs to wait for.
    type: list
    elements: dict
    required: true
    suboptions:
      jid:
        description: The C(ansible_job_id) the job's task registered. Empty means the job did not start.
        type: str
      label:
        description: What the job does, for messages (for example V(restore data)).
        type: str
        required: true
      progress_file:
        description: The job's progress file on the host.
        type: path
  interval:
    description: Seconds between two polls (and two progress lines), from 1 to 60; anything else fails the task.
    type: int
    default: 10
  timeout:
    description:
      - Seconds to wait in all (at least 1). A job still running then fails this task and keeps running on the host.
    type: int
    default: 86400
  cleanup:
    description: Remove each finished job's result file from the host's async directory.
    type: bool
    default: true
  async_dir:
    description:
      - Where the host keeps the results of async jobs. The action sets it from the connection's shell
        (C(async_dir), by default C(~/.ansible_async)); set it only when running the module without the action.
    type: path
    default: ~/.ansible_async
notes:
  - The progress lines go through Ansible's display, so C(ansible-runner) (and AWX) record them as job events.
"""

EXAMPLES = r"""
- name: Restore the files in the background
  restoreops.dr.backup_restore:
    tool: restic
    repository: s3:https://s3.example.com/backups
    password_file: /root/.restic.pass
    staging_dir: /var/lib/restoreops/staging
    includes: [/srv/app]
    progress_file: /var/lib/restoreops/data.progress
  async: 86400
  poll: 0
  register: restore_job

- name: Wait for it, showing progress every 10 seconds
  restoreops.dr.await_jobs:
    jobs:
      - jid: "{{ restore_job.ansible_job_id }}"
        label: restore data
        progress_file: /var/lib/restoreops/data.progress
  register: waited
"""

RETURN = r"""
jobs:
  description: One record per job that ran, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    label:
      description: The job's label.
      type: str
    jid:
      description: The job id.
      type: str
    failed:
      description: Whether the job failed (or did not finish within O(timeout)).
      type: bool
    msg:
      description: The job's message.
      type: str
    result:
      description: The job's own module result.
      type: dict
skipped_jobs:
  description: Labels of the jobs that had no job id.
  returned: always
  type: list
  elements: str
progress:
  description: The last progress line printed for each job, by label.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.restoreops.dr.plugins.module_utils._progress import watch_jobs  # noqa: E402


def main() -> None:
    """The host side: watch the jobs for up to ``interval`` seconds (the action calls this once per round)."""
    module = AnsibleModule(
        argument_spec=dict(
            jobs=dict(type="list", elements="dict", required=True, options=dict(
                jid=dict(type="str"),
                label=dict(type="str", required=True),
                progress_file=dict(type="path"),
            )),
            interval=dict(type="int", default=10),
            timeout=dict(type="int", default=86400),
            cleanup=dict(type="bool", default=True),
            async_dir=dict(type="path", default="~/.ansible_async"),
        ),
        supports_check_mode=True,
    )
    jobs = [job for job in module.params["jobs"] if job.get("jid")]
    watched = watch_jobs(jobs, module.params["async_dir"], float(max(0, min(module.params["interval"], 60))))
    module.exit_json(changed=False, **watched)


if __name__ == "__main__":
    main()
