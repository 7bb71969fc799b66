"""A run's state and status: one vocabulary of states end to end, and the process that owns a run.

A run that claims to be active but whose owning process has gone reads as
interrupted (`effective_status`).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from core.training.progress import Progress

_FOREIGN_HEARTBEAT_S = 120.0  # a run owned by another machine is presumed alive this long after its last beat


class RunState(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    STOPPING = "stopping"
    FINISHED = "finished"
    STOPPED = "stopped"
    PAUSED = "paused"  # a checkpoint at the batch reached: Resume goes on from there
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"
    DAMAGED = "damaged"

    @property
    def is_active(self) -> bool:
        """Queued or training: something is still going to happen to the run."""
        return self in (RunState.QUEUED, RunState.RUNNING, RunState.STOPPING)

    @property
    def is_training(self) -> bool:
        return self in (RunState.RUNNING, RunState.STOPPING)

    @property
    def is_resumable(self) -> bool:
        """Ended before its planned end without being stopped: Resume trains on (from its last checkpoint)."""
        return self in (RunState.PAUSED, RunState.INTERRUPTED)

    @property
    def is_continuable(self) -> bool:
        """Its training is over: Continue makes a new run that trains it further."""
        return self in (RunState.FINISHED, RunState.STOPPED)


# --- status and process liveness ---------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    """The process that owns a run's state: the server while queued, the trainer while training."""

    pid: int
    host: str
    started: int  # the process's start time in clock ticks since boot, to tell a reused pid apart

    @classmethod
    def this_process(cls) -> "Owner":
        return cls(os.getpid(), socket.gethostname(), process_start_ticks(os.getpid()) or 0)

    def is_alive(self, heartbeat: float, now: float) -> bool:
        if self.host != socket.gethostname():
            return now - heartbeat < _FOREIGN_HEARTBEAT_S
        started = process_start_ticks(self.pid)
        return started is not None and (self.started == 0 or started == self.started)


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0  # no /proc here: alive, start time unknown
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] == "Z":
        return None  # a zombie has finished
    return int(fields[19])


@dataclass(frozen=True)
class RunStatus:
    """A run's state, message, times, progress and owner, as status.json holds them."""

    state: RunState
    message: str = ""
    created: float = 0.0
    started: float | None = None
    ended: float | None = None
    progress: Progress = field(default_factory=Progress)
    owner: Owner | None = None
    heartbeat: float = 0.0

    @property
    def training_s(self) -> float | None:
        """Seconds of training (its progress clock), or None before it starts."""
        return self.progress.elapsed_s if self.started is not None else None

    @property
    def waited_s(self) -> float | None:
        """Seconds from its creation (Start) to its end: queue, start-up, training, saving and scoring; None
        while it goes on."""
        return self.ended - self.created if self.ended is not None and self.created else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunStatus":
        """Inverse of `to_dict`; raises TypeError, ValueError or KeyError for a damaged status."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a status must be a mapping, not {type(data).__name__}")
        owner = data.get("owner")
        progress = {key: value for key, value in dict(data.get("progress") or {}).items()
                    if key in Progress.__dataclass_fields__}
        for key, value in progress.items():  # pages do arithmetic on these
            if isinstance(value, bool) or not isinstance(value, (int, float)) and not (key == "eta_s" and value is None):
                raise TypeError(f"progress.{key} is not a number: {str(value)[:40]!r}")
        return cls(
            state=RunState(data["state"]),
            message=str(data.get("message", "")),
            created=float(data.get("created", 0.0)),
            started=None if data.get("started") is None else float(data["started"]),
            ended=None if data.get("ended") is None else float(data["ended"]),
            progress=Progress(**progress),
            owner=None if owner is None else Owner(int(owner["pid"]), str(owner["host"]), int(owner["started"])),
            heartbeat=float(data.get("heartbeat", 0.0)),
        )


def _interrupted(status: RunStatus) -> RunStatus:
    p = status.progress
    if status.state is RunState.QUEUED:
        message = "The server stopped before this run started."
    elif p.epoch:
        message = (f"The training process ended without finishing, in epoch {p.epoch}/{p.epochs} "
                   "(the server or the machine stopped, or the process was killed).")
    else:
        message = "The training process ended before its first batch (the server or the machine stopped)."
    return replace(status, state=RunState.INTERRUPTED, message=message)


def effective_status(status: RunStatus, now: float | None = None) -> RunStatus:
    """`status`, or the same run marked interrupted when it claims to be active but its owner is gone."""
    if not status.state.is_active:
        return status
    if status.owner is None or not status.owner.is_alive(status.heartbeat, now or time.time()):
        return _interrupted(status)
    return status
