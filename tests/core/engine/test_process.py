"""The server's end of a worker process, with a stand-in worker that speaks the protocol (no TensorFlow).

`WorkerProcess` starts `<python> -m core.engine.worker`; here `<python>` is a small script that ignores its
arguments, so the server's end is tested against a worker whose every line and exit the test decides.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from core.engine.process import WorkerProcess
from core.engine.protocol import Command
from core.runs.status import RunState
from tests.conftest import wait_for

ONE_RUN = """
import json, sys
print("a library printing to stdout", flush=True)
print(json.dumps({"event": "ready", "pid": 1}), flush=True)
for line in sys.stdin:
    message = json.loads(line)
    if message["cmd"] == "run":
        print(json.dumps({"event": "started", "run_id": message["run_id"]}), flush=True)
        print(json.dumps({"event": "ended", "run_id": message["run_id"], "state": "finished", "retiring": True}),
              flush=True)
        break
sys.stderr.write("first line\\n\\nlast words of the worker\\n\\n")
sys.exit(3)
"""

IDLE = """
import json, sys
print(json.dumps({"event": "ready", "pid": 1}), flush=True)
for line in sys.stdin:
    pass
"""


def stand_in(tmp_path: Path, program: str) -> str:
    """An executable that runs `program` with this Python, whatever arguments it is given."""
    path = tmp_path / "python"
    path.write_text(f"#!{sys.executable}\n{program}")
    path.chmod(0o755)
    return str(path)


class Watcher:
    """The callbacks a WorkerProcess reports to, remembering what they were told."""

    def __init__(self) -> None:
        self.ended: list[tuple[RunState | None, bool]] = []
        self.exited = threading.Event()

    def run_ended(self, worker: WorkerProcess) -> None:
        self.ended.append((worker.ended_state, worker.retiring))

    def exit(self, worker: WorkerProcess) -> None:
        self.exited.set()


def test_a_worker_says_ready_runs_a_run_and_its_exit_is_explained(tmp_path):
    watcher = Watcher()
    worker = WorkerProcess(watcher.run_ended, watcher.exit, python=stand_in(tmp_path, ONE_RUN))
    try:
        assert worker.ready.wait(30)  # the line before "ready" was not ours, and was ignored
        assert worker.send(Command.RUN, root=str(tmp_path), run_id="20261127-163630-69a147")
        assert watcher.exited.wait(30)
        assert watcher.ended == [(RunState.FINISHED, True)]
        assert not worker.ready.is_set()
        wait_for(lambda: worker.exit_reason() == "exit code 3: last words of the worker", timeout=10,
                 what="the worker's last words on stderr")
        assert not worker.send(Command.STOP)  # it has gone: nothing to send to
    finally:
        worker.kill()


def test_a_killed_worker_is_said_to_be_killed(tmp_path):
    watcher = Watcher()
    worker = WorkerProcess(watcher.run_ended, watcher.exit, python=stand_in(tmp_path, IDLE))
    assert worker.ready.wait(30)
    worker.kill()
    assert watcher.exited.wait(30)
    assert worker.exit_reason() == "killed by signal SIGKILL" and watcher.ended == []


def test_closing_its_input_lets_an_idle_worker_exit(tmp_path):
    watcher = Watcher()
    worker = WorkerProcess(watcher.run_ended, watcher.exit, python=stand_in(tmp_path, IDLE))
    try:
        assert worker.ready.wait(30)
        worker.close()
        assert watcher.exited.wait(30)
        assert worker.process.returncode == 0 and worker.exit_reason() == "exit code 0"
    finally:
        worker.kill()


def test_a_worker_the_manager_gave_up_on_says_why(tmp_path):
    watcher = Watcher()
    worker = WorkerProcess(watcher.run_ended, watcher.exit, python=stand_in(tmp_path, IDLE))
    worker.failure = "it was not ready within 180 s"
    worker.kill()
    assert watcher.exited.wait(30)
    assert worker.exit_reason() == "it was not ready within 180 s"

