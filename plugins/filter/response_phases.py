# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""response_phases: the ransomware response's timeline marks as one record per phase."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils._response import phases


def response_phases(marks: Any, order: Any) -> list[dict[str, Any]]:
    if not isinstance(marks, list) or not isinstance(order, list):
        raise AnsibleFilterError("response_phases: give the marks (a list) and the phase names in order (a list).")
    return phases(marks, order)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"response_phases": response_phases}
