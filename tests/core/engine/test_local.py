"""The local pool of worker processes: a killed worker, a worker reused for the next run, retired, or let go when idle."""

from __future__ import annotations

import os
import signal
import time

from core.engine.jobs import JobManager
from core.runs.status import RunState
from core.runs.store import RunStore
from tests.conftest import training, wait_for
from tests.core.engine.conftest import LONG, PAUSABLE, same_training, spec


def test_a_killed_worker_ends_its_run_interrupted_and_the_next_run_goes_on(manager, tmp_path, bars_file):
    store = RunStore(tmp_path)
    doomed = manager.submit(store, spec(bars_file, LONG))
    after = manager.submit(store, spec(bars_file))
    wait_for(lambda: training(store, doomed), what="the run to train")
    os.kill(store.raw_status(doomed).owner.pid, signal.SIGKILL)
    assert manager.wait_idle(timeout=300)
    status = store.status(doomed)
    assert status.state is RunState.INTERRUPTED  # resumable from its last checkpoint
    assert status.message.startswith("The training process ended unexpectedly (killed by signal SIGKILL) in epoch ")
    assert status.message.endswith("Resume goes on from its last checkpoint.")
    assert store.status(after).state is RunState.FINISHED


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


def process_exists(pid: int) -> bool:
    """(The job manager reaps its workers, so an exited one is gone.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_run_whose_worker_was_killed_resumes_from_its_last_checkpoint(manager, tmp_path, bars_file, never_paused):
    store = RunStore(tmp_path)
    run_id = manager.submit(store, spec(bars_file, PAUSABLE))
    wait_for(lambda: store.has_checkpoint(run_id, "last"), what="the first epoch's checkpoint")
    os.kill(store.raw_status(run_id).owner.pid, signal.SIGKILL)
    wait_for(lambda: not manager.is_running(run_id), timeout=60, what="the manager to see the worker go")
    assert store.status(run_id).state is RunState.INTERRUPTED
    manager.resume(store, run_id)
    assert manager.wait_idle(timeout=300)
    assert store.status(run_id).state is RunState.FINISHED
    assert [row["epoch"] for row in store.epochs(run_id)] == [1, 2, 3]  # nothing twice, nothing missing
    assert same_training(store, run_id, *never_paused)
