"""The runs waiting for a training slot, in order, and whose browser session still wants each.

Plain bookkeeping with no lock of its own: `core.engine.jobs.JobManager`
calls it under its lock. A queued run whose session has ended is orphaned;
it is cancelled once its grace period has passed, unless a session claims it
again (a reload does).
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


class RunQueue:
    """Queued jobs in the order they start."""

    def __init__(self) -> None:
        self._jobs: list[Job] = []

    def __len__(self) -> int:
        return len(self._jobs)

    def add(self, job: Job) -> None:
        self._jobs.append(job)

    def add_front(self, job: Job) -> None:
        """A job that was on its way and must wait again: first in line."""
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
        """1 for the next run to start, 2 for the one after…; None when not queued."""
        return next((index + 1 for index, job in enumerate(self._jobs) if job.run_id == run_id), None)

    def run_ids(self) -> list[str]:
        return [job.run_id for job in self._jobs]

    def take_next(self) -> Job | None:
        """The first job whose session still wants it, out of the queue; None when there is none."""
        job = next((job for job in self._jobs if job.orphaned_at is None), None)
        if job is not None:
            self._jobs.remove(job)
        return job

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
