"""A training's whole state at one batch, as a file, to resume or continue it exactly.

A checkpoint holds every variable of the model (weights, batch-norm
statistics, and the states of the random generators behind dropout and
augmentation), every variable of the optimizer (its step count, momentum or
Adam's moments), the running metrics of a half-done epoch, the learning-rate
schedule's state, the early-stopping watcher's, and where the training was:
epochs done, batches done in the next one, and the epochs planned. With the
seed, that position fixes the data order from there on
(`core.training.batches`), so training on from a checkpoint gives what
training on without one would have given.

The file is an uncompressed .npz of plain arrays (never pickled) with the
position and states as a JSON member; the run store writes it atomically.
Variables are matched by order, and their count and shapes are checked, so a
checkpoint of another architecture is refused with a message.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from core.errors import RunError

if TYPE_CHECKING:
    import keras

FORMAT = 1
_STATE = "state"
_GROUPS = ("model", "optimizer", "metrics")


@dataclass(frozen=True)
class Position:
    """Where a training is: `epoch` epochs done and `batch` batches of the next; `step` batches in all."""

    epoch: int = 0
    batch: int = 0
    step: int = 0

    @property
    def mid_epoch(self) -> bool:
        return self.batch > 0

    def describe(self, batches_per_epoch: int) -> str:
        if self.mid_epoch:
            return f"epoch {self.epoch + 1}, after batch {self.batch}/{batches_per_epoch}"
        return "the start" if self.epoch == 0 else f"the end of epoch {self.epoch}"


@dataclass
class Checkpoint:
    """A training's state at `position` (see the module's docstring)."""

    position: Position
    epochs: int  # the epochs planned then (changes included)
    batches_per_epoch: int
    elapsed_s: float
    model: list[np.ndarray]
    optimizer: list[np.ndarray]
    metrics: list[np.ndarray] = field(default_factory=list)  # the half-done epoch's running metrics
    schedule: dict[str, float] = field(default_factory=dict)
    watcher: dict[str, Any] | None = None

    def to_bytes(self) -> bytes:
        state = {"format": FORMAT, "position": vars(self.position), "epochs": self.epochs,
                 "batches_per_epoch": self.batches_per_epoch, "elapsed_s": self.elapsed_s,
                 "schedule": self.schedule, "watcher": self.watcher,
                 "counts": {group: len(getattr(self, group)) for group in _GROUPS}}
        arrays = {f"{group}_{index:04d}": array for group in _GROUPS
                  for index, array in enumerate(getattr(self, group))}
        arrays[_STATE] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Checkpoint":
        """Inverse of `to_bytes`; RunError for a file that is not one of ours."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as archive:
                state = json.loads(bytes(archive[_STATE]).decode())
                if state.get("format") != FORMAT:
                    raise ValueError(f"format {state.get('format')!r}")
                groups = {group: [archive[f"{group}_{index:04d}"] for index in range(int(state["counts"][group]))]
                          for group in _GROUPS}
            return cls(position=Position(**state["position"]), epochs=int(state["epochs"]),
                       batches_per_epoch=int(state["batches_per_epoch"]), elapsed_s=float(state["elapsed_s"]),
                       schedule=dict(state["schedule"]), watcher=state["watcher"], **groups)
        except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise RunError(f"This run's checkpoint cannot be read ({error}); it cannot be resumed.") from None


def capture(model: "keras.Model", position: Position, epochs: int, batches_per_epoch: int, elapsed_s: float,
            schedule: dict[str, float], watcher: dict[str, Any] | None, with_metrics: bool) -> Checkpoint:
    """The state of `model` (compiled, its optimizer built) at `position`."""
    return Checkpoint(position=position, epochs=epochs, batches_per_epoch=batches_per_epoch, elapsed_s=elapsed_s,
                      model=_values(model.variables), optimizer=_values(model.optimizer.variables),
                      metrics=_values(model.metrics_variables) if with_metrics else [],
                      schedule=dict(schedule), watcher=watcher)


def restore(checkpoint: Checkpoint, model: "keras.Model", optimizer: bool = True) -> None:
    """Put the checkpoint's model (and optimizer) variables into `model`; RunError if they do not fit."""
    _assign(model.variables, checkpoint.model, "model")
    if optimizer:
        _assign(model.optimizer.variables, checkpoint.optimizer, "optimizer")


def restore_metrics(checkpoint: Checkpoint, model: "keras.Model") -> None:
    """The half-done epoch's running metrics (once fit has built them and reset them for the epoch)."""
    if checkpoint.metrics:
        _assign(model.metrics_variables, checkpoint.metrics, "metrics")


def weights_of(model: "keras.Model") -> list[np.ndarray]:
    """A copy of the model's weights (what early stopping keeps of the best epoch)."""
    return [np.array(weight) for weight in model.get_weights()]


def _values(variables: Sequence[Any]) -> list[np.ndarray]:
    return [np.array(variable.numpy()) for variable in variables]


def _assign(variables: Sequence[Any], values: Sequence[np.ndarray], what: str) -> None:
    if len(variables) != len(values):
        raise RunError(f"The checkpoint holds {len(values)} {what} variables where this training has "
                       f"{len(variables)}: it was made for another architecture or optimizer.")
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != tuple(value.shape):
            raise RunError(f"The checkpoint's {what} variable {variable.path} has shape {tuple(value.shape)} where "
                           f"this training's has {tuple(variable.shape)}: it was made for another architecture.")
    for variable, value in zip(variables, values):
        variable.assign(value)
