# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""response_phases: the ransomware response's timeline marks as one record per phase."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils._response import phases, rotation_record


def response_phases(marks: Any, order: Any) -> list[dict[str, Any]]:
    if not isinstance(marks, list) or not isinstance(order, list):
        raise AnsibleFilterError("response_phases: give the marks (a list) and the phase names in order (a list).")
    return phases(marks, order)


def rotation_record_filter(result: Any, kind: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise AnsibleFilterError("rotation_record: give one registered loop result of the rotate phase.")
    try:
        return rotation_record(result, kind)
    except ValueError as exc:
        raise AnsibleFilterError(f"rotation_record: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"response_phases": response_phases, "rotation_record": rotation_record_filter}
