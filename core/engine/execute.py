"""Executing one run from its spec, in the calling process (a worker, the CLI, a test).

`execute(store, run_id)` loads the dataset again from its reference, trains
(`core.training.loop.train`) with the callbacks that record the live filters,
the confusion matrix over epochs and TensorBoard's events, saves the model
and scores it on the test set, writing everything into the run store as it
goes. A run with a last checkpoint resumes from it (after a pause, a killed
worker or a stopped server), dropping whatever it recorded after it; a
continued run starts from its parent's final state. `Controls`, read after
every chunk of batches, stop, pause or change it; why it ended decides the
state it ends in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.engine.scoring import evaluate_into
from core.engine.upload import score_upload
from core.errors import ConvLabError, RunError
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.runs.writer import RunWriter
from core.training.checkpoint import Checkpoint
from core.training.controls import Controls, Halt


@dataclass(frozen=True)
class StartingPoint:
    """Where a run's training starts: from nothing, its own last checkpoint (resume), or its parent's (continue)."""

    checkpoint: Checkpoint | None = None
    continuing: bool = False
    best: Checkpoint | None = None  # a resumed run's best epoch so far (early stopping)

    def describe(self) -> str:
        """"Resuming from epoch 2, after batch 32/54" ("" from nothing)."""
        if self.checkpoint is None:
            return ""
        where = self.checkpoint.position.describe(self.checkpoint.batches_per_epoch)
        return f"{'Continuing' if self.continuing else 'Resuming'} from {where}"


class RecentData:
    """The dataset a process loaded last, by its reference: a worker's next run on the same data (the usual case:
    a user training again, a class on one dataset) starts without loading it again (0.1-0.3 s for the shipped
    MNIST, seconds for larger sets). Only references whose content cannot change are kept: a built-in dataset
    and an upload in the run store (named by its SHA-256); a file or folder on disk is read each time."""

    KEPT_KINDS = ("builtin", "stored")

    def __init__(self) -> None:
        self._ref, self._dataset = None, None

    def load(self, ref, stored: Callable, allow_download: bool):
        from core.data.registry import load_ref

        if self._dataset is not None and ref == self._ref:
            return self._dataset
        self._ref, self._dataset = None, None  # (the old one is let go before the new one is loaded)
        dataset = load_ref(ref, stored, allow_download=allow_download)
        if ref.kind in self.KEPT_KINDS:
            self._ref, self._dataset = ref, dataset
        return dataset


def starting_point(store: RunStore, run_id: str) -> StartingPoint:
    """The run's own last checkpoint, else its parent's final state, else nothing (RunError if unreadable)."""
    last = store.checkpoint_bytes(run_id, "last")
    if last is not None:
        best = store.checkpoint_bytes(run_id, "best")
        return StartingPoint(Checkpoint.from_bytes(last), best=None if best is None else Checkpoint.from_bytes(best))
    start = store.checkpoint_bytes(run_id, "start")
    if start is not None:
        return StartingPoint(Checkpoint.from_bytes(start), continuing=True)
    return StartingPoint()


def execute(store: RunStore, run_id: str, controls: Controls | None = None, allow_download: bool = True,
            on_epoch: Callable[[dict], None] | None = None, evaluate_test: bool = True,
            data: RecentData | None = None) -> RunState:
    """Train run `run_id` from its spec (or from where it was left), in this process; returns its end state.

    The record in the store says everything: metrics as they come, checkpoints,
    the model when training ends (finished, stopped, paused or interrupted),
    the test metrics. A failure of any kind ends the run as failed with a
    message, never raises (but a KeyboardInterrupt, which marks the run
    interrupted and then propagates). `data` keeps the dataset for the next run of this process (a worker).
    """
    controls = controls or Controls()
    data = data or RecentData()
    writer = RunWriter(store, run_id)
    writer.begin("Loading the data…")
    try:
        spec = store.spec(run_id)
        if spec.origin == "upload":
            dataset = data.load(spec.dataset, store.stored_dataset_path, allow_download)
            return score_upload(store, run_id, writer, dataset)
        if spec.architecture is None or spec.training is None:
            raise RunError(f"run {run_id} has no architecture and training settings to train.")
        start = starting_point(store, run_id)
        dataset = data.load(spec.dataset, store.stored_dataset_path, allow_download)
        at = start.checkpoint.position if start.checkpoint is not None else None
        if not start.continuing:  # a resumed run drops what it recorded after its checkpoint (or all of it)
            store.rewind(run_id, at.epoch if at else 0, at.step if at else 0)
        writer.resume_at(at.step if at else 0)
        writer.update(message=f"{start.describe() or 'Building the model'}…")
        controls.follow(spec.changes)
        result = _train(spec, dataset, writer, controls, start, on_epoch)
    except KeyboardInterrupt:
        writer.end(RunState.INTERRUPTED, "Interrupted from the keyboard (Ctrl-C).")
        raise
    except ConvLabError as error:
        writer.end(RunState.FAILED, str(error))
        return RunState.FAILED
    except MemoryError:
        writer.end(RunState.FAILED, "Training ran out of memory: use a smaller model, batch or dataset.")
        return RunState.FAILED
    except Exception as error:  # noqa: BLE001 - anything from Keras ends the run with its message
        writer.end(RunState.FAILED, f"Training failed: {type(error).__name__}: {error}")
        return RunState.FAILED

    if result.outcome is RunState.FAILED:
        writer.end(RunState.FAILED, result.message)
        return RunState.FAILED
    writer.update(message="Saving the model…")
    save_model(store, run_id, result.model)
    if result.outcome in (RunState.PAUSED, RunState.INTERRUPTED) or not evaluate_test:
        writer.end(result.outcome, result.message)
        return result.outcome
    writer.update(message=f"Scoring the {len(dataset.x_test):,} test images…")
    evaluate_into(store, run_id, result.model, dataset, forward=result.forward)
    writer.end(result.outcome, result.message)
    return result.outcome


def _train(spec: RunSpec, dataset, writer: RunWriter, controls: Controls, start: StartingPoint,
           on_epoch: Callable[[dict], None] | None):
    import keras

    from core.data.splits import fixed_subset, validation_indices
    from core.training.callbacks import CONFUSION_SUBSET, ConfusionRecorder, FilterRecorder
    from core.training.loop import train

    config = spec.training
    # (the indices only: splitting the arrays copied nine tenths of the training images to find the tenth held out)
    _, val_idx = validation_indices(len(dataset.x_train), config.validation_fraction, config.seed)
    steps = math.ceil((len(dataset.x_train) - len(val_idx)) / config.batch_size)
    writer.set_total_steps(steps * config.epochs)
    callbacks: list = [FilterRecorder(writer.write_filters),
                       keras.callbacks.TensorBoard(log_dir=str(writer.store.tensorboard_dir(writer.run_id)),
                                                   write_graph=True,
                                                   update_freq="epoch", profile_batch=0)]
    if len(val_idx):
        subset = fixed_subset(len(val_idx), CONFUSION_SUBSET, config.seed)
        earlier = writer.store.confusion(writer.run_id) if start.checkpoint is not None else None
        images = val_idx[subset]
        callbacks.append(ConfusionRecorder(np.asarray(dataset.x_train[images]), np.asarray(dataset.y_train)[images],
                                           dataset.num_classes, writer.write_confusion, earlier=earlier, rows=subset))
    sink = _EpochEcho(writer, on_epoch) if on_epoch else writer

    def on_halt(halt: Halt) -> None:  # (from the thread that asked)
        if writer.status.state is RunState.RUNNING:
            doing = "Pausing" if halt is Halt.PAUSE else "Stopping"
            writer.update(state=RunState.STOPPING, message=f"{doing} after the current batches…")

    controls.on_halt(on_halt)
    writer.update(message=f"{start.describe()}: training…" if start.checkpoint is not None else "Training…")
    return train(spec.architecture, dataset, config, sink=sink, controls=controls, callbacks=callbacks,
                 start=start.checkpoint, continuing=start.continuing, best=start.best)


class _EpochEcho:
    """The writer, plus a function told of each epoch (the CLI prints them)."""

    def __init__(self, writer: RunWriter, on_epoch: Callable[[dict], None]) -> None:
        self.writer, self.echo = writer, on_epoch

    def on_batch(self, record, progress) -> None:
        self.writer.on_batch(record, progress)

    def on_epoch(self, record) -> None:
        self.writer.on_epoch(record)
        self.echo(dict(record))

    def on_event(self, record) -> None:
        self.writer.on_event(record)

    def on_checkpoint(self, name, checkpoint) -> None:
        self.writer.on_checkpoint(name, checkpoint)


def save_model(store: RunStore, run_id: str, model) -> None:
    """Write the run's model.keras atomically."""
    store.save_model(run_id, model.save)
