"""Writing one run's record while it trains: the narrow sink the training reports to."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from core.runs.status import Owner, RunState, RunStatus
from core.runs.store import RunStore
from core.training.progress import Progress

MAX_BATCH_ROWS = 2000


class RunWriter:
    """Writes one run's record as it trains: the narrow sink the training callback reports to.

    Status writes for progress are throttled (state changes are written at once);
    batch rows are thinned to about MAX_BATCH_ROWS per run.
    """

    STATUS_EVERY_S = 0.5

    def __init__(self, store: RunStore, run_id: str, total_steps: int | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self._status = store.raw_status(run_id)
        self._last_status_write = 0.0
        self._batch_stride = 1
        self._last_batch_step = 0
        self._lock = threading.Lock()  # the training thread and a control thread (Stop) both update
        self.set_total_steps(total_steps)

    @property
    def status(self) -> RunStatus:
        return self._status

    def set_total_steps(self, total_steps: int | None) -> None:
        self._batch_stride = max(1, math.ceil((total_steps or 0) / MAX_BATCH_ROWS))

    def update(self, force: bool = False, **changes: Any) -> None:
        """Change the status; written now if the state changed or `force`, else at most twice a second."""
        with self._lock:
            now = time.time()
            state_changed = "state" in changes and changes["state"] is not self._status.state
            self._status = replace(self._status, heartbeat=now, **changes)
            if force or state_changed or now - self._last_status_write >= self.STATUS_EVERY_S:
                self.store.write_status(self.run_id, self._status)
                self._last_status_write = now

    def begin(self, message: str = "Training…") -> None:
        """The run is this process's now; a resumed run keeps when it first started."""
        self.update(force=True, state=RunState.RUNNING, message=message, ended=None,
                    started=self._status.started or time.time(), owner=Owner.this_process())

    def resume_at(self, step: int) -> None:
        """Batch rows go on from `step` (a resumed run), thinned as before."""
        self._last_batch_step = step

    def end(self, state: RunState, message: str) -> None:
        self.update(force=True, state=state, message=message, ended=time.time())

    # the sink the Keras callback reports to
    def on_batch(self, record: Mapping[str, Any], progress: Progress) -> None:
        step = int(record["step"])
        if step - self._last_batch_step >= self._batch_stride or step == 1:
            self.store.append_batch(self.run_id, record)
            self._last_batch_step = step
        self.update(progress=progress)

    def on_epoch(self, record: Mapping[str, Any]) -> None:
        self.store.append_epoch(self.run_id, record)
        self.update(force=True)

    def on_event(self, record: Mapping[str, Any]) -> None:
        self.store.append_event(self.run_id, record)

    def on_checkpoint(self, name: str, checkpoint: Any) -> None:
        """Write a `core.training.checkpoint.Checkpoint` (anything with `to_bytes`) atomically."""
        self.store.write_checkpoint(self.run_id, name, checkpoint.to_bytes())

    def write_confusion(self, matrices: list[dict[str, Any]]) -> None:
        self.store.write_confusion(self.run_id, matrices)

    def write_filters(self, kernels: np.ndarray) -> None:
        self.store.write_filters(self.run_id, kernels)
