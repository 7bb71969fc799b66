"""The worker's inbox and when it retires (pure Python: the process itself is tested in test_local.py and test_jobs.py)."""

from __future__ import annotations

import io
import json

from core.engine import worker
from core.training.controls import Halt


def lines(*commands: dict) -> io.StringIO:
    return io.StringIO("".join(json.dumps(command) + "\n" for command in commands))


def test_a_stop_goes_to_the_run_read_before_it_even_before_that_run_starts():
    inbox = worker.Inbox()
    inbox.listen(lines({"cmd": "run", "run_id": "a"}, {"cmd": "stop"}, {"cmd": "run", "run_id": "b"}))
    (job_a, controls_a), (job_b, controls_b) = inbox.runs.get_nowait(), inbox.runs.get_nowait()
    assert job_a["run_id"] == "a" and controls_a.halted is Halt.STOP
    assert job_b["run_id"] == "b" and controls_b.halted is Halt.SERVER_GONE  # stdin ended during b: the server has gone
    assert inbox.runs.get_nowait() is None


def test_pause_and_changes_go_to_the_current_run_and_a_bad_change_is_dropped():
    inbox = worker.Inbox()
    inbox.listen(lines({"cmd": "run", "run_id": "a"}, {"cmd": "change", "kind": "learning_rate", "value": 0.05},
                       {"cmd": "change", "kind": "learning_rate", "value": -1}, {"cmd": "change", "kind": "nope"},
                       {"cmd": "change", "kind": "epochs", "value": 7}, {"cmd": "pause"}))
    _, controls = inbox.runs.get_nowait()
    assert [(change.kind.value, change.value, by) for change, by in controls.due(0)] == [
        ("learning_rate", 0.05, "user"), ("epochs", 7, "user")]
    assert controls.halted is Halt.PAUSE  # (the end of stdin comes after: the first halt asked wins)


def test_garbage_and_a_stop_with_no_run_are_ignored():
    inbox = worker.Inbox()
    inbox.listen(io.StringIO('not json\n{"cmd": "stop"}\n'))
    assert inbox.runs.get_nowait() is None


def test_a_worker_retires_after_its_runs_or_when_it_has_grown(monkeypatch):
    monkeypatch.delenv(worker.MAX_RUNS_ENV, raising=False)
    assert not worker.should_retire(1, 10.0)
    assert worker.should_retire(worker.MAX_RUNS, 10.0)
    assert worker.should_retire(1, worker.RETIRE_GROWTH_MB + 1)
    monkeypatch.setenv(worker.MAX_RUNS_ENV, "3")
    assert not worker.should_retire(2, 0.0) and worker.should_retire(3, 0.0)
    monkeypatch.setenv(worker.MAX_RUNS_ENV, "zero")
    assert worker.max_runs() == worker.MAX_RUNS


def test_resident_memory_is_measured():
    assert worker.resident_mb() > 1.0


def test_a_worker_gives_way_to_the_server_and_the_browsers():
    import os
    import subprocess
    import sys

    base = os.getpriority(os.PRIO_PROCESS, 0)
    code = "from core.engine.worker import lower_priority; import os; print(lower_priority(), os.getpriority(os.PRIO_PROCESS, 0))"
    for configured, expected in (("", worker.NICE), ("3", 3), ("nonsense", worker.NICE)):
        env = dict(os.environ, **{worker.NICE_ENV: configured})
        said = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert said.stdout.split() == [str(min(19, base + expected))] * 2

