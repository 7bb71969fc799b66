"""`python -m core.engine.worker`: one training process of the local pool (see `core.engine.process`).

It imports TensorFlow first and says it is ready, so the start-up cost
is paid while it waits. Each run command (`core.engine.protocol`) trains
that run into the store; then it says the run ended, clears Keras' state and says
"ready" again, so the next run starts at once instead of waiting for another
TensorFlow import (which, on a small machine, would also slow the training
beside it). It retires (exits after a run) once it has served MAX_RUNS runs
(CONVLAB_WORKER_RUNS) or grown RETIRE_GROWTH_MB above its size when first
ready: what TensorFlow keeps is given back, and the job manager starts a
fresh one.

It runs at a lower priority (NICE) than the web server and the browsers, so
pages answer first on a busy machine.

Stop, pause and change commands go to the current run's `Controls`, which the
training reads after every chunk of batches; a closed stdin means the server
has gone: the run checkpoints where it is, is marked interrupted (Resume goes
on from there), and the worker exits.
"""

from __future__ import annotations

import gc
import os
import queue
import signal
import sys
import threading
from typing import Callable, Iterable

from core.engine.protocol import Command, Event, event, read_command
from core.errors import ConvLabError
from core.settings import int_setting
from core.training.controls import Controls, Halt

MAX_RUNS_ENV = "CONVLAB_WORKER_RUNS"  # how many runs a worker serves before a fresh one takes over
MAX_RUNS = 25
RETIRE_GROWTH_MB = 1024.0
NICE_ENV = "CONVLAB_TRAINING_NICE"
NICE = 5  # trainings yield to the web server and the browsers: a page answers first, training takes the rest


def emit(kind: Event, **fields: object) -> None:
    sys.stdout.write(event(kind, **fields))
    sys.stdout.flush()


def resident_mb() -> float:
    """This process's resident memory (Linux; 0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def max_runs() -> int:
    return int_setting(MAX_RUNS_ENV, MAX_RUNS, 1, 1_000_000)


def lower_priority() -> int:
    """Give way to interactive work by NICE (CONVLAB_TRAINING_NICE, 0 to 19); returns the niceness now.

    The worker is in a session of its own, and Linux's autogroup scheduler shares the processors between
    sessions first, so the session's niceness is raised too (where the kernel has autogroup).
    """
    try:
        now = os.nice(int_setting(NICE_ENV, NICE, 0, 19))
    except OSError:
        return os.nice(0)
    try:
        with open("/proc/self/autogroup", "w") as autogroup:
            autogroup.write(str(now))
    except OSError:
        pass
    return now


def should_retire(runs_served: int, grown_mb: float) -> bool:
    """After a run: time to exit, so that what this process has kept is given back?"""
    return runs_served >= max_runs() or grown_mb > RETIRE_GROWTH_MB


class Inbox:
    """Commands from stdin, read on a thread of their own: runs to do, and controls for the current run.

    Stop, pause and changes go to the controls of the run read last, so one that follows its run's command
    is never lost, even before the run has started. The end of stdin (the server has gone) halts that run
    and ends the queue of runs.
    """

    def __init__(self, make_controls: Callable[[], Controls] = Controls) -> None:
        self._make_controls = make_controls
        self._current: Controls | None = None
        self.runs: queue.Queue[tuple[dict, Controls] | None] = queue.Queue()

    def listen(self, lines: Iterable[str]) -> None:
        for line in lines:
            message = read_command(line)
            if message is None:
                continue
            kind, fields = message
            if kind is Command.RUN:
                self._current = self._make_controls()
                self.runs.put((fields, self._current))
            elif self._current is not None:
                apply_command(self._current, kind, fields)
        if self._current is not None:
            self._current.halt(Halt.SERVER_GONE)
        self.runs.put(None)


def apply_command(controls: Controls, kind: Command, fields: dict) -> None:
    """A stop, pause or change from the server, to the run's controls (a run command is not one of these)."""
    if kind is Command.STOP:
        controls.stop()
    elif kind is Command.PAUSE:
        controls.pause()
    elif kind is Command.CHANGE:
        try:
            controls.change(str(fields.get("kind")), fields.get("value"))
        except (ConvLabError, ValueError):
            pass  # the server checked it before sending: a bad one is not ours to act on


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when we stop, through stdin
    lower_priority()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf.constant(0.0) + 1.0  # start TensorFlow's runtime (thread pools, devices) before the job too
    from core.engine.execute import RecentData, execute
    from core.runs.store import RunStore

    # TensorFlow and Keras leave about 390,000 long-lived objects behind their imports; every full collection
    # (clear_session runs one between runs) walked them all: 0.18 s of each hand-over, 0.01 s once they are frozen
    gc.freeze()

    inbox = Inbox()
    threading.Thread(target=inbox.listen, args=(sys.stdin,), daemon=True).start()
    baseline_mb = resident_mb()
    served, data = 0, RecentData()
    emit(Event.READY, pid=os.getpid())
    while True:
        item = inbox.runs.get()
        if item is None:
            return 0
        job, controls = item
        run_id = job["run_id"]
        emit(Event.STARTED, run_id=run_id)
        state = execute(RunStore(job["root"]), run_id, controls, data=data)
        served += 1
        # the next run builds its model from nothing, as in a fresh process; clear_session collects the garbage
        # itself (a second gc.collect here found nothing more)
        keras.backend.clear_session()
        retiring = should_retire(served, resident_mb() - baseline_mb)
        emit(Event.ENDED, run_id=run_id, state=state.value, retiring=retiring)
        if retiring:
            return 0
        emit(Event.READY, pid=os.getpid())


if __name__ == "__main__":
    sys.exit(main())
