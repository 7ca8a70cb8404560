from __future__ import annotations

from ansible_collections.restoreops.dr.plugins.module_utils._response import phases

ORDER = ["isolate", "scope", "verify_backups"]


def test_phases_ok_failed_and_not_run():
    marks = [
        {"phase": "isolate", "event": "start", "t": 100.0, "host": "localhost"},
        {"phase": "isolate", "event": "end", "t": 112.5, "host": "localhost"},
        {"phase": "scope", "event": "start", "t": 113.0, "host": "localhost"},
        {"phase": "scope", "event": "failed", "t": 114.0, "host": "prod", "msg": "no paths"},
        {"phase": "scope", "event": "end", "t": 114.2, "host": "localhost"},
    ]
    got = phases(marks, ORDER)
    assert [(p["name"], p["status"], p["seconds"]) for p in got] == [
        ("isolate", "ok", 12.5), ("scope", "failed", 1.2), ("verify_backups", "not run", None)]
    assert got[1]["detail"] == "prod: no paths"


def test_a_phase_that_never_ended_is_incomplete():
    got = phases([{"phase": "isolate", "event": "start", "t": 1}], ORDER[:1])
    assert got[0]["status"] == "incomplete" and got[0]["seconds"] is None
