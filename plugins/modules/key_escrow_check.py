#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: key_escrow_check
short_description: Prove that escrowed keys exist, are private, live apart from the data and still decrypt it
version_added: 0.1.0
description:
  - Checks escrowed copies of backup and disk encryption keys before they are needed, so that a restore never
    starts with a verified backup and no way to decrypt it.
  - Runs five checks per item and reports each by name.
    C(exists) (the escrowed key and passphrase files are there),
    C(mode) (no looser than O(max_mode)),
    C(apart) (key and passphrase are not on the same host and filesystem, and neither sits on the filesystem of the
    repository, the device or O(items[].protected_paths)),
    C(decrypts) (the repository or device opens with only the escrowed secrets, or the digest matches), and
    C(current) (the escrowed key is the key in force now, not one replaced after the export).
  - For borg the repository is opened through a private temporary directory holding a copy of its C(config) (in
    repokey mode with the escrowed key in place of the repository's own) and links to its segments, so borg has
    nothing but the escrowed key and passphrase; keyfile mode uses C(BORG_KEY_FILE). The repository, its locks and
    the caller's borg cache and security directories are not touched.
  - For restic C(restic cat config) runs with C(RESTIC_PASSWORD_FILE) set to the escrowed password file, with
    C(--no-lock --no-cache). For luks C(cryptsetup open --test-passphrase --key-file) maps nothing. For kind
    C(file) (an exported KMS or Vault key) the SHA-256 digest is compared.
  - C(apart) compares what it can observe. A key and a O(items[].passphrase_file) are both on the host running the
    check, so they fail C(apart) when their C(st_dev) is the same (one filesystem, for example two directories of one
    disk) and pass when the passphrase is on a filesystem of its own (for example a tmpfs that a secrets agent
    manages). A passphrase kept on another host is given as O(items[].passphrase) with O(items[].passphrase_place),
    the host identity and C(st_dev) observed where it is kept; it fails C(apart) when that host identity is this
    host's (RV(host_id)) and the device is the key's. A O(items[].passcommand), or a O(items[].passphrase) without a
    place, has no place the check can see; C(apart) then judges the key alone.
  - Read-only in every mode. Secrets travel by file descriptor, environment or file, never on a command line, and
    are never returned.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; check mode runs the same checks.
  diff_mode:
    support: none
    details:
      - Nothing changes, so there is nothing to diff.
  idempotent:
    support: full
options:
  items:
    description:
      - The escrowed keys to check.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: A name for the item, used in RV(results) and messages. Unique within O(items).
        type: str
        required: true
      kind:
        description:
          - What the key protects.
          - V(borg) a borg 1.2 repository (repokey or keyfile mode), V(restic) a restic repository, V(luks) a LUKS
            device or container file, V(file) any exported key checked by its digest.
        type: str
        required: true
        choices: [borg, restic, luks, file]
      repo:
        description:
          - The repository (kinds V(borg) and V(restic)).
          - For V(borg) a local path (mount a remote repository read-only on the host that runs the check). For
            V(restic) any repository restic 0.14 opens; co-location is checked only for local paths.
        type: str
      device:
        description: The LUKS block device or container file (kind V(luks)).
        type: path
      key_file:
        description:
          - The escrowed key copy. For V(borg) the output of plain C(borg key export); for V(restic) the escrowed
            password file; for V(luks) the key file (or passphrase file without trailing newline); for V(file) the
            exported key.
        type: path
        required: true
      passphrase_file:
        description:
          - The escrowed passphrase of a V(borg) key, in a file (read whole, trailing newlines removed, as borg reads
            C(BORG_PASSPHRASE_FD)). It reaches borg through a file descriptor.
          - Mutually exclusive with O(items[].passcommand) and O(items[].passphrase).
        type: path
      passcommand:
        description:
          - A command that prints the escrowed passphrase of a V(borg) key (C(BORG_PASSCOMMAND)), for a passphrase
            kept in a password manager.
        type: str
      passphrase:
        description:
          - The escrowed passphrase of a V(borg) key as a value, for a passphrase kept on another host or in a secrets
            store that the playbook has read (for example with C(ansible.builtin.slurp) from a second escrow host,
            with C(no_log)). It reaches borg through its environment, never a command line, and is never returned.
          - Give O(items[].passphrase_place) too, so that C(apart) can compare where it is kept.
          - Mutually exclusive with O(items[].passphrase_file) and O(items[].passcommand).
        type: str
      passphrase_place:
        description:
          - Where the passphrase of O(items[].passphrase) (or O(items[].passcommand)) is kept, as observed on the
            host that keeps it, for the C(apart) check. The key_escrow role fills it in from C(ansible.builtin.stat)
            and the identity of that host.
        type: dict
        suboptions:
          host_id:
            description:
              - The identity of the host that keeps the passphrase, C(<machine id>/<hostname>) (the first lines of
                C(/etc/machine-id) and C(/proc/sys/kernel/hostname)), the form of RV(host_id).
            type: str
            required: true
          dev:
            description: The device number (C(st_dev)) of the filesystem that holds the passphrase file there.
            type: int
            required: true
          path:
            description: The passphrase file's absolute path there (used in messages).
            type: str
            required: true
      sha256:
        description: Kind V(file) only. The expected SHA-256 digest (hex, optionally prefixed C(sha256:)).
        type: str
      protected_paths:
        description:
          - Where the protected data lives (for example the data directory of the server the backups are of). The
            escrowed key and passphrase must not be on any of these filesystems.
        type: list
        elements: path
        default: []
  max_mode:
    description:
      - The loosest permission mode an escrowed file may have.
      - Give it as a quoted octal string such as V('0600'). An unquoted YAML V(0600) arrives as the number 384 and is
        understood as octal 0600 too.
    type: raw
    default: '0600'
  fail_on_problem:
    description:
      - Fail the task when any check of any item fails. The failed result still carries RV(ok) and RV(results).
      - Set to V(false) to collect the results and decide in the playbook.
    type: bool
    default: true
notes:
  - The check needs read access to the repository's files but never writes to them. Borg's lock, cache and
    security files go into a temporary directory that is removed afterwards.
  - In borg keyfile mode a C(borg key change-passphrase) rewrites only the key file on the backup host; when the
    host running the check has its own key file for the repository, C(current) compares it with the escrow,
    otherwise C(current) rests on the escrowed key opening the repository.
  - The guide C(docs/kms-and-vault-keys.md) explains why keys must be exported and kept apart, and how kind
    V(file) covers a KMS or Vault key.
"""

EXAMPLES = r"""
- name: Prove the escrowed borg key, restic password and LUKS key
  restoreops.dr.key_escrow_check:
    items:
      - name: db1-borg
        kind: borg
        repo: /srv/offsite/borg/db1
        key_file: /srv/escrow/keys/db1-borg.key
        # a tmpfs of its own (for example one a secrets agent manages), not the disk of the key
        passphrase_file: /run/secrets/db1-borg.pass
        protected_paths:
          - /var/lib/postgresql
      - name: db1-restic
        kind: restic
        repo: /srv/offsite/restic/db1
        key_file: /srv/escrow/keys/db1-restic.pass
      - name: db1-volume
        kind: luks
        device: /dev/vdb
        key_file: /srv/escrow/keys/db1-volume.luks

- name: Read a borg passphrase kept on a second escrow host
  ansible.builtin.slurp:
    src: /srv/passphrases/db1-borg.pass
  delegate_to: escrow2.example.org
  register: db1_pass
  no_log: true

- name: Where the passphrase is kept there (for the apart check)
  ansible.builtin.stat:
    path: /srv/passphrases/db1-borg.pass
    get_checksum: false
  delegate_to: escrow2.example.org
  register: db1_pass_stat

- name: Read that host's identity
  ansible.builtin.command:
    argv: [cat, /etc/machine-id, /proc/sys/kernel/hostname]
  delegate_to: escrow2.example.org
  register: escrow2_identity
  changed_when: false
  check_mode: false

- name: Prove the key with the passphrase from the other host
  restoreops.dr.key_escrow_check:
    items:
      - name: db1-borg
        kind: borg
        repo: /srv/offsite/borg/db1
        key_file: /srv/escrow/keys/db1-borg.key
        passphrase: "{{ db1_pass.content | b64decode | regex_replace('\\n$', '') }}"
        passphrase_place:
          host_id: "{{ escrow2_identity.stdout_lines | join('/') }}"
          dev: "{{ db1_pass_stat.stat.dev }}"
          path: /srv/passphrases/db1-borg.pass

- name: Check an exported KMS key by its digest and decide in the playbook
  restoreops.dr.key_escrow_check:
    items:
      - name: kms-data-key
        kind: file
        key_file: /srv/escrow/keys/kms-data-key.json
        sha256: "{{ kms_export_sha256 }}"
    fail_on_problem: false
  register: escrow

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ escrow.results | rejectattr('ok') | map(attribute='problems') | flatten }}"
  when: not escrow.ok
"""

RETURN = r"""
host_id:
  description:
    - The identity of the host that ran the check, C(<machine id>/<hostname>), the form
      O(items[].passphrase_place.host_id) takes.
  returned: always
  type: str
  sample: 4c4c4544004a3510804cb8c04f4e3232/escrow1
ok:
  description: True when every check of every item passed.
  returned: always
  type: bool
  sample: false
results:
  description: One entry per item, in the order of O(items).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The item's name.
      type: str
      returned: always
      sample: db1-borg
    ok:
      description: True when all five checks passed.
      type: bool
      returned: always
      sample: false
    checks:
      description: Each check by name (C(exists), C(mode), C(apart), C(decrypts), C(current)) and whether it passed.
      type: dict
      returned: always
      sample: {"exists": true, "mode": true, "apart": true, "decrypts": true, "current": false}
    problems:
      description: Plain sentences, one per problem found; empty when the item is ok.
      type: list
      elements: str
      returned: always
      sample:
        - "The escrowed key /srv/escrow/keys/db1-borg.key is stale: the key stored in /srv/offsite/borg/db1 changed
          after the export (for example `borg key change-passphrase`). Export the key again and escrow it with the
          new passphrase."
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (modules keep their docs first)

from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._escrow import item_options, main  # noqa: E402


def build_module() -> AnsibleModule:
    return AnsibleModule(
        argument_spec=dict(
            items=dict(type="list", elements="dict", required=True, options=item_options()),
            fail_on_problem=dict(type="bool", default=True),
            max_mode=dict(type="raw", default="0600"),
        ),
        supports_check_mode=True,
    )


def entry() -> None:
    run_module(build_module(), main)


if __name__ == "__main__":
    entry()
