#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_restore
short_description: Restore a borg archive, restic snapshot or rsnapshot snapshot into staging, resumably, and verify it
version_added: 0.1.0
description:
  - Picks a restore point (the latest, a named one, or the newest one older than O(before) when the latest is
    known to carry logical corruption) and restores it into O(staging_dir)/<snapshot id>, never over live data.
  - Writes a completion marker next to the staging tree only after the restore and the checksum verification
    succeeded. A second run finds the marker and changes nothing.
  - A run that finds a staging tree without the marker (an interrupted restore) resumes it - it keeps what was
    already restored and transfers only what is missing or wrong, then verifies the whole tree against the manifest
    (content and RV(verify.fidelity)) as always. How depends on the tool (RV(resume.method)).
  - restic 0.17 and later (V(overwrite-if-changed)) - C(restic restore --overwrite if-changed) into the existing
    tree; restic takes a file of matching size and mtime as restored and checks the content of any other existing
    file, fetching only the parts that differ.
  - restic before 0.17 (V(missing-paths)), which rewrites whatever it restores - the partial tree is compared with
    C(restic ls --json) and the manifest (its own copy restored first); a file is kept when its SHA-256 matches the
    manifest, or, for a file the manifest does not list, when its size and mtime match the snapshot (restic sets
    the mtime last). The other files, with the other names of their hard links (from a manifest that records them),
    are removed and restored again with at most 200 C(--include) patterns (a directory whose files are all missing
    is named once; more paths are grouped by directory). Directories then get the snapshot's mode, owner and mtime.
  - borg (V(borg-sets)) - the archive is cut into disjoint path sets (16 per worker, at most 64, none below
    O(borg_set_bytes)), extracted O(parallel) at a time, one C(borg extract) each. Each finished set is recorded in
    C(<staging_dir>/<snapshot id>.resume.json); a re-run removes what an unfinished set left and extracts only the
    unfinished sets. The directories above the split get their mode, owner and mtime back from the archive listing.
    A hard link whose two names fell into two path sets (two files after the extraction) is joined again from the
    listing.
  - rsnapshot (V(rsync)) - C(rsync --archive --hard-links --acls --xattrs --sparse --numeric-ids --delete) from the
    snapshot (locally or over SSH); rsync transfers only the files whose size or mtime differ, so a re-run is a
    resume by itself, and C(--delete) removes what a killed rsync left half-written.
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
      - With an interrupted restore in staging, also reports what a run would keep and transfer (RV(resume)),
        without writing - C(restic restore --dry-run) (0.17+), the comparison with the listing and the manifest
        (restic before 0.17), the record of finished sets (borg), C(rsync --dry-run) (rsnapshot).
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
    choices: [borg, restic, rsnapshot]
  repository:
    description:
      - The repository. For borg an absolute path or C(ssh://) URL; for restic a path or a backend URL (C(rest:),
        C(s3:), C(sftp:)).
      - For rsnapshot the snapshot root (rsnapshot's C(snapshot_root)), an absolute path or C(user@host:/path),
        read with rsync over SSH (O(ssh_command)).
    type: str
    required: true
  snapshot:
    description:
      - V(latest), a restic snapshot id (full, or at least 8 characters), or a borg archive name.
      - For rsnapshot a snapshot directory such as V(daily.0) or V(weekly.1), or a snapshot id (RV(snapshot.id), its
        directory's mtime such as C(20261201T033000Z), which stays with the snapshot when rsnapshot rotates it);
        V(latest) is the snapshot directory with the newest mtime (C(daily.0) when daily is the most frequent
        level).
    type: str
    default: latest
  before:
    description:
      - Restore the newest restore point strictly older than this time (ISO 8601; UTC when no offset is given).
      - Accepted forms are C(YYYY-MM-DDTHH:MM[:SS[.fraction]]) with an optional offset (C(Z), C(+HH), C(+HHMM) or
        C(+HH:MM)), a space allowed instead of the C(T); anything else fails the task with a message naming
        O(before) and these forms, before any tool runs.
      - Meant for logical corruption that started at a known time, which the later backups faithfully captured.
      - For rsnapshot a snapshot's time is its directory's mtime (rsnapshot sets it when the snapshot is made).
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
      - A format 2 manifest recorded by this version also holds each file's mode, allocated blocks, hard-link group and
        extended attributes (POSIX ACLs among them), and the symbolic links and directories; the restored tree is
        compared with them too (RV(verify.fidelity)). borg extracts with C(--sparse), restic 0.15 and later restore
        with C(--sparse) (on every restore of a resume too), rsync reads rsnapshot snapshots with C(--sparse).
    type: path
  parallel:
    description: borg extract workers (path sets extracted at the same time); V(0) uses one per core. Ignored for
      restic and rsnapshot.
    type: int
    default: 0
  lock_wait:
    description: Seconds borg waits for a repository lock.
    type: int
  limit_download:
    description:
      - restic and rsnapshot - cap the download rate (KiB/s), to leave bandwidth to the systems still serving
        (restic C(--limit-download), rsync C(--bwlimit)).
    type: int
  put_in_place:
    description:
      - After the restore is verified and marked complete, move each path of O(includes) from the staging tree to
        its real place, by a rename when the destination is absent or an empty directory, by
        C(rsync -aHAXS --numeric-ids) into it otherwise (and the staged copy removed). A path already moved by an
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
  borg_set_bytes:
    description:
      - borg only. The smallest path set a borg restore is cut into (the unit of resume). Smaller sets lose less
        when a restore is interrupted, and each costs one more C(borg extract) (a few tenths of a second to start
        and to read the archive's item list).
      - The default, 64 MiB, keeps that cost small; an archive below O(parallel) times it is cut into one set per
        worker.
    type: int
    default: 67108864
  rsnapshot_prefix:
    description:
      - rsnapshot only. The directory inside each snapshot that holds the backed-up host's tree - the destination
        field of rsnapshot's C(backup) line (V(localhost) in M(restoreops.dr.rsnapshot_config)'s and the
        restoreops.dr.rsnapshot role's default). O(includes) and O(manifest_path) are found below it under their
        absolute paths, as rsnapshot's C(--relative) stored them.
    type: str
    default: localhost
  ssh_command:
    description:
      - rsnapshot only, for a C(user@host:/path) O(repository). The remote shell rsync uses (its C(-e)), for
        example C(ssh -p 2222 -i /root/.ssh/restore_key). No secret belongs here; a key is named by its file.
    type: str
notes:
  - Hard links that cross the borg path sets are extracted as separate files by two borg processes and joined
    again afterwards (a name whose source was not restored, outside O(includes), keeps its own copy).
  - rsnapshot snapshots are not encrypted; O(password), O(password_file), O(password_command), O(cache_dir),
    O(lock_wait) and O(host) do not apply to them and are refused.
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

- name: Restore /srv/app from the newest rsnapshot snapshot on the backup server, over SSH
  restoreops.dr.backup_restore:
    tool: rsnapshot
    repository: root@backup1:/var/cache/rsnapshot
    snapshot: daily.0
    rsnapshot_prefix: app1
    ssh_command: ssh -i /root/.ssh/restore_key
    includes: [/srv/app, /var/lib/restoreops/context]
    staging_dir: /var/lib/restoreops/staging
    manifest_path: /var/lib/restoreops/context/manifest.jsonl.gz
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
    paths: {description: Paths in the snapshot (restic; rsnapshot - the backup point read)., type: list, elements: str}
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
  description: Whether an interrupted earlier attempt was found in staging and resumed (see RV(resume)).
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
    fidelity:
      description:
        - What the manifest recorded beyond the bytes, compared with the restored tree, one entry per attribute in
          this order, V(mode) (permission bits with setuid, setgid and sticky, of files and directories), V(mtime)
          (files and symbolic links, to the nanosecond), V(symlink) (same target), V(hardlink) (the files of one
          hard-link group share one inode), V(acl) (POSIX ACLs), V(xattr) (the other extended attributes,
          C(security.capability) among them) and V(sparse) (a sparse file keeps at least half of its holes).
        - Empty when no manifest was given. A manifest recorded before these fields existed gives V(not recorded).
        - A difference does not fail the task (the content check does); RV(verify.fidelity_ok) says whether any
          attribute the tool keeps differs.
      type: list
      elements: dict
      contains:
        attribute:
          description: The attribute, V(mode), V(mtime), V(symlink), V(hardlink), V(acl), V(xattr) or V(sparse).
          type: str
        status:
          description:
            - V(checked) (all compared entries match), V(differing), V(not supported by the tool) (the tool does not
              give it back, for example the holes of sparse files with restic before 0.15; still counted), or
              V(not recorded) (the manifest predates it).
          type: str
        checked: {description: Entries compared for this attribute., type: int}
        recorded:
          description:
            - Entries that carried the attribute at backup time (special mode bits, an ACL, extended attributes,
              holes, a hard link, a symbolic link; for V(mtime) every entry compared).
          type: int
        differing: {description: Entries that differ., type: int}
        paths:
          description: The first five differing paths (as recorded), in path order.
          type: list
          elements: str
    fidelity_ok:
      description: False when an attribute the tool gives back differs; null when no manifest was given.
      type: bool
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
resume:
  description:
    - What this run kept from an interrupted earlier attempt and what it transferred. In check mode (only when an
      interrupted attempt is in staging) what a run would keep and transfer.
  returned: when restored, and in check mode when an interrupted restore is in staging
  type: dict
  contains:
    method:
      description:
        - V(overwrite-if-changed) (restic 0.17+), V(missing-paths) (restic before 0.17), V(borg-sets) or V(rsync)
          (rsnapshot).
      type: str
    kept_files:
      description: Regular files kept from the earlier attempt (restic 0.17+ - the files restic skipped).
      type: int
    kept_bytes:
      description: Their bytes.
      type: int
    transferred_bytes:
      description:
        - Bytes written by this run. borg and restic - what the tool's processes handed to C(write()), read from
          the kernel's I/O accounting (C(wchar)); with borg over SSH this includes what C(ssh) passed to borg, so it
          is an upper bound. rsnapshot - the bytes rsync sent (C(%b)). In check mode the bytes a run would transfer.
      type: int
    total_bytes:
      description: Bytes of regular files in the staging tree after this run (check mode - kept plus to transfer).
      type: int
    rerun_count:
      description: >-
        How many restic include patterns, borg path sets or rsnapshot files were transferred again (would be, in
        check mode).
      type: int
    rerun:
      description: The first 20 of them.
      type: list
      elements: str
  sample: {"method": "borg-sets", "kept_files": 512, "kept_bytes": 161480704, "transferred_bytes": 107069440,
           "total_bytes": 268550144, "rerun_count": 12, "rerun": ["srv/app/data/d03"]}
tool_version:
  description: Version of borg or restic (of rsync for rsnapshot).
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
            "tool": {"type": "str", "required": True, "choices": ["borg", "restic", "rsnapshot"]},
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
            "rsnapshot_prefix": {"type": "str", "default": "localhost"},
            "borg_set_bytes": {"type": "int", "default": 67108864},
            "ssh_command": {"type": "str"},
        },
        mutually_exclusive=[("password", "password_file", "password_command")],
        supports_check_mode=True,
    )
    run_module(module, restore_main)


if __name__ == "__main__":
    main()
