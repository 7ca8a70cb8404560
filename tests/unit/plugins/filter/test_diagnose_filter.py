# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the diagnosis filters: their input checks and the host without a result."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.filter import diagnose as f


def test_registered_filters():
    assert set(f.FilterModule().filters()) == {"diagnose_evaluate", "diagnose_volume_paths", "diagnose_report",
                                               "diagnose_table"}


@pytest.mark.parametrize("kwargs, message", [
    ({"max_age_hours": 0}, "max_age_hours"),
    ({"disk_warn_percent": 95, "disk_fail_percent": 90}, "disk_warn_percent"),
    ({"disk_fail_percent": 101}, "disk_warn_percent"),
])
def test_evaluate_refuses_bad_thresholds(kwargs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        f.diagnose_evaluate({}, **kwargs)


def test_evaluate_of_a_host_without_backups_is_empty_and_ok():
    result = f.diagnose_evaluate({}, previous="not a mapping")
    assert result["ok"] and result["lines"] == [] and result["status"] == "ok"


def test_inputs_must_be_mappings():
    with pytest.raises(AnsibleFilterError):
        f.diagnose_evaluate([])
    with pytest.raises(AnsibleFilterError):
        f.diagnose_report([])
    with pytest.raises(AnsibleFilterError):
        f.diagnose_table("x")
    with pytest.raises(AnsibleFilterError, match="absolute"):
        f.diagnose_volume_paths({}, ["backup"])


def test_a_host_without_a_result_fails_in_the_report():
    good = f.diagnose_evaluate({})
    doc = f.diagnose_report({"web1": good, "db1": None, "db2": "Undefined"}, thresholds={"max_age_hours": 25})
    assert doc["hosts_failing"] == ["db1", "db2"] and not doc["ok"]
    assert doc["hosts"]["db1"]["lines"][0]["check"] == "probe"
    assert doc["thresholds"] == {"max_age_hours": 25}
    assert "== db1: FAIL" in f.diagnose_table(doc)
