"""Executing one run from its spec, in the calling process (a worker, the CLI, a test).

`execute(store, run_id)` loads the dataset again from its reference, trains
(`core.training.loop.train`) with the callbacks that record the live filters,
the confusion matrix over epochs and TensorBoard's events, saves the model
and scores it on the test set, writing everything into the run store as it
goes. A `StopFlag` asked after every chunk of batches ends it early, keeping
the weights; why it stopped decides the state it ends in.
"""

from __future__ import annotations

import math
import threading
from enum import Enum
from typing import Callable

from core.engine.scoring import evaluate_into
from core.engine.upload import score_upload
from core.errors import ConvLabError, RunError
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.runs.writer import RunWriter


class StopReason(str, Enum):
    """Why a training was asked to stop: the run ends stopped (the user) or interrupted (the others)."""

    USER = "user"
    SERVER_GONE = "server-gone"  # the worker's stdin closed: the web server has gone
    KEYBOARD = "keyboard"  # Ctrl-C in the CLI


class StopFlag:
    """Asked after every chunk of batches: stop, and why."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason: StopReason | None = None

    def set(self, reason: StopReason) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()


def execute(store: RunStore, run_id: str, stop: StopFlag | None = None, allow_download: bool = True,
            on_epoch: Callable[[dict], None] | None = None, evaluate_test: bool = True) -> RunState:
    """Train run `run_id` from its spec, in this process; returns the state it ended in.

    The record in the store says everything: metrics as they come, the model
    when training ends (finished, stopped or interrupted), the test metrics.
    A failure of any kind ends the run as failed with a message, never raises
    (but Ctrl-C, which marks the run interrupted and then propagates).
    """
    stop = stop or StopFlag()
    writer = RunWriter(store, run_id)
    writer.begin("Loading the data…")
    try:
        spec = store.spec(run_id)
        from core.data.registry import load_ref

        if spec.origin == "upload":
            dataset = load_ref(spec.dataset, store.stored_dataset_path, allow_download=allow_download)
            return score_upload(store, run_id, writer, dataset)
        if spec.architecture is None or spec.training is None:
            raise RunError(f"run {run_id} has no architecture and training settings to train.")
        dataset = load_ref(spec.dataset, store.stored_dataset_path, allow_download=allow_download)
        writer.update(message="Building the model…")
        result = _train(spec, dataset, writer, stop, on_epoch)
    except KeyboardInterrupt:
        writer.end(RunState.INTERRUPTED, "Interrupted from the keyboard (Ctrl-C); nothing was saved.")
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
    if stop.reason in (StopReason.SERVER_GONE, StopReason.KEYBOARD):
        p = result.progress
        who = "The server stopped" if stop.reason is StopReason.SERVER_GONE else "Interrupted from the keyboard (Ctrl-C)"
        writer.end(RunState.INTERRUPTED, f"{who} during training, in epoch {p.epoch}/{p.epochs}; "
                                         "the weights learned so far are kept.")
        return RunState.INTERRUPTED
    if evaluate_test:
        writer.update(message=f"Scoring the {len(dataset.x_test):,} test images…")
        evaluate_into(store, run_id, result.model, dataset)
    state = result.outcome
    writer.end(state, result.message)
    return state


def _train(spec: RunSpec, dataset, writer: RunWriter, stop: StopFlag, on_epoch: Callable[[dict], None] | None):
    import keras

    from core.data.splits import fixed_subset, split_validation
    from core.training.callbacks import CONFUSION_SUBSET, ConfusionRecorder, FilterRecorder
    from core.training.loop import train

    config = spec.training
    _, _, x_val, y_val = split_validation(dataset.x_train, dataset.y_train, config.validation_fraction, config.seed)
    steps = math.ceil((len(dataset.x_train) - len(x_val)) / config.batch_size)
    writer.set_total_steps(steps * config.epochs)
    callbacks: list = [FilterRecorder(writer.write_filters),
                       keras.callbacks.TensorBoard(log_dir=str(writer.store.tensorboard_dir(writer.run_id)),
                                                   write_graph=True,
                                                   update_freq="epoch", profile_batch=0)]
    if len(x_val):
        subset = fixed_subset(len(x_val), CONFUSION_SUBSET, config.seed)
        callbacks.append(ConfusionRecorder(x_val[subset], y_val[subset], dataset.num_classes, writer.write_confusion))
    sink = _EpochEcho(writer, on_epoch) if on_epoch else writer

    def should_stop() -> bool:
        if stop() and writer.status.state is RunState.RUNNING:
            writer.update(state=RunState.STOPPING, message="Stopping after the current batches…")
        return stop()

    writer.update(message="Training…")
    return train(spec.architecture, dataset, config, sink=sink, should_stop=should_stop, callbacks=callbacks)


class _EpochEcho:
    """The writer, plus a function told of each epoch (the CLI prints them)."""

    def __init__(self, writer: RunWriter, on_epoch: Callable[[dict], None]) -> None:
        self.writer, self.echo = writer, on_epoch

    def on_batch(self, record, progress) -> None:
        self.writer.on_batch(record, progress)

    def on_epoch(self, record) -> None:
        self.writer.on_epoch(record)
        self.echo(dict(record))


def save_model(store: RunStore, run_id: str, model) -> None:
    """Write the run's model.keras atomically."""
    store.save_model(run_id, model.save)
