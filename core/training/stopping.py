"""Recipes that watch the validation metrics after each epoch: early stopping and reduce-on-plateau.

As Keras' `EarlyStopping(restore_best_weights=True)` and `ReduceLROnPlateau`,
with their state in plain numbers so a checkpoint keeps it: an epoch improves
when its monitored metric beats the best so far (lower loss, higher
accuracy); after `patience` epochs without improvement the training stops,
and with early stopping on, the best epoch's weights are the ones kept, whether
it stopped early or not. Reduce-on-plateau halves the learning rate after
`plateau_patience` epochs without improvement, then waits as long again.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from core.training.config import TrainingConfig


@dataclass(frozen=True)
class Verdict:
    """What the watcher says after an epoch."""

    improved: bool
    stop: bool  # early stopping: no improvement for `patience` epochs
    reduce: bool  # reduce-on-plateau: halve the learning rate now


@dataclass
class Watcher:
    """Follows the monitored metric epoch by epoch (its fields are what a checkpoint keeps)."""

    monitor: str
    early_stopping: bool
    patience: int
    reduce_on_plateau: bool
    plateau_patience: int
    best: float | None = None
    best_epoch: int = 0  # 1-based; 0 before the first epoch
    wait: int = 0  # epochs since the last improvement
    plateau_wait: int = 0  # epochs since the last improvement or reduction

    @classmethod
    def of(cls, config: TrainingConfig) -> "Watcher":
        return cls(config.monitor, config.early_stopping, config.patience, config.reduce_on_plateau,
                   config.plateau_patience)

    @property
    def active(self) -> bool:
        return self.early_stopping or self.reduce_on_plateau

    def after_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> Verdict:
        """Epoch `epoch` (1-based) ended with `metrics`."""
        value = metrics.get(self.monitor)
        if not self.active or value is None or not math.isfinite(float(value)):
            return Verdict(False, False, False)
        value = float(value)
        better = self.best is None or (value < self.best if self.monitor.endswith("loss") else value > self.best)
        if better:
            self.best, self.best_epoch, self.wait, self.plateau_wait = value, epoch, 0, 0
            return Verdict(True, False, False)
        self.wait += 1
        self.plateau_wait += 1
        reduce = self.reduce_on_plateau and self.plateau_wait >= self.plateau_patience
        if reduce:
            self.plateau_wait = 0
        return Verdict(False, self.early_stopping and self.wait >= self.patience, reduce)

    def state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def restore(cls, state: Mapping[str, Any]) -> "Watcher":
        return cls(**{key: state[key] for key in cls.__dataclass_fields__})
