from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.restoreops.dr.plugins.module_utils import _progress as p


@pytest.mark.parametrize(("value", "text"), [
    (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (12.3 * 1024 ** 3, "12.3 GiB"), (220 * 1024 ** 2, "220.0 MiB"),
])
def test_format_bytes(value, text):
    assert p.format_bytes(value) == text


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (-3, "0s"), (45, "45s"), (80, "1m20s"), (7500, "2h05m")])
def test_format_duration(seconds, text):
    assert p.format_duration(seconds) == text


def test_progress_line_bytes_with_rate_and_eta():
    line = p.progress_line("restore data", 12.3 * 1024 ** 3, 29.1 * 1024 ** 3, "bytes", 210 * 1024 ** 2, 80)
    assert line == "restore data 42% 12.3 GiB / 29.1 GiB 210.0 MiB/s ETA 1m20s"


def test_progress_line_segments_and_unknown_total():
    assert p.progress_line("replay WAL", 12, 19, "WAL segments", 1.5, 5) == \
        "replay WAL 63% 12 / 19 WAL segments 1.5 WAL segments/s ETA 5s"
    assert p.progress_line("restore data", 2048, None) == "restore data 2.0 KiB"


def test_progress_line_caps_at_100_percent():
    assert p.progress_line("restore data", 150, 100).startswith("restore data 100% ")


def test_estimator_smooths_and_ignores_time_going_backwards():
    est = p.Estimator(smoothing=0.5)
    assert est.update(0.0, 0) is None
    assert est.update(10.0, 100) == 10.0
    assert est.update(20.0, 300) == 15.0  # 0.5 * 20 + 0.5 * 10
    assert est.update(15.0, 400) == 15.0  # earlier time: reading kept, rate unchanged
    assert est.eta(400, 1000) == pytest.approx(40.0)
    assert est.eta(400, None) is None


def test_write_and_read_progress(tmp_path):
    path = str(tmp_path / "job.progress")
    p.write_progress(path, "restore data", 50, 200, detail="x")
    doc = p.read_progress(Path(path).read_text())
    assert doc["done"] == 50.0 and doc["total"] == 200.0 and doc["state"] == "running"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".progress-")]


@pytest.mark.parametrize("text", ["", "not json", "[]", json.dumps({"version": 99, "done": 1}),
                                  json.dumps({"version": 1, "done": "many"})])
def test_read_progress_rejects_what_is_not_ours(text):
    assert p.read_progress(text) is None


def _fake_proc(root, pid, ppid, wchar, comm="x"):
    d = root / str(pid)
    d.mkdir()
    (d / "stat").write_text(f"{pid} ({comm}) S {ppid} 1 1 0 -1\n")
    (d / "io").write_text(f"rchar: 10\nwchar: {wchar}\nsyscr: 1\n")


def test_child_writes_sums_descendants_and_remembers_ended_ones(tmp_path):
    _fake_proc(tmp_path, 100, 1, 5)        # the module itself: not counted
    _fake_proc(tmp_path, 101, 100, 1000)   # restic
    _fake_proc(tmp_path, 102, 101, 500, comm="odd) name")  # a grandchild whose name holds ") "
    _fake_proc(tmp_path, 200, 1, 99999)    # unrelated
    writes = p.ChildWrites(pid=100, proc=str(tmp_path))
    assert writes() == 1500
    for name in os.listdir(tmp_path / "102"):
        os.unlink(tmp_path / "102" / name)
    os.rmdir(tmp_path / "102")
    assert writes() == 1500  # the ended grandchild keeps its count


def test_child_writes_of_a_real_child_process(tmp_path):
    target = tmp_path / "out.bin"
    code = f"f = open({str(target)!r}, 'wb'); f.write(b'x' * 300000); f.flush(); import time; time.sleep(1.5)"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        writes = p.ChildWrites()
        deadline = time.time() + 10
        seen = 0
        while time.time() < deadline and seen < 300000:
            seen = writes()
            time.sleep(0.05)
        assert seen >= 300000
    finally:
        proc.wait()


def test_reporter_writes_running_then_finished(tmp_path):
    path = str(tmp_path / "p.json")
    counter = iter(range(0, 1000, 10))
    with p.ProgressReporter(path, "restore data", 100, lambda: next(counter), interval=0.05):
        time.sleep(0.2)
        assert p.read_progress(Path(path).read_text())["state"] == "running"
    doc = p.read_progress(Path(path).read_text())
    assert doc["state"] == "finished" and doc["done"] > 0


def test_reporter_marks_failure_and_never_raises_from_measuring(tmp_path):
    path = str(tmp_path / "p.json")

    def broken():
        raise OSError("gone")

    with pytest.raises(RuntimeError), p.ProgressReporter(path, "restore data", 100, broken, interval=0.01):
        raise RuntimeError("the job failed")
    assert not os.path.exists(path)  # measuring never worked, so nothing was written and nothing was raised


def test_reporter_without_a_path_does_nothing(tmp_path):
    with p.ProgressReporter(None, "restore data", 100, lambda: 1):
        pass
    assert os.listdir(tmp_path) == []


def test_reporter_reports_the_real_amount_at_the_end(tmp_path):
    path = str(tmp_path / "p.json")
    with p.ProgressReporter(path, "restore data", 100, lambda: 0, interval=60) as progress:
        progress.complete(97)
    doc = p.read_progress(Path(path).read_text())
    assert doc["state"] == "finished" and doc["done"] == 97.0


def test_job_finished_reads_the_async_wrapper_file(tmp_path):
    path = tmp_path / "123.456"
    assert p.job_finished(str(path)) is None
    path.write_text('{"started": 1, "finished": 0, "ansible_job_id": "123.456"}')
    assert p.job_finished(str(path)) is False
    path.write_text('{"started": 1, "fin')  # being rewritten
    assert p.job_finished(str(path)) is False
    path.write_text('{"changed": true, "rc": 0}')
    assert p.job_finished(str(path)) is True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_watch_returns_as_soon_as_a_job_ends(tmp_path):
    running = tmp_path / "1.1"
    running.write_text('{"started": 1, "finished": 0}')
    done = tmp_path / "2.2"
    done.write_text('{"started": 1, "finished": 0}')
    p.write_progress(str(tmp_path / "p.json"), "restore data", 5, 10)
    clock = Clock()

    def sleep(seconds):
        clock.sleep(seconds)
        if clock.now >= 1.0:
            done.write_text('{"rc": 0}')

    out = p.watch_jobs([{"jid": "1.1", "progress_file": str(tmp_path / "p.json")}, {"jid": "2.2"}],
                       str(tmp_path), 10, clock=clock, sleep=sleep)
    assert out["ended"] == ["2.2"] and out["running"] == ["1.1"] and out["missing"] == []
    assert 1.0 <= clock.now < 1.5
    assert out["progress"]["1.1"]["done"] == 5.0 and out["progress"]["2.2"] is None


def test_watch_waits_the_whole_interval_when_nothing_ends_and_reports_missing_jobs(tmp_path):
    (tmp_path / "1.1").write_text('{"started": 1, "finished": 0}')
    clock = Clock()
    out = p.watch_jobs([{"jid": "1.1"}], str(tmp_path), 3, clock=clock, sleep=clock.sleep)
    assert out["running"] == ["1.1"] and clock.now >= 3
    out = p.watch_jobs([{"jid": "9.9"}], str(tmp_path), 3, clock=clock, sleep=clock.sleep)
    assert out["missing"] == ["9.9"]
