from __future__ import annotations

import json
import socket

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _preflight as pf
from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, UnsafeError


def verdict(**over):
    args = {"is_production": False, "marker": False, "marker_path": "/etc/restoreops/production", "occupied": [],
            "state": {}, "allow_overwrite": False, "probes": [], "host": "rdr-new"}
    args.update(over)
    return pf.decide(**args)


def test_empty_target_passes_but_isolation_is_not_probed():
    v = verdict()
    assert not v["resuming"] and not v["done"] and v["isolated"] is None
    iso = next(c for c in v["checks"] if c["name"] == "isolated from production")
    assert iso["ok"] is False and iso["required"] is False and "not probed" in iso["detail"]


def test_every_reason_is_named_at_once():
    with pytest.raises(UnsafeError) as err:
        verdict(is_production=True, marker=True, occupied=["/srv/app"],
                probes=[{"name": "prod db", "address": "10.0.0.5:5432", "reachable": True}])
    msg = err.value.msg
    assert "Refusing to restore onto rdr-new" in msg
    assert "marked as production" in msg and "production marker /etc/restoreops/production" in msg
    assert "holds application data in /srv/app" in msg and "not isolated: it reaches prod db (10.0.0.5:5432)" in msg


def test_allow_overwrite_lifts_everything_but_isolation():
    v = verdict(is_production=True, marker=True, occupied=["/srv/app"], allow_overwrite=True)
    assert v["checks"][0]["detail"] == "allowed to overwrite"
    with pytest.raises(UnsafeError, match="not isolated"):
        verdict(allow_overwrite=True, probes=[{"name": "api", "address": "a:1", "reachable": True}])


def test_resume_and_done_accept_their_own_data():
    v = verdict(occupied=["/srv/app"], state={"status": "in progress", "started": "2026-01-01T00:00:00Z"})
    assert v["resuming"] and "resuming the interrupted restore" in v["checks"][0]["detail"]
    v = verdict(occupied=["/srv/app"], state={"status": "complete", "snapshot": "abc", "finished": "x"})
    assert v["done"] and not v["resuming"]
    # allow_overwrite turns a completed restore into a new one
    assert not verdict(state={"status": "complete"}, allow_overwrite=True)["done"]


def test_probes_that_fail_to_connect_prove_isolation():
    v = verdict(probes=[{"name": "prod db", "address": "10.0.0.5:5432", "reachable": False}])
    assert v["isolated"] is True
    assert v["checks"][1]["ok"] is True and "1 endpoint(s) unreachable: prod db" in v["checks"][1]["detail"]


@pytest.mark.parametrize("address", ["nohost", ":80", "host:", "host:0", "host:70000", "host:http"])
def test_bad_probe_addresses(address):
    with pytest.raises(InputError, match="HOST:PORT"):
        pf.probe_isolation([{"address": address}])


def test_real_probe_against_a_listening_and_a_closed_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        found = pf.probe_isolation([{"name": "open", "address": f"127.0.0.1:{port}", "timeout": 2},
                                    {"name": "closed", "address": f"127.0.0.1:{closed_port}", "timeout": 2},
                                    {"name": "v6", "address": f"[::1]:{closed_port}", "timeout": 2}])
    finally:
        server.close()
    assert [p["reachable"] for p in found] == [True, False, False]


def test_holds_data_and_nearest_existing(tmp_path):
    assert not pf.holds_data(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    assert not pf.holds_data(str(tmp_path / "empty"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / ".hidden").write_text("x")
    assert pf.holds_data(str(tmp_path / "full"))
    (tmp_path / "file").write_text("")
    assert pf.holds_data(str(tmp_path / "file"))
    assert pf.nearest_existing(str(tmp_path / "a" / "b" / "c")) == str(tmp_path)
    assert pf.free_bytes(str(tmp_path / "a" / "b")) > 0


def test_read_state(tmp_path):
    assert pf.read_state(None) == {} and pf.read_state(str(tmp_path / "none.json")) == {}
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"status": "complete"}))
    assert pf.read_state(str(path)) == {"status": "complete"}
    path.write_text("{broken")
    with pytest.raises(InputError, match="cannot be read"):
        pf.read_state(str(path))
