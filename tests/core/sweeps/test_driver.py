"""Driving sweeps through the real job manager and its worker processes: trials are ordinary runs, a hopeless one is
pruned, the queue takes another browser's run between a sweep's trials, and a sweep survives a server restart."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from optuna.trial import TrialState

from core.engine.jobs import JobManager
from core.errors import RunError
from core.runs.status import RunState
from core.runs.store import RunStore
from core.sweeps.driver import SweepDriver
from core.sweeps.results import read_sweep
from core.sweeps.space import Setting
from core.sweeps.store import SweepStore
from core.sweeps.study import ask, open_study, tell
from tests.conftest import training, wait_for
from tests.core.sweeps.conftest import QUICK, SMALL, details, sweep_spec

ALICE, BOB = "00000000000000aa", "00000000000000bb"


@pytest.fixture(scope="module")
def driver():
    manager = JobManager(max_concurrent=1)
    sweeps = SweepDriver(manager)
    yield sweeps
    sweeps.shutdown()
    manager.shutdown()


def test_a_bad_learning_rate_in_the_range_is_pruned_and_shows_as_pruned(driver, store, digits):
    # the grid's order (seed 5): the two good rates first (never pruned: 2 complete before pruning begins), then
    # the two hopeless ones
    spec = sweep_spec(digits, Setting("learning_rate", values=(0.05, 0.03, 1e-6, 1e-7)), strategy="grid", seed=5,
                      prune_after=2, training=replace(QUICK, batch_size=16, epochs=12))
    ended = []
    sweep_id = driver.start(store, spec, details(digits), listener=ended.append)
    assert driver.wait(sweep_id, timeout=600)
    view = read_sweep(SweepStore(store), sweep_id)
    outcome = {trial.values["learning_rate"]: trial.state for trial in view.trials}
    assert outcome == {0.05: "finished", 0.03: "finished", 1e-6: "pruned", 1e-7: "pruned"}
    assert [end.outcome for end in ended] == [t.state for t in view.trials]  # the listener heard each as it ended
    for trial in view.trials[2:]:
        summary = store.summary(trial.run_id)
        assert summary.state is RunState.STOPPED and summary.pruned and summary.state_words == "pruned"
        assert summary.epochs_done < 12 and trial.curve and max(trial.curve.values()) < 0.5
        assert re.match(r"Pruned by its sweep after epoch \d+: its best validation accuracy so far, \d+\.\d%, was worse "
                        r"than the median of the completed trials at that epoch \(\d+\.\d%\)", summary.message)
        assert [e["kind"] for e in store.events(trial.run_id)][-2:] == ["stop", "pruned"]
    assert view.best.values == {"learning_rate": view.best.values["learning_rate"]} and view.best.value > 0.8
    status = SweepStore(store).status(sweep_id)
    assert status.state is RunState.FINISHED and status.message.startswith("Finished: 4 of 4 trials ended (")
    assert len(store.run_ids()) == 4


def test_the_queue_takes_another_browsers_run_between_a_sweeps_trials(driver, store, digits):
    spec = sweep_spec(digits, Setting("learning_rate", values=(0.05, 0.04, 0.03)), strategy="grid", trials=3,
                      prune=False, training=replace(QUICK, batch_size=8, epochs=4))
    sweep_id = driver.start(store, spec, details(digits), made_by=ALICE)
    with pytest.raises(RunError, match=re.escape(f"Each browser runs 1 sweep at a time: stop sweep {sweep_id} first")):
        driver.start(store, spec, details(digits), made_by=ALICE)
    sweeps = SweepStore(store)  # nor does Resume on another of hers get round the limit
    stopped = sweeps.create(spec, details(digits), made_by=ALICE)
    sweeps.write_status(stopped, replace(sweeps.raw_status(stopped), state=RunState.STOPPED, message="Stopped."))
    with pytest.raises(RunError, match=re.escape(f"Each browser runs 1 sweep at a time: stop sweep {sweep_id} first")):
        driver.resume(store, stopped)
    assert not driver.is_driving(stopped) and sweeps.status(stopped).state is RunState.STOPPED
    first = wait_first_trial_training(store, sweep_id)
    ahead = [run_id for run_id in driver.manager.queued()]  # the sweep's next trial, queued ahead
    bobs = driver.manager.submit(store, replace(spec.run_spec(sweep_id, 0, {}, SMALL, QUICK), sweep=None,
                                                label="bob's run"), owner="bob-session", made_by=BOB)
    assert len(ahead) == 1 and driver.manager.queued() == [bobs, ahead[0]]  # bob has had no turn yet: he goes first
    assert driver.wait(sweep_id, timeout=600) and driver.manager.wait_idle(timeout=300)
    started = {run_id: store.status(run_id).started for run_id in store.run_ids()}
    trials = sorted((run_id for run_id in started if run_id != bobs), key=started.get)
    assert trials[0] == first and started[first] < started[bobs] < started[trials[1]] < started[trials[2]]
    assert store.status(bobs).state is RunState.FINISHED


def wait_first_trial_training(store: RunStore, sweep_id: str) -> str:
    def first() -> str | None:
        runs = [run_id for run_id in store.run_ids() if store.exists(run_id) and store.spec(run_id).sweep]
        return next((run_id for run_id in runs if training(store, run_id)), None)

    wait_for(first, what="the sweep's first trial to train")
    return first()


def test_a_sweep_survives_a_server_restart_and_continues(store, digits):
    spec = sweep_spec(digits, Setting("learning_rate", values=(0.05, 0.04, 0.03, 0.02)), strategy="grid", trials=4,
                      prune=False, training=replace(QUICK, batch_size=4, epochs=3))
    manager = JobManager(max_concurrent=1, keep_spare=False)
    driver = SweepDriver(manager)
    sweeps = SweepStore(store)
    sweep_id = driver.start(store, spec, details(digits))
    wait_for(lambda: any(t.state == "finished" for t in read_sweep(sweeps, sweep_id).trials), what="a trial to end")
    caught = wait_first_running(store, sweep_id)
    driver.shutdown()  # the server stops: first its sweeps' driver, then its trainings
    manager.shutdown()
    view = read_sweep(sweeps, sweep_id)
    assert sweeps.status(sweep_id).state is RunState.INTERRUPTED
    assert store.status(caught).state is RunState.INTERRUPTED and store.has_checkpoint(caught, "last")
    states = [t.state for t in view.trials]
    assert states.count("finished") >= 1 and "interrupted" in states
    # the trial queued behind it was cancelled by the shut-down before it started: it gets a new run
    assert any(store.status(r).state is RunState.CANCELLED for r in store.run_ids())

    restarted = JobManager(max_concurrent=1, keep_spare=False)
    again = SweepDriver(restarted)
    try:
        assert again.adopt(store) == [sweep_id] and again.adopt(store) == []  # (once per store)
        assert again.wait(sweep_id, timeout=600)
    finally:
        again.shutdown()
        restarted.shutdown()
    view = read_sweep(sweeps, sweep_id)
    assert sweeps.status(sweep_id).state is RunState.FINISHED
    assert sorted(t.values["learning_rate"] for t in view.trials) == [0.02, 0.03, 0.04, 0.05]
    assert [t.state for t in view.trials] == ["finished"] * 4
    assert caught in {t.run_id for t in view.trials}  # the interrupted trial went on in its own run
    assert [e["kind"] for e in store.events(caught)] == ["resumed"]
    assert len(store.run_ids()) == 4 and all(store.status(r).state is RunState.FINISHED for r in store.run_ids())
    assert read_sweep(sweeps, sweep_id).best is not None


def wait_first_running(store: RunStore, sweep_id: str) -> str:
    def running() -> str | None:
        return next((run_id for run_id in store.run_ids() if store.exists(run_id) and store.spec(run_id).sweep
                     and training(store, run_id) and store.epochs(run_id)), None)  # (exists: spec.json written)

    wait_for(running, what="a trial in its second epoch")
    return running()


def test_a_trial_put_back_but_not_yet_asked_again_is_run_and_the_budget_kept(driver, store, digits):
    """A sweep resumed, then stopped before its driver asked anything, holds a waiting trial (the values of one
    cancelled before it trained, put back): the next resume runs it and still the whole budget."""
    spec = sweep_spec(digits, Setting("learning_rate", values=(0.05, 0.03)), strategy="grid", trials=2, prune=False,
                      training=replace(QUICK, epochs=1))
    sweeps = SweepStore(store)
    sweep_id = sweeps.create(spec, details(digits))
    study = open_study(sweeps, sweep_id, spec)
    cancelled = ask(study, spec)
    tell(study, cancelled.number, TrialState.FAIL, outcome="cancelled")
    study.enqueue_trial(dict(cancelled.params), user_attrs={"again_of": cancelled.number})
    sweeps.write_status(sweep_id, replace(sweeps.raw_status(sweep_id), state=RunState.STOPPED, message="Stopped."))
    driver.resume(store, sweep_id)
    assert driver.wait(sweep_id, timeout=600)
    view = read_sweep(sweeps, sweep_id)
    assert [t.state for t in view.trials] == ["cancelled", "finished", "finished"]
    assert view.trials[1].values == cancelled.params and len(store.run_ids()) == 2
    assert sweeps.status(sweep_id).message.startswith("Finished: 2 of 2 trials ended (2 finished); 1 cancelled")
