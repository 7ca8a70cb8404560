# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of a restore of several hosts (restore_server_after_hosts); the logic lives in module_utils/_fleet.py."""

from __future__ import annotations

from typing import Any, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils import _fleet


def _mapping(value: Any, name: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise AnsibleFilterError(f"{name} expects {what}, got {type(value).__name__}")
    return value


def fleet_levels(after: Any) -> dict[str, int]:
    """``{host: [hosts it restores after]}`` -> ``{host: level}``; a cycle or an unknown host is an error."""
    try:
        return _fleet.levels(_mapping(after, "fleet_levels", "a dictionary of hosts and the hosts they restore after"))
    except _fleet.FleetError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def fleet_dependency_checks(hosts: Any, in_service: Any, done: Any, phases: Any) -> list[dict[str, Any]]:
    """The check records of the hosts this one restores after, from their in-service mark, done flag and phases."""
    values = [hosts, in_service, done, phases]
    if any(not isinstance(v, (list, tuple)) for v in values) or len({len(v) for v in values}) != 1:
        raise AnsibleFilterError("fleet_dependency_checks expects four lists of one length: the hosts, their "
                                 "in-service marks, their done flags and their phase marks")
    return _fleet.dependency_checks(*values)


def fleet_report(reports: Any, after: Any, done: Any = None) -> dict[str, Any]:
    """The fleet report from ``{host: restore report}``, ``{host: [hosts it restores after]}`` and, optionally,
    ``{host: restored by an earlier run}``."""
    try:
        return _fleet.report(_mapping(reports, "fleet_report", "a dictionary of hosts and their restore reports"),
                             _mapping(after, "fleet_report", "a dictionary of hosts and the hosts they restore after"),
                             _mapping(done or {}, "fleet_report", "a dictionary of hosts and their done flags"))
    except _fleet.FleetError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def fleet_markdown(fleet: Any) -> str:
    """The fleet report (fleet_report's result) in Markdown."""
    return _fleet.markdown(_mapping(fleet, "fleet_markdown", "the result of fleet_report"))


def fleet_svg(fleet: Any) -> str:
    """The fleet timeline (fleet_report's result) as SVG: one row group per host."""
    return _fleet.svg(_mapping(fleet, "fleet_svg", "the result of fleet_report"))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fleet_levels": fleet_levels, "fleet_dependency_checks": fleet_dependency_checks,
                "fleet_report": fleet_report, "fleet_markdown": fleet_markdown,
                "fleet_svg": fleet_svg}
