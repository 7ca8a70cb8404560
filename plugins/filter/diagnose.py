# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the backup diagnosis (playbooks/diagnose.yml); the decisions live in module_utils/_diagnose.py."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils import _diagnose

NO_RESULT = "the host could not be diagnosed (unreachable, or a probe task stopped it); see the play output above"


def _observations(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AnsibleFilterError(f"{name} expects the mapping of one host's registered probe results")
    return value


def diagnose_evaluate(observations: Any, max_age_hours: float = 25.0, disk_warn_percent: float = 80,
                      disk_fail_percent: float = 90, previous: Any = None, now: float | None = None) -> dict[str, Any]:
    if float(max_age_hours) <= 0:
        raise AnsibleFilterError("diagnose_evaluate: max_age_hours must be greater than 0")
    if not 0 < float(disk_warn_percent) <= float(disk_fail_percent) <= 100:
        raise AnsibleFilterError("diagnose_evaluate: 0 < disk_warn_percent <= disk_fail_percent <= 100 must hold")
    return _diagnose.evaluate(_observations(observations, "diagnose_evaluate"), max_age_hours=float(max_age_hours),
                              disk_warn_percent=float(disk_warn_percent), disk_fail_percent=float(disk_fail_percent),
                              previous=previous if isinstance(previous, dict) else None, now=now)


def diagnose_volume_paths(observations: Any, extra: Any = None) -> list[str]:
    extra = [] if extra is None else extra
    if not isinstance(extra, list) or any(not str(path).startswith("/") for path in extra):
        raise AnsibleFilterError("diagnose_volume_paths: extra must be a list of absolute paths")
    return _diagnose.volume_paths(_observations(observations, "diagnose_volume_paths"), extra)


def diagnose_report(per_host: Any, generated: str | None = None, thresholds: Any = None) -> dict[str, Any]:
    if not isinstance(per_host, dict):
        raise AnsibleFilterError("diagnose_report expects a mapping of host name to diagnose_evaluate result")
    hosts = {str(name): result if isinstance(result, dict) and "lines" in result else _diagnose.unreachable(NO_RESULT)
             for name, result in per_host.items()}
    return _diagnose.report(hosts, generated=generated, thresholds=thresholds if isinstance(thresholds, dict) else None)


def diagnose_table(doc: Any) -> str:
    if not isinstance(doc, dict):
        raise AnsibleFilterError("diagnose_table expects the report of diagnose_report")
    return _diagnose.table(doc)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "diagnose_evaluate": diagnose_evaluate,
            "diagnose_volume_paths": diagnose_volume_paths,
            "diagnose_report": diagnose_report,
            "diagnose_table": diagnose_table,
        }
