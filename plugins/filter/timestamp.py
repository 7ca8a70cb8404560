# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""timestamp: seconds since the epoch from the ISO 8601 times borg, restic and PostgreSQL print."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils._time import parse_time


def timestamp(value: Any) -> float:
    try:
        return parse_time(str(value)).timestamp()
    except ValueError as exc:
        raise AnsibleFilterError(f"timestamp: {value!r} is not an ISO 8601 time ({exc}).") from exc


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"timestamp": timestamp}
