# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""service_order: services sorted so that each starts after everything it depends on (a cycle is an error)."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils._fleet import cycle


def service_order(services: Any) -> list[dict[str, Any]]:
    """Topological order of ``[{name, after: [...]}, ...]``; ties keep the order given (stable Kahn's algorithm)."""
    if not isinstance(services, list):
        raise AnsibleFilterError("service_order expects a list of services ({name, after}).")
    by_name: dict[str, dict[str, Any]] = {}
    for entry in services:
        if not isinstance(entry, dict) or not entry.get("name"):
            raise AnsibleFilterError(f"service_order: every service needs a name, got {entry!r}.")
        if entry["name"] in by_name:
            raise AnsibleFilterError(f"service_order: service {entry['name']!r} is listed twice.")
        by_name[entry["name"]] = entry
    deps: dict[str, list[str]] = {}
    for name, entry in by_name.items():
        after = entry.get("after") or []
        if isinstance(after, str):
            after = [after]
        unknown = [d for d in after if d not in by_name]
        if unknown:
            raise AnsibleFilterError(
                f"service_order: {name!r} starts after {', '.join(map(repr, unknown))}, which is not in the list.")
        deps[name] = list(after)
    order: list[str] = []
    done: set[str] = set()
    pending = list(by_name)
    while pending:
        ready = [n for n in pending if all(d in done for d in deps[n])]
        if not ready:
            raise AnsibleFilterError(f"service_order: dependency cycle among {' -> '.join(cycle(pending, deps))}.")
        for name in ready:
            order.append(name)
            done.add(name)
        pending = [n for n in pending if n not in done]
    return [by_name[n] for n in order]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"service_order": service_order}
