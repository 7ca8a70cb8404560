# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""snapshot_inventory_diff: a repository's snapshots now, against the inventory recorded earlier."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils._inventory import compare, sentence


def snapshot_inventory_diff(current: Sequence[Mapping[str, Any]], recorded: Any,
                            name: str = "repository") -> dict[str, Any]:
    if isinstance(recorded, Mapping):
        snapshots: Optional[Sequence[Mapping[str, Any]]] = recorded.get("snapshots")
        recorded_at = recorded.get("recorded")
    else:
        snapshots, recorded_at = recorded, None
    if not isinstance(current, Sequence) or not isinstance(snapshots, Sequence):
        raise AnsibleFilterError("snapshot_inventory_diff: give the current snapshots (a list) and the recorded "
                                 "inventory (a list, or a mapping with snapshots and recorded).")
    diff = compare(current, snapshots, recorded_at)
    diff["sentence"] = sentence(name, diff)
    return diff


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"snapshot_inventory_diff": snapshot_inventory_diff}
