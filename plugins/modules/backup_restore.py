#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_restore
short_description: Restore a borg archive or restic snapshot into a staging directory, resumably, and verify it
version_added: 0.1.0
description:
  - Picks a restore point (the latest, a named one, or the newest one older than O(before) when the latest is
    known to carry logical corruption) and restores it into O(staging_dir)/<snapshot id>, never over live data.
  - Writes a completion marker next to the staging tree only after the restore and the checksum verification
    succeeded. A second run finds the marker and changes nothing; a run that finds a staging tree without the
    marker (an interrupted restore) replaces it.
  - borg 1.x extracts on one core; with O(parallel) above one the archive is split into disjoint path sets that are
    extracted at the same time, one C(borg extract) per worker, and the directories above the split get their
    mode, owner and mtime back from the archive listing. restic restores in parallel by itself.
  - Verifies the restored files against the checksum manifest recorded at backup time (O(manifest_path)); a
    missing or changed file fails the task and leaves the staging tree unmarked for inspection. The manifest and a
    sorted walk of the staging tree are merged as streams, so memory does not grow with the number of files (for
    format 2 manifests); a file whose size differs from the recorded one is reported without being read.
  - Passwords reach the tools through their environment (C(RESTIC_PASSWORD), C(RESTIC_PASSWORD_FILE),
    C(RESTIC_PASSWORD_COMMAND), C(BORG_PASSPHRASE), C(BORG_PASSCOMMAND)), never on the command line.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
  - restoreops.dr.backup_access
attributes:
  check_mode:
    support: full
    details:
      - Lists the restore points (read-only) and reports which one would be restored where.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Idempotent through the completion marker next to the staging tree.
options:
  tool:
    description: Which tool made the backup.
    type: str
    required: true
    choices: [borg, restic]
  repository:
    description:
      - The repository. For borg an absolute path or C(ssh://) URL; for restic a path or a backend URL (C(rest:),
        C(s3:), C(sftp:)).
    type: str
    required: true
  snapshot:
    description:
      - V(latest), a restic snapshot id (full, or at least 8 characters), or a borg archive name.
    type: str
    default: latest
  before:
    description:
      - Restore the newest restore point strictly older than this time (ISO 8601; UTC when no offset is given).
      - Accepted forms are C(YYYY-MM-DDTHH:MM[:SS[.fraction]]) with an optional offset (C(Z), C(+HH), C(+HHMM) or
        C(+HH:MM)), a space allowed instead of the C(T); anything else fails the task with a message naming
        O(before) and these forms, before any tool runs.
      - Meant for logical corruption that started at a known time, which the later backups faithfully captured.
    type: str
  max_age_hours:
    description:
      - The recovery point objective in hours. A chosen restore point older than this fails the task before anything
        is written (the backups may have stopped, and the data since then is not in it), in check mode too, so a
        preflight sees it. Unset, any age is accepted.
    type: float
  allow_stale:
    description: Restore a restore point older than O(max_age_hours) all the same (the operator knows).
    type: bool
    default: false
  host:
    description:
      - For restic, only consider snapshots of this host; for borg, only archives whose name starts with this text.
    type: str
  includes:
    description:
      - Restore only these absolute paths (and everything below them), as on the backed-up host.
      - A relative path, or a path that the chosen restore point does not hold, fails the task before anything is
        written (a typo would otherwise restore an empty tree and mark it complete).
    type: list
    elements: str
    default: []
  staging_dir:
    description:
      - Directory that receives C(<snapshot id>/) with the restored tree and the completion marker.
      - V(/) and a directory inside a local O(repository) are refused, as M(restoreops.dr.borg_repo) refuses a key
        export inside its repository.
    type: path
    required: true
  manifest_path:
    description:
      - Absolute path, as on the backed-up host, of the checksum manifest inside the backup; the files it lists
        under O(includes) are verified. The format is told by content, not by name.
      - Format 2 is what restoreops.dr.backup_context writes today, C(manifest.jsonl.gz) (gzip-compressed JSON
        lines sorted by path, with size and digest per file); it is read as a stream.
      - Format 1 is the C(manifest.json) of older backups (an object whose C(files) member maps absolute paths to
        SHA-256 digests); it is read whole.
    type: path
  parallel:
    description: borg extract workers; V(0) uses one per core. Ignored for restic.
    type: int
    default: 0
  lock_wait:
    description: Seconds borg waits for a repository lock.
    type: int
  limit_download:
    description: restic only - cap the download rate (KiB/s), to leave bandwidth to the systems still serving.
    type: int
  put_in_place:
    description:
      - After the restore is verified and marked complete, move each path of O(includes) from the staging tree to
        its real place, by a rename when the destination is absent or an empty directory, by
        C(rsync -aHAX --numeric-ids) into it otherwise (and the staged copy removed). A path already moved by an
        earlier run is left alone, so a re-run after an interruption finishes the job.
      - Needs O(includes). Nothing is put in place when the verification fails.
    type: bool
    default: false
  estimate_size:
    description:
      - Also report RV(size_estimate), the bytes the restore point holds (C(restic stats --mode restore-size),
        C(borg info)); used by a preflight to check free space. Works in check mode.
    type: bool
    default: false
  progress_file:
    description:
      - While the tool restores, rewrite this file every two seconds with the bytes written so far out of the
        restore point's size (the bytes the tool's processes handed to C(write()), read from C(/proc)), for
        C(restoreops.dr.await_jobs) to print while the module runs as a background job.
      - The restore point's size is read once for it (as with O(estimate_size)) unless O(expected_bytes) gives it.
    type: path
  expected_bytes:
    description: The restore's size in bytes when already known (for example from a preflight's O(estimate_size)).
    type: int
notes:
  - Hard links that cross the parallel split points are restored as separate files.
seealso:
  - module: restoreops.dr.borg_repo
  - module: restoreops.dr.restic_forget_prune
"""

EXAMPLES = r"""
- name: Restore the latest restic snapshot of the app data into staging and verify it
  restoreops.dr.backup_restore:
    tool: restic
    repository: /offsite/restic
    password_file: /root/.restoreops/keys/restic.pass
    includes: [/srv/app, /var/lib/restoreops/context]
    staging_dir: /var/lib/restoreops/staging
    manifest_path: /var/lib/restoreops/context/manifest.jsonl.gz

- name: Restore from before the corruption started, with borg, four extract workers
  restoreops.dr.backup_restore:
    tool: borg
    repository: /offsite/borg
    passphrase_file: /root/.restoreops/keys/borg.pass
    before: "2026-03-14T09:00:00+00:00"
    staging_dir: /var/lib/restoreops/staging
    parallel: 4
"""

RETURN = r"""
snapshot:
  description: The restore point used.
  returned: always
  type: dict
  contains:
    id: {description: Snapshot or archive id., type: str}
    name: {description: Short id (restic) or archive name (borg)., type: str}
    time: {description: When the backup was taken., type: str}
    host: {description: Host that made the snapshot (restic)., type: str}
    paths: {description: Paths in the snapshot (restic)., type: list, elements: str}
    tags: {description: Tags (restic)., type: list, elements: str}
staging_path:
  description: Where the tree was restored.
  returned: always
  type: str
marker:
  description: The completion marker file.
  returned: always
  type: str
restored:
  description: Whether this run restored data (false when the marker showed it was already done).
  returned: always
  type: bool
resumed:
  description: Whether an interrupted earlier attempt was found and replaced.
  returned: always
  type: bool
placed:
  description: With O(put_in_place), what happened to each path (in check mode, what would).
  returned: when put_in_place
  type: list
  elements: dict
  contains:
    path:
      description: The path from O(includes).
      type: str
    how:
      description: C(renamed), C(merged) (rsync into an existing destination) or C(in place) (moved by an earlier run).
      type: str
    changed:
      description: Whether this path changed.
      type: bool
  sample: [{"path": "/srv/app", "how": "renamed", "changed": true}]
lock_waited:
  description:
    - Seconds this run waited for another run restoring the same snapshot into the same O(staging_dir) (it holds
      C(<staging_dir>/<snapshot id>.lock)); after the wait the other run's work is found complete or resumed.
  returned: when not in check mode
  type: float
  sample: 0.0
files:
  description: Regular files in the staging tree.
  returned: when restored or already complete
  type: int
bytes:
  description: Bytes of regular files in the staging tree.
  returned: when restored or already complete
  type: int
workers:
  description: Extract processes used.
  returned: when restored or already complete
  type: int
verify:
  description: The manifest verification.
  returned: when restored or already complete
  type: dict
  contains:
    manifest: {description: Manifest used (null when none)., type: str}
    manifest_format:
      description: Format of that manifest, V(2) (C(manifest.jsonl.gz)) or V(1) (C(manifest.json)).
      type: int
    checked: {description: Files compared., type: int}
    missing:
      description: Files in the manifest that were not restored, in path order; the first 100 (all are counted).
      type: list
      elements: str
    missing_count: {description: How many files of the manifest were not restored., type: int}
    mismatched:
      description: Files whose size or checksum differs, in path order; the first 100 (all are counted).
      type: list
      elements: str
    mismatched_count: {description: How many files differ., type: int}
    ok: {description: True when everything matched; null when no manifest was given., type: bool}
duration:
  description: Seconds spent restoring (0 when already complete).
  returned: when restored or already complete
  type: float
verify_duration:
  description: Seconds spent verifying checksums.
  returned: when restored
  type: float
throughput_mib_s:
  description: Restored MiB per second.
  returned: when restored
  type: float
size_estimate:
  description: Bytes the whole restore point holds once restored (an upper bound when O(includes) narrow it).
  returned: when O(estimate_size=true)
  type: int
tool_version:
  description: Version of borg or restic.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module
from ansible_collections.restoreops.dr.plugins.module_utils._restore import ACCESS_OPTIONS
from ansible_collections.restoreops.dr.plugins.module_utils._restore import main as restore_main


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "tool": {"type": "str", "required": True, "choices": ["borg", "restic"]},
            "repository": {"type": "str", "required": True},
            **ACCESS_OPTIONS,
            "snapshot": {"type": "str", "default": "latest"},
            "before": {"type": "str"},
            "host": {"type": "str"},
            "max_age_hours": {"type": "float"},
            "allow_stale": {"type": "bool", "default": False},
            "includes": {"type": "list", "elements": "str", "default": []},
            "staging_dir": {"type": "path", "required": True},
            "manifest_path": {"type": "path"},
            "parallel": {"type": "int", "default": 0},
            "lock_wait": {"type": "int"},
            "estimate_size": {"type": "bool", "default": False},
            "put_in_place": {"type": "bool", "default": False},
            "limit_download": {"type": "int"},
            "progress_file": {"type": "path"},
            "expected_bytes": {"type": "int"},
        },
        mutually_exclusive=[("password", "password_file", "password_command")],
        supports_check_mode=True,
    )
    run_module(module, restore_main)


if __name__ == "__main__":
    main()
