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


def test_rotation_records_name_what_was_rotated_and_the_proof():
    from ansible_collections.restoreops.dr.plugins.module_utils._response import rotation_record
    borg = rotation_record({"item": {"repository": "files-borg"}, "key_export": {"dest": "/s/files-borg.key"},
                            "passphrase_change": {"changed": True, "new_opens": True, "old_refused": True}}, "borg")
    assert borg == {"what": "borg passphrase of files-borg",
                    "detail": "borg key change-passphrase; the key exported to /s/files-borg.key",
                    "proven": "the new passphrase opens it, the old one is refused"}
    restic = rotation_record({"item": {"repository": "files-rest", "remove_old_key": False},
                              "key_rotation": {"new_key_id": "n3w", "old_key_id": "0ld", "old_refused": False}},
                             "restic")
    assert restic["detail"] == "new key n3w, old key 0ld kept (append-only server)"
    assert restic["proven"] == "the old password still opens it (old key kept)"
    assert rotation_record({"item": "app"}, "postgresql")["what"] == "database role app"
