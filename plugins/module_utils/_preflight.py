# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a restore target looks like before anything moves: the body of ``restoreops.dr.restore_preflight``.

Step 1 of the restore protocol is an isolated sandbox: never restore over production or over data that is already
there, and prove the target cannot reach production rather than assume it. Everything here only reads (and opens
TCP connections that are expected to fail); the decision (:func:`decide`) is a pure function over what was found.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.restoreops.dr.plugins.module_utils._errors import InputError, UnsafeError


def nearest_existing(path: str) -> str:
    """``path`` or its nearest ancestor that exists (a fresh host has no staging directory yet)."""
    current = os.path.abspath(path)
    while not os.path.exists(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def free_bytes(path: str) -> int:
    st = os.statvfs(nearest_existing(path))
    return st.f_bavail * st.f_frsize


def holds_data(path: str) -> bool:
    """A path holds data when it is a file, a link, or a directory with anything in it."""
    if not os.path.lexists(path):
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        with os.scandir(path) as entries:
            return next(iter(entries), None) is not None
    return True


def read_state(path: Optional[str]) -> Dict[str, Any]:
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError(f"The restore state file {path} cannot be read ({exc}); move it away if it is "
                         "damaged.") from None
    return data if isinstance(data, dict) else {}


def parse_endpoint(text: str) -> Tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"An isolation probe address must be HOST:PORT, got {text!r}.")
    return host, int(port)


def reachable(host: str, port: int, timeout: float) -> Optional[str]:
    """None when a TCP connection cannot be made (what isolation wants); else how it answered."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "connected"
    except OSError:
        return None


def probe_isolation(probes: Sequence[Dict[str, Any]],
                    connect: Callable[[str, int, float], Optional[str]] = reachable) -> List[Dict[str, Any]]:
    results = []
    for probe in probes:
        host, port = parse_endpoint(probe["address"])
        answer = connect(host, port, float(probe.get("timeout") or 3))
        results.append({"name": probe.get("name") or probe["address"], "address": probe["address"],
                        "reachable": answer is not None})
    return results


def decide(*, is_production: bool, marker: bool, marker_path: str, occupied: Sequence[str], state: Dict[str, Any],
           allow_overwrite: bool, probes: Sequence[Dict[str, Any]], host: str) -> Dict[str, Any]:
    """The verdict on a target (pure). Raises UnsafeError naming every reason it is refused."""
    status = state.get("status", "")
    resuming = status == "in progress"
    done = status == "complete" and not allow_overwrite
    reasons = []
    if not allow_overwrite:
        if is_production:
            reasons.append("it is marked as production (inventory flag)")
        if marker:
            reasons.append(f"it carries the production marker {marker_path}")
        if occupied and not (resuming or done):
            reasons.append(f"it already holds application data in {', '.join(occupied)}")
    reached = [p for p in probes if p["reachable"]]
    if reached:
        reasons.append("it is not isolated: it reaches " + ", ".join(f"{p['name']} ({p['address']})" for p in reached))
    if reasons:
        raise UnsafeError(
            f"Refusing to restore onto {host}: {'; '.join(reasons)}. Restore onto an isolated, empty replacement "
            "host; set allow_overwrite (restore_server_allow_overwrite) only when there is no alternative and the data "
            "there may be lost (isolation failures are never overridden).",
            occupied=list(occupied), probes=list(probes), marker=marker)
    if resuming:
        detail = f"resuming the interrupted restore started {state.get('started', '?')}"
    elif done:
        detail = f"a restore of {state.get('snapshot', '?')} completed here at {state.get('finished', '?')}"
    elif allow_overwrite and (is_production or marker or occupied):
        detail = "allowed to overwrite"
    else:
        detail = "empty target, not production"
    checks = [{"phase": "preflight", "name": "target is not production and holds no data", "ok": True,
               "detail": detail}]
    if probes:
        checks.append({"phase": "preflight", "name": "isolated from production", "ok": True,
                       "detail": f"{len(probes)} endpoint(s) unreachable: " + ", ".join(p["name"] for p in probes)})
    else:
        checks.append({"phase": "preflight", "name": "isolated from production", "ok": False, "required": False,
                       "detail": "not probed (no isolation probes declared)"})
    return {"resuming": resuming, "done": done, "checks": checks, "isolated": bool(probes) or None}


def main(module: Any) -> Dict[str, Any]:
    params = module.params
    for key in ("production_marker", "state_file", "staging_dir"):
        if params.get(key) and not os.path.isabs(params[key]):
            raise InputError(f"{key} must be an absolute path, got {params[key]!r}.")
    for path in params.get("app_data_paths") or []:
        if not os.path.isabs(path):
            raise InputError(f"app_data_paths must be absolute paths, got {path!r}.")
    staging = params.get("staging_dir")
    if staging and os.path.normpath(staging) == "/":
        raise InputError("staging_dir must not be / (the staging area gets a directory, a marker and a lock).")
    probes = probe_isolation(params.get("isolation_probes") or [])
    marker_path = params.get("production_marker") or ""
    marker = bool(marker_path) and os.path.lexists(marker_path)
    occupied = [p for p in params.get("app_data_paths") or [] if holds_data(p)]
    state = read_state(params.get("state_file"))
    verdict = decide(is_production=bool(params.get("is_production")), marker=marker, marker_path=marker_path,
                     occupied=occupied, state=state, allow_overwrite=bool(params.get("allow_overwrite")),
                     probes=probes, host=socket.gethostname())
    return {
        "changed": False,
        "marker": marker,
        "occupied": occupied,
        "previous": state,
        "resuming": verdict["resuming"],
        "done": verdict["done"],
        "free_bytes": free_bytes(staging) if staging else None,
        "probes": probes,
        "isolated": verdict["isolated"],
        "checks": verdict["checks"],
    }
