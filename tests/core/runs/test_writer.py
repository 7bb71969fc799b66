"""Writing a run's record while it trains: epochs streamed, batches thinned, the status throttled."""

from __future__ import annotations

from types import SimpleNamespace

from core.runs import writer as writer_module
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


def test_progress_is_written_at_most_twice_a_second_but_a_new_state_at_once(store, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(writer_module, "time", SimpleNamespace(time=lambda: now[0]))
    run_id = store.create(LAB)
    writer = RunWriter(store, run_id, total_steps=30 * MAX_BATCH_ROWS)  # every 30th batch is kept
    writer.begin()
    assert store.raw_status(run_id).state is RunState.RUNNING and store.raw_status(run_id).started == 1000.0
    for step, at in ((1, 1000.1), (2, 1000.3), (31, 1000.55)):
        now[0] = at
        writer.on_batch({"step": step, "epoch": 1, "batch": step, "loss": 0.5}, Progress(epoch=1, epochs=1, batch=step))
        written = {1000.1: 0, 1000.3: 0, 1000.55: 31}[at]  # not before half a second since the last write
        assert store.raw_status(run_id).progress.batch == written
    assert [row["step"] for row in CsvLog(store.path(run_id) / BATCHES).read()] == [1, 31]  # the first, then thinned
    now[0] = 1000.6
    writer.update(state=RunState.STOPPING, message="Stopping…")  # a state change is written at once
    assert (store.raw_status(run_id).state, store.raw_status(run_id).heartbeat) == (RunState.STOPPING, 1000.6)
    now[0] = 1000.7
    writer.end(RunState.STOPPED, "Stopped by the user.")
    status = store.raw_status(run_id)
    assert (status.state, status.message, status.ended) == (RunState.STOPPED, "Stopped by the user.", 1000.7)
