"""The server's end of one worker process (`python -m core.engine.worker`): start it, talk to it, see it go.

The worker speaks the protocol of `core.engine.protocol` on its stdin and
stdout; its stderr's last lines are kept to say why it ended if it dies.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from core.engine.protocol import Command, Event, command, read_event
from core.runs.status import RunState

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class WorkerEnd:
    """What the server knows of one worker from its events, wherever it runs (a local process, a cluster slot):
    `ready` while it waits for a run, the state its last run ended in, whether it retires after it."""

    ready: threading.Event
    run_id: str | None
    ended_state: RunState | None
    retiring: bool
    idle_since: float

    def _init_events(self, on_run_ended: Callable, on_exit: Callable) -> None:
        self.ready = threading.Event()
        self.run_id = None
        self.ended_state = None
        self.retiring = False  # it said it exits after the run that just ended
        self.idle_since = time.monotonic()  # when it last said "ready": free for a run since then
        self.failure = ""  # why the manager gave up on it, if it did
        self._on_run_ended, self._on_exit = on_run_ended, on_exit

    def _heard(self, line: str) -> None:
        """One line of the worker's output: an event updates what is known of it; any other line is ignored."""
        message = read_event(line)
        if message is None:
            return  # a library printing to stdout: not ours
        kind, fields = message
        if kind is Event.READY:
            self.idle_since = time.monotonic()
            self.ready.set()
        elif kind is Event.STARTED:
            self.ready.clear()
            self._started(str(fields.get("run_id") or ""))
        elif kind is Event.ENDED:
            self.ready.clear()
            try:
                self.ended_state = RunState(fields.get("state"))
            except ValueError:
                self.ended_state = None
            self.retiring = bool(fields.get("retiring"))
            self._on_run_ended(self)

    def _started(self, run_id: str) -> None:
        """It began a run (the pool already knows which)."""


class WorkerProcess(WorkerEnd):
    """A worker process: imports TensorFlow, says it is ready, trains runs one at a time.

    It says a run ended after each run, then that it is ready again, or exits when it retires. When its
    stdin closes (the server has gone) it stops, keeps the weights, marks the run interrupted and exits.
    """

    def __init__(self, on_run_ended: Callable[["WorkerProcess"], None], on_exit: Callable[["WorkerProcess"], None],
                 python: str = sys.executable) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                   PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [python, "-m", "core.engine.worker"], cwd=PROJECT_ROOT, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in the server's terminal is the server's to handle
        )
        self._init_events(on_run_ended, on_exit)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self._send_lock = threading.Lock()
        threading.Thread(target=self._read_stdout, name=f"convlab-worker-{self.process.pid}", daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> bool:
        """Wait for it to exit; False if it is still running after `timeout` seconds."""
        try:
            self.process.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def send(self, kind: Command, /, **fields: object) -> bool:
        """Send one command; False when the worker has gone."""
        with self._send_lock:
            try:
                self.process.stdin.write(command(kind, **fields))
                self.process.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        """Close its stdin: an idle worker exits; a training one stops, keeps the weights and exits."""
        with self._send_lock:
            try:
                self.process.stdin.close()
            except OSError:
                pass

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            self._heard(line)
        self.process.wait()
        self.process.stdout.close()
        self.close()
        self._on_exit(self)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_tail.append(line.rstrip())
        self.process.stderr.close()

    def exit_reason(self) -> str:
        if self.failure:
            return self.failure
        code = self.process.returncode
        if code is not None and code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        last = next((line for line in reversed(self.stderr_tail) if line.strip()), "")
        return f"exit code {code}" + (f": {last[:300]}" if last else "")
