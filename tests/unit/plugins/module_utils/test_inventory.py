from __future__ import annotations

from ansible_collections.restoreops.dr.plugins.module_utils import _inventory

RESTIC = [
    {"id": "a" * 64, "name": "aaaaaaaa", "time": "2027-01-13T02:00:00.123456789Z"},
    {"id": "b" * 64, "name": "bbbbbbbb", "time": "2027-01-14T02:00:00.5Z"},
    {"id": "c" * 64, "name": "cccccccc", "time": "2027-01-15T02:00:00Z"},
]
BORG = [
    {"id": "1" * 64, "name": "web-2027-01-13", "time": "2027-01-13T02:00:00+00:00"},
    {"id": "2" * 64, "name": "web-2027-01-14", "time": "2027-01-14T02:00:00+00:00"},
]


def test_unchanged_with_new_snapshots_is_ok():
    now = [*RESTIC, {"id": "d" * 64, "name": "dddddddd", "time": "2027-01-16T02:00:00Z"}]
    diff = _inventory.compare(now, RESTIC, "2027-01-15T03:00:00Z")
    assert diff["ok"] and diff["unchanged"] == 3 and [s["name"] for s in diff["new"]] == ["dddddddd"]
    assert "all there" in _inventory.sentence("files", diff)


def test_a_forgotten_restic_snapshot_is_named_deleted():
    diff = _inventory.compare([RESTIC[0], RESTIC[2]], RESTIC)
    assert not diff["ok"]
    assert diff["deleted"] == [{"id": "b" * 64, "name": "bbbbbbbb", "time": "2027-01-14T02:00:00.5Z"}]
    assert "deleted: bbbbbbbb (2027-01-14T02:00:00.5Z)" in _inventory.sentence("files", diff)


def test_a_rewritten_restic_snapshot_keeps_its_time_under_a_new_id():
    rewritten = {"id": "e" * 64, "name": "eeeeeeee", "time": "2027-01-14T02:00:00.5Z"}
    diff = _inventory.compare([RESTIC[0], rewritten, RESTIC[2]], RESTIC)
    assert diff["deleted"] == [] and diff["new"] == []
    assert diff["rewritten"] == [{"recorded": {"id": "b" * 64, "name": "bbbbbbbb", "time": "2027-01-14T02:00:00.5Z"},
                                  "now": rewritten}]


def test_a_borg_archive_recreated_under_its_name_is_rewritten():
    again = {"id": "9" * 64, "name": "web-2027-01-14", "time": "2027-01-15T09:00:00+00:00"}
    diff = _inventory.compare([BORG[0], again], BORG)
    assert [r["now"]["id"] for r in diff["rewritten"]] == ["9" * 64]


def test_a_new_snapshot_older_than_the_record_is_backdated():
    old = {"id": "f" * 64, "name": "ffffffff", "time": "2027-01-12T02:00:00Z"}
    diff = _inventory.compare([*RESTIC, old], RESTIC, "2027-01-15T03:00:00Z")
    assert not diff["ok"] and diff["backdated"] == [old] and diff["new"] == []
    # Without the record's time, the newest recorded snapshot is the cutoff.
    assert _inventory.compare([*RESTIC, old], RESTIC)["backdated"] == [old]


def test_everything_deleted():
    diff = _inventory.compare([], BORG)
    assert len(diff["deleted"]) == 2 and diff["current"] == 0 and diff["recorded"] == 2
