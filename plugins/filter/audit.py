# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the backup policy audit (playbooks/audit_policy.yml); the rules live in module_utils/_audit.py."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils import _audit


def audit_evaluate(probes: dict, waivers: list | None = None, rpo_hours: float = 25.0,
                   now: float | None = None) -> dict[str, Any]:
    if not isinstance(probes, dict):
        raise AnsibleFilterError("audit_evaluate expects the mapping of registered probe results of one host")
    return _audit.evaluate(_audit.normalize(probes), waivers or [], rpo_hours, now)


def audit_evaluate_hosts(hosts: list, probes: list, waivers: list | None = None, rpo_hours: list | None = None,
                         now: float | None = None) -> dict[str, Any]:
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError("audit_evaluate_hosts expects the list of the play's host names")
    try:
        return _audit.evaluate_hosts(list(hosts), list(probes), None if waivers is None else list(waivers),
                                     None if rpo_hours is None else list(rpo_hours), now)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"audit_evaluate_hosts: {exc}") from exc


def audit_report(per_host: dict) -> dict[str, Any]:
    if not isinstance(per_host, dict):
        raise AnsibleFilterError("audit_report expects a mapping of host name to audit_evaluate result")
    return _audit.report(per_host)


def audit_table(doc: dict) -> str:
    return _audit.table(doc)


def audit_junit(doc: dict) -> str:
    return _audit.junit(doc)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "audit_evaluate": audit_evaluate,
            "audit_evaluate_hosts": audit_evaluate_hosts,
            "audit_report": audit_report,
            "audit_table": audit_table,
            "audit_junit": audit_junit,
        }
