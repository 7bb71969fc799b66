"""Stage 3: one training (`train`) in the calling thread.

`train` splits off the validation images, builds the model from its
architecture, compiles it with the config's optimizer and fits it. It reports
to a narrow sink (`on_batch`, `on_epoch`: plain dicts and a `Progress`) and
asks `should_stop()` after each chunk of batches; it never knows who listens.
Where it runs (a worker process, the CLI, a test) is `core.engine`'s business.
This module imports TensorFlow only when `train` is called.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from core.data.dataset import Dataset
from core.data.splits import split_validation
from core.errors import TrainingDiverged
from core.model.architecture import Architecture, layer_table
from core.model.build import build_model
from core.runs.status import RunState
from core.training.config import TrainingConfig
from core.training.progress import MemorySink, Progress, Sink
from core.training.progress import history as history_of

if TYPE_CHECKING:
    import keras

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
MAX_STEPS_PER_EXECUTION = 32
_CHUNK_TARGET_S = 0.3  # one chunk of batches, so that Stop answers well within a second
_CPU_FLOPS = 8e9  # a rough rate for estimating a batch's cost on a small CPU; only the order matters


@dataclass
class TrainingResult:
    """How a training ended: the model (with the weights it reached), the outcome and what it recorded."""

    model: "keras.Model"
    outcome: RunState  # FINISHED, STOPPED or FAILED
    message: str
    epochs: list[dict]
    batches: list[dict]
    progress: Progress
    train_size: int
    validation_size: int

    def history(self) -> dict[str, list[float]]:
        """Per-epoch metrics as Keras' History.history: {'loss': [...], 'val_accuracy': [...], ...}."""
        return history_of(self.epochs)


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
    from core.limits import check_model_size

    config.validated()
    table = layer_table(arch, input_shape, num_classes)
    check_model_size(table.size(input_shape), config.batch_size)
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

    from core.training.callbacks import MetricsCallback

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
        outcome, message = RunState.FAILED, str(diverged)
    else:
        if metrics.stopped_on_request:
            p = memory.progress
            outcome, message = RunState.STOPPED, (f"Stopped by the user in epoch {p.epoch}/{p.epochs}, after batch "
                                         f"{p.batch}/{p.batches_per_epoch}; the weights learned so far are kept.")
        else:
            outcome, message = RunState.FINISHED, "Training finished."
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
