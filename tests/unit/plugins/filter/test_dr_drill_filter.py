# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the DR drill filters: their input checks (the logic is tested in test_drill.py)."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.filter import dr_drill as f


def test_registered_filters():
    assert set(f.FilterModule().filters()) == {"dr_drill_failed_item", "dr_drill_record", "dr_drill_summary",
                                               "dr_drill_history", "dr_drill_trend_table", "dr_drill_trend_svg"}


@pytest.mark.parametrize("call, message", [
    (lambda: f.dr_drill_trend_table("text"), "expects the drill history"),
    (lambda: f.dr_drill_trend_table([1]), "expects the drill history"),
    (lambda: f.dr_drill_trend_table([], last="x"), "last must be"),
    (lambda: f.dr_drill_trend_svg([], last=0), "last must be"),
    (lambda: f.dr_drill_trend_svg([], rto_objective=-5), "rto_objective must be"),
    (lambda: f.dr_drill_trend_svg([], rpo_objective="soon"), "rpo_objective must be"),
    (lambda: f.dr_drill_record({"started": 1}), "started and finished"),
    (lambda: f.dr_drill_summary({}), "history entry"),
    (lambda: f.dr_drill_history(["a"]), "text of the history file"),
    (lambda: f.dr_drill_failed_item("report", "restore"), "restore report"),
    (lambda: f.dr_drill_failed_item({}, "restore", drill_checks="x"), "drill_checks"),
])
def test_bad_inputs_are_refused(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()


def test_history_text_to_trend():
    line = json.dumps({"drill": "2025-12-01T02:00:00Z", "result": "PASS", "rto_seconds": 90, "rpo_seconds": 60})
    history = f.dr_drill_history(line + "\n" + line.replace("12-01", "12-02") + "\n")
    assert len(history["entries"]) == 2 and f.dr_drill_history(None)["entries"] == []
    # The filters take the parsed history or its entries; an objective of 0 draws no line.
    assert f.dr_drill_trend_table(history, 1) == f.dr_drill_trend_table(history["entries"], "1")
    assert 'class="objective"' not in f.dr_drill_trend_svg(history, 12, 0, "0")
    assert "objective 1 min 0 s" in f.dr_drill_trend_svg(history, 12, 60)


def test_failed_item_takes_no_report_and_a_string_rpo():
    got = f.dr_drill_failed_item(None, "standby", "Check", "already restored", "3600")
    assert got["item"] == "standby empty and isolated"
