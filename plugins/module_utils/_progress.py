# Copyright: restoreops.dr contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of long restores: a small JSON file on the host that a light poll reads, and the line shown for it.

A module that runs a long job (a data restore, a WAL replay) starts a :class:`ProgressReporter`; it rewrites the
progress file every few seconds with how much is done out of how much. The controller side (the
``restoreops.dr.await_jobs`` action) reads the file while the job runs in the background, works out the rate and the
time left from successive readings (:class:`Estimator`), and prints :func:`progress_line`, for example
``restore data 42% 12.3 GiB / 29.1 GiB 210 MiB/s ETA 1m20s``.

How much a restore has written is read from the kernel's I/O accounting of the tool's processes (``wchar`` in
``/proc/<pid>/io``: the bytes they handed to ``write()``), summed over every descendant of the module's process. It
costs a few file reads whatever the size of the tree and works for every tool, borg's parallel extracts included.
Standard library only: this file also runs on managed hosts with Python 3.9.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

FORMAT_VERSION = 1

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(value: float) -> str:
    """``12.3 GiB``: binary units, one decimal from KiB up."""
    value = float(value)
    for unit in _BINARY_UNITS:
        if abs(value) < 1024 or unit == _BINARY_UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float) -> str:
    """``45s``, ``1m20s``, ``2h05m``; negative values count as 0."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_amount(value: float, unit: str) -> str:
    if unit == "bytes":
        return format_bytes(value)
    return f"{int(value)}"


def format_rate(rate: Optional[float], unit: str) -> str:
    if rate is None:
        return ""
    if unit == "bytes":
        return f"{format_bytes(rate)}/s"
    return f"{rate:.1f} {unit}/s"


def progress_line(label: str, done: float, total: Optional[float], unit: str = "bytes",
                  rate: Optional[float] = None, eta: Optional[float] = None) -> str:
    """One line for the operator: label, percent, done / total, rate, ETA (the parts that are known)."""
    parts = [label]
    if total:
        parts.append(f"{min(100.0, 100.0 * done / total):.0f}%")
        amount = f"{format_amount(done, unit)} / {format_amount(total, unit)}"
    else:
        amount = format_amount(done, unit)
    if unit != "bytes":
        amount += f" {unit}"
    parts.append(amount)
    rate_text = format_rate(rate, unit)
    if rate_text:
        parts.append(rate_text)
    if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
    return " ".join(parts)


class Estimator:
    """Rate and time left from successive readings of (time, done), smoothed so one slow poll does not swing it."""

    def __init__(self, smoothing: float = 0.5) -> None:
        self.smoothing = smoothing
        self.last: Optional[Tuple[float, float]] = None
        self.rate: Optional[float] = None

    def update(self, when: float, done: float) -> Optional[float]:
        if self.last is not None and when > self.last[0] and done >= self.last[1]:
            instant = (done - self.last[1]) / (when - self.last[0])
            self.rate = instant if self.rate is None else self.smoothing * instant + (1 - self.smoothing) * self.rate
        self.last = (when, done)
        return self.rate

    def eta(self, done: float, total: Optional[float]) -> Optional[float]:
        if not total or self.rate is None or self.rate <= 0:
            return None
        return max(0.0, (total - done) / self.rate)


def read_progress(text: str) -> Optional[Dict[str, Any]]:
    """A progress document from the file's text; None when it is empty or not one of ours."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        return None
    try:
        data["done"] = float(data.get("done") or 0)
        data["total"] = float(data["total"]) if data.get("total") else None
    except (TypeError, ValueError):
        return None
    return data


def write_progress(path: str, label: str, done: float, total: Optional[float], unit: str = "bytes",
                   state: str = "running", detail: str = "") -> None:
    """Replace the progress file atomically (a reader never sees half a document)."""
    doc = {"version": FORMAT_VERSION, "label": label, "done": done, "total": total, "unit": unit,
           "state": state, "detail": detail, "updated": time.time()}
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".progress-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(doc, handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- what the tool processes wrote ------------------------------------------------------------------------------


def _children_map(proc: str = "/proc") -> Dict[int, List[int]]:
    """parent PID -> child PIDs, from /proc/<pid>/stat."""
    children: Dict[int, List[int]] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return children
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(os.path.join(proc, name, "stat"), encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields after the last ')' are fixed.
        fields = text.rsplit(")", 1)[-1].split()
        if len(fields) < 2:
            continue
        try:
            children.setdefault(int(fields[1]), []).append(int(name))
        except ValueError:
            continue
    return children


def descendants(pid: int, proc: str = "/proc") -> List[int]:
    tree = _children_map(proc)
    found: List[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return found


def written_bytes(pid: int, proc: str = "/proc") -> int:
    """``wchar`` of one process (0 when it is gone or unreadable)."""
    try:
        with open(os.path.join(proc, str(pid), "io"), encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_writes(proc: str = "/proc") -> int:
    """``wchar`` of this process, which includes what every child it has waited for wrote (the kernel adds a
    reaped child's I/O counts to its parent's): the bytes a module and the tools it ran handed to ``write()``."""
    return written_bytes(os.getpid(), proc)


class ChildWrites:
    """Bytes written so far by the descendants of ``pid``; processes that ended keep their last count."""

    def __init__(self, pid: Optional[int] = None, proc: str = "/proc") -> None:
        self.pid = os.getpid() if pid is None else pid
        self.proc = proc
        self.seen: Dict[int, int] = {}

    def __call__(self) -> int:
        for child in descendants(self.pid, self.proc):
            count = written_bytes(child, self.proc)
            if count >= self.seen.get(child, 0):
                self.seen[child] = count
        return sum(self.seen.values())


class ProgressReporter:
    """Rewrites a progress file every ``interval`` seconds from ``measure()`` until stopped (a context manager).

    ``measure`` returns the amount done; a failure to measure or to write is never allowed to fail the job itself.
    """

    def __init__(self, path: Optional[str], label: str, total: Optional[float], measure: Callable[[], float],
                 unit: str = "bytes", interval: float = 2.0) -> None:
        self.path = path
        self.label = label
        self.total = total
        self.measure = measure
        self.unit = unit
        self.interval = interval
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.done = 0.0
        self._final: Optional[float] = None

    def complete(self, done: float) -> None:
        """The amount the job really did, reported when it finishes (short jobs end between two samples)."""
        self._final = float(done)

    def _write(self, state: str) -> None:
        if not self.path:
            return
        try:
            self.done = self._final if state == "finished" and self._final is not None else float(self.measure())
            write_progress(self.path, self.label, self.done, self.total, self.unit, state)
        except Exception:  # noqa: S110 - progress is best effort; the job's own outcome decides
            pass

    def stage(self, label: str, total: Optional[float], measure: Callable[[], float], unit: str = "bytes") -> None:
        """Report a new stage of the same job from now on (for example unpacking, then replaying)."""
        self.label, self.total, self.measure, self.unit = label, total, measure, unit
        self._write("running")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._write("running")

    def __enter__(self) -> ProgressReporter:
        if self.path:
            self._write("running")
            self._thread = threading.Thread(target=self._loop, name="restoreops-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._write("failed" if exc_type else "finished")


# --- watching background jobs on the host (the module side of await_jobs) ---------------------------------------


def job_finished(results_file: str) -> Optional[bool]:
    """Whether an async job's results file says it ended (None: no such job).

    Ansible's async wrapper writes ``{"started": 1, "finished": 0, ...}`` while the job runs and the job's own result
    when it ends; a file being rewritten (not JSON yet) counts as running.
    """
    try:
        with open(results_file, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return not (isinstance(data, dict) and data.get("started") == 1 and data.get("finished") == 0)


def read_progress_file(path: Optional[str]) -> Optional[Dict[str, Any]]:
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return read_progress(handle.read())
    except OSError:
        return None


def watch_jobs(jobs: List[Dict[str, Any]], async_dir: str, wait: float, *, tick: float = 0.25,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> Dict[str, Any]:
    """Wait up to ``wait`` seconds, returning as soon as one of ``jobs`` ends; then each one's state and progress."""
    deadline = clock() + max(0.0, wait)
    while True:
        states = {job["jid"]: job_finished(os.path.join(async_dir, job["jid"])) for job in jobs}
        if any(state is not False for state in states.values()) or clock() >= deadline:
            break
        sleep(tick)
    # "ended", not "finished": ansible-core 2.21 turns a result's "finished" into a boolean (the async key).
    return {
        "ended": [jid for jid, state in states.items() if state],
        "missing": [jid for jid, state in states.items() if state is None],
        "running": [jid for jid, state in states.items() if state is False],
        "progress": {job["jid"]: read_progress_file(job.get("progress_file")) for job in jobs},
    }
