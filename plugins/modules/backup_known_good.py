#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_known_good
short_description: Find the newest borg archive or restic snapshot whose content passes ransomware validations
version_added: 0.3.0
description:
  - Walks the restore points of a borg or restic repository newest first, only those taken before O(before) (the
    infection time estimate), and gives each the validations below until one passes. Returns that one
    (RV(snapshot), ready for O(restoreops.dr.backup_restore#module:snapshot)) and, for every newer one, why it
    failed (RV(walk)).
  - Validations, in this order; a snapshot fails on the first of the first two that fails, and otherwise on every
    later check that fails.
  - C(markers) - the snapshot's listing (metadata only, no data read; the whole snapshot or O(marker_paths)) is
    matched against O(markers), ransomware's renamed files and ransom notes. A hit fails the snapshot without
    restoring anything and reports the earliest such file's modification time (an infection time hint).
  - C(restore) - the sample O(includes) (and O(manifest_path)) is restored into a directory of its own below
    O(sandbox_dir), never over live data.
  - C(manifest) - with O(manifest_path), the restored sample is compared with the checksum manifest recorded at
    backup time inside the same snapshot (missing and changed files).
  - C(changed) - with O(max_changed_ratio), the share of the sample's files whose checksum changed (or that
    vanished) since the next older snapshot's manifest; encryption rewrites nearly everything at once.
  - Content checks from O(checks) on the restored regular files (symbolic links are never followed).
  - Read-only towards the repository - restic runs with C(--no-lock), borg with C(--bypass-lock) (unless
    O(repository_lock=true)), so a repository on read-only media or under attack is searched without a lock left
    behind. borg extracts with C(--noflags).
  - O(sandbox_dir) must be absent, empty, or a sandbox an earlier run left (it holds C(.restoreops-sandbox)); it
    may not overlap the repository or O(includes). Each snapshot's sample is removed after its validation, and the
    sandbox when the search ends, whatever the outcome.
  - Fails when no candidate passes, with RV(walk) in the result.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
  - restoreops.dr.backup_access
attributes:
  check_mode:
    support: full
    details:
      - Lists the restore points (read-only) and returns the candidates in the order they would be examined; no
        sample is restored.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Reads only; the sandbox is removed when the module ends. C(changed) is always false.
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
  host:
    description:
      - For restic, only consider snapshots of this host; for borg, only archives whose name starts with this text.
    type: str
  before:
    description:
      - Only snapshots taken strictly before this time are candidates (ISO 8601; UTC when no offset is given), for
        example the infection time estimate. Newer ones are listed in RV(walk) as C(skipped).
    type: str
  max_snapshots:
    description: Examine at most this many candidates; V(0) examines every one until one passes.
    type: int
    default: 0
  includes:
    description:
      - The sample to restore and validate, as absolute paths on the backed-up host (everything below them).
    type: list
    elements: str
    required: true
  sandbox_dir:
    description: The scratch directory for the samples (created with mode 0700, removed at the end).
    type: path
    required: true
  markers:
    description:
      - Shell patterns of ransomware file names, matched case-insensitively against each name (against the whole
        path when a pattern holds a C(/)). An empty list turns the marker scan off.
      - The default holds the generic extensions and note names; add the extension of the strain you face.
    type: list
    elements: str
    default: ["*.encrypted", "*.locked", "*.crypt", "*.crypted", "DECRYPT_README*", "README_DECRYPT*",
              "HOW_TO_DECRYPT*", "HOW_TO_RESTORE*", "RESTORE_FILES*", "*_RECOVER_INSTRUCTIONS*"]
  marker_paths:
    description: List and scan only these absolute paths of each snapshot for markers (default the whole snapshot).
    type: list
    elements: str
    default: []
  manifest_path:
    description:
      - Absolute path, as on the backed-up host, of the checksum manifest inside the backup (an object whose
        C(files) member maps absolute paths to SHA-256 digests, as restoreops.dr.backup_context writes it). It is
        restored with the sample, and the sample's files it lists are verified.
    type: path
  max_changed_ratio:
    description:
      - Fail a snapshot when more than this share (0 to 1) of the sample's files listed in the next older
        snapshot's manifest have another checksum in this one's, or are gone. Needs O(manifest_path).
      - Only the older snapshot's manifest is restored for this. Not judged for the oldest candidate.
    type: float
  checks:
    description: Content checks on the restored sample.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description:
          - A shell pattern over absolute paths as on the backed-up host; C(*) also matches C(/), so
            C(/srv/app/*) is every file below C(/srv/app). It must lie inside O(includes).
        type: str
        required: true
      type:
        description:
          - V(exists) - only the number of matching files counts (see O(checks[].min_matches)).
          - V(json) - each file parses as JSON.
          - V(text) - each file is UTF-8 text without NUL bytes.
          - V(sqlite) - each file passes SQLite's C(PRAGMA quick_check), opened read-only.
          - V(entropy) - no file's sampled entropy exceeds O(checks[].max_entropy) (head, middle and tail, 4 KiB
            each; files under 1 KiB are not judged). Point it at data that is not compressed or encrypted by design.
        type: str
        required: true
        choices: [exists, json, text, sqlite, entropy]
      max_entropy:
        description: Bits per byte above which a sampled block counts as encrypted (random data is near 8).
        type: float
        default: 7.5
      min_matches:
        description: At least this many files must match O(checks[].path) (a deleted file fails the check).
        type: int
        default: 1
  repository_lock:
    description:
      - Take the tools' shared repository lock (no C(--no-lock) for restic, no C(--bypass-lock) for borg), for a
        repository that a prune or compaction may change during the search. Fails on read-only media.
    type: bool
    default: false
notes:
  - The walk assumes that once the backups start to carry the damage, every later one does; it stops at the first
    snapshot that passes.
seealso:
  - module: restoreops.dr.backup_restore
  - module: restoreops.dr.pg_known_good
"""

EXAMPLES = r"""
- name: Find the newest restic snapshot from before the infection whose sample is clean
  restoreops.dr.backup_known_good:
    tool: restic
    repository: /offsite/restic
    password_file: /root/.restoreops/keys/restic.pass
    before: "2026-03-14T09:00:00+00:00"
    includes: [/srv/app/data, /var/lib/restoreops/context]
    manifest_path: /var/lib/restoreops/context/manifest.jsonl.gz
    max_changed_ratio: 0.5
    sandbox_dir: /var/tmp/restoreops-known-good
    markers: ["*.encrypted", "DECRYPT_README*", "*.lockbit"]
    checks:
      - {path: "/srv/app/data/*.json", type: json}
      - {path: "/srv/app/data/*.csv", type: entropy}
      - {path: /srv/app/data/orders.db, type: sqlite}
  register: known_good

- name: Restore that snapshot
  restoreops.dr.backup_restore:
    tool: restic
    repository: /offsite/restic
    password_file: /root/.restoreops/keys/restic.pass
    snapshot: "{{ known_good.snapshot.id }}"
    staging_dir: /var/lib/restoreops/staging

- name: The same search in a borg repository, at most five archives
  restoreops.dr.backup_known_good:
    tool: borg
    repository: ssh://backup@127.0.0.1/srv/borg/app
    passphrase_file: /root/.restoreops/keys/borg.pass
    host: app01-
    max_snapshots: 5
    includes: [/srv/app]
    sandbox_dir: /var/tmp/restoreops-known-good
"""

RETURN = r"""
snapshot:
  description: The newest candidate that passed every validation.
  returned: success, not in check mode
  type: dict
  contains:
    id: {description: Snapshot or archive id., type: str}
    name: {description: Short id (restic) or archive name (borg)., type: str}
    time: {description: When the backup was taken., type: str}
    host: {description: Host that made the snapshot (restic)., type: str}
    paths: {description: Paths in the snapshot (restic)., type: list, elements: str}
    tags: {description: Tags (restic)., type: list, elements: str}
walk:
  description:
    - One record per snapshot, newest first - those skipped for being taken after O(before), then those examined up
      to and including the one that passed. Also returned when the module fails because none passed.
  returned: always
  type: list
  elements: dict
  contains:
    snapshot: {description: The snapshot (as RV(snapshot))., type: dict}
    verdict:
      description: C(good), C(bad) or C(skipped).
      type: str
    reasons:
      description: Why it is not good, one sentence per failed check.
      type: list
      elements: str
    checks:
      description: The validations that ran, each with C(check) (its name), C(ok) and C(detail), plus its findings.
      type: list
      elements: dict
    seconds: {description: Seconds spent on this snapshot., type: float}
  sample:
    - snapshot: {id: "5e1f…", name: "5e1f0a2b", time: "2026-03-14T02:00:00Z"}
      verdict: bad
      reasons: ["markers: 3 file(s) named like ransomware (/srv/app/data/a.csv.encrypted, …), the earliest modified
                 2026-03-13T23:41:07+00:00"]
      checks: [{check: markers, ok: false, count: 3, paths: ["/srv/app/data/a.csv.encrypted"],
                earliest: "2026-03-13T23:41:07+00:00", detail: "…"}]
      seconds: 0.4
candidates:
  description: Snapshots taken before O(before) (all of them without it).
  returned: always
  type: int
examined:
  description: Candidates examined.
  returned: when the search ran
  type: int
would_examine:
  description: In check mode, the candidates in the order they would be examined.
  returned: check mode
  type: list
  elements: dict
sandbox_dir:
  description: The sandbox used (removed again).
  returned: always
  type: str
duration:
  description: Seconds the search took.
  returned: when the search ran
  type: float
tool_version:
  description: Version of borg or restic.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.restoreops.dr.plugins.module_utils._content import DEFAULT_MARKERS
from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module
from ansible_collections.restoreops.dr.plugins.module_utils._known_good import main as known_good_main
from ansible_collections.restoreops.dr.plugins.module_utils._restore import ACCESS_OPTIONS


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "tool": {"type": "str", "required": True, "choices": ["borg", "restic"]},
            "repository": {"type": "str", "required": True},
            **ACCESS_OPTIONS,
            "host": {"type": "str"},
            "before": {"type": "str"},
            "max_snapshots": {"type": "int", "default": 0},
            "includes": {"type": "list", "elements": "str", "required": True},
            "sandbox_dir": {"type": "path", "required": True},
            "markers": {"type": "list", "elements": "str", "default": list(DEFAULT_MARKERS)},
            "marker_paths": {"type": "list", "elements": "str", "default": []},
            "manifest_path": {"type": "path"},
            "max_changed_ratio": {"type": "float"},
            "checks": {"type": "list", "elements": "dict", "default": [], "options": {
                "path": {"type": "str", "required": True},
                "type": {"type": "str", "required": True, "choices": ["exists", "json", "text", "sqlite", "entropy"]},
                "max_entropy": {"type": "float", "default": 7.5},
                "min_matches": {"type": "int", "default": 1},
            }},
            "repository_lock": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("password", "password_file", "password_command")],
        supports_check_mode=True,
    )
    run_module(module, known_good_main)


if __name__ == "__main__":
    main()
