"""Writing a run's record while it trains: epochs streamed, batches thinned, the status throttled."""

from __future__ import annotations

from core.runs.logs import CsvLog
from core.runs.status import RunState
from core.runs.store import BATCHES
from core.runs.writer import MAX_BATCH_ROWS, RunWriter
from core.training.progress import Progress
from tests.core.runs.conftest import LAB


def test_writer_streams_epochs_thins_batches_and_throttles_status(store):
    run_id = store.create(LAB)
    total_steps = 10 * MAX_BATCH_ROWS
    writer = RunWriter(store, run_id, total_steps=total_steps)
    writer.begin()
    assert store.raw_status(run_id).state is RunState.RUNNING
    for step in range(1, total_steps + 1):
        writer.on_batch({"step": step, "epoch": 1, "batch": step, "loss": 1 / step, "accuracy": 0.5,
                         "elapsed_s": step / 1000}, Progress(epoch=1, epochs=1, batch=step, batches_per_epoch=total_steps))
    writer.on_epoch({"epoch": 1, "step": total_steps, "loss": 0.1, "accuracy": 0.9, "epoch_s": 1.0, "elapsed_s": 1.0,
                     "partial": False})
    batches = CsvLog(store.path(run_id) / BATCHES).read()
    assert batches[0]["step"] == 1 and MAX_BATCH_ROWS <= len(batches) <= MAX_BATCH_ROWS + 1
    assert store.epochs(run_id) == [{"epoch": 1, "step": total_steps, "loss": 0.1, "accuracy": 0.9, "epoch_s": 1.0,
                                     "elapsed_s": 1.0, "partial": False}]
    assert store.raw_status(run_id).progress.batch == total_steps  # an epoch's end always writes the status
    writer.end(RunState.FINISHED, "Training finished.")
    summary = store.summary(run_id)
    assert summary.state is RunState.FINISHED and summary.epochs_done == 1 and summary.best_val_accuracy is None
