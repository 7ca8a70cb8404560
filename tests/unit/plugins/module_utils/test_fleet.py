from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.filter.fleet import fleet_levels, fleet_markdown, fleet_report, fleet_svg
from ansible_collections.restoreops.dr.plugins.module_utils import _fleet

AFTER = {"worker": ["app"], "app": ["db"], "db": [], "cron": []}


def test_levels_follow_the_dependencies():
    assert _fleet.levels(AFTER) == {"db": 0, "cron": 0, "app": 1, "worker": 2}


def test_a_host_after_two_levels_waits_for_the_higher():
    assert _fleet.levels({"a": [], "b": ["a"], "c": ["a", "b"]}) == {"a": 0, "b": 1, "c": 2}


def test_no_dependencies_is_one_level():
    assert _fleet.levels({"a": None, "b": ""}) == {"a": 0, "b": 0}


def test_a_single_name_is_accepted():
    assert _fleet.levels({"a": [], "b": "a"}) == {"a": 0, "b": 1}


def test_cycle_across_hosts_is_named():
    with pytest.raises(AnsibleFilterError, match=r"dependency cycle across hosts (a -> b -> a|b -> a -> b)"):
        fleet_levels({"a": ["b"], "b": ["a"], "c": []})


def test_longer_cycle_and_self_dependency_are_named():
    with pytest.raises(_fleet.FleetError, match=r"cycle across hosts db -> worker -> app -> db"):
        _fleet.levels({"db": ["worker"], "app": ["db"], "worker": ["app"]})
    with pytest.raises(_fleet.FleetError, match=r"cycle across hosts a -> a"):
        _fleet.levels({"a": ["a"]})


def test_a_host_not_in_the_play_is_refused():
    with pytest.raises(AnsibleFilterError, match=r"app restores after db-old, which this play does not restore"):
        fleet_levels({"app": ["db-old"]})


@pytest.mark.parametrize("value", [[1], {"a": 1}, [""], 3])
def test_malformed_after_hosts_is_refused(value):
    with pytest.raises(_fleet.FleetError, match="must be a list of inventory host names"):
        _fleet.levels({"a": value})


def test_filter_input_must_be_a_dictionary():
    with pytest.raises(AnsibleFilterError, match="expects a dictionary"):
        fleet_levels(["a"])


def host_report(start, rto, result="PASS", failure=None, data=30.0, wait=None):
    phases = [{"name": "preflight", "status": "ok", "start_offset": 0.0, "seconds": 5.0},
              {"name": "data", "status": "ok", "start_offset": 5.0, "seconds": data},
              *([{"name": "wait", "status": "ok", "start_offset": 35.0, "seconds": wait}] if wait else []),
              {"name": "services", "status": "ok", "start_offset": rto - 10 if rto else 40.0, "seconds": 5.0},
              {"name": "sanity", "status": "ok", "start_offset": rto - 5 if rto else 45.0, "seconds": 5.0}]
    return {"result": result, "started_unix": start, "rto_seconds": rto if result == "PASS" else None,
            "phases": phases, "failure": failure or {}}


def test_fleet_passes_with_time_to_service_and_critical_path():
    reports = {"db": host_report(1000.0, 50.0), "app": host_report(1001.0, 80.0, wait=35.0),
               "worker": host_report(1000.5, 95.0, wait=50.0), "cron": host_report(1000.0, 120.0)}
    fleet = fleet_report(reports, AFTER)
    assert fleet["result"] == "PASS" and fleet["passed"] == 4 and fleet["levels"] == 3
    # cron (level 0, no dependants) comes into service last: the path is cron alone.
    assert fleet["time_to_service_seconds"] == 120.0 and fleet["last_in_service"] == "cron"
    assert [p["host"] for p in fleet["critical_path"]] == ["cron"]
    by_host = {h["host"]: h for h in fleet["hosts"]}
    assert by_host["app"]["started_offset"] == 1.0 and by_host["app"]["in_service_offset"] == 81.0
    # The phases are on the fleet's clock: app's data phase starts 1 s + 5 s after the first host started.
    assert [p["start_offset"] for p in by_host["app"]["phases"]][:2] == [1.0, 6.0]
    # app's data was in place at 1 + 35 s; its services started at 1 + 70 s: it waited 35 s (for db).
    assert by_host["app"]["waited_seconds"] == 35.0 and by_host["db"]["waited_seconds"] == 0.0
    assert [h["host"] for h in fleet["hosts"]] == ["cron", "db", "app", "worker"]


def test_critical_path_follows_the_dependency_that_came_last():
    reports = {"db": host_report(0.0, 50.0), "app": host_report(0.0, 80.0), "worker": host_report(0.0, 95.0),
               "cron": host_report(0.0, 10.0)}
    fleet = fleet_report(reports, {"worker": ["app", "cron"], "app": ["db"], "db": [], "cron": []})
    assert [(p["host"], p["in_service_offset"]) for p in fleet["critical_path"]] == [
        ("db", 50.0), ("app", 80.0), ("worker", 95.0)]


def test_one_failed_host_fails_the_fleet_and_is_named():
    reports = {"db": host_report(0.0, None, "FAIL", {"phase": "sanity", "msg": "orders: 999 != 1000"}),
               "app": host_report(0.0, None, "FAIL", {"phase": "services", "msg": "waits for db"}),
               "worker": None, "cron": host_report(0.0, 20.0)}
    fleet = fleet_report(reports, AFTER)
    assert fleet["result"] == "FAIL" and fleet["passed"] == 1 and fleet["time_to_service_seconds"] is None
    assert fleet["critical_path"] == []
    assert {f["host"]: f["phase"] for f in fleet["failed"]} == {"db": "sanity", "app": "services", "worker": "setup"}
    assert "NO REPORT" in fleet_markdown(fleet)


def test_check_mode_fleet_says_check():
    reports = {"db": host_report(0.0, None, "CHECK"), "app": host_report(0.0, None, "CHECK")}
    assert fleet_report(reports, {"db": [], "app": ["db"]})["result"] == "CHECK"


def test_markdown_and_svg_carry_every_host():
    reports = {"db": host_report(0.0, 50.0), "app": host_report(0.0, 80.0), "worker": host_report(0.0, 95.0),
               "cron": host_report(0.0, 20.0)}
    fleet = fleet_report(reports, AFTER)
    text = fleet_markdown(fleet)
    assert "# Fleet restore: PASS" in text and "Time to service of the fleet: **95.0 s**" in text
    assert "Critical path: db (50.0 s) → app (80.0 s) → worker (95.0 s)." in text
    assert "| app | 1 | db | PASS |" in text
    picture = fleet_svg(fleet)
    assert picture.startswith("<svg") and picture.count("<g id=\"host-") == 4 and "in service 95.0 s" in picture


def test_filters_refuse_non_dictionaries():
    with pytest.raises(AnsibleFilterError):
        fleet_report([], {})
    with pytest.raises(AnsibleFilterError):
        fleet_markdown("x")
    with pytest.raises(AnsibleFilterError):
        fleet_svg(None)


def test_dependency_checks_say_which_host_is_not_in_service_and_where_it_stopped():
    from ansible_collections.restoreops.dr.plugins.filter.fleet import fleet_dependency_checks
    phases = [[], [], [{"name": "preflight"}, {"name": "sanity"}], []]
    checks = fleet_dependency_checks(["db", "cache", "queue", "mail"], [1700000000.5, None, None, None],
                                     [False, True, False, False], phases)
    assert [c["ok"] for c in checks] == [True, True, False, False]
    assert checks[2]["detail"] == "queue, which is not in service (its restore stopped in phase sanity)"
    assert checks[3]["detail"].endswith("(its restore did not start)")
    assert all(c["phase"] == "services" and c["name"].startswith("restores after ") for c in checks)
    with pytest.raises(AnsibleFilterError, match="four lists of one length"):
        fleet_dependency_checks(["db"], [], [False], [[]])


def test_a_host_restored_by_an_earlier_run_counts_as_passed():
    reports = {"db": None, "app": host_report(0.0, 40.0)}
    fleet = fleet_report(reports, {"db": [], "app": ["db"]}, {"db": True})
    assert fleet["result"] == "PASS" and fleet["passed"] == 2 and fleet["failed"] == []
    assert [h["result"] for h in fleet["hosts"]] == ["DONE", "PASS"]
    assert [p["host"] for p in fleet["critical_path"]] == ["app"]
