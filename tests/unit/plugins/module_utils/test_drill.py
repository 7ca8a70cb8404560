# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the DR drill's decisions: the failed checklist item, the history entry, the trend table and SVG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _drill

SVG = "{http://www.w3.org/2000/svg}"
T0 = 1_764_547_200.0  # 2025-12-01T00:00:00Z


PREFLIGHT = [{"phase": "preflight", "name": "backup within RPO", "ok": True},
             {"phase": "preflight", "name": "disk space", "ok": True}]


def _report(result="PASS", failure=None, checks=(), rto=95.0, files=600, pg=30):
    return {"result": result, "failure": failure or {}, "checks": PREFLIGHT + list(checks),
            "rto_seconds": rto if result == "PASS" else None,
            "rpo": {"files_seconds": files, "postgresql_seconds": pg},
            "restore_point": {"name": "abc123", "time": "2025-11-30T23:50:00Z"},
            "source": {"tool": "restic", "repository": "s3:https://s3.example.org/db1"}}


def _failure(phase, task, msg="boom"):
    return {"phase": phase, "task": task, "msg": msg}


@pytest.mark.parametrize("phase, task, files, key", [
    ("preflight", "Check the target is an isolated, empty replacement (not production, no data, production "
     "unreachable)",
     600, "standby"),
    ("preflight", "Find the restore point and its size (read-only)", None, "offsite"),
    ("preflight", "Check the backup is fresher than the RPO and the disk can hold it", 7200, "freshness"),
    # The same assert with a fresh backup: the standby's disk is too small.
    ("preflight", "Check the backup is fresher than the RPO and the disk can hold it", 600, "standby"),
    ("preflight", "Stop when the escrowed password cannot be read (keys first)", None, "restore"),
    ("data", "Wait for the data restore", 600, "restore"),
    ("cutover", "Fail when the record does not point at the replacement", 600, "cutover"),
])
def test_failed_item_places_a_role_failure_on_the_checklist(phase, task, files, key):
    report = _report("FAIL", _failure(phase, task), files=files)
    got = _drill.failed_item(report, "restore", "Stop here when the restore failed", "Restore FAILED", rpo=3600)
    assert got["key"] == key and got["item"] == _drill.ITEMS[key] and got["phase"] == phase
    assert got["message"] == "boom"


def test_failed_sanity_checks_are_integrity_and_named():
    checks = [{"phase": "sanity", "name": "SQL: all orders", "ok": True},
              {"phase": "sanity", "name": "dependency: payment gateway", "ok": False, "required": False},
              {"phase": "sanity", "name": "dependency: partner API", "ok": False, "detail": "HTTP 403 from x"}]
    got = _drill.failed_item(_report("FAIL", _failure("sanity", "Fail when a required sanity check failed"), checks),
                             "restore")
    assert got["item"] == "integrity (row counts, checksums, sanity checks)"
    # Only the required failure is named: the optional one is an issue, not the cause.
    assert got["message"] == "dependency: partner API: HTTP 403 from x"


def test_a_checksum_mismatch_of_the_data_phase_is_integrity():
    checks = [{"phase": "data", "name": "checksums", "ok": False, "detail": "3 files differ"}]
    got = _drill.failed_item(_report("FAIL", _failure("data", "x"), checks), "restore")
    assert got["key"] == "integrity" and "3 files differ" in got["message"]


@pytest.mark.parametrize("step", ["smoke", "monitoring"])
def test_failed_drill_probes_name_their_item(step):
    drill_checks = [{"phase": "smoke", "name": "HTTP: shop", "ok": step != "smoke", "detail": "HTTP 500 from u"},
                    {"phase": "monitoring", "name": "HTTP: prometheus up", "ok": False, "detail": "no '1'"}]
    got = _drill.failed_item(_report(), step, "Check", "Smoke tests failed", drill_checks=drill_checks)
    assert got["key"] == step
    assert ("HTTP 500" in got["message"]) == (step == "smoke")


@pytest.mark.parametrize("step", ["settings", "standby", "rto", "something-unknown"])
def test_failures_outside_the_role_keep_their_step(step):
    got = _drill.failed_item(None, step, "Check", "the message\n  on two lines")
    assert got["key"] == (step if step in _drill.ITEMS else "restore")
    assert got["message"] == "the message on two lines"


def test_a_role_failure_without_report_is_the_restore():
    got = _drill.failed_item(None, "restore", "Validating arguments", "missing restore_server_source")
    assert got == {"key": "restore", "item": "restore onto the standby", "phase": None, "task": "Validating arguments",
                   "message": "missing restore_server_source"}


def _state(**kw):
    state = {"started": T0, "finished": T0 + 180.04, "standby": "standby1", "report": _report(),
             "skipped": ["cutover", "rto"], "report_path": "/r/standby1/report.json"}
    state.update(kw)
    return state


def test_record_of_a_passed_drill():
    entry = _drill.record(_state(drill_checks=[{"phase": "smoke", "name": "HTTP: shop", "ok": True}],
                                 notify_checks=[{"phase": "notify", "name": "start notification (webhook)", "ok": False,
                                                 "required": False, "detail": "not delivered"}]))
    assert entry["result"] == "PASS" and entry["failed_item"] is None and entry["failure"] is None
    assert (entry["rto_seconds"], entry["rpo_seconds"], entry["rpo_database_seconds"]) == (95.0, 600, 30)
    assert entry["drill"] == "2025-12-01T00:00:00Z" and entry["drill_seconds"] == 180.0
    assert entry["tool"] == "restic" and entry["restore_point"] == "abc123" and entry["teardown"] == "left"
    assert entry["issues"] == ["warn notify: start notification (webhook) - not delivered"]
    assert {c["item"]: c["status"] for c in entry["checklist"]}["cut-over"] == "not declared"
    statuses = {c["item"]: c["status"] for c in entry["checklist"]}
    assert statuses.pop("notification sent") == "warn"
    assert set(statuses.values()) == {"ok", "not declared"}
    json.dumps(entry)  # one JSON line


def test_record_of_a_failed_drill_names_the_item_and_keeps_the_rpo():
    failure = _drill.failed_item(None, "standby", "Check the role restored", "already restored")
    entry = _drill.record(_state(report=_report("FAIL", _failure("sanity", "x")), failure=failure))
    assert entry["result"] == "FAIL" and entry["failed_item"] == "standby empty and isolated"
    assert entry["failure"] == "already restored" and entry["rto_seconds"] is None and entry["rpo_seconds"] == 600
    statuses = [(c["item"], c["status"]) for c in entry["checklist"]]
    at = statuses.index(("standby empty and isolated", "FAIL"))
    assert all(pair[1] == "ok" for pair in statuses[:at])
    assert all(pair[1] == "not reached" for pair in statuses[at + 1:])


def test_checklist_shows_only_the_pre_drill_items_the_report_proves():
    # The role stopped at its first preflight check: no restore point, no RPO check, no disk check.
    isolation = "Check the target is an isolated, empty replacement"
    failure = _drill.failed_item({"failure": _failure("preflight", isolation),
                                  "checks": []}, "restore")
    entry = _drill.record(_state(report={"result": "FAIL", "failure": failure, "checks": []}, failure=failure,
                                 notify_checks=[{"phase": "notify", "name": "start", "ok": False, "required": False}]))
    got = {c["item"]: c["status"] for c in entry["checklist"]}
    assert got["standby empty and isolated"] == "FAIL" and got["notification sent"] == "warn"
    assert got["offsite repository reachable"] == got["backup fresher than the RPO"] == "not reached"
    # The restore got its point but found it too old: the repository answered.
    report = _report("FAIL", _failure("preflight", "Check the backup is fresher than the RPO"), files=90000)
    report["checks"] = []
    failure = _drill.failed_item(report, "restore", rpo=3600)
    got = {c["item"]: c["status"] for c in _drill.record(_state(report=report, failure=failure))["checklist"]}
    assert got["backup fresher than the RPO"] == "FAIL" and got["offsite repository reachable"] == "ok"
    assert got["standby empty and isolated"] == "not reached"


def test_record_of_a_settings_failure_and_of_check_mode():
    entry = _drill.record(_state(report={}, failure=_drill.failed_item(None, "settings", "Check", "bad")))
    assert entry["checklist"][0] == {"item": "drill settings", "status": "FAIL"}
    assert {c["status"] for c in entry["checklist"][1:]} == {"not reached"}
    checked = _drill.record(_state(report=_report("CHECK"), check_mode=True))
    assert checked["result"] == "CHECK" and checked["failed_item"] is None


def _entry(day, result="PASS", rto=100.0, rpo=600, pg=20, item=None):
    return {"drill": f"2025-12-{day:02d}T02:00:00Z", "standby": "s1", "tool": "borg", "result": result,
            "rto_seconds": rto if result == "PASS" else None, "rpo_seconds": rpo, "rpo_database_seconds": pg,
            "drill_seconds": 300.0, "failed_item": item}


def test_parse_history_keeps_the_readable_lines_oldest_first():
    text = "\n".join([json.dumps(_entry(3)), "{not json", "", json.dumps([1, 2]), json.dumps(_entry(1)),
                      json.dumps({"no": "drill"})])
    got = _drill.parse_history(text)
    assert [e["drill"][:10] for e in got["entries"]] == ["2025-12-01", "2025-12-03"] and got["unreadable"] == 3
    assert _drill.parse_history("") == {"entries": [], "unreadable": 0}


@pytest.mark.parametrize("seconds, text", [(None, "-"), (42.4, "42 s"), (185, "3 min 5 s"), (7800, "2 h 10 min"),
                                           (93600, "1 d 2 h")])
def test_duration(seconds, text):
    assert _drill.duration(seconds) == text


def test_table_shows_the_last_drills():
    entries = [_entry(d) for d in range(1, 6)] + [_entry(6, "FAIL", item="smoke | tests")]
    lines = _drill.table(entries, last=3).splitlines()
    assert len(lines) == 5 and lines[0].startswith("| drill (UTC) |")
    assert lines[2].startswith(
        "| 2025-12-04T02:00:00Z | s1 | borg | PASS | 1 min 40 s | 10 min 0 s | 20 s | 5 min 0 s | - |")
    assert lines[-1].endswith("| FAIL | - | 10 min 0 s | 20 s | 5 min 0 s | smoke / tests |")
    assert "no drill recorded yet" in _drill.table([])
    with pytest.raises(ValueError):
        _drill.table(entries, last=0)


def _points(doc, series):
    return [c for c in doc.iter(SVG + "circle") if series in c.get("class", "").split()]


def test_svg_plots_rto_and_rpo_of_the_last_drills():
    entries = [_entry(d, rto=60.0 * d, rpo=600 + d) for d in range(1, 15)] + [_entry(15, "FAIL", item="offsite")]
    doc = ET.fromstring(_drill.svg(entries, last=5, rto_objective=600, rpo_objective=3600))  # noqa: S314
    # The last five: four passed drills with an RTO, five with an RPO of the files and of the database.
    assert len(_points(doc, "rto_seconds")) == 4
    assert len(_points(doc, "rpo_seconds")) == 5 and len(_points(doc, "rpo_database_seconds")) == 5
    assert len(list(doc.iter(SVG + "polyline"))) == 3
    fails = [p for p in doc.iter(SVG + "path") if p.get("class") == "fail"]
    assert len(fails) == 2 and "FAIL at offsite" in fails[0].find(SVG + "title").text  # one cross per panel
    texts = " ".join(t.text or "" for t in doc.iter(SVG + "text"))
    assert "the last 5 drill(s) (4 passed)" in texts
    assert "objective 10 min 0 s" in texts and "objective 1 h 0 min" in texts
    labels = [t.text for t in doc.iter(SVG + "text") if "label" in t.get("class", "")]
    assert labels == ["2025-12-11", "2025-12-12", "2025-12-13", "2025-12-14", "2025-12-15"]
    # A higher RTO is drawn higher (smaller y).
    ys = [float(c.get("cy")) for c in _points(doc, "rto_seconds")]
    assert ys == sorted(ys, reverse=True)


def test_svg_labels_stay_readable():
    # Two drills on one day: their times are shown; of 20 drills at most eight labels, the newest among them.
    entries = [_entry(1), dict(_entry(1), drill="2025-12-01T14:30:00Z")]
    doc = ET.fromstring(_drill.svg(entries))  # noqa: S314 (our own output)
    assert [t.text for t in doc.iter(SVG + "text") if "label" in t.get("class", "")] == [
        "2025-12-01 02:00", "2025-12-01 14:30"]
    doc = ET.fromstring(_drill.svg([_entry(d) for d in range(1, 21)], last=20))  # noqa: S314 (our own output)
    labels = [t.text for t in doc.iter(SVG + "text") if "label" in t.get("class", "")]
    assert len(labels) == 7 and labels[-1] == "2025-12-20"


def test_svg_scales_its_axis_and_units():
    doc = ET.fromstring(_drill.svg([_entry(1, rto=5400.0, rpo=3 * 86400)]))  # noqa: S314 (our own output)
    texts = [t.text for t in doc.iter(SVG + "text")]
    assert "RTO: to service (min)" in texts and "RPO: data lost (d)" in texts
    # One drill: its point in the middle, within the frame.
    (point,) = _points(doc, "rto_seconds")
    assert float(point.get("cx")) == pytest.approx(70 + (720 - 90) / 2)
    assert 60 <= float(point.get("cy")) <= 210


def test_svg_of_an_empty_history_and_escaped_text():
    doc = ET.fromstring(_drill.svg([], title="<drills & co>"))  # noqa: S314 (our own output)
    texts = [t.text for t in doc.iter(SVG + "text")]
    assert "no drill recorded yet" in texts and texts[0].startswith("<drills & co>")


def test_summary_lists_the_checklist_and_the_issues():
    entry = _drill.record(_state(report=_report("FAIL", _failure("sanity", "x"),
                                                [{"phase": "sanity", "name": "SQL: orders", "ok": False}]),
                                 failure={"key": "integrity", "item": _drill.ITEMS["integrity"],
                                          "message": "SQL: orders"}))
    text = _drill.summary(entry)
    assert text.splitlines()[0] == ("DR drill FAIL on standby1 at checklist item "
                                    "'integrity (row counts, checksums, sanity checks)': SQL: orders")
    assert "  [FAIL] integrity (row counts, checksums, sanity checks)" in text
    assert "  issues met: 1\n    FAIL sanity: SQL: orders\n" in text
