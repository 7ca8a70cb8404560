# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the policy audit rules, waivers and reports (no host, no tool)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ansible_collections.restoreops.dr.plugins.module_utils import _audit as audit

NOW = 1_800_000_000.0


def iso(hours_ago: float) -> str:
    import datetime as dt
    return dt.datetime.fromtimestamp(NOW - hours_ago * 3600, dt.UTC).isoformat()


def borg_result(append_only=True, exported=False, last_hours=2.0, failed=False):
    if failed:
        return {"failed": True, "msg": "Repository does not exist.", "item": {"name": "b"}}
    return {
        "changed": False,
        "repo": {"append_only": append_only},
        "key_export": {"dest": "/escrow/b.key", "exported": exported},
        "archives": {"count": 1, "last": None if last_hours is None else {"name": "n1", "start": iso(last_hours),
                                                                          "end": iso(last_hours)}},
        "item": {"name": "b", "key_export": "/escrow/b.key"},
    }


def restic_probe(keep=True, prune=True, timer=True, last_hours=2.0):
    item = {"name": "r", "retention": {"keep_daily": 7} if keep else {}, "prune": prune}
    snapshots = [] if last_hours is None else [{"time": iso(last_hours + 5)}, {"time": iso(last_hours)}]
    if keep:
        # the retention preview lists the snapshots; the separate listing is skipped
        forget = {"changed": True, "kept": snapshots[-1:], "removed": snapshots[:-1], "item": item}
        listing = {"skipped": True, "item": item}
    else:
        forget = {"skipped": True, "item": item}
        listing = {"rc": 0, "stdout": json.dumps(snapshots), "item": item}
    return {
        "restic_forget": [forget],
        "restic_snapshots": [listing],
        "restic_timer": [{"stat": {"exists": timer}, "item": item}],
    }


def rules_of(result):
    return sorted({f["rule"] for f in result["findings"] if not f["waived"]})


def test_compliant_host_passes():
    raw = {"borg": [borg_result()], **restic_probe(),
           "escrow": {"ok": True, "results": [{"name": "k", "problems": []}]},
           "postgres": {"ansible_facts": {"pg_archiver": {"healthy": True, "problems": []}}},
           "secret_files": [{"item": "/etc/restoreops/borg.pass", "stat": {"exists": True, "mode": "0600"}}],
           "secret_scan": {"files": []},
           "rsnapshot": [{"item": "/etc/rsnapshot.conf", "path": "/etc/rsnapshot.conf", "ok": True,
                          "problems": []}]}
    result = audit.evaluate(audit.normalize(raw), [], 25, NOW)
    assert result["findings"] == [] and result["ok"] is True
    assert set(result["checked"]) == set(audit.RULES) - {"probe_failed"}


def test_borg_rules():
    findings = audit.borg_rules(audit.normalize({"borg": [borg_result(False, True, 30)]})["borg"], 25, NOW)
    assert sorted(f["rule"] for f in findings) == ["backup_rpo", "borg_append_only", "key_escrow"]
    assert any("30.0 h old" in f["message"] for f in findings)
    undeclared = borg_result()
    undeclared["item"] = {"name": "b"}
    assert [f["rule"] for f in audit.borg_rules(audit.normalize({"borg": [undeclared]})["borg"], 25, NOW)] == [
        "key_escrow"]
    failed = audit.borg_rules(audit.normalize({"borg": [borg_result(failed=True)]})["borg"], 25, NOW)
    assert [f["rule"] for f in failed] == ["probe_failed"] and "does not exist" in failed[0]["message"]
    empty = audit.borg_rules(audit.normalize({"borg": [borg_result(last_hours=None)]})["borg"], 25, NOW)
    assert [f["message"] for f in empty] == ["borg repository b holds no archive."]


def test_borg_naive_local_time_is_read():
    assert audit.epoch_seconds("2026-11-23T10:00:00.123456") is not None
    nanoseconds = audit.epoch_seconds("2026-11-23T10:00:00.123456789+00:00")
    assert nanoseconds == audit.epoch_seconds("2026-11-23T10:00:00.123456Z")
    assert audit.epoch_seconds("not a time") is None


def test_restic_rules_each_fault():
    obs = audit.normalize(restic_probe(keep=False, prune=False, timer=False, last_hours=40))
    messages = [f["message"] for f in audit.restic_rules(obs["restic"], 25, NOW)]
    assert any("no retention policy" in m for m in messages)
    assert any("without pruning" in m for m in messages)
    assert any("no enabled retention schedule" in m for m in messages)
    assert any("latest snapshot of r is 40.0 h old" in m for m in messages)
    ok = audit.normalize(restic_probe())
    assert audit.restic_rules(ok["restic"], 25, NOW) == []
    broken = restic_probe()
    item = broken["restic_forget"][0]["item"]
    broken["restic_forget"][0] = {"failed": True, "msg": "wrong password", "item": item}
    assert [f["rule"] for f in audit.restic_rules(audit.normalize(broken)["restic"], 25, NOW)] == ["probe_failed"]
    unlisted = restic_probe(keep=False)
    unlisted["restic_snapshots"][0] = {"rc": 1, "failed": True, "msg": "wrong password", "item": {"name": "r"}}
    assert "probe_failed" in [f["rule"] for f in audit.restic_rules(audit.normalize(unlisted)["restic"], 25, NOW)]
    stale_preview = audit.normalize(restic_probe(last_hours=30))
    assert [f["rule"] for f in audit.restic_rules(stale_preview["restic"], 25, NOW)] == ["backup_rpo"]


def test_escrow_postgres_secrets_rsnapshot():
    escrow = audit.escrow_rules({"ok": False, "results": [{"name": "k1", "problems": ["mode 0644, looser"]}]})
    assert [(f["rule"], f["target"]) for f in escrow] == [("key_escrow", "k1")]
    pg = audit.postgres_rules({"ansible_facts": {"pg_archiver": {"healthy": False,
                                                                 "problems": ["archive_mode is off."]}}})
    assert [(f["rule"], f["message"]) for f in pg] == [("pg_archiving", "archive_mode is off.")]
    assert audit.postgres_rules({"failed": True, "msg": "connection refused"})[0]["rule"] == "probe_failed"
    secrets = audit.secret_rules([{"path": "/p", "exists": True, "mode": "0640"},
                                  {"path": "/q", "exists": True, "mode": "0400"},
                                  {"path": "/r", "exists": False, "mode": None}],
                                 [{"path": "/etc/systemd/system/backup.service"}])
    assert [(f["rule"], f["target"]) for f in secrets] == [
        ("secret_file_mode", "/p"), ("secret_file_mode", "/r"), ("secret_in_files",
                                                                 "/etc/systemd/system/backup.service")]
    rs = audit.rsnapshot_rules([{"path": "/etc/rsnapshot.conf", "problems": ["line 4: spaces"]}])
    assert [(f["rule"], f["message"]) for f in rs] == [("rsnapshot_config", "line 4: spaces")]


def test_waivers_need_a_reason_and_can_name_a_target():
    findings = audit.borg_rules(audit.normalize({"borg": [borg_result(append_only=False)]})["borg"], 25, NOW)
    waived = audit.apply_waivers(findings, [{"rule": "borg_append_only", "reason": "migration until March"}])
    assert waived[0]["waived"] is True and waived[0]["reason"] == "migration until March"
    other = audit.apply_waivers(findings, [{"rule": "borg_append_only", "target": "other", "reason": "x"}])
    assert other[0]["waived"] is False
    unreasoned = audit.apply_waivers(findings, [{"rule": "borg_append_only", "reason": "  "}])
    assert unreasoned[0]["waived"] is False
    assert any("no written reason" in f["message"] for f in unreasoned)
    unknown = audit.apply_waivers([], [{"rule": "nope", "reason": "because"}])
    assert "unknown rule" in unknown[0]["message"]


def test_report_table_and_junit():
    bad = audit.evaluate(audit.normalize({"borg": [borg_result(append_only=False, last_hours=50)]}),
                         [{"rule": "backup_rpo", "reason": "host retired next week"}], 25, NOW)
    good = audit.evaluate(audit.normalize({"borg": [borg_result()]}), [], 25, NOW)
    doc = audit.report({"web1": good, "db1": bad})
    assert list(doc["hosts"]) == ["db1", "web1"]
    assert doc["violations"] == 1 and doc["waived"] == 1 and doc["hosts_failing"] == ["db1"] and not doc["ok"]
    text = audit.table(doc)
    assert "VIOLATION" in text and "WAIVED" in text and "host retired next week" in text and "web1" in text
    assert text.splitlines()[-1] == "1 violation(s), 1 waived, 1 of 2 host(s) failing"
    root = ET.fromstring(audit.junit(doc))  # noqa: S314 (our own output)
    assert root.tag == "testsuites" and root.get("failures") == "1" and root.get("skipped") == "1"
    suites = {s.get("name"): s for s in root}
    assert suites["db1"].find("testcase/failure") is not None
    assert "host retired next week" in suites["db1"].find("testcase/skipped").get("message")
    assert suites["web1"].get("failures") == "0" and len(suites["web1"]) >= 3


def test_filter_plugin_wraps_the_rules():
    from ansible_collections.restoreops.dr.plugins.filter import audit as audit_filter

    filters = audit_filter.FilterModule().filters()
    result = filters["audit_evaluate"]({"borg": [borg_result(append_only=False)]}, [], 25, NOW)
    assert rules_of(result) == ["borg_append_only"]
    doc = filters["audit_report"]({"h": result})
    assert "borg_append_only" in filters["audit_table"](doc)
    assert filters["audit_junit"](doc).startswith("<?xml")


def test_one_find_for_passphrase_files_and_timer_links():
    probe = restic_probe()
    probe["restic_forget"][0]["item"]["retention_timer"] = "restic-forget.timer"
    probe["restic_snapshots"][0]["item"]["retention_timer"] = "restic-forget.timer"
    del probe["restic_timer"]
    raw = {**probe, "timer_dir": "/etc/systemd/system", "secret_paths": ["/etc/a.pass", "/etc/b.pass", "/etc/c.pass"],
           "watched": {"files": [{"path": "/etc/a.pass", "mode": "0600"}, {"path": "/etc/b.pass", "mode": "0644"},
                                 {"path": "/etc/systemd/system/timers.target.wants/restic-forget.timer",
                                  "mode": "0777"}]}}
    obs = audit.normalize(raw)
    assert obs["restic"][0]["schedule"] is True
    assert obs["secret_files"] == [{"path": "/etc/a.pass", "exists": True, "mode": "0600"},
                                   {"path": "/etc/b.pass", "exists": True, "mode": "0644"},
                                   {"path": "/etc/c.pass", "exists": False, "mode": None}]
    raw["watched"]["files"].pop()
    assert audit.normalize(raw)["restic"][0]["schedule"] is False
    result = audit.evaluate(audit.normalize(raw), [], 25, NOW)
    assert sorted((f["rule"], f["target"]) for f in result["findings"]) == [
        ("restic_retention", "r"), ("secret_file_mode", "/etc/b.pass"), ("secret_file_mode", "/etc/c.pass")]


def test_a_failed_probe_run_is_a_violation_not_a_pass():
    """backup_policy_facts failing as a whole (bad options) leaves no observation: the host must not pass."""
    raw = {"failed": True, "msg": "Unsupported parameters for (restoreops.dr.backup_policy_facts) module: x"}
    result = audit.evaluate(audit.normalize(raw), [], 25, NOW)
    assert [(f["rule"], f["target"]) for f in result["findings"]] == [("probe_failed", "host")]
    assert "Unsupported parameters" in result["findings"][0]["message"] and result["ok"] is False
    assert audit.normalize({"failed": False, "borg": []})["probe_failure"] is None


def test_every_host_at_once_matches_one_at_a_time():
    """audit_evaluate_hosts (the playbook's one evaluation on the controller) gives what audit_evaluate gives per
    host, with each host's own waivers and RPO; a host without probe results is a violation, never a pass."""
    from ansible_collections.restoreops.dr.plugins.filter import audit as audit_filter

    evaluate_hosts = audit_filter.FilterModule().filters()["audit_evaluate_hosts"]
    stale = {"borg": [borg_result(last_hours=30.0)]}
    waiver = [{"rule": "borg_append_only", "target": "b", "reason": "INC-1: pruned by the backup host"}]
    out = evaluate_hosts(["ok", "stale", "lenient", "waived", "gone"],
                         [{"borg": [borg_result()]}, stale, stale, {"borg": [borg_result(append_only=False)]}, None],
                         waivers=[[], [], [], waiver, []], rpo_hours=[25, 25, 48, None, 25], now=NOW)
    assert list(out) == ["ok", "stale", "lenient", "waived", "gone"]
    assert out["ok"] == audit.evaluate(audit.normalize({"borg": [borg_result()]}), [], 25, NOW)
    assert rules_of(out["stale"]) == ["backup_rpo"] and out["lenient"]["ok"] is True
    assert out["waived"]["ok"] is True and out["waived"]["waived"] == 1
    assert out["gone"]["ok"] is False and [f["rule"] for f in out["gone"]["findings"]] == ["probe_failed"]
    assert audit.report(out)["hosts_failing"] == ["gone", "stale"]
    # defaults: no waivers, an RPO of 25 hours
    assert evaluate_hosts(["stale"], [stale], now=NOW)["stale"]["violations"] == 1


def test_every_host_at_once_refuses_lists_that_do_not_line_up():
    import pytest
    from ansible.errors import AnsibleFilterError

    from ansible_collections.restoreops.dr.plugins.filter import audit as audit_filter

    evaluate_hosts = audit_filter.FilterModule().filters()["audit_evaluate_hosts"]
    with pytest.raises(AnsibleFilterError, match="2 hosts, but 1 probe results"):
        evaluate_hosts(["a", "b"], [{}], now=NOW)
    with pytest.raises(AnsibleFilterError, match="list of the play's host names"):
        evaluate_hosts("a", [{}], now=NOW)
