"""Keras callbacks that report a training to a sink. Imports Keras: load it lazily.

Each callback owns one concern and knows nothing of who listens:
`MetricsCallback` hands per-batch and per-epoch metrics to a `Sink`, ends a
diverging run by raising `TrainingDiverged` (as Keras' `TerminateOnNaN(raise_error=True)`)
and stops when `should_stop()` says so; `ConfusionRecorder` and `FilterRecorder`
hand the validation confusion matrix per epoch and the first layer's filters to
functions they are given.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import keras
import numpy as np

from core.errors import TrainingDiverged
from core.evaluation.metrics import confusion_counts
from core.training.progress import METRIC_KEYS, Progress, Sink


class MetricsCallback(keras.callbacks.Callback):
    """Reports metrics to `sink` after each chunk of batches and each epoch; stops or raises as needed."""

    def __init__(self, sink: Sink, should_stop: Callable[[], bool], batch_size: int, epochs: int,
                 batches_per_epoch: int) -> None:
        super().__init__()
        self.sink = sink
        self.should_stop = should_stop
        self.batch_size = batch_size
        self.epochs = epochs
        self.batches_per_epoch = batches_per_epoch
        self.train_start = self.epoch_start = time.perf_counter()
        self.epoch = 0
        self.step = 0
        self.stopped_on_request = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.train_start = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch + 1
        self.epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        # with several steps per execution `batch` is the chunk's last index, which Keras rounds up past the
        # epoch's last batch when the chunk is cut short (1152 of 1125)
        done_in_epoch = min(batch + 1, self.batches_per_epoch)
        self.step = (self.epoch - 1) * self.batches_per_epoch + done_in_epoch
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"Training stopped: the loss became {loss} at epoch {self.epoch}, batch {done_in_epoch}. "
                "The learning rate is probably too high for this model; lower it and train again.")
        if self.should_stop():
            self.model.stop_training = True
            self.stopped_on_request = True
        now = time.perf_counter()
        rate = done_in_epoch * self.batch_size / max(now - self.epoch_start, 1e-9)
        batches_left = (self.epochs - self.epoch + 1) * self.batches_per_epoch - done_in_epoch
        progress = Progress(
            epoch=self.epoch, epochs=self.epochs, batch=done_in_epoch, batches_per_epoch=self.batches_per_epoch,
            images_per_second=rate, elapsed_s=now - self.train_start, eta_s=batches_left * self.batch_size / rate,
        )
        record = {"step": self.step, "epoch": self.epoch, "batch": done_in_epoch, "loss": loss,
                  "accuracy": float(logs.get("accuracy", math.nan)), "elapsed_s": round(now - self.train_start, 3)}
        self.sink.on_batch(record, progress)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        now = time.perf_counter()
        # a stop mid-epoch still reaches here: mark the epoch partial so nobody mistakes it for a full one
        record: dict[str, Any] = {"epoch": epoch + 1, "step": self.step}
        record.update({key: float(logs[key]) for key in METRIC_KEYS if key in logs})
        record.update({"epoch_s": round(now - self.epoch_start, 3), "elapsed_s": round(now - self.train_start, 3),
                       "partial": self.step < (epoch + 1) * self.batches_per_epoch})
        if not math.isfinite(record.get("val_loss", 0.0)):
            raise TrainingDiverged(
                f"Training stopped: the validation loss became {record['val_loss']} after epoch {epoch + 1}. "
                "Lower the learning rate and train again.")
        self.sink.on_epoch(record)


CONFUSION_SUBSET = 1000  # validation images scored after each epoch for the confusion matrix over epochs


class ConfusionRecorder(keras.callbacks.Callback):
    """After each epoch, the confusion matrix on a fixed set of validation images, handed to `write`."""

    def __init__(self, x: np.ndarray, y: np.ndarray, num_classes: int,
                 write: Callable[[list[dict[str, Any]]], None]) -> None:
        super().__init__()
        self.x, self.y, self.num_classes, self.write = x, np.asarray(y, dtype=np.int64), num_classes, write
        self.matrices: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        matrix = confusion_counts(self.model.predict_on_batch, self.x, self.y, self.num_classes)
        self.matrices.append({"epoch": epoch + 1, "matrix": matrix.tolist()})
        self.write(self.matrices)


class FilterRecorder(keras.callbacks.Callback):
    """The first convolution's kernels, handed to `write` at most every `every_s` seconds and at the end."""

    def __init__(self, write: Callable[[np.ndarray], None], every_s: float = 1.0) -> None:
        super().__init__()
        self.write, self.every_s = write, every_s
        self._last = 0.0
        self._layer: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        convs = [layer for layer in self.model.layers if isinstance(layer, keras.layers.Conv2D)]
        self._layer = convs[0] if convs else None
        self._save()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if time.perf_counter() - self._last >= self.every_s:
            self._save()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._save()

    def _save(self) -> None:
        if self._layer is not None:
            self.write(np.asarray(self._layer.kernel.numpy()))
        self._last = time.perf_counter()
