"""The training engine: runs a run's spec, here or in a worker process, and queues runs for a server.

`execute(store, run_id)` trains one run from its spec alone (the dataset is
loaded again from its reference), writing everything into the run store as
it goes; it runs in whatever process calls it: a worker, the CLI, a test.

`JobManager` is what a web server holds (one per process): trainings run in
worker processes (`python -m core.worker`), never in the server, so the
server's threads and the training do not share a GIL, and a crash ends with
the worker. A worker that has imported TensorFlow waits for the next job,
and takes the next one when its run ends; it retires when it has grown (a
leak is given back), and a fresh one takes its place. At most `max_concurrent`
trainings run at once; the rest wait in a queue with a visible position and
can be cancelled. Queued runs whose session has gone are cancelled after a
grace period (a reload re-claims them); running ones finish into the store.
"""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core.errors import ConvLabError, RunError
from core.runs import Owner, RunSpec, RunState, RunStore, RunWriter
from core.settings import int_setting

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MAX_TRAININGS_ENV = "CONVLAB_MAX_TRAININGS"
WORKER_IDLE_ENV = "CONVLAB_WORKER_IDLE_S"
CONFUSION_SUBSET = 1000  # validation images scored after each epoch for the confusion matrix over epochs


class StopFlag:
    """Asked after every chunk of batches: stop, and why (the user, or the server going away)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


SERVER_GONE = "server-gone"
INTERRUPTED_BY_CTRL_C = "keyboard"


def execute(store: RunStore, run_id: str, stop: StopFlag | None = None, allow_download: bool = True,
            on_epoch: Callable[[dict], None] | None = None, evaluate_test: bool = True) -> RunState:
    """Train run `run_id` from its spec, in this process; returns the state it ended in.

    The record in the store says everything: metrics as they come, the model
    when training ends (finished, stopped or interrupted), the test metrics.
    A failure of any kind ends the run as failed with a message, never raises
    (but Ctrl-C, which marks the run interrupted and then propagates).
    """
    stop = stop or StopFlag()
    writer = RunWriter(store, run_id)
    writer.begin("Loading the data…")
    try:
        spec = store.spec(run_id)
        if spec.architecture is None or spec.training is None:
            raise RunError(f"run {run_id} has no architecture and training settings to train.")
        from core.datasets import load_ref

        dataset = load_ref(spec.dataset, store.stored_dataset_path, allow_download=allow_download)
        writer.update(message="Building the model…")
        result = _train(spec, dataset, writer, stop, on_epoch)
    except KeyboardInterrupt:
        writer.end(RunState.INTERRUPTED, "Interrupted from the keyboard (Ctrl-C); nothing was saved.")
        raise
    except ConvLabError as error:
        writer.end(RunState.FAILED, str(error))
        return RunState.FAILED
    except MemoryError:
        writer.end(RunState.FAILED, "Training ran out of memory: use a smaller model, batch or dataset.")
        return RunState.FAILED
    except Exception as error:  # noqa: BLE001 - anything from Keras ends the run with its message
        writer.end(RunState.FAILED, f"Training failed: {type(error).__name__}: {error}")
        return RunState.FAILED

    from core.training import FAILED, STOPPED

    if result.outcome == FAILED:
        writer.end(RunState.FAILED, result.message)
        return RunState.FAILED
    writer.update(message="Saving the model…")
    save_model(store, run_id, result.model)
    if stop.reason in (SERVER_GONE, INTERRUPTED_BY_CTRL_C):
        p = result.progress
        who = "The server stopped" if stop.reason == SERVER_GONE else "Interrupted from the keyboard (Ctrl-C)"
        writer.end(RunState.INTERRUPTED, f"{who} during training, in epoch {p.epoch}/{p.epochs}; "
                                         "the weights learned so far are kept.")
        return RunState.INTERRUPTED
    if evaluate_test:
        writer.update(message=f"Scoring the {len(dataset.x_test):,} test images…")
        evaluate_into(store, run_id, result.model, dataset)
    state = RunState.STOPPED if result.outcome == STOPPED else RunState.FINISHED
    writer.end(state, result.message)
    return state


def _train(spec: RunSpec, dataset, writer: RunWriter, stop: StopFlag, on_epoch: Callable[[dict], None] | None):
    import keras

    from core.callbacks import ConfusionRecorder, FilterRecorder
    from core.data import split_validation
    from core.runs import TENSORBOARD
    from core.training import train

    config = spec.training
    _, _, x_val, y_val = split_validation(dataset.x_train, dataset.y_train, config.validation_fraction, config.seed)
    steps = math.ceil((len(dataset.x_train) - len(x_val)) / config.batch_size)
    writer.set_total_steps(steps * config.epochs)
    callbacks: list = [FilterRecorder(writer.write_filters),
                       keras.callbacks.TensorBoard(log_dir=str(writer.folder / TENSORBOARD), write_graph=True,
                                                   update_freq="epoch", profile_batch=0)]
    if len(x_val):
        subset = np.random.default_rng(config.seed).permutation(len(x_val))[:CONFUSION_SUBSET]
        callbacks.append(ConfusionRecorder(x_val[np.sort(subset)], y_val[np.sort(subset)], dataset.num_classes,
                                           writer.write_confusion))
    sink = _EpochEcho(writer, on_epoch) if on_epoch else writer

    def should_stop() -> bool:
        if stop() and writer.status.state is RunState.RUNNING:
            writer.update(state=RunState.STOPPING, message="Stopping after the current batches…")
        return stop()

    writer.update(message="Training…")
    return train(spec.architecture, dataset, config, sink=sink, should_stop=should_stop, callbacks=callbacks)


class _EpochEcho:
    """The writer, plus a function told of each epoch (the CLI prints them)."""

    def __init__(self, writer: RunWriter, on_epoch: Callable[[dict], None]) -> None:
        self.writer, self.echo = writer, on_epoch

    def on_batch(self, record, progress) -> None:
        self.writer.on_batch(record, progress)

    def on_epoch(self, record) -> None:
        self.writer.on_epoch(record)
        self.echo(dict(record))


def save_model(store: RunStore, run_id: str, model) -> None:
    """Write the run's model.keras atomically."""
    from core import atomic
    from core.runs import MODEL

    atomic.replace_from(store.path(run_id) / MODEL, lambda temporary: model.save(temporary), suffix=".keras")


def evaluate_into(store: RunStore, run_id: str, model, dataset) -> dict:
    """Score `model` on the dataset's test images and keep the metrics and probabilities in the run."""
    from core.evaluation import evaluate

    result = evaluate(model, dataset.x_test, dataset.y_test, dataset.class_names)
    metrics = {"accuracy": result.accuracy, "loss": result.loss, "images": int(len(result.y_true)),
               "evaluated": time.time()}
    store.write_test(run_id, metrics, result.probabilities)
    return metrics


# --- worker processes ------------------------------------------------------------------------------------


def default_max_concurrent() -> int:
    """CONVLAB_MAX_TRAININGS, else one training per two cores."""
    return int_setting(MAX_TRAININGS_ENV, max(1, (os.cpu_count() or 2) // 2), 1, 1_000)


def default_idle_retire_s() -> float:
    """CONVLAB_WORKER_IDLE_S, else 120: how long after the last session has gone an idle worker exits (0: never)."""
    return float(int_setting(WORKER_IDLE_ENV, 120, 0, 7 * 24 * 3600))


class Worker:
    """A `python -m core.worker` process: imports TensorFlow, says "ready", trains runs one at a time.

    It talks JSON lines: its stdin takes {"cmd": "run", ...} and {"cmd": "stop"}; it says "ended" after
    each run, then "ready" again, or exits when it retires. When its stdin closes (the server has gone)
    it stops, keeps the weights, marks the run interrupted and exits.
    """

    def __init__(self, on_run_ended: Callable[["Worker"], None], on_exit: Callable[["Worker"], None],
                 python: str = sys.executable) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                   PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [python, "-m", "core.worker"], cwd=PROJECT_ROOT, env=env, text=True, bufsize=1,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C in the server's terminal is the server's to handle
        )
        self.ready = threading.Event()
        self.run_id: str | None = None
        self.ended_state: str | None = None
        self.retiring = False  # it said it exits after the run that just ended
        self.idle_since = time.monotonic()  # when it last said "ready": free for a run since then
        self.failure = ""  # why the manager gave up on it, if it did
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=30)
        self._on_run_ended = on_run_ended
        self._on_exit = on_exit
        self._send_lock = threading.Lock()
        threading.Thread(target=self._read_stdout, name=f"convlab-worker-{self.process.pid}", daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: dict) -> bool:
        """Send one command; False when the worker has gone."""
        with self._send_lock:
            try:
                self.process.stdin.write(json.dumps(message) + "\n")
                self.process.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def close(self) -> None:
        """Close its stdin: an idle worker exits; a training one stops, keeps the weights and exits."""
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def _read_stdout(self) -> None:
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a library printing to stdout: not ours
            if event.get("event") == "ready":
                self.idle_since = time.monotonic()
                self.ready.set()
            elif event.get("event") == "started":
                self.ready.clear()
            elif event.get("event") == "ended":
                self.ready.clear()
                self.ended_state = event.get("state")
                self.retiring = bool(event.get("retiring"))
                self._on_run_ended(self)
        self.process.wait()
        self._on_exit(self)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr_tail.append(line.rstrip())

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


@dataclass
class Job:
    """A run waiting for, or holding, a worker."""

    run_id: str
    store: RunStore
    owner: str | None
    queued_at: float = field(default_factory=time.monotonic)
    orphaned_at: float | None = None
    worker: Worker | None = None
    sent: bool = False  # the worker has been told to train it
    stop_requested: bool = False  # Stop (or Cancel) came while it was being handed to a worker


class JobManager:
    """Queues runs and trains each in a worker process, at most `max_concurrent` at a time."""

    def __init__(self, max_concurrent: int | None = None, keep_spare: bool = True, orphan_grace_s: float = 60.0,
                 worker_start_timeout_s: float = 180.0, python: str = sys.executable,
                 idle_retire_s: float | None = None) -> None:
        self.max_concurrent = max_concurrent or default_max_concurrent()
        self.keep_spare = keep_spare
        # an idle worker holds TensorFlow and what its runs grew (0.6-1 GB): once no session has been open for
        # this long (0: never), it goes; the next visit to Architecture or Training starts another
        self.idle_retire_s = default_idle_retire_s() if idle_retire_s is None else idle_retire_s
        self._sessions: set[str] = set()  # owners whose browser session is open (`hold_owner`, `release_owner`)
        self._last_session_left = time.monotonic()
        self.orphan_grace_s = orphan_grace_s
        self.worker_start_timeout_s = worker_start_timeout_s
        self.python = python
        self._cond = threading.Condition()
        self._queue: list[Job] = []
        self._running: dict[str, Job] = {}
        self._spares: list[Worker] = []
        self._starting_spare = False  # a spare's process is being created (outside the lock)
        self._closed = False
        self._known_stores: dict[Path, RunStore] = {}
        self._thread = threading.Thread(target=self._dispatch_forever, name="convlab-job-manager", daemon=True)
        self._thread.start()

    # --- what sessions call ---
    def warm_up(self) -> None:
        """Have a spare worker import TensorFlow now, so the next Start does not wait for it.

        Pages where training is near (Architecture, Training) call this; the Home and Data pages do not,
        so a first visit is not slowed by a TensorFlow import competing for the CPU.
        """
        self._spawn_spare()

    def submit(self, store: RunStore, spec: RunSpec, details: dict | None = None, owner: str | None = None) -> str:
        """Create a queued run for `spec` and queue it; returns its id."""
        self.adopt(store)
        run_id = store.create(spec, details, owner=Owner.this_process(), state=RunState.QUEUED,
                              message="Waiting for a free training slot.")
        with self._cond:
            self._queue.append(Job(run_id, store, owner))
            self._cond.notify_all()
        return run_id

    def position(self, run_id: str) -> int | None:
        """1 for the next run to start, 2 for the one after…; None when not queued."""
        with self._cond:
            for index, job in enumerate(self._queue):
                if job.run_id == run_id:
                    return index + 1
        return None

    def spare_pids(self) -> list[int]:
        """Process ids of the spare workers that have imported TensorFlow and wait for a run."""
        with self._cond:
            return [w.process.pid for w in self._spares if w.ready.is_set() and w.process.poll() is None]

    def is_running(self, run_id: str) -> bool:
        with self._cond:
            return run_id in self._running

    def stop(self, run_id: str) -> bool:
        """Stop a running run (it keeps its weights) or cancel a queued one; False if neither.

        A run the dispatcher has taken but not yet handed to its worker (the worker may still be
        starting) is cancelled at once; the worker is kept for the next run.
        """
        with self._cond:
            job = self._running.get(run_id)
            worker = job.worker if job is not None and job.sent else None
            if job is not None and not job.sent:
                if job.stop_requested:
                    return False  # already cancelled
                job.stop_requested = True
        if job is None:
            return self.cancel(run_id)
        if worker is None:
            self._write_final(job, RunState.CANCELLED, "Cancelled before it started.")
            return True
        return worker.send({"cmd": "stop"})

    def cancel(self, run_id: str, message: str = "Cancelled before it started.") -> bool:
        """Take a queued run out of the queue and mark it cancelled."""
        with self._cond:
            job = next((job for job in self._queue if job.run_id == run_id), None)
            if job is None:
                return False
            self._queue.remove(job)
            self._cond.notify_all()
        self._write_final(job, RunState.CANCELLED, message)
        return True

    def release_owner(self, owner: str) -> None:
        """A session has ended: its queued runs are cancelled unless re-claimed within the grace period."""
        with self._cond:
            self._sessions.discard(owner)
            if not self._sessions:
                self._last_session_left = time.monotonic()
            for job in self._queue:
                if job.owner == owner:
                    job.orphaned_at = time.monotonic()
            self._cond.notify_all()

    def hold_owner(self, owner: str) -> None:
        """The session `owner` is there (again, after a disconnect released it): its queued runs stay queued."""
        with self._cond:
            self._sessions.add(owner)
            for job in self._queue:
                if job.owner == owner:
                    job.orphaned_at = None

    def claim(self, run_id: str, owner: str) -> None:
        """A session shows this run (a reload, a shared link): it is wanted again."""
        with self._cond:
            for job in (*self._queue, self._running.get(run_id)):
                if job is not None and job.run_id == run_id:
                    job.owner, job.orphaned_at = owner, None

    def queued(self) -> list[str]:
        with self._cond:
            return [job.run_id for job in self._queue]

    def running(self) -> list[str]:
        with self._cond:
            return list(self._running)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (for scripts and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._running:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def shutdown(self) -> None:
        """Cancel the queue, stop the workers (their runs end as interrupted), end the dispatcher."""
        with self._cond:
            self._closed = True
            queued, self._queue = self._queue, []
            running = list(self._running.values())
            spares, self._spares = self._spares, []
            self._cond.notify_all()
        for job in queued:
            self._write_final(job, RunState.CANCELLED, "Cancelled: the server shut down before it started.")
        for job in running:
            if job.worker is not None and job.worker.process.stdin:
                try:
                    job.worker.process.stdin.close()  # the worker sees the server go: stops, saves, ends
                except OSError:
                    pass
        for worker in spares:
            worker.kill()
        for job in running:
            if job.worker is not None:
                try:
                    job.worker.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    job.worker.kill()

    # --- the dispatcher ---
    def adopt(self, store: RunStore) -> None:
        """The first time a store is seen: runs a dead server left active are marked interrupted."""
        key = store.root.resolve()
        if key not in self._known_stores:
            self._known_stores[key] = store
            store.mark_interrupted()

    def _dispatch_forever(self) -> None:
        while True:
            with self._cond:
                job = None
                while job is None:
                    if self._closed:
                        return
                    self._cancel_orphans()
                    self._retire_idle()
                    if len(self._running) < self.max_concurrent:
                        job = next((j for j in self._queue if j.orphaned_at is None), None)
                    if job is None:
                        self._cond.wait(timeout=1.0)
                self._queue.remove(job)
                self._running[job.run_id] = job
                self._cond.notify_all()
            # in a thread of its own: a worker takes seconds to get ready, and meanwhile the queue moves on
            # (other free slots, orphans past their grace period)
            threading.Thread(target=self._start, args=(job,), name=f"convlab-start-{job.run_id}", daemon=True).start()

    def _runs_waiting(self) -> bool:
        """(Under the lock.) Is a queued run still wanted by its session?"""
        return any(job.orphaned_at is None for job in self._queue)

    def _new_worker(self) -> Worker | None:
        """A fresh worker process, or None when the system refuses one."""
        try:
            return Worker(self._run_ended, self._worker_exited, self.python)
        except OSError:
            return None

    def _cancel_orphans(self) -> None:
        now = time.monotonic()
        for job in [j for j in self._queue if j.orphaned_at is not None and now - j.orphaned_at > self.orphan_grace_s]:
            self._queue.remove(job)
            threading.Thread(target=self._write_final, daemon=True, args=(
                job, RunState.CANCELLED, "Cancelled: its browser session ended before it started.")).start()

    def _retire_idle(self) -> None:
        """(Under the lock.) Once no session has been open for `idle_retire_s`, ready workers unused as long exit.

        While anyone has the app open one stays ready, so Start does not wait for a TensorFlow import.
        """
        now = time.monotonic()
        if (not self.idle_retire_s or self._sessions or now - self._last_session_left <= self.idle_retire_s
                or self._runs_waiting()):
            return
        for worker in [w for w in self._spares if w.ready.is_set() and now - w.idle_since > self.idle_retire_s]:
            self._spares.remove(worker)
            worker.close()  # (closing a pipe does not block) it exits; its exit handler finds no run

    def _start(self, job: Job) -> None:
        worker = self._take_worker()
        if worker is None:
            self._finish(job, RunState.FAILED, "Could not start a training process (the system refused a new one).")
            return
        job.worker = worker
        worker.ended_state = None
        worker.run_id = job.run_id  # from here on, the worker's "ended" or its exit ends the job, whatever happens
        deadline = time.monotonic() + self.worker_start_timeout_s
        while not worker.ready.wait(0.2):  # (a worker imports TensorFlow: seconds; a Cancel does not wait for it)
            if job.stop_requested or worker.process.poll() is not None:
                break
            if time.monotonic() > deadline:
                worker.failure = f"it was not ready within {self.worker_start_timeout_s:.0f} s"
                worker.kill()
                return
        with self._cond:  # under the lock: a Stop now either cancels it before this, or is sent after it
            if not job.stop_requested and worker.ready.is_set():
                job.sent = worker.send({"cmd": "run", "root": str(job.store.root.resolve()), "run_id": job.run_id})
        if job.stop_requested:  # cancelled while the worker started (stop() wrote it): keep the worker
            self._recycle(worker)
            self._finish(job, None, "")
            return
        if not job.sent:
            return  # the worker died: its exit handler ends the job
        self._spawn_spare()

    def _spare_wanted(self) -> bool:
        """(Under the lock.) A spare worker is kept while a slot is free.

        With every slot busy none is started, even with runs waiting: a worker that ends its run takes the
        next one at once, and a TensorFlow import beside the trainings would slow them.
        """
        if not self.keep_spare or self._spares or self._starting_spare or self._closed:
            return False
        return len(self._running) < self.max_concurrent

    def _take_worker(self) -> Worker | None:
        with self._cond:
            while self._starting_spare:  # (a moment: the process is being created) rather than a second one
                self._cond.wait(1.0)
            while self._spares:
                worker = self._spares.pop(0)
                if worker.process.poll() is None:
                    return worker
        return self._new_worker()

    def _recycle(self, worker: Worker) -> None:
        """A ready worker that never got its run: the next spare, or ended."""
        with self._cond:
            worker.run_id = None
            if self.keep_spare and not self._closed and worker.process.poll() is None:
                self._spares.append(worker)
                return
        worker.kill()

    def _spawn_spare(self) -> None:
        """Start a spare worker if one is wanted (`_spare_wanted`); at most one is being started at a time."""
        with self._cond:
            if not self._spare_wanted():
                return
            self._starting_spare = True
        worker = self._new_worker()
        with self._cond:
            self._starting_spare = False
            if worker is not None:
                self._spares.append(worker)
            self._cond.notify_all()

    def _run_ended(self, worker: Worker) -> None:
        """The worker says its run has ended (the run's record is final): it serves the next, or goes."""
        with self._cond:
            job = self._running.get(worker.run_id or "")
            worker.run_id = None
            wanted = not self._spares or self._runs_waiting()  # one idle at most
            kept = (self.keep_spare and not self._closed and not worker.retiring and worker.process.poll() is None
                    and wanted)
            if kept:
                self._spares.append(worker)  # (before the job ends: the queue's next run takes this one)
        if not kept:
            worker.close()
        if job is not None:
            self._finish(job, None, "")

    def _worker_exited(self, worker: Worker) -> None:
        with self._cond:
            if worker in self._spares:
                self._spares.remove(worker)
                return
            job = self._running.get(worker.run_id or "")
        if job is None:
            return
        status = job.store.status(job.run_id)
        if status.state.is_active or status.state is RunState.INTERRUPTED and worker.ended_state is None:
            p = status.progress
            where = f" in epoch {p.epoch}/{p.epochs}" if p.epoch else " before its first batch"
            if status.state is RunState.QUEUED:
                message = f"The training process could not start ({worker.exit_reason()})."
            else:
                message = (f"The training process ended unexpectedly ({worker.exit_reason()}){where}; "
                           "nothing after its last report was kept.")
            self._finish(job, RunState.FAILED, message)
        else:
            self._finish(job, None, "")

    def _finish(self, job: Job, state: RunState | None, message: str) -> None:
        if state is not None:
            self._write_final(job, state, message)
        with self._cond:
            ended_here = self._running.pop(job.run_id, None) is not None  # (a job may be ended from two threads)
            self._cond.notify_all()
        if ended_here:
            self._spawn_spare()

    def _write_final(self, job: Job, state: RunState, message: str) -> None:
        from dataclasses import replace

        try:
            status = job.store.raw_status(job.run_id)
            job.store.write_status(job.run_id, replace(status, state=state, message=message, ended=time.time(),
                                                       heartbeat=time.time()))
        except (RunError, OSError):
            pass  # the run was deleted meanwhile: nothing to record
