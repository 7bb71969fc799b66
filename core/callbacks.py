"""The Keras callback that feeds a TrainingJob. Imports Keras: load it lazily."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import keras

from core.training import JobState, Progress

if TYPE_CHECKING:
    from core.training import TrainingJob

METRIC_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


class MetricsPublisher(keras.callbacks.Callback):
    """Hands per-batch and per-epoch metrics to its job, stops on request or on a NaN loss."""

    def __init__(self, job: "TrainingJob", batch_size: int, epochs: int) -> None:
        super().__init__()
        self.job = job
        self.batch_size = batch_size
        self.epochs = epochs
        self.batches_per_epoch = math.ceil(job.train_size / batch_size)
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
        self.step += 1
        now = time.perf_counter()
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            self.model.stop_training = True
            self.job._fail(
                f"Training stopped: the loss became {loss} at epoch {self.epoch}, batch {batch + 1}. "
                "The learning rate is probably too high for this model; lower it and train again."
            )
            return
        if self.job.stop_requested:
            self.model.stop_training = True
            self.stopped_on_request = True
        done_in_epoch = batch + 1
        rate = done_in_epoch * self.batch_size / max(now - self.epoch_start, 1e-9)
        batches_left = (self.epochs - self.epoch) * self.batches_per_epoch + self.batches_per_epoch - done_in_epoch
        progress = Progress(
            epoch=self.epoch, epochs=self.epochs, batch=done_in_epoch,
            batches_per_epoch=self.batches_per_epoch, images_per_second=rate,
            elapsed_s=now - self.train_start, eta_s=batches_left * self.batch_size / rate,
        )
        record = {
            "step": self.step, "epoch": self.epoch, "batch": done_in_epoch,
            "loss": loss, "accuracy": float(logs.get("accuracy", math.nan)),
        }
        self.job._publish("batch", record, progress=progress)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.job.state is JobState.FAILED:
            return
        now = time.perf_counter()
        # a stop mid-epoch still reaches here: mark the epoch partial so nobody mistakes it for a full one
        record = {"epoch": epoch + 1, "step": self.step, "elapsed_s": now - self.train_start,
                  "epoch_s": now - self.epoch_start,
                  "partial": self.step < (epoch + 1) * self.batches_per_epoch}
        record.update({key: float(logs[key]) for key in METRIC_KEYS if key in logs})
        if not math.isfinite(record.get("val_loss", 0.0)):
            self.model.stop_training = True
            self.job._fail(
                f"Training stopped: the validation loss became {record['val_loss']} after epoch {epoch + 1}. "
                "Lower the learning rate and train again."
            )
            return
        self.job._publish("epoch", record)
