"""Stage 3: training settings, and one training (`train`) in the calling thread.

`train` splits off the validation images, builds the model from its
architecture, compiles it with the config's optimizer and fits it. It reports
to a narrow sink (`on_batch`, `on_epoch`: plain dicts and a `Progress`) and
asks `should_stop()` after each chunk of batches; it never knows who listens.
Where it runs (a worker process, the CLI, a test) is `core.engine`'s business.
This module imports TensorFlow only when `train` is called.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence

import numpy as np

from core.architecture import Architecture, build_model, layer_table
from core.data import Dataset, split_validation
from core.checks import check_scalar
from core.errors import TrainingConfigError, TrainingDiverged

if TYPE_CHECKING:
    import keras

OPTIMIZERS = ("sgd", "adam", "rmsprop")
MAX_SEED = 2**31 - 1  # NumPy's and TensorFlow's seeds must fit; the Training page's seed box stops here too
OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}
SCHEDULES = ("constant", "cosine", "warmup-cosine")


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
        check_scalar(self.learning_rate, "learning rate", TrainingConfigError, integer=False, lo=0, hi=10,
                     lo_open=True, what="in (0, 10]", kind_message="a number")
        check_scalar(self.momentum, "momentum", TrainingConfigError, integer=False, lo=0, hi=1, hi_open=True,
                     what="in [0, 1)", kind_message="a number")
        check_scalar(self.batch_size, "batch size", TrainingConfigError, integer=True, lo=1, hi=8192,
                     what="an integer from 1 to 8192")
        check_scalar(self.epochs, "epochs", TrainingConfigError, integer=True, lo=1, hi=500,
                     what="an integer from 1 to 500")
        check_scalar(self.validation_fraction, "validation fraction", TrainingConfigError, integer=False, lo=0,
                     hi=0.5, what="in [0, 0.5]", kind_message="a number")
        check_scalar(self.seed, "seed", TrainingConfigError, integer=True, lo=0, hi=MAX_SEED,
                     what=f"an integer from 0 to {MAX_SEED}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> "TrainingConfig":
        """Inverse of `to_dict`, validated; unknown settings are refused by name."""
        if not isinstance(data, Mapping):
            raise TrainingConfigError(f"training settings must be a mapping, not {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise TrainingConfigError(f"unknown training setting(s): {', '.join(unknown)}.")
        return cls(**data).validated()

    def describe(self) -> str:
        """One sentence a person can check: the whole recipe."""
        name = OPTIMIZER_NAMES[self.optimizer]
        momentum = "" if self.optimizer == "adam" else f", momentum {self.momentum:g}"
        rate = {"constant": "constant", "cosine": "decaying to 0 (cosine)",
                "warmup-cosine": "rising over the first epoch, then decaying to 0 (cosine)"}[self.schedule]
        epochs = "1 epoch" if self.epochs == 1 else f"{self.epochs} epochs"
        return (f"{name} (learning rate {self.learning_rate:g}, {rate}{momentum}), sparse categorical "
                f"cross-entropy, batch {self.batch_size}, {epochs}, {self.validation_fraction:.0%} of the "
                f"training images held out for validation, seed {self.seed}.")


TRAINING_PRESETS: dict[str, TrainingConfig] = {
    # The lab's recipe: SGD lr 0.01 momentum 0.9, sparse categorical cross-entropy, 10 epochs, batch 32.
    "lab": TrainingConfig(optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=32, epochs=10),
    # Pairs with the `fast` architecture: Adam warming up over one epoch to 0.01, then a cosine decay, on
    # batches of 64 for 8 epochs: 98.56 / 98.80 / 98.70 % on mnist-10k for seeds 0 / 1 / 2 (bench/RESULTS.md).
    "fast": TrainingConfig(optimizer="adam", learning_rate=0.01, momentum=0.0, batch_size=64, epochs=8,
                           schedule="warmup-cosine"),
}


TRAINING_PRESET_DESCRIPTIONS = {
    "lab": "SGD 0.01, momentum 0.9, batch 32, 10 epochs (the lab)",
    "fast": "Adam up to 0.01 (one epoch of warm-up, then cosine decay), batch 64, 8 epochs (pairs with the fast "
            "model)",
}


def make_optimizer(config: TrainingConfig, total_steps: int, warmup_steps: int = 0) -> "keras.optimizers.Optimizer":
    """The config's optimizer and its learning-rate schedule over `total_steps`.

    "cosine" decays the rate from `learning_rate` to 0; "warmup-cosine" first rises linearly from 0 to
    `learning_rate` over `warmup_steps` (an epoch), then decays to 0 (Keras' CosineDecay with warm-up).
    """
    import keras

    # Keras refuses an int (or a NumPy scalar) learning rate or SGD momentum: pass Python floats.
    rate: float | keras.optimizers.schedules.LearningRateSchedule = float(config.learning_rate)
    momentum = float(config.momentum)
    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(float(config.learning_rate), decay_steps=max(1, total_steps))
    elif config.schedule == "warmup-cosine":
        warmup = max(1, min(warmup_steps, total_steps - 1))
        rate = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=max(1, total_steps - warmup),
                                                      warmup_target=float(config.learning_rate), warmup_steps=warmup)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=rate, momentum=momentum)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=rate)
    return keras.optimizers.RMSprop(learning_rate=rate, momentum=momentum)


def compile_model(model: "keras.Model", config: TrainingConfig, steps_per_epoch: int,
                  steps_per_execution: int = 1) -> None:
    """Compile with the config's optimizer, sparse categorical cross-entropy and accuracy."""
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch * config.epochs, warmup_steps=steps_per_epoch),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )


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


class Sink(Protocol):
    """Whoever listens to a training: gets each reported batch and each epoch as plain data."""

    def on_batch(self, record: Mapping[str, Any], progress: Progress) -> None: ...

    def on_epoch(self, record: Mapping[str, Any]) -> None: ...


class MemorySink:
    """Keeps every record in lists (for scripts and tests); optionally passes them on."""

    def __init__(self, then: Sink | None = None) -> None:
        self.batches: list[dict] = []
        self.epochs: list[dict] = []
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


FINISHED, STOPPED, FAILED = "finished", "stopped", "failed"
MAX_STEPS_PER_EXECUTION = 32
_CHUNK_TARGET_S = 0.3  # one chunk of batches, so that Stop answers well within a second
_CPU_FLOPS = 8e9  # a rough rate for estimating a batch's cost on a small CPU; only the order matters


@dataclass
class TrainingResult:
    """How a training ended: the model (with the weights it reached), the outcome and what it recorded."""

    model: "keras.Model"
    outcome: str  # finished, stopped or failed
    message: str
    epochs: list[dict]
    batches: list[dict]
    progress: Progress
    train_size: int
    validation_size: int

    def history(self) -> dict[str, list[float]]:
        """Per-epoch metrics as Keras' History.history: {'loss': [...], 'val_accuracy': [...], ...}."""
        keys = [k for k in ("loss", "accuracy", "val_loss", "val_accuracy") if self.epochs and k in self.epochs[0]]
        return {key: [float(row[key]) for row in self.epochs] for key in keys}


def steps_per_execution(arch: Architecture, input_shape: tuple[int, int, int], num_classes: int,
                        batch_size: int, steps_per_epoch: int) -> int:
    """How many batches Keras runs per call from Python: many for small models (much faster on a CPU),
    few for heavy ones, so that a chunk stays around a third of a second and Stop answers quickly."""
    multiply_adds = 0
    for row in layer_table(arch, input_shape, num_classes).rows:
        if row.kind == "Conv2D":
            multiply_adds += row.params * row.output_shape[0] * row.output_shape[1]
        elif row.kind.startswith("Dense"):
            multiply_adds += row.params
    batch_s = 6.0 * multiply_adds * batch_size / _CPU_FLOPS + 1e-3  # forward + backward
    return int(max(1, min(MAX_STEPS_PER_EXECUTION, steps_per_epoch, _CHUNK_TARGET_S // batch_s)))


def check_trainable(arch: Architecture, input_shape: tuple[int, int, int], num_classes: int,
                    config: TrainingConfig) -> int:
    """Refuse (ArchitectureError, TrainingConfigError) a training this machine cannot hold, before anything is
    built: the architecture at this input size, trained at this batch size. Returns its parameter count."""
    from core.limits import check_architecture_size

    config.validated()
    table = layer_table(arch, input_shape, num_classes)
    check_architecture_size(table, input_shape, config.batch_size)
    return table.total_params


def batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> Any:
    """The training batches as tf.data: reshuffled every epoch, in an order fixed by `seed`."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    return data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size).prefetch(2)


def train(
    arch: Architecture,
    dataset: Dataset,
    config: TrainingConfig,
    sink: Sink | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    callbacks: Sequence[Any] = (),
    distribute: bool = True,
) -> TrainingResult:
    """Train a fresh `arch` on `dataset` with `config`, in the calling thread.

    The seed fixes the initial weights, the validation split, dropout and the
    order of the batches: the same call on the same machine gives the same
    metrics. A NaN loss ends the run as failed; `should_stop()` ends it as
    stopped within a chunk of batches; the weights reached are kept either way.
    """
    import keras

    from core.callbacks import MetricsCallback

    config = config.validated()
    check_trainable(arch, dataset.input_shape, dataset.num_classes, config)
    keras.utils.set_random_seed(config.seed)
    x_fit, y_fit, x_val, y_val = split_validation(dataset.x_train, dataset.y_train,
                                                  config.validation_fraction, config.seed)
    steps = math.ceil(len(x_fit) / config.batch_size)
    with distribution_scope(distribute):
        model = build_model(arch, dataset.input_shape, dataset.num_classes, seed=config.seed)
        compile_model(model, config, steps, steps_per_execution(
            arch, dataset.input_shape, dataset.num_classes, config.batch_size, steps))
    memory = MemorySink(then=sink)
    metrics = MetricsCallback(memory, should_stop, config.batch_size, config.epochs, steps)
    try:
        model.fit(batches(x_fit, y_fit, config.batch_size, config.seed), epochs=config.epochs,
                  validation_data=(x_val, y_val) if len(x_val) else None, validation_batch_size=256,
                  callbacks=[metrics, *callbacks], shuffle=False, verbose=0)  # tf.data shuffles, seeded
    except TrainingDiverged as diverged:
        outcome, message = FAILED, str(diverged)
    else:
        if metrics.stopped_on_request:
            p = memory.progress
            outcome, message = STOPPED, (f"Stopped by the user in epoch {p.epoch}/{p.epochs}, after batch "
                                         f"{p.batch}/{p.batches_per_epoch}; the weights learned so far are kept.")
        else:
            outcome, message = FINISHED, "Training finished."
    return TrainingResult(model, outcome, message, memory.epochs, memory.batches, memory.progress,
                          len(x_fit), len(x_val))


def distribution_scope(distribute: bool) -> Any:
    """Several GPUs: Keras' own data-parallel engine (MirroredStrategy); otherwise nothing to do."""
    import contextlib

    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU") if distribute else []
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()


def override(config: TrainingConfig, **changes: object) -> TrainingConfig:
    """`config` with the given non-None settings replaced, validated."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None}).validated()
