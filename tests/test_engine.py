"""The training engine: a run trained from its spec alone, in this process or in worker processes."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import replace

import numpy as np
import pytest

from core.data.dataset import DatasetRef
from core.engine.execute import StopFlag, StopReason, execute
from core.engine.jobs import JobManager, default_idle_retire_s
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import CONFUSION, FILTERS, MODEL, TENSORBOARD, RunStore
from core.training.config import TrainingConfig
from tests.conftest import bars_arrays, training, wait_for

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2, validation_fraction=0.1)
LONG = replace(QUICK, batch_size=1, epochs=200)  # minutes if nobody stops it


@pytest.fixture(scope="module")
def bars_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "bars.npz"
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def spec(bars_file, config: TrainingConfig = QUICK) -> RunSpec:
    return RunSpec(DatasetRef.of("file", str(bars_file)), TINY, config, label="bars")




# --- in this process -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def executed(tmp_path_factory, bars_file):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    run_id = store.create(spec(bars_file))
    return store, run_id, execute(store, run_id)


def test_execute_trains_from_the_spec_alone_and_keeps_everything(executed):
    store, run_id, state = executed
    assert state is RunState.FINISHED
    folder = store.path(run_id)
    assert {"spec.json", "status.json", "epochs.csv", "batches.csv", MODEL, "test.json", "test_probabilities.npy",
            CONFUSION, FILTERS, TENSORBOARD} <= {path.name for path in folder.iterdir()}
    status = store.status(run_id)
    assert (status.state, status.message) == (RunState.FINISHED, "Training finished.")
    assert status.started is not None and status.ended >= status.started and status.progress.fraction == 1.0
    assert [row["epoch"] for row in store.epochs(run_id)] == [1, 2]
    events = list((folder / TENSORBOARD).rglob("events.out.tfevents.*"))
    assert {path.parent.name for path in events} >= {"train", "validation"}  # `tensorboard --logdir runs`


def test_the_saved_model_scores_what_the_store_says(executed, bars):
    from core.evaluation.metrics import evaluate
    from core.model.files import load_model_file

    store, run_id, _ = executed
    model = load_model_file(store.path(run_id) / MODEL)
    result = evaluate(model, bars.x_test, bars.y_test, bars.class_names)
    assert store.test_metrics(run_id)["accuracy"] == pytest.approx(result.accuracy)
    assert store.test_metrics(run_id)["images"] == 80
    np.testing.assert_allclose(store.test_probabilities(run_id), result.probabilities, atol=1e-5)


def test_the_confusion_matrix_is_recorded_after_every_epoch(executed):
    store, run_id, _ = executed
    matrices = json.loads((store.path(run_id) / CONFUSION).read_text())
    assert [entry["epoch"] for entry in matrices] == [1, 2]
    for entry in matrices:
        matrix = np.array(entry["matrix"])
        assert matrix.shape == (4, 4) and matrix.sum() == 24  # the 10 % of 240 bars held out
    kernels = np.load(store.path(run_id) / FILTERS)
    assert kernels.shape == (3, 3, 1, 8)


def test_the_same_spec_gives_the_same_metrics(executed, bars_file):
    store, first, _ = executed
    again = store.create(spec(bars_file))
    assert execute(store, again) is RunState.FINISHED
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    assert [[row[k] for k in keys] for row in store.epochs(first)] == [[row[k] for k in keys] for row in store.epochs(again)]
    assert store.test_metrics(first)["accuracy"] == store.test_metrics(again)["accuracy"]


def test_a_stop_keeps_the_weights_and_still_scores_the_model(tmp_path, bars_file):
    store = RunStore(tmp_path)
    run_id = store.create(spec(bars_file, replace(QUICK, epochs=50)))
    stop = StopFlag()
    state = execute(store, run_id, stop, on_epoch=lambda record: stop.set(StopReason.USER))
    assert state is RunState.STOPPED
    assert store.status(run_id).message.startswith("Stopped by the user in epoch 2/50")
    assert store.has_model(run_id) and store.test_metrics(run_id) is not None
    assert len(store.epochs(run_id)) == 2  # the epoch the stop was asked in, and the one it stopped in


def test_when_the_server_goes_the_run_is_interrupted_with_its_weights(tmp_path, bars_file):
    store = RunStore(tmp_path)
    run_id = store.create(spec(bars_file, replace(QUICK, epochs=50)))
    stop = StopFlag()
    state = execute(store, run_id, stop, on_epoch=lambda record: stop.set(StopReason.SERVER_GONE))
    assert state is RunState.INTERRUPTED and store.has_model(run_id)
    assert store.status(run_id).message.startswith("The server stopped during training, in epoch 2/50")


def test_a_dataset_that_cannot_be_loaded_fails_the_run_with_the_reason(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create(RunSpec(DatasetRef.of("file", str(tmp_path / "gone.npz")), TINY, QUICK))
    assert execute(store, run_id) is RunState.FAILED
    assert store.status(run_id).message == f"{tmp_path / 'gone.npz'}: no such file or folder."
    assert not store.has_model(run_id)


# --- worker processes and the queue ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manager():
    jobs = JobManager(max_concurrent=1, orphan_grace_s=0.5)
    yield jobs
    jobs.shutdown()


def test_the_queue_holds_runs_beyond_the_limit_with_positions_and_cancels(manager, tmp_path, bars_file):
    store = RunStore(tmp_path)
    first = manager.submit(store, spec(bars_file, LONG), owner="a")
    second = manager.submit(store, spec(bars_file), owner="a")
    third = manager.submit(store, spec(bars_file), owner="b")
    wait_for(lambda: training(store, first), what="the first run to train")
    assert manager.running() == [first] and manager.queued() == [second, third]
    assert [manager.position(run_id) for run_id in (first, second, third)] == [None, 1, 2]
    assert store.status(second).state is RunState.QUEUED
    assert manager.cancel(third)
    assert store.status(third).state is RunState.CANCELLED and manager.position(second) == 1
    # no second TensorFlow import beside the training: the first run's worker takes the second run
    assert manager.spare_pids() == []
    assert manager.stop(first)  # a running run stops, keeping its weights
    assert manager.wait_idle(timeout=300)
    assert store.status(first).state is RunState.STOPPED and store.has_model(first)
    assert store.status(second).state is RunState.FINISHED
    assert store.raw_status(second).owner.pid == store.raw_status(first).owner.pid
    assert store.test_metrics(second) is not None
    wait_for(lambda: manager.spare_pids() == [store.raw_status(first).owner.pid],
             what="the worker to wait for the next run")


def test_a_killed_worker_ends_its_run_as_failed_and_the_next_run_goes_on(manager, tmp_path, bars_file):
    store = RunStore(tmp_path)
    doomed = manager.submit(store, spec(bars_file, LONG))
    after = manager.submit(store, spec(bars_file))
    wait_for(lambda: training(store, doomed), what="the run to train")
    os.kill(store.raw_status(doomed).owner.pid, signal.SIGKILL)
    assert manager.wait_idle(timeout=300)
    status = store.status(doomed)
    assert status.state is RunState.FAILED
    assert status.message.startswith("The training process ended unexpectedly (killed by signal SIGKILL) in epoch ")
    assert store.status(after).state is RunState.FINISHED


def test_queued_runs_of_an_ended_session_are_cancelled_unless_claimed_again(manager, tmp_path, bars_file):
    store = RunStore(tmp_path)
    blocker = manager.submit(store, spec(bars_file, LONG), owner="teacher")
    reloaded = manager.submit(store, spec(bars_file), owner="student")
    gone = manager.submit(store, spec(bars_file), owner="student")
    wait_for(lambda: training(store, blocker), what="the blocking run to train")
    manager.release_owner("student")
    manager.claim(reloaded, "student-after-reload")
    wait_for(lambda: store.status(gone).state is RunState.CANCELLED, timeout=30, what="the orphan to be cancelled")
    assert store.status(gone).message == "Cancelled: its browser session ended before it started."
    assert manager.queued() == [reloaded]
    manager.stop(blocker)
    assert manager.wait_idle(timeout=300)
    assert store.status(reloaded).state is RunState.FINISHED


def test_a_server_that_shuts_down_leaves_its_running_run_interrupted_with_weights(tmp_path, bars_file):
    store = RunStore(tmp_path)
    jobs = JobManager(max_concurrent=1, keep_spare=False)
    running = jobs.submit(store, spec(bars_file, LONG))
    queued = jobs.submit(store, spec(bars_file))
    wait_for(lambda: training(store, running), what="the run to train")
    jobs.shutdown()
    status = store.status(running)
    assert status.state is RunState.INTERRUPTED and store.has_model(running)
    assert status.message.startswith("The server stopped during training, in epoch 1/200")
    assert store.status(queued).state is RunState.CANCELLED


def test_a_worker_trains_the_next_run_too_and_gives_the_same_metrics_as_a_fresh_one(tmp_path, bars_file):
    store = RunStore(tmp_path)
    jobs = JobManager(max_concurrent=1)
    try:
        first, second = jobs.submit(store, spec(bars_file)), jobs.submit(store, spec(bars_file))
        assert jobs.wait_idle(timeout=300)
    finally:
        jobs.shutdown()
    assert store.raw_status(first).owner.pid == store.raw_status(second).owner.pid
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    assert [[row[k] for k in keys] for row in store.epochs(first)] == [[row[k] for k in keys] for row in store.epochs(second)]
    assert store.test_metrics(first)["accuracy"] == store.test_metrics(second)["accuracy"]


def test_a_worker_retires_after_its_runs_and_a_fresh_one_takes_the_next(tmp_path, bars_file, monkeypatch):
    monkeypatch.setenv("CONVLAB_WORKER_RUNS", "1")
    store = RunStore(tmp_path)
    jobs = JobManager(max_concurrent=1)
    try:
        first, second = jobs.submit(store, spec(bars_file)), jobs.submit(store, spec(bars_file))
        assert jobs.wait_idle(timeout=300)
        assert [store.status(run_id).state for run_id in (first, second)] == [RunState.FINISHED] * 2
        retired = store.raw_status(first).owner.pid
        assert store.raw_status(second).owner.pid != retired
        wait_for(lambda: not process_exists(retired), timeout=30, what="the retired worker to exit")
    finally:
        jobs.shutdown()


def test_an_idle_worker_exits_after_a_while_and_the_next_visit_starts_another(tmp_path, bars_file):
    store = RunStore(tmp_path)
    jobs = JobManager(max_concurrent=1, idle_retire_s=3.0)
    try:
        first = jobs.submit(store, spec(bars_file))
        assert jobs.wait_idle(timeout=300)
        used = store.raw_status(first).owner.pid
        wait_for(lambda: jobs.spare_pids() == [used], timeout=30, what="the worker to wait for the next run")
        wait_for(lambda: not process_exists(used), timeout=30, what="the idle worker to exit")
        assert jobs.spare_pids() == []
        jobs.warm_up()  # a visit to Architecture or Training
        wait_for(lambda: len(jobs.spare_pids()) == 1, timeout=120, what="a fresh worker to be ready")
        second = jobs.submit(store, spec(bars_file))
        assert jobs.wait_idle(timeout=300)
        assert store.status(second).state is RunState.FINISHED
        assert store.raw_status(second).owner.pid not in (used, None)
    finally:
        jobs.shutdown()


def test_an_idle_worker_stays_while_a_session_is_open_and_goes_after_the_last_leaves(tmp_path):
    jobs = JobManager(max_concurrent=1, idle_retire_s=1.0)
    try:
        jobs.hold_owner("student")
        jobs.warm_up()
        wait_for(lambda: len(jobs.spare_pids()) == 1, timeout=120, what="the spare to be ready")
        spare = jobs.spare_pids()[0]
        time.sleep(2.5)  # (nothing to await: that it does not go) kept, for the session may press Start
        assert jobs.spare_pids() == [spare]
        jobs.release_owner("student")
        wait_for(lambda: not process_exists(spare), timeout=30, what="the worker to exit once the session left")
        assert jobs.spare_pids() == []
    finally:
        jobs.shutdown()


def test_the_idle_time_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CONVLAB_WORKER_IDLE_S", "0")
    assert default_idle_retire_s() == 0.0  # never
    monkeypatch.setenv("CONVLAB_WORKER_IDLE_S", "45")
    assert default_idle_retire_s() == 45.0
    monkeypatch.setenv("CONVLAB_WORKER_IDLE_S", "soon")
    assert default_idle_retire_s() == 120.0
    monkeypatch.delenv("CONVLAB_WORKER_IDLE_S")
    assert default_idle_retire_s() == 120.0


def process_exists(pid: int) -> bool:
    """(The job manager reaps its workers, so an exited one is gone.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
