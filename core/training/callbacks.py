"""Keras callbacks of a training. Imports Keras: load it lazily.

Each callback owns one concern and knows nothing of who listens:
`MetricsCallback` hands per-batch and per-epoch metrics to a `Sink` and ends
a diverging run by raising `TrainingDiverged` (as Keras'
`TerminateOnNaN(raise_error=True)`); `ControlCallback` makes the changes and
halts asked through `Controls` after each chunk of batches; `ConfusionRecorder`
and `FilterRecorder` hand the validation confusion matrix per epoch and the
first layer's filters to functions they are given. A training is fit one
epoch (or the rest of one) at a time (`core.training.loop`): `Place` says where
it is, and `Once` lets a callback see one training begin and end, not each fit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import keras
import numpy as np

from core.errors import TrainingDiverged
from core.evaluation.inference import Predictor
from core.evaluation.metrics import Evaluation, confusion_counts, pair_counts, predict_probabilities
from core.training.eta import Pace
from core.training.progress import METRIC_KEYS, Progress, Sink


@dataclass
class Place:
    """Where a training is, shared by its loop and its callbacks (epoch 0-based; batches 1-based counts)."""

    epoch: int  # the epoch being trained, 0-based
    first_batch: int  # batches of this epoch done before the current fit began
    batches_per_epoch: int
    epochs: int  # planned (a change may move it)
    batch_size: int
    elapsed_before_s: float = 0.0  # training time before this process took it up (a resumed run)
    done: int = 0  # batches of this epoch done so far
    started: float = field(default_factory=time.perf_counter)

    @property
    def step(self) -> int:
        return self.epoch * self.batches_per_epoch + self.done

    def elapsed_s(self) -> float:
        return self.elapsed_before_s + time.perf_counter() - self.started


class MetricsCallback(keras.callbacks.Callback):
    """Reports metrics to `sink` after each chunk of batches and each epoch; raises TrainingDiverged on a NaN.

    Its speed and time left come from the training's pace over all its epochs so far (`Pace`), not from
    the epoch under way, whose first chunk carries the pause between epochs.
    """

    def __init__(self, sink: Sink, place: Place) -> None:
        super().__init__()
        self.sink, self.place = sink, place
        self.segment_start = time.perf_counter()
        self.pace = Pace()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.segment_start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        logs, place = logs or {}, self.place
        # with several steps per execution `batch` is the chunk's last index, which Keras rounds up past the
        # epoch's last batch when the chunk is cut short (1152 of 1125)
        place.done = min(place.first_batch + batch + 1, place.batches_per_epoch)
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"Training stopped: the loss became {loss} at epoch {place.epoch + 1}, batch {place.done}. "
                "The learning rate is probably too high for this model; lower it and train again.")
        elapsed = place.elapsed_s()
        self.pace.observe(elapsed, place.step)
        rate = self.pace.steps_per_second
        progress = Progress(
            epoch=place.epoch + 1, epochs=place.epochs, batch=place.done, batches_per_epoch=place.batches_per_epoch,
            images_per_second=rate * place.batch_size if rate else 0.0, elapsed_s=elapsed,
            eta_s=self.pace.seconds_left(place.epochs * place.batches_per_epoch - place.step),
        )
        record = {"step": place.step, "epoch": place.epoch + 1, "batch": place.done, "loss": loss,
                  "accuracy": float(logs.get("accuracy", math.nan)), "elapsed_s": round(elapsed, 3)}
        self.sink.on_batch(record, progress)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs, place = logs or {}, self.place
        # a stop mid-epoch still reaches here: mark the epoch partial so nobody mistakes it for a full one
        record: dict[str, Any] = {"epoch": epoch + 1, "step": place.step}
        record.update({key: float(logs[key]) for key in METRIC_KEYS if key in logs})
        record.update({"epoch_s": round(time.perf_counter() - self.segment_start, 3),
                       "elapsed_s": round(place.elapsed_s(), 3), "partial": place.done < place.batches_per_epoch})
        if not math.isfinite(record.get("val_loss", 0.0)):
            raise TrainingDiverged(
                f"Training stopped: the validation loss became {record['val_loss']} after epoch {epoch + 1}. "
                "Lower the learning rate and train again.")
        self.sink.on_epoch(record)


class Validation(keras.callbacks.Callback):
    """After each epoch (a stopped run's partial one too), the validation loss and accuracy, put into the epoch's
    logs for the callbacks after it, as `fit(validation_data=...)` does; first in the list.

    Through one traced forward pass (`Predictor`), the loss as Keras computes it (`Evaluation.loss`): Keras'
    own evaluation traced its function again for every model, about a second here, which a one-epoch run paid
    between its last batch and its end.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, np.asarray(y, dtype=np.int64), batch_size
        self._predict: Predictor | None = None
        self.latest: tuple[int, np.ndarray] | None = None  # (epoch, its probabilities): for the callbacks after it

    @property
    def forward(self) -> Predictor | None:
        """The model's forward pass as the validation traced it (None before it did): scoring the test set after
        the training reuses it instead of tracing it again."""
        return self._predict if self._predict is not None and self._predict.model is self.model else None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or not len(self.y):
            return
        if self._predict is None or self._predict.model is not self.model:
            self._predict = Predictor(self.model)
        probabilities = predict_probabilities(self.model, self.x, self.batch_size, forward=self._predict)
        self.latest = (epoch, probabilities)
        result = Evaluation(probabilities, self.y, tuple(map(str, range(probabilities.shape[1]))))
        logs["val_loss"], logs["val_accuracy"] = result.loss, result.accuracy


class ControlCallback(keras.callbacks.Callback):
    """After each chunk of batches: `act(step)` makes the changes due and says whether to leave the fit now.

    `act` returns "leave" (raise `Halted`: pause, the server gone), "stop" (end the fit after this chunk,
    as Keras' `stop_training`) or "" (go on). Before the first batch of a fit that resumes mid-epoch,
    `resume_metrics()` puts back the half-done epoch's running metrics that fit has just reset.
    """

    def __init__(self, place: Place, act: Callable[[int], str], resume_metrics: Callable[[], None]) -> None:
        super().__init__()
        self.place, self.act, self.resume_metrics = place, act, resume_metrics

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.place.first_batch:
            self.resume_metrics()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        what = self.act(self.place.step)
        if what == "leave":
            raise Halted()
        if what == "stop":
            self.model.stop_training = True


class Halted(Exception):
    """Raised out of a fit to leave it at once, mid-epoch, without evaluating the partial epoch."""


class Once(keras.callbacks.Callback):
    """`inner`, seeing `on_train_begin`/`on_train_end` once per training (`begin`/`end`), not once per fit."""

    def __init__(self, inner: keras.callbacks.Callback) -> None:
        super().__init__()
        self.inner = inner

    def begin(self, model: keras.Model) -> None:
        self.inner.set_model(model)
        self.inner.on_train_begin()

    def end(self) -> None:
        self.inner.on_train_end()

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        if getattr(self.inner, "_model", None) is not model:
            self.inner.set_model(model)

    def set_params(self, params: dict) -> None:
        super().set_params(params)
        self.inner.set_params(params)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.inner.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.inner.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.inner.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.inner.on_train_batch_end(batch, logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.inner.on_test_begin(logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        self.inner.on_test_end(logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.inner.on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.inner.on_test_batch_end(batch, logs)


CONFUSION_SUBSET = 1000  # validation images scored after each epoch for the confusion matrix over epochs


class ConfusionRecorder(keras.callbacks.Callback):
    """After each epoch, the confusion matrix on a fixed set of validation images, handed to `write`.

    `rows` says where those images sit in the training's validation set: when the training shares its
    `Validation` (`share_validation`), the matrix comes from the probabilities it has just computed for the
    epoch, rather than from a second forward pass over the same images (0.08 s of every epoch's end here).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, num_classes: int,
                 write: Callable[[list[dict[str, Any]]], None], earlier: list[dict[str, Any]] | None = None,
                 rows: np.ndarray | None = None) -> None:
        super().__init__()
        self.x, self.y, self.num_classes, self.write = x, np.asarray(y, dtype=np.int64), num_classes, write
        self.matrices: list[dict[str, Any]] = list(earlier or [])  # a resumed run's epochs before
        self.rows = rows
        self._predict: Predictor | None = None
        self._validation: Validation | None = None

    def share_validation(self, validation: Validation) -> None:
        """Take the epoch's predictions from `validation` when it holds these very images at `rows`."""
        rows = self.rows
        if rows is not None and len(rows) and rows.max() < len(validation.y) and np.array_equal(
                validation.y[rows], self.y):
            self._validation = validation

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        latest = self._validation.latest if self._validation is not None else None
        if latest is not None and latest[0] == epoch:
            matrix = pair_counts(self.y, latest[1][self.rows].argmax(axis=1), self.num_classes)
        else:
            if self._predict is None or self._predict.model is not self.model:  # traced once (predict_on_batch:
                self._predict = Predictor(self.model)  # again for every model, with the steps per execution)
            matrix = confusion_counts(self._predict, self.x, self.y, self.num_classes)
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
