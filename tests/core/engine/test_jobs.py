"""The job manager: a queue of runs beyond the training limit, with positions, cancels, sessions and shut-down."""

from __future__ import annotations

from core.engine.jobs import JobManager, default_idle_retire_s
from core.runs.status import RunState
from core.runs.store import RunStore
from tests.conftest import training, wait_for
from tests.core.engine.conftest import LONG, spec


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


def test_the_idle_time_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CONVLAB_WORKER_IDLE_S", "0")
    assert default_idle_retire_s() == 0.0  # never
    monkeypatch.setenv("CONVLAB_WORKER_IDLE_S", "45")
    assert default_idle_retire_s() == 45.0
    monkeypatch.setenv("CONVLAB_WORKER_IDLE_S", "soon")
    assert default_idle_retire_s() == 120.0
    monkeypatch.delenv("CONVLAB_WORKER_IDLE_S")
    assert default_idle_retire_s() == 120.0
