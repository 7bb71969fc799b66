"""Runs on this machine: a pool of worker processes, one training each, the default place runs execute.

Trainings run in worker processes (`python -m core.engine.worker`), never in
the server, so the server's threads and the training do not share a GIL, and
a crash ends with the worker. A worker that has imported TensorFlow waits for
the next run, and takes the next one when its run ends; it retires when it
has grown (a leak is given back), and a fresh one takes its place. While a
slot is free one spare stays ready, so Start does not wait for a TensorFlow
import; once no browser session has been open for `idle_retire_s`, idle
workers exit and give their memory back.

The pool shares the job manager's lock (`cond`): the methods marked "under
the lock" expect it held; the others take it themselves.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable

from core.engine.process import WorkerProcess
from core.engine.protocol import Command
from core.engine.queue import Job
from core.runs.status import RunState

Ended = Callable[[Job, "RunState | None", str], None]  # the job manager's: this job's run is over


class LocalPool:
    """At most `slots` trainings at once, each in a worker process of this machine."""

    def __init__(self, cond: threading.Condition, ended: Ended, runs_waiting: Callable[[], bool], *, slots: int,
                 keep_spare: bool = True, worker_start_timeout_s: float = 180.0, idle_retire_s: float = 120.0,
                 python: str = sys.executable) -> None:
        self.slots = slots
        self.keep_spare = keep_spare
        self.worker_start_timeout_s = worker_start_timeout_s
        # an idle worker holds TensorFlow and what its runs grew (0.6-1 GB): once no session has been open for
        # this long (0: never), it goes; the next visit to Architecture or Training starts another
        self.idle_retire_s = idle_retire_s
        self.python = python
        self._cond = cond
        self._ended = ended
        self._runs_waiting = runs_waiting
        self._busy: dict[str, Job] = {}  # run id -> the job a worker is (or will be) training
        self._spares: list[WorkerProcess] = []
        self._starting_spare = False  # a spare's process is being created (outside the lock)
        self._closed = False

    def describe(self) -> str:
        return f"this machine, {self.slots} training{'s' if self.slots != 1 else ''} at a time"

    # --- what the job manager calls ---
    def warm_up(self) -> None:
        """Have a spare worker import TensorFlow now, so the next Start does not wait for it."""
        self._spawn_spare()

    def start(self, job: Job) -> None:
        """Train `job` (out of the queue, counted as running): in a thread, as a worker may take seconds to be ready."""
        with self._cond:
            self._busy[job.run_id] = job
        threading.Thread(target=self._start, args=(job,), name=f"convlab-start-{job.run_id}", daemon=True).start()

    def send(self, job: Job, kind: Command, /, **fields: object) -> bool:
        """Send a control (stop, pause, change) to the worker training `job`; False when it has gone."""
        worker = job.handle
        return worker is not None and worker.send(kind, **fields)

    def spare_pids(self) -> list[int]:
        """Process ids of the spare workers that have imported TensorFlow and wait for a run."""
        with self._cond:
            return [w.pid for w in self._spares if w.ready.is_set() and w.alive() and w.pid is not None]

    def ready_spares(self) -> int:
        """How many spare workers (or cluster slots) are ready for a run now."""
        with self._cond:
            return sum(1 for w in self._spares if w.ready.is_set() and w.alive())

    def tick(self, sessions_gone_for: float) -> None:
        """(Under the lock.) Once no session has been open for `idle_retire_s`, ready workers unused as long exit.

        While anyone has the app open one stays ready, so Start does not wait for a TensorFlow import.
        """
        now = time.monotonic()
        if not self.idle_retire_s or sessions_gone_for <= self.idle_retire_s or self._runs_waiting():
            return
        for worker in [w for w in self._spares if w.ready.is_set() and now - w.idle_since > self.idle_retire_s]:
            self._spares.remove(worker)
            worker.close()  # (closing a pipe does not block) it exits; its exit handler finds no run

    def shutdown(self) -> None:
        """Stop the workers: a training one sees the server go (stops, saves, ends interrupted); spares are killed."""
        with self._cond:
            self._closed = True
            training = [job.handle for job in self._busy.values() if job.handle is not None]
            spares, self._spares = self._spares, []
        for worker in training:
            worker.close()
        for worker in spares:
            worker.kill()
        for worker in training:
            if not worker.wait(timeout=60):
                worker.kill()

    # --- a run's way through a worker ---
    def _start(self, job: Job) -> None:
        worker = self._take_worker()
        if worker is None:
            self._end(job, RunState.FAILED, "Could not start a training process (the system refused a new one).")
            return
        job.handle = worker
        worker.ended_state = None
        worker.run_id = job.run_id  # from here on, the worker's "ended" or its exit ends the job, whatever happens
        deadline = time.monotonic() + self.worker_start_timeout_s
        while not worker.ready.wait(0.2):  # (a worker imports TensorFlow: seconds; a Cancel does not wait for it)
            if job.stop_requested or not worker.alive():
                break
            if time.monotonic() > deadline:
                worker.failure = f"it was not ready within {self.worker_start_timeout_s:.0f} s"
                worker.kill()
                return
        with self._cond:  # under the lock: a Stop now either cancels it before this, or is sent after it
            if not job.stop_requested and worker.ready.is_set():
                job.sent = worker.send(Command.RUN, root=str(job.store.root.resolve()), run_id=job.run_id)
        if job.stop_requested:  # cancelled while the worker started (the job manager wrote it): keep the worker
            self._recycle(worker)
            self._end(job, None, "")
            return
        if not job.sent:
            return  # the worker died: its exit handler ends the job
        self._spawn_spare()

    def _end(self, job: Job, state: RunState | None, message: str) -> None:
        with self._cond:
            self._busy.pop(job.run_id, None)
        self._ended(job, state, message)
        self._spawn_spare()

    def _run_ended(self, worker: WorkerProcess) -> None:
        """The worker says its run has ended (the run's record is final): it serves the next, or goes."""
        with self._cond:
            job = self._busy.get(worker.run_id or "")
            worker.run_id = None
            wanted = not self._spares or self._runs_waiting()  # one idle at most
            kept = (self.keep_spare and not self._closed and not worker.retiring and worker.alive()
                    and wanted)
            if kept:
                self._spares.append(worker)  # (before the job ends: the queue's next run takes this one)
        if not kept:
            worker.close()
        if job is not None:
            self._end(job, None, "")

    def _worker_exited(self, worker: WorkerProcess) -> None:
        with self._cond:
            if worker in self._spares:
                self._spares.remove(worker)
                return
            job = self._busy.get(worker.run_id or "")
        if job is None:
            return
        status = job.store.status(job.run_id)
        if status.state.is_active or status.state is RunState.INTERRUPTED and worker.ended_state is None:
            if status.state is RunState.QUEUED:
                self._end(job, RunState.FAILED, f"The training process could not start ({worker.exit_reason()}).")
                return
            self._lost(job, status, worker)
        else:
            self._end(job, None, "")

    def _lost(self, job: Job, status, worker) -> None:
        """Its worker went away mid-run: the run ends interrupted (a cluster resumes it elsewhere instead)."""
        p = status.progress
        where = f" in epoch {p.epoch}/{p.epochs}" if p.epoch else " before its first batch"
        self._end(job, RunState.INTERRUPTED, f"The training process ended unexpectedly ({worker.exit_reason()})"
                  f"{where}; Resume goes on from its last checkpoint.")

    # --- spare workers ---
    def _new_worker(self) -> WorkerProcess | None:
        """A fresh worker process, or None when the system refuses one."""
        try:
            return WorkerProcess(self._run_ended, self._worker_exited, self.python)
        except OSError:
            return None

    def _spares_kept(self) -> int:
        """How many spare workers to keep at most: one on this machine (each holds TensorFlow in its memory)."""
        return 1

    def _spare_wanted(self) -> bool:
        """(Under the lock.) Spare workers are kept, up to `_spares_kept`, while slots are free.

        With every slot busy none is started, even with runs waiting: a worker that ends its run takes the
        next one at once, and a TensorFlow import beside the trainings would slow them.
        """
        if not self.keep_spare or self._starting_spare or self._closed or len(self._spares) >= self._spares_kept():
            return False
        return len(self._busy) + len(self._spares) < self.slots

    def _take_worker(self) -> WorkerProcess | None:
        with self._cond:
            while self._starting_spare:  # (a moment: the process is being created) rather than a second one
                self._cond.wait(1.0)
            while self._spares:
                worker = self._spares.pop(0)
                if worker.alive():
                    return worker
        return self._new_worker()

    def _recycle(self, worker: WorkerProcess) -> None:
        """A ready worker that never got its run: the next spare, or ended."""
        with self._cond:
            worker.run_id = None
            if self.keep_spare and not self._closed and worker.alive():
                self._spares.append(worker)
                return
        worker.kill()

    def _spawn_spare(self) -> None:
        """Start spare workers while one is wanted (`_spare_wanted`), one at a time; not again after a refusal."""
        for _ in range(self._spares_kept()):
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
            if worker is None:
                return
