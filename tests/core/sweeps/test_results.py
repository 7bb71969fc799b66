"""What a sweep shows: each trial's state joined from Optuna's journal and its run, the best, the table as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import numpy as np
import pytest
from optuna.trial import TrialState

from core.errors import RunError
from core.runs.spec import RunSpec
from core.runs.status import Owner, RunState
from core.sweeps.results import best_run, read_sweep
from core.sweeps.store import SweepStore
from core.sweeps.study import ask, open_study, set_attr, tell
from tests.core.runs.conftest import dead_owner
from tests.core.sweeps.conftest import details, sweep_spec


def trial_run(store, spec, sweep_id, trial, state: RunState, epochs: int, owner: Owner | None = None) -> str:
    """A run for `trial` in `state`, with `epochs` epochs recorded (validation accuracy 0.5, 0.6, ...)."""
    values = dict(trial.params)
    arch, config, _ = spec.trial(values, (8, 8, 1), 10)
    run_id = store.create(spec.run_spec(sweep_id, trial.number, values, arch, config), state=state, owner=owner)
    for epoch in range(1, epochs + 1):
        store.append_epoch(run_id, {"epoch": epoch, "step": epoch * 10, "loss": 1.0, "accuracy": 0.5,
                                    "val_loss": 1.0, "val_accuracy": 0.4 + epoch / 10, "epoch_s": 1.0,
                                    "elapsed_s": float(epoch)})
    set_attr(trial.study, trial.number, "run_id", run_id)
    return run_id


def test_a_trial_whose_run_ended_is_ending_until_the_sweep_records_it(store, digits):
    """Between its run's end and the driver's tell (a moment), a trial is neither finished nor counted as such: only a
    finished trial has a value (the best, the parallel coordinates and the importances count those)."""
    sweeps = SweepStore(store)
    spec = sweep_spec(digits, trials=3)
    sweep_id = sweeps.create(spec, details(digits))
    study = open_study(sweeps, sweep_id, spec)
    trials = [ask(study, spec) for _ in range(3)]
    trial_run(store, spec, sweep_id, trials[0], RunState.FINISHED, 3)
    tell(study, 0, TrialState.COMPLETE, 0.7, outcome="finished")
    for trial, state in zip(trials[1:], (RunState.FINISHED, RunState.STOPPED)):
        trial_run(store, spec, sweep_id, trial, state, 2)  # ended; the journal still holds the trial as running
    view = read_sweep(sweeps, sweep_id)
    assert [t.state for t in view.trials] == ["finished", "ending", "ending"]
    assert [t.number for t in view.trials if t.state == "finished"] == [0] and view.best.number == 0
    assert view.progress() == "1 of 3 trials ended (1 finished); 2 ending."


def test_trials_are_shown_with_their_states_values_runs_and_the_best(store, digits):
    sweeps = SweepStore(store)
    spec = sweep_spec(digits, trials=6, label="rates")
    sweep_id = sweeps.create(spec, details(digits))
    study = open_study(sweeps, sweep_id, spec)
    trials = [ask(study, spec) for _ in range(6)]
    runs = [trial_run(store, spec, sweep_id, trials[0], RunState.FINISHED, 3),
            trial_run(store, spec, sweep_id, trials[1], RunState.FINISHED, 3),
            trial_run(store, spec, sweep_id, trials[2], RunState.STOPPED, 1),
            trial_run(store, spec, sweep_id, trials[3], RunState.RUNNING, 2),
            trial_run(store, spec, sweep_id, trials[4], RunState.QUEUED, 0, owner=dead_owner())]
    store.write_test(runs[1], {"accuracy": 0.91, "loss": 0.3}, np.zeros((2, 10)))
    tell(study, 0, TrialState.COMPLETE, 0.7, outcome="finished")
    tell(study, 1, TrialState.COMPLETE, 0.8, outcome="finished")
    trials[2].report(0.5, 1)
    tell(study, 2, TrialState.PRUNED, outcome="pruned")

    view = read_sweep(sweeps, sweep_id)
    assert [t.state for t in view.trials] == ["finished", "finished", "pruned", "training", "interrupted", "waiting"]
    assert view.best.number == 1 and view.best.test_accuracy == 0.91 and best_run(sweeps, sweep_id) == runs[1]
    assert view.trials[2].curve == {1: 0.5} and view.trials[3].epochs_done == 2 and view.trials[5].run_id == ""
    assert view.progress() == "3 of 6 trials ended (2 finished, 1 pruned); 1 training, 1 interrupted, 1 waiting."
    rows = list(csv.DictReader(io.StringIO(view.csv())))
    assert [row["trial"] for row in rows] == ["1", "2", "3", "4", "5", "6"]
    assert rows[1]["validation accuracy"] == "0.8" and rows[1]["run"] == runs[1] and rows[1]["epochs"] == "3/3"
    assert set(rows[0]) == {"trial", "state", "learning_rate", "validation accuracy", "epochs", "test accuracy",
                            "training s", "run", "message"}

    tell(study, 3, TrialState.FAIL, outcome="stopped", message="Stopped by the user.")
    tell(study, 4, TrialState.FAIL, outcome="refused", message="learning_rate 0.5: too large")
    cache: dict = {}
    again = read_sweep(sweeps, sweep_id, cache)
    assert [t.state for t in again.trials][3:5] == ["stopped", "refused"] and again.trials[4].message.endswith("large")
    assert set(cache) == {runs[0], runs[1], runs[2]}  # the ended runs' summaries, kept: they no longer change


def test_a_minimised_metric_ranks_the_lowest_best_and_no_finished_trial_has_no_best(store, digits):
    sweeps = SweepStore(store)
    spec = sweep_spec(digits, metric="val_loss")
    sweep_id = sweeps.create(spec, details(digits))
    study = open_study(sweeps, sweep_id, spec)
    with pytest.raises(RunError, match="has no finished trial yet"):
        best_run(sweeps, sweep_id)
    for value in (0.3, 0.1, 0.2):
        trial = ask(study, spec)
        trial_run(store, spec, sweep_id, trial, RunState.FINISHED, 1)
        tell(study, trial.number, TrialState.COMPLETE, value)
    assert read_sweep(sweeps, sweep_id).best.number == 1
    assert read_sweep(sweeps, sweep_id).table()[0]["validation loss"] == 0.3


def test_a_repeat_of_a_trial_is_no_trial(store, digits):
    from core.runs.lineage import replay_run

    sweeps = SweepStore(store)
    spec = sweep_spec(digits)
    sweep_id = sweeps.create(spec, details(digits))
    trial = ask(open_study(sweeps, sweep_id, spec), spec)
    run_id = trial_run(store, spec, sweep_id, trial, RunState.FINISHED, 1)
    repeat = replay_run(store, run_id, store)
    assert store.spec(repeat).sweep is None and store.spec(run_id).sweep is not None
    assert replace(store.spec(repeat), origin="dashboard", label="") == replace(store.spec(run_id), sweep=None,
                                                                                label="")
    assert isinstance(store.spec(repeat), RunSpec)
