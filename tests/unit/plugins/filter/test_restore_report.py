from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.restoreops.dr.plugins.filter import restore_report as rr

SPEC = {
    "tool": {"type": "str", "required": True},
    "snapshot": {"type": "str", "default": "latest"},
    "env": {"type": "dict", "default": {}},
    "health": {"type": "dict", "default": {}, "options": {"http": {"type": "str", "default": ""},
                                                          "status": {"type": "int", "default": 200}}},
    "items": {"type": "list", "elements": "dict", "options": {"name": {"type": "str"},
                                                              "timeout": {"type": "int", "default": 3}}},
    "opts": {"type": "dict", "options": {"a": {"type": "int", "default": 1}}},
}


def test_spec_defaults_fills_nested_and_keeps_given_values():
    given = {"tool": "restic", "health": {"http": "http://x"}, "items": [{"name": "a"}, {"timeout": 9}]}
    out = rr.spec_defaults(given, SPEC)
    assert out["snapshot"] == "latest" and out["env"] == {}
    assert out["health"] == {"http": "http://x", "status": 200}
    assert out["items"] == [{"name": "a", "timeout": 3}, {"timeout": 9}]
    assert out["opts"] == {"a": 1}  # a dict option without default gets its own defaults
    assert "name" not in rr.spec_defaults({}, SPEC)["health"]


def test_spec_defaults_fills_a_missing_dict_whose_default_is_empty():
    # restore_server_cutover: {} by default, its dns: {} by default, dns.server '' by default: a role that was given
    # no cut-over at all must still read __restore_server_cutover.dns.server.
    spec = {"dns": {"type": "dict", "default": {}, "options": {"server": {"type": "str", "default": ""},
                                                               "port": {"type": "int", "default": 53}}},
            "hook": {"type": "path", "default": ""}}
    assert rr.spec_defaults({}, spec) == {"dns": {"server": "", "port": 53}, "hook": ""}
    assert rr.spec_defaults({}, SPEC)["health"] == {"http": "", "status": 200}


def test_spec_defaults_on_lists_and_none():
    assert rr.spec_defaults([{"tool": "x"}, None], {"snapshot": {"default": "latest"}}) == [
        {"tool": "x", "snapshot": "latest"}, {"snapshot": "latest"}]
    assert rr.spec_defaults(None, {"a": {"default": 1}}) == {"a": 1}
    with pytest.raises(AnsibleFilterError):
        rr.spec_defaults("text", SPEC)


@pytest.mark.parametrize(("repo", "clean", "backend"), [
    ("s3:https://127.0.0.1:9000/bucket/prod", "s3:https://127.0.0.1:9000/bucket/prod", "s3"),
    ("rest:https://user:secret@127.0.0.1:8000/prod/", "rest:https://user@127.0.0.1:8000/prod/", "rest"),
    ("ssh://borg@127.0.0.12:22012/./prod", "ssh://borg@127.0.0.12:22012/./prod", "ssh"),
    ("sftp:backup@host:/srv/restic", "sftp:backup@host:/srv/restic", "ssh"),
    ("/offsite/restic", "/offsite/restic", "local"),
    ("b2:bucket:path", "b2:bucket:path", "b2"),
])
def test_repository_source(repo, clean, backend):
    assert rr.repository_source(repo, "restic") == {"tool": "restic", "repository": clean, "backend": backend}


def test_escrow_checks():
    result = {"results": [{"name": "files", "ok": True, "checks": {"exists": True, "decrypts": True}},
                          {"name": "db", "ok": False, "checks": {"exists": True, "apart": False},
                           "problems": ["the key shares a file system with the data"]}]}
    records = rr.escrow_checks(result)
    assert records[0] == {"phase": "keys", "name": "escrowed key files", "ok": True,
                          "detail": "passed: exists, decrypts"}
    assert not records[1]["ok"] and "failed: apart. the key shares" in records[1]["detail"]


def test_sanity_checks_from_registered_results():
    registered = {
        "sql": {"results": [
            {"item": {"name": "orders", "expect": "1200"}, "query_result": [{"count": 1200}]},
            {"item": {"name": "bad"}, "msg": "relation does not exist"},
            {"item": {"name": "skipped"}, "skipped": True}]},
        "http": {"results": [{"item": {"name": "health", "url": "http://h", "status": 200, "contains": '"ok": true'},
                              "status": 200, "content": '{"ok": true}'},
                             {"item": {"name": "down", "url": "http://d"}, "status": -1}]},
        "write": {"results": [{"query_result": []}, {"query_result": [{"at": "x"}]}, {"query_result": []}]},
        "dns": {"results": [{"item": {"name": "resolver", "dns": "localhost", "required": True}, "rc": 0,
                             "stdout": "::1 localhost"}]},
        "tcp": {"results": [{"item": {"name": "gateway", "tcp": "127.0.0.1:9"}, "state": None,
                             "msg": "Timeout when waiting"}]},
    }
    records = {r["name"]: r for r in rr.sanity_checks(registered, "shop")}
    assert records["SQL: orders"]["ok"] and records["SQL: orders"]["detail"] == "got 1200, expected 1200"
    assert not records["SQL: bad"]["ok"] and "relation does not exist" in records["SQL: bad"]["detail"]
    assert "SQL: skipped" not in records
    assert records["HTTP: health"]["ok"] and not records["HTTP: down"]["ok"]
    assert records["write test"]["ok"]
    assert records["dependency: resolver"]["ok"] and records["dependency: resolver"]["required"]
    gateway = records["dependency: gateway"]
    assert not gateway["ok"] and not gateway["required"] and "Timeout" in gateway["detail"]
    assert [r["name"] for r in rr.failed_checks(list(records.values()))] == ["SQL: bad", "HTTP: down"]


def test_sanity_http_body_mismatch_and_write_failure():
    registered = {"http": {"results": [{"item": {"name": "h", "url": "u", "contains": "ok"}, "status": 200,
                                        "content": "nope"}]},
                  "write": {"results": [{"msg": "permission denied"}]}}
    records = rr.sanity_checks(registered, "shop")
    assert not records[0]["ok"] and "no 'ok' in the answer" in records[0]["detail"]
    assert not records[1]["ok"] and "permission denied" in records[1]["detail"]
    assert rr.sanity_checks({}, "") == []


def test_service_checks():
    order = [{"name": "postgresql", "health": {"command": ["pg_isready"], "http": "", "status": 200}},
             {"name": "app", "health": {"http": "http://127.0.0.1:8080/health", "status": 200}}]
    records = rr.service_checks(order)
    assert records[0]["detail"] == "postgresql -> app"
    assert records[1] == {"phase": "services", "name": "postgresql healthy", "ok": True, "detail": "command pg_isready"}
    assert records[2]["detail"] == "http http://127.0.0.1:8080/health"


def state(**over):
    base = {"host": "rdr-new", "started": 1000.0, "now": 1100.0, "check_mode": False,
            "phases": [{"name": "preflight", "start": 1000.0}, {"name": "data", "start": 1010.0},
                       {"name": "postgresql", "start": 1010.0, "end": 1040.0}, {"name": "services", "start": 1050.0},
                       {"name": "sanity", "start": 1060.0}, {"name": "rebuild", "start": 1070.0}],
            "checks": [{"phase": "data", "name": "restored", "ok": True},
                       {"phase": "sanity", "name": "dep", "ok": False, "required": False}],
            "failure": {}, "plan": [], "in_service": 1065.0, "protected": 1090.0,
            "incident": "2026-03-14T10:00:00+00:00",
            "restore_point": {"id": "abc", "time": "2026-03-14T09:00:00.123456789+00:00"},
            "postgresql": {"last_replayed_transaction": "2026-03-14 09:59:30.5", "last_restored_wal": "0001"},
            "tool": "restic", "repository": "rest:https://u:p@h/r",
            "target": {"distribution": "Debian", "distribution_version": "13.2", "connection": "ssh"}}
    base.update(over)
    return base


def test_report_pass_with_rto_to_service_and_protected():
    r = rr.restore_report(state())
    assert r["result"] == "PASS"
    assert r["rto_seconds"] == 65.0 and r["protected_seconds"] == 90.0 and r["play_seconds"] == 100.0
    assert r["marks"] == [{"label": "in service", "seconds": 65.0}, {"label": "protected", "seconds": 90.0}]
    rows = {p["name"]: p for p in r["phases"]}
    assert rows["data"]["seconds"] == 40.0          # until services start
    assert rows["postgresql"] == {"name": "postgresql", "status": "ok", "start_offset": 10.0, "seconds": 30.0}
    assert rows["rebuild"]["seconds"] == 30.0       # until the report
    assert r["rpo"]["files_seconds"] == 3600 and r["rpo"]["postgresql_seconds"] == 30
    assert r["source"] == {"tool": "restic", "repository": "rest:https://u@h/r", "backend": "rest"}
    assert r["started"] == "1970-01-01T00:16:40Z"


def test_report_fail_marks_the_phase_and_has_no_rto():
    r = rr.restore_report(state(failure={"phase": "postgresql", "msg": "WAL segment X is missing"},
                                in_service=None, protected=None))
    assert r["result"] == "FAIL" and r["rto_seconds"] is None and r["protected_seconds"] is None
    assert {p["name"]: p["status"] for p in r["phases"]}["postgresql"] == "failed"


def test_report_fails_on_a_required_failed_check_and_check_mode_says_check():
    checks = [{"phase": "sanity", "name": "SQL", "ok": False, "required": True}]
    assert rr.restore_report(state(checks=checks))["result"] == "FAIL"
    assert rr.restore_report(state(check_mode=True, in_service=None))["result"] == "CHECK"
    assert rr.restore_report(state(incident=None))["rpo"]["incident"] == "1970-01-01T00:16:40Z"


def test_sanity_checks_http_dependencies_see_a_revoked_token():
    registered = {"api": {"results": [
        {"item": {"name": "payment API", "http": "http://127.0.0.1:18080/v1/ping", "token": "s3cr3t", "status": 200,
                  "required": True}, "status": 403, "content": "revoked"},
        {"item": {"name": "geo API", "http": "http://127.0.0.1:18080/geo", "status": 200, "body_contains": "pong"},
         "status": 200, "content": "nothing"},
        {"item": {"name": "mail API", "http": "http://127.0.0.1:18080/mail", "status": 204}, "status": 204}]}}
    records = rr.sanity_checks(registered)
    assert [r["ok"] for r in records] == [False, False, True]
    assert records[0]["detail"] == "HTTP 403 from http://127.0.0.1:18080/v1/ping (expected 200)"
    assert records[0]["required"] and "s3cr3t" not in repr(records)
    assert records[1]["detail"].endswith("without the expected text in the answer")


def test_spec_defaults_fills_the_options_of_a_dict_whose_default_is_empty():
    from ansible_collections.restoreops.dr.plugins.filter.restore_report import spec_defaults
    options = {"dns": {"type": "dict", "default": {}, "options": {"server": {"type": "str", "default": ""},
                                                                  "port": {"type": "int", "default": 53}}},
               "hook": {"type": "str", "default": ""}}
    assert spec_defaults({}, options) == {"dns": {"server": "", "port": 53}, "hook": ""}


def test_fidelity_checks():
    verify = {"fidelity": [
        {"attribute": "mode", "status": "checked", "checked": 12, "recorded": 3, "differing": 0, "paths": []},
        {"attribute": "acl", "status": "differing", "checked": 12, "recorded": 1, "differing": 1,
         "paths": ["/srv/app/acl"]},
        {"attribute": "sparse", "status": "not supported by the tool", "checked": 1, "recorded": 1, "differing": 1,
         "paths": ["/srv/app/disk.img"]}]}
    records = rr.fidelity_checks(verify)
    assert [(r["name"], r["ok"]) for r in records] == [("fidelity: mode", True), ("fidelity: acl", False),
                                                       ("fidelity: sparse", True)]
    assert records[0] == {"phase": "data", "name": "fidelity: mode", "ok": True,
                          "detail": "checked: 12 compared, 3 carrying it"}
    assert records[1]["detail"] == "differing: 12 compared, 1 carrying it, 1 differing (/srv/app/acl)"
    assert records[2]["detail"].startswith("not supported by the tool: ")
    assert rr.fidelity_checks({}) == [] and rr.fidelity_checks(None) == []


def test_data_summary_keeps_the_resume_figure_only_for_a_resumed_run():
    resume = {"method": "overwrite-if-changed", "kept_files": 5, "kept_bytes": 6291456,
              "transferred_bytes": 2097152, "total_bytes": 8388608}
    fidelity = [{"attribute": "mode", "status": "checked", "checked": 3, "recorded": 3, "differing": 0}]
    summary = rr.data_summary({"resumed": True, "resume": resume, "fidelity": fidelity})
    assert summary["resumed"] is True and summary["resume"]["transferred_ratio"] == 0.25
    assert summary["resume"]["kept_files"] == 5 and summary["fidelity"] == fidelity
    # Templated state may carry the boolean as text; a fresh restore's resume record is not a resume figure.
    assert rr.data_summary({"resumed": "False", "resume": resume})["resume"] == {}
    assert rr.data_summary({"resumed": "True", "resume": dict(resume, total_bytes=0)})["resume"].get(
        "transferred_ratio") is None
    assert rr.data_summary(None) == {"resumed": False, "resume": {}, "fidelity": []}


def test_the_report_carries_the_data_summary():
    state = {"started": 1000.0, "now": 1100.0, "checks": [], "phases": [],
             "data": {"resumed": True, "resume": {"transferred_bytes": 1, "total_bytes": 4}, "fidelity": []}}
    report = rr.restore_report(state)
    assert report["data"]["resume"]["transferred_ratio"] == 0.25
    assert rr.restore_report({"started": 1000.0, "now": 1100.0})["data"]["resumed"] is False
