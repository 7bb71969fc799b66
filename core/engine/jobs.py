"""The job manager a web server holds (one per process): a queue of runs, and where they execute.

Start creates a queued run in the store and puts it in the queue
(`core.engine.queue`); the dispatcher hands the next wanted run to the
executor as soon as it has a free slot. The executor is where runs execute,
the one seam between the queue and the machines: the local pool of worker
processes (`core.engine.local`, the default), or a Ray cluster
(`core.engine.cluster`) when CONVLAB_RAY_ADDRESS names one. At most its
`slots` trainings run at once; the rest wait with a visible position
and can be cancelled. Queued runs whose browser session has gone are
cancelled after a grace period (a reload re-claims them); running ones
finish into the store. One lock (a `threading.Condition`) guards the queue,
the running jobs, the sessions (`core.engine.sessions`) and the executor's
own bookkeeping.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from core.engine.cluster import ClusterPool, cluster_address
from core.engine.local import LocalPool
from core.engine.protocol import Command
from core.engine.queue import Job, RunQueue
from core.engine.sessions import Sessions
from core.errors import RunError
from core.runs.lineage import continue_run
from core.runs.spec import RunSpec
from core.runs.status import Owner, RunState
from core.runs.store import RunStore, default_root
from core.settings import int_setting
from core.training.controls import Change, ChangeKind

MAX_TRAININGS_ENV = "CONVLAB_MAX_TRAININGS"
WORKER_IDLE_ENV = "CONVLAB_WORKER_IDLE_S"
RESUME_WAIT_S = 10.0  # a run seen paused may still be in its worker's hands this long


def _share(share: str | None, owner: str | None) -> str:
    """Whose turn a run takes in the queue: the share asked for, else its owner's ("" for nobody's)."""
    return share if share is not None else owner or ""


def default_max_concurrent() -> int:
    """CONVLAB_MAX_TRAININGS, else one training per two cores."""
    return int_setting(MAX_TRAININGS_ENV, max(1, (os.cpu_count() or 2) // 2), 1, 1_000)


def default_idle_retire_s() -> float:
    """CONVLAB_WORKER_IDLE_S, else 120: how long after the last session has gone an idle worker exits (0: never)."""
    return float(int_setting(WORKER_IDLE_ENV, 120, 0, 7 * 24 * 3600))


class JobManager:
    """Queues runs and has the executor train them, at most `max_concurrent` at a time."""

    def __init__(self, max_concurrent: int | None = None, keep_spare: bool = True, orphan_grace_s: float = 60.0,
                 worker_start_timeout_s: float = 180.0, python: str = sys.executable,
                 idle_retire_s: float | None = None, cluster: str | None = None,
                 cluster_home: RunStore | None = None) -> None:
        """`cluster`: a Ray cluster's address (default CONVLAB_RAY_ADDRESS; "" for this machine's workers);
        `cluster_home`: the shared run store its slots' files live in (default: the default run store)."""
        self.orphan_grace_s = orphan_grace_s
        self._cond = threading.Condition()
        self._queue = RunQueue()
        self._running: dict[str, Job] = {}
        self._sessions = Sessions()
        self._closed = False
        self._known_stores: dict[Path, RunStore] = {}
        address = cluster_address() if cluster is None else cluster
        idle = default_idle_retire_s() if idle_retire_s is None else idle_retire_s
        self.executor: LocalPool
        if address:
            self.executor = ClusterPool(self._cond, self._job_ended, self._queue.any_wanted, self._requeue,
                                        address=address, home=cluster_home or RunStore(default_root()),
                                        keep_spare=keep_spare, idle_retire_s=idle)
        else:
            self.executor = LocalPool(
                self._cond, self._job_ended, self._queue.any_wanted, slots=max_concurrent or default_max_concurrent(),
                keep_spare=keep_spare, worker_start_timeout_s=worker_start_timeout_s, python=python,
                idle_retire_s=idle)
        self._thread = threading.Thread(target=self._dispatch_forever, name="convlab-job-manager", daemon=True)
        self._thread.start()

    @property
    def max_concurrent(self) -> int:
        return self.executor.slots

    def describe(self) -> str:
        """Where runs execute, in words ("this machine, 1 training at a time", "the Ray cluster at …: 2 nodes…")."""
        return self.executor.describe()

    # --- what sessions call ---
    def warm_up(self) -> None:
        """Have the executor get a training process ready, so the next Start does not wait for it.

        Pages where training is near (Architecture, Training) call this; the Home and Data pages do not,
        so a first visit is not slowed by a TensorFlow import competing for the CPU.
        """
        self.executor.warm_up()

    def submit(self, store: RunStore, spec: RunSpec, details: dict | None = None, owner: str | None = None,
               made_by: str = "", share: str | None = None) -> str:
        """Create a queued run for `spec` and queue it; returns its id.

        `owner` is the browser session that waits for it (its queued run is cancelled when it goes; None:
        nobody's, never cancelled so), `made_by` the browser's workspace key recorded as the run's maker,
        `share` whose turn in the queue it takes (`core.engine.queue`; default: its maker, else its owner).
        """
        self.adopt(store)
        run_id = store.create(spec, details, owner=Owner.this_process(), state=RunState.QUEUED,
                              message="Waiting for a free training slot.", made_by=made_by)
        self.enqueue(store, run_id, owner, share=(made_by or None) if share is None else share)
        return run_id

    def enqueue(self, store: RunStore, run_id: str, owner: str | None = None, share: str | None = None) -> None:
        """Queue a run already created in `store` (queued, owned by this process); `share` as in `submit`."""
        self.adopt(store)
        with self._cond:
            self._queue.add(Job(run_id, store, owner, share=_share(share, owner)))
            self._cond.notify_all()

    def position(self, run_id: str) -> int | None:
        """1 for the next run to start, 2 for the one after…; None when not queued."""
        with self._cond:
            return self._queue.position(run_id)

    def spare_pids(self) -> list[int]:
        """Process ids of the spare workers that have imported TensorFlow and wait for a run."""
        return self.executor.spare_pids()

    def ready_spares(self) -> int:
        """How many training processes (local workers or cluster slots) are ready for a run, none of them busy."""
        return self.executor.ready_spares()

    def is_running(self, run_id: str) -> bool:
        with self._cond:
            return run_id in self._running

    def stop(self, run_id: str) -> bool:
        """Stop a running run (it keeps its weights) or cancel a queued one; False if neither.

        A run the dispatcher has taken but the executor has not yet handed over (its worker may still be
        starting) is cancelled at once; the worker is kept for the next run.
        """
        with self._cond:
            job = self._running.get(run_id)
            cancel_now = job is not None and not job.sent
            if cancel_now:
                if job.stop_requested:
                    return False  # already cancelled
                job.stop_requested = True
        if job is None:
            return self.cancel(run_id)
        if cancel_now:
            self._write_final(job, RunState.CANCELLED, "Cancelled before it started.")
            return True
        return self.executor.send(job, Command.STOP)

    def pause(self, run_id: str) -> bool:
        """Pause a training run: it checkpoints at the next chunk of batches and ends paused, and its slot goes to
        the next queued run. False when it is not training (yet)."""
        job = self._sent_job(run_id)
        return job is not None and self.executor.send(job, Command.PAUSE)

    def change(self, run_id: str, kind: ChangeKind | str, value: float | int | None = None) -> bool:
        """Change a training run's course at its next chunk of batches (TrainingConfigError for a bad value);
        False when it is not training."""
        change = Change(ChangeKind(kind), value).validated()
        job = self._sent_job(run_id)
        return job is not None and self.executor.send(job, Command.CHANGE, kind=change.kind.value, value=change.value)

    def resume(self, store: RunStore, run_id: str, owner: str | None = None, share: str | None = None) -> None:
        """Queue a paused or interrupted run again: it goes on from its last checkpoint (RunError if it cannot)."""
        self.adopt(store)
        with self._cond:  # (under the lock: two Resumes of one run cannot both queue it)
            # a run that has just paused says so before its worker reports it ended: give it a moment
            deadline = time.monotonic() + RESUME_WAIT_S
            while (run_id in self._running and not store.status(run_id).state.is_active
                   and time.monotonic() < deadline):
                self._cond.wait(0.1)
            if self._queue.find(run_id) is not None or run_id in self._running:
                raise RunError("This run is already queued or training.")
            status = store.status(run_id)
            if not status.state.is_resumable:
                raise RunError(f"This run is {status.state.value}: only a paused or interrupted run can be resumed.")
            now = time.time()
            store.write_status(run_id, replace(status, state=RunState.QUEUED, ended=None, heartbeat=now,
                                               owner=Owner.this_process(),
                                               message="Waiting for a free training slot to resume."))
            self._queue.add(Job(run_id, store, owner, share=_share(share, owner)))
            self._cond.notify_all()

    def continue_run(self, store: RunStore, parent_id: str, more_epochs: int, learning_rate: float | None = None,
                     owner: str | None = None, made_by: str = "") -> str:
        """Queue a new run that trains `parent_id`'s final state `more_epochs` more epochs; returns its id."""
        self.adopt(store)
        run_id = continue_run(store, parent_id, more_epochs, learning_rate, made_by=made_by,
                              owner=Owner.this_process())
        self.enqueue(store, run_id, owner, share=made_by or None)
        return run_id

    def _sent_job(self, run_id: str) -> Job | None:
        with self._cond:
            job = self._running.get(run_id)
            return job if job is not None and job.sent else None

    def cancel(self, run_id: str, message: str = "Cancelled before it started.") -> bool:
        """Take a queued run out of the queue and mark it cancelled."""
        with self._cond:
            job = self._queue.remove(run_id)
            if job is None:
                return False
            self._cond.notify_all()
        self._write_final(job, RunState.CANCELLED, message)
        return True

    def release_owner(self, owner: str) -> None:
        """A session has ended: its queued runs are cancelled unless re-claimed within the grace period."""
        with self._cond:
            self._sessions.release(owner)
            self._queue.orphan(owner, time.monotonic())
            self._cond.notify_all()

    def hold_owner(self, owner: str) -> None:
        """The session `owner` is there (again, after a disconnect released it): its queued runs stay queued."""
        with self._cond:
            self._sessions.hold(owner)
            self._queue.hold(owner)

    def claim(self, run_id: str | None, owner: str) -> None:
        """Session `owner` shows this run (None: no run): a queued or running one is wanted by it again."""
        with self._cond:
            self._sessions.show(owner, run_id)
            if run_id is not None and not self._queue.claim(run_id, owner) and run_id in self._running:
                self._running[run_id].owner = owner

    def in_use(self, run_id: str, owner: str) -> str:
        """Why `run_id` may not be deleted by session `owner` now ("" when it may): queued, training, or shown."""
        with self._cond:
            if self._queue.find(run_id) is not None or run_id in self._running:
                return "it is queued or training (stop or cancel it first)"
            others = self._sessions.shown_by_others(run_id, owner)
        if others:
            return f"{'another browser tab shows' if others == 1 else f'{others} other browser tabs show'} it"
        return ""

    def queued(self) -> list[str]:
        with self._cond:
            return self._queue.run_ids()

    def running(self) -> list[str]:
        with self._cond:
            return list(self._running)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running (for scripts and tests)."""
        with self._cond:
            return self._cond.wait_for(lambda: not len(self._queue) and not self._running, timeout)

    def wait_until(self, done: Callable[[], bool], timeout: float, recheck_s: float = 0.05) -> bool:
        """Block until `done()` (checked whenever a job ends, and every `recheck_s` besides), at most `timeout`
        seconds; whether it came. `done` runs outside the lock: it may read the store."""
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._cond:  # (an end notified between `done()` and here is seen `recheck_s` later)
                self._cond.wait(min(left, recheck_s))
        return True

    def shutdown(self) -> None:
        """Cancel the queue, stop the trainings (their runs end as interrupted), end the dispatcher."""
        with self._cond:
            self._closed = True
            queued = self._queue.take_all()
            self._cond.notify_all()
        for job in queued:
            self._write_final(job, RunState.CANCELLED, "Cancelled: the server shut down before it started.")
        self.executor.shutdown()

    def adopt(self, store: RunStore) -> None:
        """The first time a store is seen: runs a dead server left active are marked interrupted, and runs still
        training on the cluster are followed again."""
        key = store.root.resolve()
        if key not in self._known_stores:
            self._known_stores[key] = store
            store.identity(create=True)
            store.mark_interrupted()
            if isinstance(self.executor, ClusterPool):
                for job in self.executor.reattach(store):
                    with self._cond:
                        self._running[job.run_id] = job

    # --- the dispatcher ---
    def _dispatch_forever(self) -> None:
        while True:
            with self._cond:
                job = None
                while job is None:
                    if self._closed:
                        return
                    self._cancel_orphans()
                    self.executor.tick(self._sessions.none_open_for(time.monotonic()))
                    if len(self._running) < self.executor.slots:
                        job = self._queue.take_next()
                    if job is None:
                        self._cond.wait(timeout=1.0)
                self._running[job.run_id] = job
                self._cond.notify_all()
            self.executor.start(job)

    def _cancel_orphans(self) -> None:
        """(Under the lock.) Queued runs whose session has been gone past the grace period are cancelled."""
        for job in self._queue.take_expired(time.monotonic(), self.orphan_grace_s):
            threading.Thread(target=self._write_final, daemon=True, args=(
                job, RunState.CANCELLED, "Cancelled: its browser session ended before it started.")).start()

    def _requeue(self, job: Job) -> None:
        """The executor's: `job` goes back to the front of the queue (its cluster was away, or its node went)."""
        with self._cond:
            self._running.pop(job.run_id, None)
            if not self._closed:
                self._queue.add_front(job)
            self._cond.notify_all()

    def _job_ended(self, job: Job, state: RunState | None, message: str) -> None:
        """The executor's: `job` is over (its record is final, or `state` makes it so)."""
        if state is not None:
            self._write_final(job, state, message)
        with self._cond:
            self._running.pop(job.run_id, None)
            self._cond.notify_all()

    def _write_final(self, job: Job, state: RunState, message: str) -> None:
        try:
            status = job.store.raw_status(job.run_id)
            job.store.write_status(job.run_id, replace(status, state=state, message=message, ended=time.time(),
                                                       heartbeat=time.time()))
        except (RunError, OSError):
            pass  # the run was deleted meanwhile: nothing to record
