"""Stage 3: one training (`train`) in the calling thread, from its start or from a checkpoint.

`train` splits off the validation images, builds the model from its
architecture, compiles it with the config's optimizer and learning-rate
schedule (`core.training.schedule`) and fits it one epoch (or the rest of one)
at a time, on batches in the order `core.training.batches` fixes. After every
chunk of batches it makes the changes asked through `Controls` and halts if
asked; after every epoch it consults the early-stopping watcher and hands a
checkpoint (`core.training.checkpoint`) to its sink. From a checkpoint it
resumes at the very batch it was taken at, and ends with what training on
without a pause would have ended with. It reports to a narrow sink (batches,
epochs, events, checkpoints) and never knows who listens; where it runs (a
worker process, the CLI, a test) is `core.engine`'s business. This module
imports TensorFlow only when `train` is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from core.data.dataset import Dataset
from core.data.splits import validation_indices
from core.errors import RunError, TrainingDiverged
from core.model.architecture import Architecture, layer_table
from core.model.build import build_model
from core.runs.status import RunState
from core.training.checkpoint import Checkpoint, Position
from core.training.config import MONITOR_NAMES, PLATEAU_FACTOR, TrainingConfig
from core.training.controls import (
    EVENT_CONTINUED,
    EVENT_EARLY_STOP,
    EVENT_KEPT,
    EVENT_PAUSED,
    EVENT_PLATEAU,
    EVENT_RESUMED,
    RECIPE,
    USER,
    Change,
    ChangeKind,
    Controls,
    Halt,
)
from core.training.progress import MemorySink, Progress, Sink
from core.training.progress import history as history_of

if TYPE_CHECKING:
    import keras

    from core.evaluation.inference import Predictor


def make_optimizer(config: TrainingConfig, learning_rate: Any) -> "keras.optimizers.Optimizer":
    """The config's optimizer, following `learning_rate` (a schedule from `core.training.schedule`)."""
    import keras

    momentum = float(config.momentum)  # Keras refuses an int (or a NumPy scalar) SGD momentum
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=learning_rate)
    return keras.optimizers.RMSprop(learning_rate=learning_rate, momentum=momentum)


MAX_STEPS_PER_EXECUTION = 32
_CHUNK_TARGET_S = 0.3  # one chunk of batches, so that Stop and Pause answer well within a second
_CPU_FLOPS = 8e9  # a rough rate for estimating a batch's cost on a small CPU; only the order matters
VALIDATION_BATCH = 256


@dataclass
class TrainingResult:
    """How a training ended: the model (with the weights it kept), the outcome and what it recorded.

    `outcome` is FINISHED, STOPPED, FAILED, PAUSED (resume from `checkpoint`) or INTERRUPTED (the server
    went or Ctrl-C: resumable from `checkpoint` too). `kept_epoch` is the epoch whose weights the model
    has (early stopping keeps the best one).
    """

    model: "keras.Model"
    outcome: RunState
    message: str
    epochs: list[dict]
    batches: list[dict]
    progress: Progress
    train_size: int
    validation_size: int
    events: list[dict] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    kept_epoch: int | None = None
    halt: Halt | None = None
    forward: "Predictor | None" = None  # the model's forward pass, traced by the validation (scoring reuses it)

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


def train(
    arch: Architecture,
    dataset: Dataset,
    config: TrainingConfig,
    sink: Sink | None = None,
    controls: Controls | None = None,
    callbacks: Sequence[Any] = (),
    start: Checkpoint | None = None,
    continuing: bool = False,
    best: Checkpoint | None = None,
    distribute: bool = True,
    epoch_checkpoints: bool = True,
) -> TrainingResult:
    """Train `arch` on `dataset` with `config`, in the calling thread, from scratch or from `start`.

    The seed fixes the initial weights, the validation split, dropout and the
    order of the batches: the same call on the same machine gives the same
    metrics, paused and resumed or not. With `start`, the training resumes
    there (the same run), or with `continuing`, a new run goes on from that
    state for `config.epochs` in all, with its own learning-rate schedule over
    the epochs it adds. A NaN loss ends the run as failed; Stop ends it as
    stopped within a chunk of batches (the weights reached are kept); Pause,
    the server's going or Ctrl-C end it with a checkpoint to resume from.
    `best` is the best epoch's checkpoint of a resumed run with early stopping. Without `epoch_checkpoints`
    (to measure what they cost) only pauses and the end make one.
    """
    config = config.validated()
    check_trainable(arch, dataset.input_shape, dataset.num_classes, config)
    training = _Training(arch, dataset, config, MemorySink(then=sink), controls or Controls(), callbacks, start,
                         continuing, best, distribute)
    training.epoch_checkpoints = epoch_checkpoints
    return training.run()


class _Training:
    """One call of `train`: the model, its schedule, where it is, and what happens after each chunk and epoch."""

    def __init__(self, arch: Architecture, dataset: Dataset, config: TrainingConfig, memory: MemorySink,
                 controls: Controls, callbacks: Sequence[Any], start: Checkpoint | None, continuing: bool,
                 best: Checkpoint | None, distribute: bool) -> None:
        import keras

        from core.training.batches import TrainingImages
        from core.training.callbacks import ControlCallback, MetricsCallback, Once, Place, Validation
        from core.training.checkpoint import restore
        from core.training.schedule import live_schedule
        from core.training.stopping import Watcher

        self.config, self.memory, self.controls, self.start = config, memory, controls, start
        self.continuing = start is not None and continuing
        keras.utils.set_random_seed(config.seed)
        fit_idx, val_idx = validation_indices(len(dataset.x_train), config.validation_fraction, config.seed)
        images = getattr(dataset.x_train, "raw", dataset.x_train)  # compact bytes, scaled in the pipeline
        labels = np.asarray(dataset.y_train)
        self.images = TrainingImages(images[fit_idx], labels[fit_idx], config.batch_size, config.seed)
        self.validation_size = len(val_idx)
        self.validation = Validation(np.asarray(dataset.x_train[val_idx]), labels[val_idx], VALIDATION_BATCH)
        for callback in callbacks:  # (a confusion matrix over epochs takes the validation's predictions)
            if hasattr(callback, "share_validation"):
                callback.share_validation(self.validation)
        per_epoch = self.images.batches_per_epoch
        if start is not None and start.batches_per_epoch != per_epoch:
            raise RunError(f"The checkpoint was taken with {start.batches_per_epoch} batches per epoch, this "
                           f"training has {per_epoch}: its data or batch size differ, so it cannot go on from it.")
        at = start.position if start is not None else Position()
        planned = config.epochs if start is None or continuing else start.epochs
        if planned * per_epoch < at.step:
            raise RunError(f"This run has trained {at.step} batches already, more than the {planned} epochs asked.")
        from_step = at.step if continuing else 0  # a continued run's schedule starts where its parent stopped
        with distribution_scope(distribute):
            self.model = build_model(arch, dataset.input_shape, dataset.num_classes, seed=config.seed)
            # a resumed run's schedule is made for the steps it was first made for (changes re-time it)
            steps = int(start.schedule["base_steps"]) if start is not None and not continuing else \
                planned * per_epoch - from_step
            self.schedule = live_schedule(config, steps, per_epoch, start=from_step)
            self.model.compile(optimizer=make_optimizer(config, self.schedule),
                               loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                               steps_per_execution=steps_per_execution(arch, dataset.input_shape,
                                                                       dataset.num_classes, config.batch_size,
                                                                       per_epoch))
            self.model.optimizer.build(self.model.trainable_variables)
            # the metrics' variables now (Keras makes them at the first batch), so that a run resumed mid-epoch
            # can put back its running metrics before that batch
            classes = dataset.num_classes
            self.model.compute_metrics(None, np.zeros(1, np.int64), np.full((1, classes), 1 / classes, np.float32))
            self.model.reset_metrics()
        self.watcher = Watcher.of(config)
        self.best: Checkpoint | None = None  # the best epoch's state, with early stopping
        if start is not None:
            restore(start, self.model)
            if not continuing:
                self.schedule.restore(start.schedule)
                if start.watcher is not None:
                    self.watcher = Watcher.restore(start.watcher)
                self.best = best
            controls.skip_to(at.step)  # (a replay's changes before here were made already, or by the parent)
        self._stop_by = USER
        self.epoch_checkpoints = True
        self._stopped_metrics: list[np.ndarray] = []
        self.place = Place(epoch=at.epoch, first_batch=at.batch, done=at.batch, batches_per_epoch=per_epoch,
                           epochs=planned, batch_size=config.batch_size,
                           elapsed_before_s=start.elapsed_s if start is not None else 0.0)
        self.halt: Halt | None = None
        self.outcome: tuple[RunState, str] | None = None
        self.wrapped = [Once(callback) for callback in callbacks]
        self.fit_callbacks = [self.validation, MetricsCallback(memory, self.place),
                              ControlCallback(self.place, self._after_chunk, self._resume_metrics), *self.wrapped]

    # --- the epochs ---
    def run(self) -> TrainingResult:
        place = self.place
        if self.start is not None:
            self._event(EVENT_CONTINUED if self.continuing else EVENT_RESUMED, None, by="")
        for callback in self.wrapped:
            callback.begin(self.model)
        try:
            while self.outcome is None and place.epoch < place.epochs:
                self._fit_epoch()
        except TrainingDiverged as diverged:
            self.outcome = (RunState.FAILED, str(diverged))
        finally:
            for callback in self.wrapped:
                callback.end()
        if self.outcome is None:
            self.outcome = (RunState.FINISHED, "Training finished.")
        kept, checkpoint = None, None
        if self.outcome[0] in (RunState.PAUSED, RunState.INTERRUPTED):
            checkpoint = self.memory.checkpoints.get("last")
        elif self.outcome[0] is not RunState.FAILED:
            kept = self._keep_best()
            checkpoint = self._checkpoint(with_metrics=False)
            if checkpoint.position.mid_epoch:  # stopped mid-epoch
                checkpoint.metrics = self._stopped_metrics
            self.memory.on_checkpoint("last", checkpoint)  # the final state: a continued run starts from it
        state, message = self.outcome
        return TrainingResult(self.model, state, message, self.memory.epochs, self.memory.batches,
                              self.memory.progress, self.images.count, self.validation_size, self.memory.events,
                              checkpoint, kept, self.halt, self.validation.forward)

    def _fit_epoch(self) -> None:
        from core.training.callbacks import Halted

        place = self.place
        try:
            self.model.fit(self.images.batches(place.epoch, place.first_batch), initial_epoch=place.epoch,
                           epochs=place.epoch + 1, callbacks=self.fit_callbacks,
                           shuffle=False, verbose=0)  # the batches come in their fixed order
        except Halted:
            self._halted()
            return
        if self.halt is Halt.STOP and place.done < place.batches_per_epoch:
            # the partial epoch was evaluated; the weights reached are kept
            self.outcome = (RunState.STOPPED, f"Stopped by the user in epoch {place.epoch + 1}/{place.epochs}, "
                            f"after batch {place.done}/{place.batches_per_epoch}; the weights learned so far "
                            "are kept.")
            return
        place.epoch, place.first_batch, place.done = place.epoch + 1, 0, 0
        self._after_epoch(self.memory.epochs[-1] if self.memory.epochs else {})
        if self.halt is Halt.STOP and self.outcome is None:  # stopped on an epoch's last batch
            self.outcome = (RunState.STOPPED, f"Stopped by the user at the end of epoch {place.epoch}/"
                            f"{place.epochs}; the weights learned so far are kept.")
        elif self.halt is not None and self.halt.keeps_place and self.outcome is None and place.epoch < place.epochs:
            self._halted()  # paused on an epoch's last batch: the epoch has ended, validated
        elif self.outcome is None and place.epoch < place.epochs and self.epoch_checkpoints:
            self.memory.on_checkpoint("last", self._checkpoint(with_metrics=False))  # (the final one: at the end)

    def _halted(self) -> None:
        """Pause, the server gone, Ctrl-C: a checkpoint at the batch reached, to resume from."""
        place = self.place
        where = (f"in epoch {place.epoch + 1}/{place.epochs}, after batch {place.done}/{place.batches_per_epoch}"
                 if place.done else f"at the end of epoch {place.epoch}/{place.epochs}")
        if self.halt is Halt.PAUSE:
            self._event(EVENT_PAUSED, None, by=USER)
            self.outcome = (RunState.PAUSED, f"Paused {where}; Resume goes on from there.")
        else:
            who = ("The server stopped" if self.halt is Halt.SERVER_GONE
                   else "Interrupted from the keyboard (Ctrl-C)")
            self.outcome = (RunState.INTERRUPTED, f"{who} {where}; Resume goes on from there.")
        self.memory.on_checkpoint("last", self._checkpoint(with_metrics=True))

    def _after_epoch(self, record: dict) -> None:
        verdict = self.watcher.after_epoch(self.place.epoch, record)
        config, watched = self.config, MONITOR_NAMES[self.config.monitor]
        if verdict.improved and config.early_stopping:
            self.best = self._checkpoint(with_metrics=False)
            self.memory.on_checkpoint("best", self.best)
        if verdict.reduce:
            before = self.schedule.rate_at(self._optimizer_step())
            self.schedule.set_rate(before * PLATEAU_FACTOR, self._optimizer_step())
            self._event(EVENT_PLATEAU, before * PLATEAU_FACTOR, by=RECIPE, before=before,
                        text=f"the {watched} had not improved for {config.plateau_patience} epochs: learning "
                             f"rate {before:.3g} → {before * PLATEAU_FACTOR:.3g}")
        if verdict.stop and self.place.epoch < self.place.epochs:
            self._event(EVENT_EARLY_STOP, self.watcher.best_epoch, by=RECIPE,
                        text=f"the {watched} had not improved for {config.patience} epochs")
            self.outcome = (RunState.FINISHED, f"Stopped early after epoch {self.place.epoch}: the {watched} had "
                            f"not improved for {config.patience} epochs.")

    def _keep_best(self) -> int | None:
        """The epoch whose weights the model ends with: with early stopping, the best one's are put back."""
        place = self.place
        last = place.epoch if place.epoch and not place.done else None
        if not self.config.early_stopping or self.best is None:
            return last
        from core.training.checkpoint import restore

        best = self.watcher.best_epoch
        if best != last:
            restore(self.best, self.model, optimizer=False)
        watched = MONITOR_NAMES[self.config.monitor]
        self._event(EVENT_KEPT, best, by=RECIPE,
                    text=f"the weights of epoch {best} are kept ({watched} {self.watcher.best:.4g})")
        if self.outcome is None or self.outcome[0] is RunState.FINISHED:
            message = self.outcome[1] if self.outcome else "Training finished."
            self.outcome = (RunState.FINISHED, f"{message} The weights of epoch {best} are kept (best {watched}).")
        return best

    # --- after each chunk of batches ---
    def _after_chunk(self, step: int) -> str:
        """Make the changes due; "leave" to halt mid-epoch, "stop" to end after this chunk, "" to go on."""
        for change, by in self.controls.due(step):
            self._make(change, by)
        halt = self.controls.halted
        if halt is None:
            return ""
        if halt is Halt.STOP and self.halt is None:
            self._event(ChangeKind.STOP.value, None, by=self._stop_by, text="stopped")
            # the partial epoch's running metrics, before validating it resets them: a continued run needs them
            self._stopped_metrics = [np.array(v.numpy()) for v in self.model.metrics_variables]
        self.halt = halt
        if halt.keeps_place and self.place.done < self.place.batches_per_epoch:
            return "leave"
        return "stop"  # (a pause on an epoch's last batch lets the epoch end, validated, then pauses)

    def _make(self, change: Change, by: str) -> None:
        place = self.place
        if change.kind is ChangeKind.LEARNING_RATE:
            before = self.schedule.rate_at(self._optimizer_step())
            self.schedule.set_rate(float(change.value), self._optimizer_step())
            self._event(change.kind.value, change.value, by=by, before=before,
                        text=f"learning rate {before:.3g} → {float(change.value):.3g}")
        elif change.kind is ChangeKind.EPOCHS:
            epochs = max(int(change.value), place.epoch + (1 if place.done else 0), 1)  # the epoch under way ends
            before, place.epochs = place.epochs, epochs
            self.schedule.retime(self._optimizer_step(), epochs * place.batches_per_epoch
                                 - int(self.schedule.state()["start"]))
            self._event(change.kind.value, epochs, by=by, before=before, text=f"epochs {before} → {epochs}")
        elif change.kind is ChangeKind.STOP:
            self._stop_by = by
            self.controls.stop()

    def _resume_metrics(self) -> None:
        from core.training.checkpoint import restore_metrics

        if self.start is not None and self.place.first_batch == self.start.position.batch:
            restore_metrics(self.start, self.model)

    # --- records ---
    def _optimizer_step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _event(self, kind: str, value: Any, by: str, before: Any = None, text: str = "") -> None:
        place = self.place
        self.memory.on_event({"kind": kind, "value": value, "before": before, "by": by, "step": place.step,
                              "epoch": place.epoch + (1 if place.done else 0) or 1, "batch": place.done,
                              "elapsed_s": round(place.elapsed_s(), 3), "text": text})

    def _checkpoint(self, with_metrics: bool) -> Checkpoint:
        from core.training.checkpoint import capture

        place = self.place
        at = Position(place.epoch, place.done if place.done < place.batches_per_epoch else 0, place.step)
        return capture(self.model, at, place.epochs, place.batches_per_epoch, round(place.elapsed_s(), 3),
                       self.schedule.state(), self.watcher.state(), with_metrics=with_metrics and at.batch > 0)


def distribution_scope(distribute: bool) -> Any:
    """Several GPUs: Keras' own data-parallel engine (MirroredStrategy); otherwise nothing to do."""
    import contextlib

    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU") if distribute else []
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy().scope()
    return contextlib.nullcontext()
