"""Stage 3: training settings and a training job that runs in a background thread.

`TrainingJob` owns one `model.fit`. It publishes, under a lock, the job's
state, its progress and the per-batch and per-epoch metrics; readers take an
immutable `JobSnapshot` whenever they like (the dashboard polls it once a
second). Nothing here imports Streamlit, and the worker never calls back
into a UI: listeners get plain dicts.
"""

from __future__ import annotations

import math
import numbers
import threading
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Callable

import numpy as np

from core.architecture import Architecture, build_model
from core.data import Dataset, split_validation
from core.errors import TrainingConfigError

if TYPE_CHECKING:
    import keras

OPTIMIZERS = ("sgd", "adam", "rmsprop")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainingConfig:
    """How to train: the optimizer and its settings, batch size, epochs, validation split, seed."""

    optimizer: str = "sgd"
    learning_rate: float = 0.01
    momentum: float = 0.9
    batch_size: int = 32
    epochs: int = 10
    validation_fraction: float = 0.1
    seed: int = 0
    schedule: str = "constant"

    def validated(self) -> "TrainingConfig":
        """Return self, or raise TrainingConfigError saying which setting is out of range."""
        if self.optimizer not in OPTIMIZERS:
            raise TrainingConfigError(f"optimizer '{self.optimizer}' is not one of {', '.join(OPTIMIZERS)}.")
        if self.schedule not in SCHEDULES:
            raise TrainingConfigError(f"schedule '{self.schedule}' is not one of {', '.join(SCHEDULES)}.")
        for name in ("learning_rate", "momentum", "validation_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise TrainingConfigError(f"{name.replace('_', ' ')} == {value!r}, must be a number.")
        if not 0 < self.learning_rate <= 10:
            raise TrainingConfigError(f"learning rate == {self.learning_rate}, must be in (0, 10].")
        if not 0 <= self.momentum < 1:
            raise TrainingConfigError(f"momentum == {self.momentum}, must be in [0, 1).")
        for name, top in (("batch_size", 8192), ("epochs", 500)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= top:
                raise TrainingConfigError(f"{name.replace('_', ' ')} == {value!r}, must be an integer from 1 to {top}.")
        if not 0 <= self.validation_fraction <= 0.5:
            raise TrainingConfigError(f"validation fraction == {self.validation_fraction}, must be in [0, 0.5].")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise TrainingConfigError(f"seed == {self.seed!r}, must be a non-negative integer.")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        """One sentence a person can check: the whole recipe."""
        name = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}[self.optimizer]
        momentum = "" if self.optimizer == "adam" else f", momentum {self.momentum:g}"
        rate = "decaying to 0 (cosine)" if self.schedule == "cosine" else "constant"
        epochs = "1 epoch" if self.epochs == 1 else f"{self.epochs} epochs"
        return (f"{name} (learning rate {self.learning_rate:g}, {rate}{momentum}), sparse categorical "
                f"cross-entropy, batch {self.batch_size}, {epochs}, {self.validation_fraction:.0%} of the "
                f"training images held out for validation, seed {self.seed}.")


TRAINING_PRESETS: dict[str, TrainingConfig] = {
    # The lab's recipe: SGD lr 0.01 momentum 0.9, sparse categorical cross-entropy, 10 epochs, batch 32.
    "lab": TrainingConfig(optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=32, epochs=10),
    # Pairs with the `fast` architecture: Adam with cosine decay on batches of 64 converges in 6 epochs.
    "fast": TrainingConfig(optimizer="adam", learning_rate=0.003, momentum=0.0, batch_size=64, epochs=6,
                           schedule="cosine"),
}


def make_optimizer(config: TrainingConfig, total_steps: int) -> "keras.optimizers.Optimizer":
    """The config's optimizer; with the cosine schedule its rate decays to 0 over `total_steps`."""
    import keras

    # Keras refuses an int (or a NumPy scalar) learning rate or SGD momentum: pass Python floats.
    rate: float | keras.optimizers.schedules.LearningRateSchedule = float(config.learning_rate)
    momentum = float(config.momentum)
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(float(config.learning_rate), decay_steps=max(1, total_steps))
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=momentum)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate)
    return keras.optimizers.RMSprop(learning_rate=rate, momentum=momentum)


def compile_model(model: "keras.Model", config: TrainingConfig, steps_per_epoch: int) -> None:
    """Compile with the config's optimizer, sparse categorical cross-entropy and accuracy."""
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch * config.epochs),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )


class JobState(str, Enum):
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"

    @property
    def is_active(self) -> bool:
        return self in (JobState.RUNNING, JobState.STOPPING)


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
    def fraction(self) -> float:
        total = self.epochs * self.batches_per_epoch
        done = (self.epoch - 1) * self.batches_per_epoch + self.batch if self.epoch else 0
        return min(1.0, done / total) if total else 0.0


@dataclass(frozen=True)
class JobSnapshot:
    """An immutable copy of a job's state, safe to read from any thread."""

    state: JobState
    message: str
    progress: Progress
    batch_history: tuple[dict, ...]
    epoch_history: tuple[dict, ...]
    version: int

    def final_metrics(self) -> dict:
        return dict(self.epoch_history[-1]) if self.epoch_history else {}


Listener = Callable[[str, dict], None]


@dataclass
class _Shared:
    state: JobState = JobState.RUNNING
    message: str = ""
    progress: Progress = field(default_factory=Progress)
    batch_history: list[dict] = field(default_factory=list)
    epoch_history: list[dict] = field(default_factory=list)
    version: int = 0


class TrainingJob:
    """One training run of `arch` on `dataset` with `config`, in a background thread.

    The model is built and compiled in the constructor (seeded by
    `config.seed`), so a bad setting fails before any thread starts.
    """

    def __init__(
        self,
        arch: Architecture,
        dataset: Dataset,
        config: TrainingConfig,
        listeners: list[Listener] | None = None,
    ) -> None:
        self.arch = arch
        self.config = config.validated()
        self.dataset_name = dataset.name
        x_fit, y_fit, x_val, y_val = split_validation(
            dataset.x_train, dataset.y_train, config.validation_fraction, config.seed
        )
        self.model = build_model(arch, dataset.input_shape, dataset.num_classes, seed=config.seed)
        compile_model(self.model, config, math.ceil(len(x_fit) / config.batch_size))
        self._data: tuple[np.ndarray, ...] | None = (x_fit, y_fit, x_val, y_val)
        self.train_size, self.validation_size = len(x_fit), len(x_val)
        self._listeners = list(listeners or [])
        self._lock = threading.Lock()
        self._shared = _Shared(progress=Progress(
            epochs=config.epochs, batches_per_epoch=math.ceil(len(x_fit) / config.batch_size)
        ))
        self._stop_requested = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"convlab-train-{id(self):x}", daemon=True)

    # --- control -----------------------------------------------------------------
    def start(self) -> "TrainingJob":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask training to end after the current batch; the weights learned so far are kept."""
        self._stop_requested.set()
        with self._lock:
            if self._shared.state is JobState.RUNNING:
                self._update(state=JobState.STOPPING, message="Stopping after the current batch…")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; True if it ended within `timeout`."""
        return self._done.wait(timeout)

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested.is_set()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            shared = self._shared
            return JobSnapshot(
                state=shared.state,
                message=shared.message,
                progress=shared.progress,
                batch_history=tuple(shared.batch_history),
                epoch_history=tuple(shared.epoch_history),
                version=shared.version,
            )

    @property
    def state(self) -> JobState:
        with self._lock:
            return self._shared.state

    def history(self) -> dict[str, list[float]]:
        """Per-epoch metrics as Keras' History.history: {'loss': [...], 'val_accuracy': [...], ...}."""
        epochs = self.snapshot().epoch_history
        keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if epochs and k in epochs[0]]
        return {key: [float(row[key]) for row in epochs] for key in keys}

    # --- called from the worker thread ----------------------------------------------
    def _update(self, **changes: object) -> None:
        """Apply changes to the shared state; the caller holds the lock."""
        for name, value in changes.items():
            setattr(self._shared, name, value)
        self._shared.version += 1

    def _publish(self, kind: str, record: dict, **changes: object) -> None:
        with self._lock:
            if kind == "batch":
                self._shared.batch_history.append(record)
            elif kind == "epoch":
                self._shared.epoch_history.append(record)
            self._update(**changes)
        for listener in self._listeners:
            listener(kind, record)

    def _fail(self, message: str) -> None:
        with self._lock:
            self._update(state=JobState.FAILED, message=message)

    def _run(self) -> None:
        from core.callbacks import MetricsPublisher

        assert self._data is not None
        x_fit, y_fit, x_val, y_val = self._data
        publisher = MetricsPublisher(self, self.config.batch_size, self.config.epochs)
        try:
            self.model.fit(
                x_fit, y_fit,
                batch_size=self.config.batch_size,
                epochs=self.config.epochs,
                validation_data=(x_val, y_val) if len(x_val) else None,
                callbacks=[publisher],
                verbose=0,
            )
        except Exception as exc:  # noqa: BLE001 - any failure of fit ends the job with its message
            self._fail(f"Training failed: {type(exc).__name__}: {exc}")
        else:
            with self._lock:
                if self._shared.state is JobState.FAILED:
                    pass  # a NaN loss already said why
                elif publisher.stopped_on_request:
                    p = self._shared.progress
                    self._update(state=JobState.STOPPED,
                                 message=f"Stopped by the user in epoch {p.epoch}/{p.epochs}, after batch "
                                 f"{p.batch}/{p.batches_per_epoch}; the weights learned so far are kept.")
                else:
                    self._update(state=JobState.FINISHED, message="Training finished.")
        finally:
            self._data = None  # free the arrays; the model and history stay
            final = self.snapshot()
            for listener in self._listeners:
                listener("state", {"state": final.state.value, "message": final.message})
            self._done.set()


def train(
    arch: Architecture, dataset: Dataset, config: TrainingConfig, listeners: list[Listener] | None = None
) -> TrainingJob:
    """Run a training job to its end in the calling thread's time (for scripts and the CLI)."""
    job = TrainingJob(arch, dataset, config, listeners).start()
    job.wait()
    return job


def override(config: TrainingConfig, **changes: object) -> TrainingConfig:
    """`config` with the given non-None settings replaced, validated."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None}).validated()
