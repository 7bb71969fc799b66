"""The runs waiting for a training slot, in the order they will start, and whose browser session still wants each.

Plain bookkeeping with no lock of its own: `core.engine.jobs.JobManager`
calls it under its lock. A queued run whose session has ended is orphaned;
it is cancelled once its grace period has passed, unless a session claims it
again (a reload does).

The queue shares the slots in turns: every job counts against a *share* (the
browser that made it: its workspace key; a sweep's trials count against the
browser that started the sweep). The next run to start is the oldest queued
run of the share that started a run least recently (a share that never has
goes first; among equals, the run queued first). So a student who queues a
sweep of 50 trials, or ten runs, takes one slot turn in each round with every
other student who waits, never all the turns in a row; with one share
waiting, runs start in the order they were queued.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from core.runs.store import RunStore


@dataclass
class Job:
    """A run on its way through the engine: queued, then handed to an executor that trains it."""

    run_id: str
    store: RunStore
    owner: str | None
    queued_at: float = field(default_factory=time.monotonic)
    orphaned_at: float | None = None
    sent: bool = False  # the executor has handed it to a process that trains it
    stop_requested: bool = False  # Stop (or Cancel) came while it was being handed over
    handle: Any = None  # the executor's own record of it (a worker process, a cluster job)
    placed: bool = False  # (a cluster job) the node it runs on is recorded
    share: str = ""  # whose turn it takes (the browser that made it), for the round-robin between shares
    again: bool = False  # back in the queue after it was taken (its cluster was away): first in line, its turn kept


MAX_SHARES_REMEMBERED = 10_000  # turns are remembered per share; beyond this the longest-served are forgotten


class RunQueue:
    """Queued jobs; they start in turns between shares (see the module's docstring)."""

    def __init__(self) -> None:
        self._jobs: list[Job] = []  # in the order they were queued
        self._turn = 0  # how many jobs have started
        self._served: dict[str, int] = {}  # share -> the turn at which it last started a job

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, job: Job) -> None:
        self._jobs.append(job)

    def add_front(self, job: Job) -> None:
        """A job that was on its way and must wait again: first in line, on the turn it had already taken."""
        job.again = True
        self._jobs.insert(0, job)

    def remove(self, run_id: str) -> Job | None:
        """Take the job of `run_id` out of the queue; None when it is not queued."""
        job = self.find(run_id)
        if job is not None:
            self._jobs.remove(job)
        return job

    def find(self, run_id: str) -> Job | None:
        return next((job for job in self._jobs if job.run_id == run_id), None)

    def position(self, run_id: str) -> int | None:
        """1 for the next run to start, 2 for the one after… (if nothing else is queued); None when not queued."""
        return next((index + 1 for index, job in enumerate(self.in_order()) if job.run_id == run_id), None)

    def run_ids(self) -> list[str]:
        """The queued runs in the order they will start (orphans last)."""
        return [job.run_id for job in self.in_order()]

    def in_order(self) -> list[Job]:
        """The wanted jobs in the order `take_next` would take them if nothing else came, then the orphans."""
        served = dict(self._served)
        waiting = [job for job in self._jobs if job.orphaned_at is None]
        order = []
        turn = self._turn
        while waiting:
            job = self._pick(waiting, served)
            waiting.remove(job)
            if not job.again:
                turn += 1
                served[job.share] = turn
            order.append(job)
        return order + [job for job in self._jobs if job.orphaned_at is not None]

    def take_next(self) -> Job | None:
        """The next job to start (the oldest of the share served least recently), out of the queue; None when no
        queued job is wanted by its session."""
        waiting = [job for job in self._jobs if job.orphaned_at is None]
        if not waiting:
            return None
        job = self._pick(waiting, self._served)
        self._jobs.remove(job)
        if job.again:  # (its turn was counted when it was first taken)
            job.again = False
            return job
        self._turn += 1
        self._served.pop(job.share, None)  # (re-inserted last: the dict stays ordered by turn)
        self._served[job.share] = self._turn
        if len(self._served) > MAX_SHARES_REMEMBERED:
            del self._served[next(iter(self._served))]
        return job

    @staticmethod
    def _pick(waiting: list[Job], served: dict[str, int]) -> Job:
        """Among `waiting` (in queued order): a job back in the queue, else the first job of the share whose last turn
        is the oldest."""
        return min(enumerate(waiting), key=lambda item: (not item[1].again, served.get(item[1].share, 0), item[0]))[1]

    def any_wanted(self) -> bool:
        """Is a queued run still wanted by its session?"""
        return any(job.orphaned_at is None for job in self._jobs)

    def orphan(self, owner: str, now: float) -> None:
        """`owner`'s session has ended: its queued runs start their grace period."""
        for job in self._jobs:
            if job.owner == owner:
                job.orphaned_at = now

    def hold(self, owner: str) -> None:
        """`owner`'s session is there again: its queued runs are wanted."""
        for job in self._jobs:
            if job.owner == owner:
                job.orphaned_at = None

    def claim(self, run_id: str, owner: str) -> bool:
        """A session shows `run_id` (a reload, a shared link): it is wanted again, by that session."""
        job = self.find(run_id)
        if job is not None:
            job.owner, job.orphaned_at = owner, None
        return job is not None

    def take_expired(self, now: float, grace_s: float) -> list[Job]:
        """The orphaned jobs whose grace period has passed, out of the queue."""
        expired = [job for job in self._jobs if job.orphaned_at is not None and now - job.orphaned_at > grace_s]
        for job in expired:
            self._jobs.remove(job)
        return expired

    def take_all(self) -> list[Job]:
        jobs, self._jobs = self._jobs, []
        return jobs
