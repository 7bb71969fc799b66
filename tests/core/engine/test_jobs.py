"""The job manager: a queue of runs beyond the training limit, with positions, cancels, sessions and shut-down."""

from __future__ import annotations

import re

import pytest

from core.engine.jobs import JobManager, default_idle_retire_s
from core.errors import RunError, TrainingConfigError
from core.runs.status import RunState
from core.runs.store import RunStore
from tests.conftest import training, wait_for
from tests.core.engine.conftest import LONG, PAUSABLE, same_training, spec


def test_the_queue_holds_runs_beyond_the_limit_with_positions_and_cancels(manager, tmp_path, bars_file):
    store = RunStore(tmp_path)
    first = manager.submit(store, spec(bars_file, LONG), owner="a")
    second = manager.submit(store, spec(bars_file), owner="a")
    third = manager.submit(store, spec(bars_file), owner="b")
    wait_for(lambda: training(store, first), what="the first run to train")
    # b has had no turn yet and a has (its first run trains): b's run goes first (core.engine.queue)
    assert manager.running() == [first] and manager.queued() == [third, second]
    assert [manager.position(run_id) for run_id in (first, second, third)] == [None, 2, 1]
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
    assert status.state is RunState.INTERRUPTED and store.has_model(running) and store.has_checkpoint(running, "last")
    assert re.match(r"The server stopped in epoch 1/200, after batch \d+/216; Resume goes on from there\.$",
                    status.message)
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


def test_pause_frees_the_slot_for_the_queue_and_resume_ends_as_if_never_paused(manager, tmp_path, bars_file,
                                                                                never_paused):
    store = RunStore(tmp_path)
    paused = manager.submit(store, spec(bars_file, PAUSABLE), owner="teacher")
    waiting = manager.submit(store, spec(bars_file), owner="student")
    wait_for(lambda: training(store, paused), what="the run to train")
    assert manager.position(waiting) == 1 and manager.pause(paused)
    wait_for(lambda: store.status(paused).state is RunState.PAUSED, timeout=30, what="the pause")
    wait_for(lambda: manager.position(waiting) is None, timeout=30, what="the queued run to take the slot")
    assert store.has_checkpoint(paused, "last") and not manager.pause(paused)  # (not training any more)
    manager.resume(store, paused, owner="teacher")
    with pytest.raises(RunError, match="already queued or training"):
        manager.resume(store, paused)
    assert manager.wait_idle(timeout=300)
    assert store.status(waiting).state is RunState.FINISHED and store.status(paused).state is RunState.FINISHED
    assert same_training(store, paused, *never_paused)


def test_a_change_reaches_the_training_and_is_recorded(manager, tmp_path, bars_file):
    store = RunStore(tmp_path)
    run_id = manager.submit(store, spec(bars_file, LONG))
    with pytest.raises(TrainingConfigError, match="learning rate == -1"):
        manager.change(run_id, "learning_rate", -1)
    wait_for(lambda: training(store, run_id), what="the run to train")
    assert manager.change(run_id, "learning_rate", 0.002) and manager.change(run_id, "epochs", 1)
    assert manager.wait_idle(timeout=300)  # not 200 epochs: it ends with the epoch the change reached it in
    events = store.events(run_id)
    assert [(e["kind"], e["value"]) for e in events][:1] == [("learning_rate", 0.002)]
    # (an epoch of this tiny set takes a fraction of a second: the change can land in epoch 2, which then is the
    # last, and the event records the epochs the run really ends with)
    assert [e["kind"] for e in events] == ["learning_rate", "epochs"] and events[-1]["value"] == events[-1]["epoch"]
    assert store.status(run_id).state is RunState.FINISHED and len(store.epochs(run_id)) == events[-1]["value"]


def test_a_run_interrupted_by_a_server_restart_resumes_on_the_next_server(tmp_path, bars_file, never_paused):
    store = RunStore(tmp_path)
    first = JobManager(max_concurrent=1, keep_spare=False)
    run_id = first.submit(store, spec(bars_file, PAUSABLE))
    wait_for(lambda: training(store, run_id), what="the run to train")
    first.shutdown()
    assert store.status(run_id).state is RunState.INTERRUPTED and store.has_checkpoint(run_id, "last")
    second = JobManager(max_concurrent=1, keep_spare=False)
    try:
        second.resume(store, run_id)
        assert second.wait_idle(timeout=300)
    finally:
        second.shutdown()
    assert store.status(run_id).state is RunState.FINISHED
    assert same_training(store, run_id, *never_paused)


def test_only_a_paused_or_interrupted_run_can_be_resumed(manager, tmp_path, bars_file):
    store = RunStore(tmp_path)
    run_id = manager.submit(store, spec(bars_file))
    assert manager.wait_idle(timeout=300)
    with pytest.raises(RunError, match="This run is finished: only a paused or interrupted run can be resumed."):
        manager.resume(store, run_id)
    child = manager.continue_run(store, run_id, 1)
    assert manager.wait_idle(timeout=300)
    assert store.status(child).state is RunState.FINISHED and store.spec(child).parent == run_id
    assert [row["epoch"] for row in store.epochs(child)] == [1, 2, 3]


def test_wait_until_wakes_when_a_job_ends_and_gives_up_at_its_bound(manager, tmp_path, bars_file):
    store = RunStore(tmp_path)
    run_id = manager.submit(store, spec(bars_file))
    assert manager.wait_until(lambda: not store.status(run_id).state.is_active, timeout=300)
    assert store.status(run_id).state is RunState.FINISHED and store.test_metrics(run_id) is not None
    assert manager.wait_until(lambda: False, timeout=0.2) is False  # never done: back at its bound
