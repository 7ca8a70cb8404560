# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for background jobs on a host and print their progress (the controller side of restoreops.dr.await_jobs).

Each round runs the module of the same name on the host once: it watches the jobs' result files for up to
``interval`` seconds and returns as soon as one ends, with every job's progress. The controller prints a line per
running job, and collects a finished job's result with ``async_status`` (which also removes its file).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.restoreops.dr.plugins.module_utils._progress import Estimator, progress_line

display = Display()

ARGUMENT_SPEC = {
    "jobs": {
        "type": "list", "elements": "dict", "required": True,
        "options": {
            "jid": {"type": "str"},
            "label": {"type": "str", "required": True},
            "progress_file": {"type": "path"},
        },
    },
    "interval": {"type": "int", "default": 10},
    "timeout": {"type": "int", "default": 86400},
    "cleanup": {"type": "bool", "default": True},
}
# What async_status adds to a job's result; the job's own result is returned without it.
_ASYNC_KEYS = ("ansible_job_id", "started", "finished", "results_file", "stdout_lines", "stderr_lines", "erased",
               "_ansible_suppress_tmpdir_delete")


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = False

    def _async_dir(self) -> str:
        return self._remote_expand_user(self.get_shell_option("async_dir", default="~/.ansible_async"))

    def _status(self, jid: str, task_vars: dict, mode: str = "status") -> dict:
        return self._execute_module(module_name="ansible.legacy.async_status", task_vars=task_vars,
                                    module_args={"jid": jid, "mode": mode, "_async_dir": self._async_dir()})

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        jobs_arg = self._task.args.get("jobs")
        if jobs_arg is not None and (not isinstance(jobs_arg, list)
                                     or not all(isinstance(job, Mapping) for job in jobs_arg)):
            given = ("a string" if isinstance(jobs_arg, str) else "a mapping" if isinstance(jobs_arg, Mapping)
                     else "a list with other things in it" if isinstance(jobs_arg, list) else "something else")
            result.update(failed=True, changed=False,
                          msg=f"jobs must be a list of mappings with label, jid and progress_file, got {given}.")
            return result
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        for option, low, high in (("interval", 1, 60), ("timeout", 1, None)):
            value = int(args[option])
            if value < low or (high is not None and value > high):
                result.update(failed=True, changed=False,
                              msg=f"{option} must be {low} to {high} seconds, got {value}." if high else
                              f"{option} must be at least {low} second, got {value}.")
                return result
        interval = int(args["interval"])
        # Check mode collects the results but removes nothing from the host's async directory.
        cleanup = bool(args["cleanup"]) and not self._task.check_mode
        deadline = time.monotonic() + max(1, int(args["timeout"]))
        host = task_vars.get("inventory_hostname", "")
        jobs = [j for j in args["jobs"] if j.get("jid")]
        skipped = [j["label"] for j in args["jobs"] if not j.get("jid")]
        estimators = {j["jid"]: Estimator() for j in jobs}
        pending = {j["jid"]: j for j in jobs}
        records: dict[str, dict] = {}
        last_lines: dict[str, str] = {}
        async_dir = self._async_dir()

        while pending:
            wait = max(0.0, min(interval, deadline - time.monotonic()))
            watched = self._execute_module(
                module_name="restoreops.dr.await_jobs", task_vars=task_vars,
                module_args={"jobs": list(pending.values()), "interval": round(wait), "async_dir": async_dir})
            if watched.get("failed"):
                result.update(failed=True, msg=f"Could not watch the jobs on {host}: {watched.get('msg')}")
                return result
            for jid in watched.get("ended", []) + watched.get("missing", []):
                job = pending.pop(jid)
                status = self._status(jid, task_vars)
                own = {k: v for k, v in status.items() if k not in _ASYNC_KEYS}
                records[jid] = {"label": job["label"], "jid": jid, "failed": bool(own.get("failed")),
                                "msg": own.get("msg", ""), "result": own}
                if cleanup and jid not in watched.get("missing", []):
                    self._status(jid, task_vars, mode="cleanup")
            for jid, job in pending.items():
                doc = (watched.get("progress") or {}).get(jid)
                if not doc:
                    continue
                est = estimators[jid]
                est.update(float(doc.get("updated") or time.time()), float(doc["done"]))
                total = doc.get("total")
                line = progress_line(doc.get("label") or job["label"], float(doc["done"]), total,
                                     doc.get("unit") or "bytes", est.rate, est.eta(float(doc["done"]), total))
                last_lines[job["label"]] = line
                display.display(f"{line} ({host})" if host else line)
            if pending and time.monotonic() >= deadline:
                for jid, job in pending.items():
                    records[jid] = {"label": job["label"], "jid": jid, "failed": True, "result": {},
                                    "msg": f"did not finish within {args['timeout']} s; the job keeps "
                                           f"running on {host or 'the host'} (async job {jid})."}
                break

        ordered = [records[j["jid"]] for j in jobs if j["jid"] in records]
        failed = [r for r in ordered if r["failed"]]
        result.update(
            jobs=ordered,
            skipped_jobs=skipped,
            progress=last_lines,
            changed=any(r["result"].get("changed") for r in ordered),
        )
        if failed:
            result["failed"] = True
            result["msg"] = "; ".join(f"{r['label']}: {r['msg'] or 'failed'}" for r in failed)
        return result
