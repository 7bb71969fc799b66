"""What the outside asks of a training while it runs, and the record of what changed.

A `Controls` is read by the training after every chunk of batches (a third
of a second or so): Stop (end it, keeping the weights), Pause (checkpoint and
leave, to resume later at that very batch), and changes of course: a new
learning rate, a new number of epochs, finishing after the current epoch.
Changes are applied at the next chunk's end and recorded as events (`Change`
with the step where it took effect), so that `--from-run` can replay them at
the same step: a run changed by hand stays reproducible.

Any thread may call its methods (the worker's command reader does); the
training thread reads it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, Iterable, Mapping

from core.checks import check_choice, check_scalar
from core.errors import TrainingConfigError


class Halt(str, Enum):
    """Why a training was asked to end before its last batch."""

    STOP = "stop"  # the user: the run ends stopped, its partial epoch evaluated
    PAUSE = "pause"  # the user: checkpoint here, resume later
    SERVER_GONE = "server-gone"  # the worker's stdin closed: the web server has gone (checkpoint, interrupted)
    KEYBOARD = "keyboard"  # Ctrl-C in the CLI (checkpoint, interrupted)

    @property
    def keeps_place(self) -> bool:
        """Ends with a checkpoint at the batch reached, to be resumed there."""
        return self is not Halt.STOP


class ChangeKind(str, Enum):
    LEARNING_RATE = "learning_rate"
    EPOCHS = "epochs"
    STOP = "stop"  # a user's Stop, recorded so that a replay stops at the same batch


@dataclass(frozen=True)
class Change:
    """A change of course: `kind` to `value`, taking effect after `step` batches (None: at the next chunk)."""

    kind: ChangeKind
    value: float | int | None = None
    step: int | None = None

    def validated(self) -> "Change":
        check_choice(self.kind, "change", tuple(ChangeKind), TrainingConfigError)
        if self.kind is ChangeKind.LEARNING_RATE:
            check_scalar(self.value, "learning rate", TrainingConfigError, integer=False, lo=0, hi=10, lo_open=True,
                         what="in (0, 10]", kind_message="a number")
        elif self.kind is ChangeKind.EPOCHS:
            check_scalar(self.value, "epochs", TrainingConfigError, integer=True, lo=1, hi=500,
                         what="an integer from 1 to 500")
        if self.step is not None:
            check_scalar(self.step, "step", TrainingConfigError, integer=True, lo=0, hi=2**40, what="a batch count")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "value": self.value, "step": self.step}

    @classmethod
    def from_dict(cls, data: object) -> "Change":
        """Inverse of `to_dict`, validated (TrainingConfigError says what is wrong)."""
        if not isinstance(data, Mapping) or set(data) - {"kind", "value", "step"}:
            raise TrainingConfigError(f"a change must be {{kind, value, step}}, not {str(data)[:80]!r}.")
        try:
            kind = ChangeKind(data.get("kind"))
        except ValueError:
            raise TrainingConfigError(f"unknown change {str(data.get('kind'))[:40]!r}.") from None
        return cls(kind, data.get("value"), data.get("step")).validated()

    def describe(self) -> str:
        if self.kind is ChangeKind.LEARNING_RATE:
            return f"learning rate set to {self.value:g}"
        if self.kind is ChangeKind.EPOCHS:
            return f"epochs set to {self.value}"
        return "stopped by the user"


# the kinds of event a run's record holds (besides changes by the user): markers on the curves
EVENT_PAUSED, EVENT_RESUMED, EVENT_CONTINUED = "paused", "resumed", "continued"
EVENT_PLATEAU, EVENT_EARLY_STOP, EVENT_KEPT = "plateau", "early_stop", "kept"
USER, PLAN, RECIPE = "user", "plan", "recipe"  # who made a change: a person, a replayed plan, the recipe


def replayable(events: Iterable[Mapping[str, Any]]) -> list[Change]:
    """The changes a person made during a run (from its events), to apply at the same steps in a replay."""
    kinds = {kind.value for kind in ChangeKind}
    return [Change(ChangeKind(e["kind"]), e.get("value"), int(e["step"])).validated()
            for e in events if e.get("kind") in kinds and e.get("by") in (USER, PLAN)]


class Controls:
    """Stop, pause and changes asked of one training; `plan` holds changes to make at given steps (a replay)."""

    def __init__(self, plan: Iterable[Change] = ()) -> None:
        self._lock = threading.Lock()
        self._halt: Halt | None = None
        self._asked: list[Change] = []
        self._plan = sorted((change for change in plan if change.step is not None), key=lambda c: c.step or 0)
        self._listeners: list[Callable[[Halt], None]] = []

    # --- asked from any thread ---
    def halt(self, why: Halt) -> None:
        """End the training at the next chunk's end (the first reason asked wins)."""
        with self._lock:
            if self._halt is not None:
                return
            self._halt = why
            listeners = list(self._listeners)
        for listener in listeners:
            listener(why)

    def escalate(self) -> Halt | None:
        """A second Ctrl-C: a pause not yet made becomes a stop. Returns the halt now asked."""
        with self._lock:
            if self._halt is Halt.PAUSE or self._halt is None:
                self._halt = Halt.STOP
            return self._halt

    def on_halt(self, listener: Callable[[Halt], None]) -> None:
        """Call `listener(halt)` (from the asking thread) when a halt is first asked."""
        with self._lock:
            self._listeners.append(listener)

    def stop(self) -> None:
        self.halt(Halt.STOP)

    def pause(self) -> None:
        self.halt(Halt.PAUSE)

    def change(self, kind: ChangeKind | str, value: float | int | None = None) -> Change:
        """Ask for a change at the next chunk's end; returns it (TrainingConfigError for a bad value)."""
        change = Change(ChangeKind(kind), value).validated()
        with self._lock:
            self._asked.append(change)
        return change

    # --- read by the training thread ---
    @property
    def halted(self) -> Halt | None:
        with self._lock:
            return self._halt

    def __call__(self) -> bool:
        """Has the training been asked to end?"""
        return self.halted is not None

    def due(self, step: int) -> list[tuple[Change, str]]:
        """The changes to make now, after `step` batches: (change, who asked), planned ones first."""
        with self._lock:
            planned = [(change, PLAN) for change in self._plan if (change.step or 0) <= step]
            self._plan = self._plan[len(planned):]
            asked, self._asked = [(change, USER) for change in self._asked], []
        return planned + asked

    def follow(self, plan: Iterable[Change]) -> None:
        """Make these changes at their steps too (a replay's plan, read from the run's spec)."""
        with self._lock:
            self._plan = sorted([*self._plan, *(c for c in plan if c.step is not None)], key=lambda c: c.step or 0)

    def skip_to(self, step: int) -> None:
        """A training resumed after `step` batches: planned changes before it were made already."""
        with self._lock:
            self._plan = [change for change in self._plan if (change.step or 0) > step]
