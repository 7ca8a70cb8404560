# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the DR drill (playbooks/dr_drill.yml); the logic lives in module_utils/_drill.py."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.module_utils import _drill


def _entries(value: Any, name: str) -> list[dict[str, Any]]:
    if isinstance(value, dict) and "entries" in value:
        value = value["entries"]
    if not isinstance(value, list) or any(not isinstance(e, dict) for e in value):
        raise AnsibleFilterError(f"{name} expects the drill history (a list of entries, or dr_drill_history's result)")
    return value


def _last(last: Any, name: str) -> int:
    try:
        number = int(last)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise AnsibleFilterError(f"{name}: last must be a whole number of drills, at least 1")
    return number


def _seconds(value: Any, name: str, option: str) -> float | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if seconds <= 0:
        raise AnsibleFilterError(f"{name}: {option} must be a number of seconds above 0 (or 0 for none)")
    return seconds


def dr_drill_failed_item(report: Any, step: str, task: str = "", msg: str = "", rpo: Any = None,
                         drill_checks: Any = None) -> dict[str, Any]:
    if report is not None and not isinstance(report, dict):
        raise AnsibleFilterError("dr_drill_failed_item expects the restore report (a mapping) or none")
    if not isinstance(drill_checks or [], list):
        raise AnsibleFilterError("dr_drill_failed_item: drill_checks must be a list of check records")
    return _drill.failed_item(report, str(step), str(task or ""), str(msg or ""),
                              _seconds(rpo, "dr_drill_failed_item", "rpo"), drill_checks or [])


def dr_drill_record(state: Any) -> dict[str, Any]:
    if not isinstance(state, dict) or "started" not in state or "finished" not in state:
        raise AnsibleFilterError("dr_drill_record expects the drill's state with started and finished")
    return _drill.record(state)


def dr_drill_summary(entry: Any) -> str:
    if not isinstance(entry, dict) or "result" not in entry:
        raise AnsibleFilterError("dr_drill_summary expects a history entry (dr_drill_record's result)")
    return _drill.summary(entry)


def dr_drill_history(text: Any) -> dict[str, Any]:
    if text is not None and not isinstance(text, str):
        raise AnsibleFilterError("dr_drill_history expects the text of the history file (JSON lines)")
    return _drill.parse_history(text or "")


def dr_drill_trend_table(history: Any, last: Any = 12) -> str:
    return _drill.table(_entries(history, "dr_drill_trend_table"), _last(last, "dr_drill_trend_table"))


def dr_drill_trend_svg(history: Any, last: Any = 12, rto_objective: Any = None, rpo_objective: Any = None,
                       title: str = "DR drills") -> str:
    name = "dr_drill_trend_svg"
    return _drill.svg(_entries(history, name), _last(last, name), _seconds(rto_objective, name, "rto_objective"),
                      _seconds(rpo_objective, name, "rpo_objective"), str(title))


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "dr_drill_failed_item": dr_drill_failed_item,
            "dr_drill_record": dr_drill_record,
            "dr_drill_summary": dr_drill_summary,
            "dr_drill_history": dr_drill_history,
            "dr_drill_trend_table": dr_drill_trend_table,
            "dr_drill_trend_svg": dr_drill_trend_svg,
        }
