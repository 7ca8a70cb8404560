#!/usr/bin/python
# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ransomware_scan
short_description: Scope a ransomware event on a live host - marker files, an entropy sample, the infection time
version_added: 0.3.0
description:
  - Walks O(paths) without following symbolic links and matches every file name against O(markers),
    case-insensitively (renamed files such as C(*.encrypted) and ransom notes such as C(DECRYPT_README*); a pattern
    holding a C(/) is matched against the whole path).
  - Takes a cheap entropy sample (head, middle and tail, 4 KiB each) of up to O(entropy_sample) files changed since
    O(changed_since) (or within O(changed_within) seconds), by modification or status change time; encrypted data is
    near 8 bits per byte, text near 4 to 5. Formats compressed by design (O(entropy_excludes)) are not sampled.
  - Returns the affected directories, the earliest marker time and the infection time estimate - the earliest
    marker's modification time, else the earliest high-entropy file's, or O(infection_time) when given.
  - Only reads; reads a bounded number of bytes per file.
author:
  - restoreops.dr contributors (@restoreops)
extends_documentation_fragment:
  - restoreops.dr.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it scans the same way in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Always C(changed=false).
options:
  paths:
    description: Absolute paths of the trees to scan.
    type: list
    elements: path
    required: true
  excludes:
    description: Absolute paths of trees to leave out (for example the evidence bundle).
    type: list
    elements: path
    default: []
  markers:
    description: Shell patterns of ransomware file names. An empty list turns the marker scan off.
    type: list
    elements: str
    default: ["*.encrypted", "*.locked", "*.crypt", "*.crypted", "DECRYPT_README*", "README_DECRYPT*",
              "HOW_TO_DECRYPT*", "HOW_TO_RESTORE*", "RESTORE_FILES*", "*_RECOVER_INSTRUCTIONS*"]
  changed_within:
    description: Sample files changed within this many seconds before now (when O(changed_since) is empty).
    type: int
    default: 604800
  changed_since:
    description: Sample files changed at or after this time (ISO 8601; local time when no offset is given).
    type: str
    default: ""
  entropy_sample:
    description: Sample at most this many recently changed files; V(0) turns the entropy sample off.
    type: int
    default: 500
  max_entropy:
    description: Bits per byte above which a sampled block counts as encrypted.
    type: float
    default: 7.5
  entropy_excludes:
    description: File name patterns not sampled, because their content is compressed or encrypted by design.
    type: list
    elements: str
    default: ["*.gz", "*.tgz", "*.xz", "*.zst", "*.bz2", "*.zip", "*.7z", "*.rar", "*.jpg", "*.jpeg", "*.png",
              "*.gif", "*.webp", "*.mp3", "*.mp4", "*.mkv", "*.pdf", "*.docx", "*.xlsx", "*.pptx", "*.odt", "*.deb",
              "*.rpm", "*.gpg", "*.asc", "*.pem", "*.key", "*.pack", "*.idx"]
  one_file_system:
    description: Do not descend into other filesystems below a path (C(/proc), C(/sys), network mounts).
    type: bool
    default: true
  max_files:
    description: Stop after this many files (RV(truncated) says so); V(0) for no limit.
    type: int
    default: 0
  infection_time:
    description: The infection time, when the operator knows better than the scan (ISO 8601); overrides the estimate.
    type: str
    default: ""
notes:
  - Modification times can be forged by an attacker; the estimate is a starting point for
    M(restoreops.dr.backup_known_good) and M(restoreops.dr.pg_known_good), which validate content, not times.
seealso:
  - module: restoreops.dr.backup_known_good
"""

EXAMPLES = r"""
- name: Scope the event on the affected host
  restoreops.dr.ransomware_scan:
    paths: [/srv, /home, /var/lib]
    markers: ["*.encrypted", "DECRYPT_README*", "*.lockbit"]
    changed_within: 172800
  register: scope

- name: Show the infection time estimate
  ansible.builtin.debug:
    msg: "{{ scope.marker_count }} markers, infection at {{ scope.infection_time }}"
"""

RETURN = r"""
affected:
  description: Whether any marker or high-entropy recently changed file was found.
  returned: success
  type: bool
markers:
  description: The files named like ransomware, oldest first (C(path), C(mtime), C(size)).
  returned: success
  type: list
  elements: dict
marker_count:
  description: How many marker files.
  returned: success
  type: int
high_entropy:
  description: Recently changed files whose sample looks encrypted (C(path), C(mtime), C(size), C(entropy)).
  returned: success
  type: list
  elements: dict
high_entropy_count:
  description: How many such files.
  returned: success
  type: int
affected_paths:
  description: The directories holding hits, each with its C(count), most affected first.
  returned: success
  type: list
  elements: dict
earliest_marker_time:
  description: The earliest marker's modification time (UTC), null without markers.
  returned: success
  type: str
earliest_high_entropy_time:
  description: The earliest high-entropy file's modification time (UTC), null without any.
  returned: success
  type: str
infection_time:
  description: The infection time estimate (UTC, ISO 8601), null when nothing was found and none was given.
  returned: success
  type: str
  sample: "2026-03-14T08:12:31+00:00"
infection_time_source:
  description: C(override), C(earliest marker), C(earliest high-entropy file) or C(none).
  returned: success
  type: str
changed_since:
  description: The cutoff of the entropy sample (UTC).
  returned: success
  type: str
files_seen:
  description: Regular files looked at.
  returned: success
  type: int
recent_files:
  description: Files changed since the cutoff.
  returned: success
  type: int
sampled:
  description: Files whose entropy was sampled.
  returned: success
  type: int
truncated:
  description: Whether O(max_files) stopped the walk.
  returned: success
  type: bool
duration:
  description: Seconds the scan took.
  returned: success
  type: float
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.restoreops.dr.plugins.module_utils._content import DEFAULT_MARKERS  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._errors import run_module  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._scope import DEFAULT_ENTROPY_EXCLUDES  # noqa: E402
from ansible_collections.restoreops.dr.plugins.module_utils._scope import main as scope_main  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "required": True},
            "excludes": {"type": "list", "elements": "path", "default": []},
            "markers": {"type": "list", "elements": "str", "default": list(DEFAULT_MARKERS)},
            "changed_within": {"type": "int", "default": 604800},
            "changed_since": {"type": "str", "default": ""},
            "entropy_sample": {"type": "int", "default": 500},
            "max_entropy": {"type": "float", "default": 7.5},
            "entropy_excludes": {"type": "list", "elements": "str", "default": list(DEFAULT_ENTROPY_EXCLUDES)},
            "one_file_system": {"type": "bool", "default": True},
            "max_files": {"type": "int", "default": 0},
            "infection_time": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    run_module(module, scope_main)


if __name__ == "__main__":
    main()
