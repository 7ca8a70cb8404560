# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the backup diagnosis decisions: registered results in, ok/warn/fail lines with their next command
out."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _diagnose as dg

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC).timestamp()


def iso(hours_ago: float) -> str:
    return dt.datetime.fromtimestamp(NOW - hours_ago * 3600, dt.UTC).isoformat()


def systemd(hours_ago: float) -> str:
    return dt.datetime.fromtimestamp(NOW - hours_ago * 3600, dt.UTC).strftime("%a %Y-%m-%d %H:%M:%S UTC")


BORG_ITEM = {"name": "main", "repo": "/srv/backup/borg"}
RESTIC_ITEM = {"name": "main", "repository": "/srv/backup/restic"}


def borg(**over):
    result = {"changed": False, "item": BORG_ITEM,
              "archives": {"count": 3, "last": {"name": "h-1", "start": iso(2), "end": iso(1.9),
                                                "stats": {"original_size": 10 * 1024 ** 2,
                                                          "compressed_size": 4 * 1024 ** 2,
                                                          "deduplicated_size": 12 * 1024, "nfiles": 5}},
                           "totals": {"deduplicated_size": 3 * 1024 ** 3}},
              "check": {"mode": "repository", "ok": True, "skipped_reason": None},
              "lock": {"present": False, "holders": []}}
    result.update(over)
    return result


def restic(**over):
    result = {"changed": False, "item": RESTIC_ITEM, "locks": [], "check": {"mode": "structure", "ok": True},
              "snapshots": {"count": 4, "last": {"id": "ab" * 32, "short_id": "abababab", "time": iso(3),
                                                 "stats": {"total_size": 2048, "total_file_count": 2}}}}
    result.update(over)
    return result


def timer(name="borg-backup-main.timer", service="borg-backup-main.service", **over):
    status = {"Id": name, "LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled",
              "LastTriggerUSec": systemd(2), "NextElapseUSecRealtime": systemd(-22), "Unit": service}
    status.update(over)
    return {"name": name, "item": name, "status": status, "changed": False}


def service(name="borg-backup-main.service", **over):
    status = {"Id": name, "LoadState": "loaded", "ActiveState": "inactive", "SubState": "dead", "Result": "success",
              "ExecMainStatus": "0", "ExecMainStartTimestamp": systemd(2), "ExecMainExitTimestamp": systemd(1.9)}
    status.update(over)
    return {"name": name, "item": name, "status": status, "changed": False}


def pg(**facts):
    base = {"archive_mode": "on", "archived_count": 12, "last_archived_wal": "000000010000000000000009",
            "last_archived_age": 60.0, "failed_count": 0, "last_failed_wal": None, "last_failed_time": None,
            "stats_reset": "2026-11-30T00:00:00+00:00", "ready_wal_count": 0, "in_recovery": False, "replicas": [],
            "problems_by_area": {"archiving": [], "replication": [], "slots": []}}
    base.update(facts)
    return {"changed": False, "ansible_facts": {"pg_archiver": base}}


def volumes(used_percent=40, **over):
    fs = {"mount_point": "/srv/backup", "total": 64 * 1024 ** 2, "used": 0, "available": 30 * 1024 ** 2,
          "used_percent": used_percent}
    vols = [{"item": p, "path": p, "exists": True, "filesystem": fs, "size": {"bytes": 1024 ** 2}}
            for p in ("/srv/backup/borg", "/srv/backup/restic")]
    result = {"changed": False, "volumes": vols}
    result.update(over)
    return result


def healthy():
    return {
        "borg": {"results": [borg()]},
        "restic": {"results": [restic()]},
        "rsnapshot": {"results": [{"item": "/etc/rsnapshot.conf", "ok": True, "lines": [],
                                   "configtest": {"ran": True, "ok": True, "rc": 0, "errors": []},
                                   "snapshot": {"checked": True, "path": "/srv/backup/rsnapshot/daily.0",
                                                "interval": "daily", "exists": True, "mtime": NOW - 3600,
                                                "age_hours": 1.0, "max_age_hours": 25, "fresh": True}}]},
        "postgres": pg(),
        "timers": {"results": [timer()]},
        "services": {"results": [service()]},
        "volumes": volumes(),
        "date_time": {"tz": "UTC", "tz_offset": "+0000"},
    }


def by_check(result, check):
    return [entry for entry in result["lines"] if entry["check"] == check]


def test_healthy_host_is_all_ok_with_a_line_for_every_check():
    result = dg.evaluate(healthy(), now=NOW)
    assert result["status"] == "ok" and result["ok"] and result["counts"]["fail"] == result["counts"]["warn"] == 0
    assert {entry["check"] for entry in result["lines"]} == set(dg.CHECKS) - {"probe"}
    assert all(entry["reason"] and entry["next"] for entry in result["lines"])
    archive = by_check(result, "borg_archive")[0]
    assert "2.0 h old" in archive["reason"] and "10.0 MiB original" in archive["reason"]
    assert "12.0 KiB deduplicated" in archive["reason"] and "(repository 3.0 GiB)" in archive["reason"]
    assert by_check(result, "restic_snapshot")[0]["reason"].endswith(
        "2.0 KiB to restore (2 files); 4 snapshot(s) in all")
    disk = by_check(result, "disk")
    assert len(disk) == 1 and disk[0]["target"] == "/srv/backup"
    assert "borg main 1.0 MiB, restic main 1.0 MiB" in disk[0]["reason"]
    assert result["observed"]["postgres"]["failed_count"] == 0


def test_old_backups_fail_with_the_backup_units_journal():
    obs = healthy()
    obs["borg"]["results"][0]["archives"]["last"]["start"] = iso(49)
    obs["restic"]["results"][0]["snapshots"]["last"]["time"] = iso(26)
    result = dg.evaluate(obs, now=NOW)
    archive, snapshot = by_check(result, "borg_archive")[0], by_check(result, "restic_snapshot")[0]
    assert archive["status"] == snapshot["status"] == "fail"
    assert "49.0 h old: older than 25 h" in archive["reason"]
    assert archive["next"] == "journalctl -u borg-backup-main.service -n 50 --no-pager"
    assert snapshot["next"] == "journalctl -u restic-backup-main.service -n 50 --no-pager"
    assert dg.evaluate(obs, now=NOW, max_age_hours=50)["ok"]


def test_empty_repositories_fail():
    obs = healthy()
    obs["borg"]["results"][0]["archives"] = {"count": 0, "last": None}
    obs["restic"]["results"][0]["snapshots"] = {"count": 0, "last": None}
    result = dg.evaluate(obs, now=NOW)
    assert "holds no archive" in by_check(result, "borg_archive")[0]["reason"]
    assert "holds no snapshot" in by_check(result, "restic_snapshot")[0]["reason"]


def test_stale_borg_lock_of_a_dead_holder_fails_with_a_guarded_break_lock():
    holder = {"host": "rdr@1", "pid": 4242, "thread": 0, "kind": "exclusive", "age": 600.0, "alive": False}
    obs = healthy()
    obs["borg"]["results"][0].update(
        lock={"present": True, "holder_pid": 4242, "holder_alive": False, "holders": [holder]},
        check={"mode": "repository", "ok": None, "skipped_reason": "the repository is locked (see lock)"})
    result = dg.evaluate(obs, now=NOW)
    lock, check = by_check(result, "borg_lock")[0], by_check(result, "borg_check")[0]
    assert lock["status"] == "fail" and "PID 4242 on rdr@1, is dead" in lock["reason"]
    assert lock["next"] == "pgrep -af borg || borg break-lock /srv/backup/borg"
    assert check["status"] == "warn" and "locked" in check["reason"]
    assert result["status"] == "fail" and not result["ok"]


@pytest.mark.parametrize("alive, age, status, words, command", [
    (True, 60.0, "ok", "a backup or check is in progress", "ps -o pid,etime,args -p 7"),
    (True, 30 * 3600.0, "warn", "hung?", "ps -o pid,etime,args -p 7"),
    (None, 60.0, "warn", "another host, old-server.example.org@5223", "ssh old-server.example.org pgrep -af borg"),
])
def test_borg_lock_holders(alive, age, status, words, command):
    holder = {"host": "old-server.example.org@5223" if alive is None else "rdr@1", "pid": 7, "age": age,
              "alive": alive}
    line = dg.borg_lock_line("main", "/r", {"present": True, "holders": [holder]}, 25)
    assert line["status"] == status and words in line["reason"] and line["next"] == command


def test_borg_check_failure_keeps_the_archive_line():
    obs = healthy()
    obs["borg"]["results"][0].update(failed=True, msg="borg check (repository) of /srv/backup/borg failed: "
                                     "Index object count mismatch.",
                                     check={"mode": "repository", "ok": False, "skipped_reason": None})
    result = dg.evaluate(obs, now=NOW)
    assert by_check(result, "borg_archive")[0]["status"] == "ok"
    check = by_check(result, "borg_check")[0]
    assert check["status"] == "fail" and "Index object count mismatch" in check["reason"]
    assert check["next"] == "borg check -v --repository-only /srv/backup/borg"


def test_unreadable_repositories_fail_once_each():
    obs = healthy()
    obs["borg"]["results"][0] = {"failed": True, "msg": "The passphrase is wrong", "item": BORG_ITEM}
    obs["restic"]["results"][0] = {"failed": True, "msg": "wrong password", "item": RESTIC_ITEM}
    result = dg.evaluate(obs, now=NOW)
    assert [e["check"] for e in result["lines"] if e["status"] == "fail"] == ["borg_archive", "restic_snapshot"]
    assert by_check(result, "restic_snapshot")[0]["next"] == "restic -r /srv/backup/restic snapshots --latest 3"


def test_restic_locks_stale_and_live():
    stale = {"id": "9c1d77e0aa", "time": iso(0.1), "hostname": "rdr", "pid": 99, "exclusive": False, "stale": True}
    line = dg.restic_lock_line("main", "restic -r /r", [stale], NOW, 25)
    assert line["status"] == "fail" and "9c1d77e0 of PID 99 on rdr" in line["reason"]
    assert line["next"] == "restic -r /r unlock"
    live = dict(stale, stale=False)
    assert dg.restic_lock_line("main", "restic -r /r", [live], NOW, 25)["status"] == "ok"


def test_restic_check_failure():
    obs = healthy()
    obs["restic"]["results"][0].update(failed=True, msg="restic check reported errors",
                                       check={"mode": "read_data_subset", "ok": False})
    result = dg.evaluate(obs, now=NOW)
    assert by_check(result, "restic_check")[0]["status"] == "fail"
    assert by_check(result, "restic_snapshot")[0]["status"] == "ok"


def test_restic_check_names_the_subset_it_read():
    subset_check = {"mode": "read_data_subset", "ok": True}
    given = restic(check=subset_check, invocation={"module_args": {"read_data_subset": "5%"}})
    assert dg.restic_lines(given, NOW, 25)[1]["reason"] == "restic check passed (read 5% of the data)"
    own = restic(check=subset_check, item=dict(RESTIC_ITEM, read_data_subset="1/10"))
    assert dg.restic_lines(own, NOW, 25)[1]["reason"] == "restic check passed (read 1/10 of the data)"
    assert dg.restic_lines(restic(), NOW, 25)[1]["reason"] == "restic check passed"


def test_failed_timer_run_is_named_with_its_journal():
    obs = healthy()
    obs["services"]["results"][0]["status"].update(Result="exit-code", ExecMainStatus="2", ActiveState="failed")
    line = by_check(dg.evaluate(obs, now=NOW), "unit")[0]
    assert line["status"] == "fail" and line["target"] == "borg-backup-main.timer"
    assert "failed: result exit-code, exit status 2" in line["reason"]
    assert line["next"] == "journalctl -u borg-backup-main.service -n 50 --no-pager"


def test_a_failed_pre_command_has_no_exit_status_but_still_fails():
    line = dg.timer_line("t.timer", timer()["status"], "s.service",
                         service(Result="exit-code", ExecMainStatus="0"), None, NOW, 25)
    assert line["status"] == "fail" and line["reason"].endswith("failed: result exit-code")
    before_main = dg.timer_line("t.timer", timer()["status"], "s.service",
                                service(Result="exit-code", ExecMainStatus="0", ExecMainStartTimestamp="",
                                        StateChangeTimestamp="Tue 2026-12-01 11:00:00 UTC"), None, NOW, 25)
    assert before_main["status"] == "fail" and before_main["reason"] == (
        "the last run of s.service (ended Tue 2026-12-01 11:00:00 UTC; its main command never started) failed: "
        "result exit-code")


@pytest.mark.parametrize("timer_over, service_over, status, words", [
    ({"ActiveState": "inactive", "UnitFileState": "disabled"}, {}, "fail", "will not fire"),
    ({"LastTriggerUSec": "n/a"}, {"ExecMainStartTimestamp": "", "ExecMainExitTimestamp": ""}, "warn", "never fired"),
    ({"LastTriggerUSec": "n/a"}, {}, "warn", "ran by hand"),
    ({}, {"ActiveState": "activating", "ExecMainStartTimestamp": systemd(0.5)}, "ok", "is running since"),
    ({}, {"ActiveState": "activating", "ExecMainStartTimestamp": systemd(30)}, "warn", "hung?"),
])
def test_timer_states(timer_over, service_over, status, words):
    line = dg.timer_line("t.timer", timer(**timer_over)["status"], "s.service", service(**service_over),
                         {"tz": "UTC", "tz_offset": "+0000"}, NOW, 25)
    assert line["status"] == status and words in line["reason"]


def test_systemd_times_in_utc_and_in_the_host_zone():
    assert dg.systemd_epoch("Tue 2026-12-01 11:00:00 UTC", None) == NOW - 3600
    cet = {"tz": "CET", "tz_offset": "+0100"}
    assert dg.systemd_epoch("Tue 2026-12-01 12:00:00 CET", cet) == NOW - 3600
    assert dg.systemd_epoch("Tue 2026-12-01 12:00:00 EST", cet) is None
    assert dg.systemd_epoch("n/a", cet) is None


def test_rsnapshot_old_snapshot_and_bad_config():
    obs = healthy()
    result = obs["rsnapshot"]["results"][0]
    result["snapshot"].update(age_hours=49.2, fresh=False)
    result["lines"] = [{"line": 4, "message": "line 4: spaces separate the fields of 'retain'"}]
    lines = dg.evaluate(obs, now=NOW)["lines"]
    snap = next(e for e in lines if e["check"] == "rsnapshot_snapshot")
    assert snap["status"] == "fail" and "49.2 h old: older than 25 h" in snap["reason"]
    assert snap["next"] == "ls -lt /srv/backup/rsnapshot/daily.0/"
    config = next(e for e in lines if e["check"] == "rsnapshot_configtest")
    assert config["status"] == "fail" and "line 4" in config["reason"]


@pytest.mark.parametrize("used, status", [(79, "ok"), (80, "warn"), (89, "warn"), (90, "fail"), (100, "fail")])
def test_disk_thresholds(used, status):
    obs = healthy()
    obs["volumes"] = volumes(used)
    line = by_check(dg.evaluate(obs, now=NOW), "disk")[0]
    assert line["status"] == status
    assert line["next"] == "df -h /srv/backup; du -sh /srv/backup/borg /srv/backup/restic"


def test_missing_volume_and_failed_volume_probe():
    obs = healthy()
    obs["volumes"]["volumes"][1] = {"path": "/srv/backup/restic", "exists": False, "filesystem": None, "size": None}
    lines = by_check(dg.evaluate(obs, now=NOW), "disk")
    assert [line["status"] for line in lines] == ["fail", "ok"]
    obs["volumes"] = {"failed": True, "msg": "volumes must be absolute paths"}
    assert by_check(dg.evaluate(obs, now=NOW), "disk")[0]["status"] == "fail"


def test_failing_archiver_fails_with_pg_stat_archiver():
    obs = healthy()
    obs["postgres"] = pg(failed_count=5, last_failed_wal="00000001000000000000000A", last_failed_time=iso(0.01),
                         problems_by_area={"archiving": ["WAL archiving is failing: segment X failed"],
                                           "replication": [], "slots": []})
    line = by_check(dg.evaluate(obs, now=NOW), "pg_archiver")[0]
    assert line["status"] == "fail" and line["reason"].startswith("WAL archiving is failing")
    assert line["next"] == 'psql -c "SELECT * FROM pg_stat_archiver;"'


def test_failed_count_rising_since_the_previous_run_is_a_warning():
    obs = healthy()
    obs["postgres"] = pg(failed_count=7, last_failed_wal="00000001000000000000000A", last_failed_time=iso(40))
    previous = {"observed": {"postgres": {"failed_count": 3, "stats_reset": "2026-11-30T00:00:00+00:00",
                                          "at": iso(48)}}}
    line = by_check(dg.evaluate(obs, now=NOW, previous=previous), "pg_archiver")[0]
    assert line["status"] == "warn" and "failed_count rose from 3 to 7" in line["reason"]
    # the statistics were reset in between: the counts cannot be compared, and the failure is old
    reset = copy.deepcopy(previous)
    reset["observed"]["postgres"]["stats_reset"] = "2026-11-01T00:00:00+00:00"
    assert by_check(dg.evaluate(obs, now=NOW, previous=reset), "pg_archiver")[0]["status"] == "ok"
    # no previous run: a recent failure is a warning, an old one is not
    assert by_check(dg.evaluate(obs, now=NOW), "pg_archiver")[0]["status"] == "ok"
    obs["postgres"] = pg(failed_count=2, last_failed_wal="X", last_failed_time=iso(1))
    assert by_check(dg.evaluate(obs, now=NOW), "pg_archiver")[0]["status"] == "warn"


def test_replication_lines():
    obs = healthy()
    obs["postgres"] = pg(problems_by_area={"archiving": [], "replication": ["Standby node2 is 420 s behind"],
                                           "slots": ["Inactive replication slot x retains 1 bytes"]},
                         replicas=[{"application_name": "node2", "replay_lag": 420.0}])
    line = by_check(dg.evaluate(obs, now=NOW), "pg_replication")[0]
    assert line["status"] == "fail" and line["reason"] == "Standby node2 is 420 s behind (+1 more)"
    standby = dg.replication_line({"in_recovery": True, "replay_lag": 0.0, "replay_lag_bytes": 0}, [])
    assert standby["status"] == "ok" and "pg_last_xact_replay_timestamp" in standby["next"]


def test_postgres_not_declared_or_unreadable():
    obs = healthy()
    obs["postgres"] = {"skipped": True}
    assert by_check(dg.evaluate(obs, now=NOW), "pg_archiver") == []
    obs["postgres"] = {"failed": True, "msg": "connection refused"}
    line = by_check(dg.evaluate(obs, now=NOW), "pg_archiver")[0]
    assert line["status"] == "fail" and "connection refused" in line["reason"]


def test_volume_paths_local_repositories_and_snapshot_roots_first():
    obs = healthy()
    obs["restic"]["results"].append(restic(item={"name": "offsite", "repository": "rest:http://127.0.0.1:8000/x"}))
    obs["borg"]["results"].append(borg(item={"name": "remote", "repo": "ssh://b@h/./r"}))
    assert dg.volume_paths(obs, ["/srv/backup", "/srv/backup/borg/"]) == [
        "/srv/backup/borg", "/srv/backup/restic", "/srv/backup/rsnapshot", "/srv/backup"]
    assert dg.volume_paths({}) == []


def test_report_and_table():
    good = dg.evaluate(healthy(), now=NOW)
    bad = dg.unreachable("unreachable")
    doc = dg.report({"web1": good, "db1": bad}, generated="2026-12-01T12:00:00+00:00", thresholds={"a": 1})
    assert doc["ok"] is False and doc["hosts_failing"] == ["db1"] and list(doc["hosts"]) == ["db1", "web1"]
    assert doc["counts"]["fail"] == 1 and doc["counts"]["ok"] == good["counts"]["ok"]
    text = dg.table(doc)
    assert text.splitlines()[0] == "== db1: FAIL (1 fail, 0 warn, 0 ok)"
    assert "-> pgrep" not in text and "-> borg info /srv/backup/borg::h-1" in text
    assert text.splitlines()[-1] == f"2 host(s): 1 fail, 0 warn, {good['counts']['ok']} ok; failing: db1"


def test_unknown_check_or_status_refused():
    with pytest.raises(ValueError):
        dg.line("nope", "t", "ok", "r", "n")
    with pytest.raises(ValueError):
        dg.line("disk", "t", "bad", "r", "n")


def test_human_units():
    assert dg.human_bytes(None) == "?" and dg.human_bytes(512) == "512 B" and dg.human_bytes(1536) == "1.5 KiB"
    assert dg.human_age(0.5) == "30 min" and dg.human_age(49.2) == "49.2 h" and dg.human_age(96) == "4.0 days"
