# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pitr_base_backup: the base backup a point-in-time recovery starts from (see module_utils/_pitr.py)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError
from ansible_collections.restoreops.dr.plugins.module_utils._pitr import choose_base_backup


def pitr_base_backup(labels: Any, target_time: str = "latest", backup: str = "auto") -> dict[str, Any]:
    if not isinstance(labels, list) or not all(isinstance(label, dict) for label in labels):
        raise AnsibleFilterError("pitr_base_backup expects the list of the base backups' recorded labels.")
    try:
        return choose_base_backup(labels, str(target_time), str(backup))
    except InputError as exc:
        raise AnsibleFilterError(f"pitr_base_backup: {exc.msg}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"pitr_base_backup": pitr_base_backup}
