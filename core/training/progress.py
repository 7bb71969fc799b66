"""What a training reports, and to whom: its progress, the sink that listens, the history it leaves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence


@dataclass(frozen=True)
class Progress:
    """Where training is: epoch and batch (1-based), speed, time spent and left."""

    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches_per_epoch: int = 0
    images_per_second: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None

    @property
    def step_done(self) -> int:
        """Batches done in all."""
        return (self.epoch - 1) * self.batches_per_epoch + self.batch if self.epoch else 0

    @property
    def fraction(self) -> float:
        total = self.epochs * self.batches_per_epoch
        return min(1.0, self.step_done / total) if total else 0.0


class Sink(Protocol):
    """Whoever listens to a training: gets each reported batch, each epoch and each event as plain data, and
    each checkpoint ("last": to resume or continue from; "best": the best epoch's, with early stopping)."""

    def on_batch(self, record: Mapping[str, Any], progress: Progress) -> None: ...

    def on_epoch(self, record: Mapping[str, Any]) -> None: ...

    def on_event(self, record: Mapping[str, Any]) -> None: ...

    def on_checkpoint(self, name: str, checkpoint: Any) -> None: ...


class MemorySink:
    """Keeps every record in lists and the latest checkpoints (for scripts and tests); optionally passes them on."""

    def __init__(self, then: Sink | None = None) -> None:
        self.batches: list[dict] = []
        self.epochs: list[dict] = []
        self.events: list[dict] = []
        self.checkpoints: dict[str, Any] = {}
        self.progress = Progress()
        self._then = then

    def on_batch(self, record: Mapping[str, Any], progress: Progress) -> None:
        self.batches.append(dict(record))
        self.progress = progress
        if self._then is not None:
            self._then.on_batch(record, progress)

    def on_epoch(self, record: Mapping[str, Any]) -> None:
        self.epochs.append(dict(record))
        if self._then is not None:
            self._then.on_epoch(record)

    def on_event(self, record: Mapping[str, Any]) -> None:
        self.events.append(dict(record))
        if self._then is not None:
            self._then.on_event(record)

    def on_checkpoint(self, name: str, checkpoint: Any) -> None:
        self.checkpoints[name] = checkpoint
        if self._then is not None:
            self._then.on_checkpoint(name, checkpoint)


METRIC_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def history(epochs: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Per-epoch metrics as Keras' History.history: {'loss': [...], 'val_accuracy': [...], ...}."""
    keys = [key for key in METRIC_KEYS if epochs and key in epochs[0]]
    return {key: [float(row[key]) for row in epochs] for key in keys}
