"""A sweep as an Optuna study kept in Optuna's own JournalStorage file in the run store: asked, told, opened again
whole; the strategies' samplers seeded; importances only with enough completed trials."""

from __future__ import annotations

import re

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.pruners import MedianPruner, NopPruner
from optuna.samplers import GridSampler, RandomSampler, TPESampler
from optuna.trial import TrialState

from core.errors import RunError
from core.sweeps.space import Setting
from core.sweeps.store import SweepStore
from core.sweeps.study import (
    ask,
    distributions,
    importances,
    live_trial,
    open_study,
    pruner,
    read_trials,
    sampler,
    set_attr,
    tell,
    tpe_startup,
)
from tests.core.sweeps.conftest import RATES, details, sweep_spec

BATCHES = Setting("batch_size", values=(16, 32, 64))


def make(store, digits, *settings, **changes):
    sweeps = SweepStore(store)
    spec = sweep_spec(digits, *settings, **changes)
    return sweeps, sweeps.create(spec, details(digits)), spec


def test_the_study_is_kept_in_the_run_store_and_opened_again_whole(store, digits):
    sweeps, sweep_id, spec = make(store, digits, RATES, BATCHES)
    assert read_trials(sweeps, sweep_id) == []  # nothing before the study exists
    study = open_study(sweeps, sweep_id, spec)
    first, second = ask(study, spec), ask(study, spec)
    set_attr(study, first.number, "run_id", "20261206-101500-a1b2c3")
    first.report(0.5, 1)
    tell(study, first.number, TrialState.COMPLETE, 0.75, outcome="finished")
    assert sweeps.journal_path(sweep_id).stat().st_size > 0

    again = open_study(sweeps, sweep_id, spec)  # a restarted server
    trials = again.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    assert trials[0].value == 0.75 and trials[0].intermediate_values == {1: 0.5}
    assert trials[0].user_attrs == {"run_id": "20261206-101500-a1b2c3", "outcome": "finished"}
    assert set(trials[1].params) == {"learning_rate", "batch_size"} and 1e-3 <= trials[1].params["learning_rate"] <= 0.1
    running = live_trial(again, trials[1])  # reported to and told after the restart
    running.report(0.9, 1)
    tell(again, second.number, TrialState.PRUNED, outcome="pruned")
    assert [(t.number, t.state) for t in read_trials(sweeps, sweep_id)] == [(0, TrialState.COMPLETE),
                                                                           (1, TrialState.PRUNED)]


def test_each_strategy_has_its_seeded_sampler_and_pruning_its_median_pruner(digits, store):
    random = sweep_spec(digits, RATES, BATCHES, seed=3)
    assert isinstance(sampler(random), RandomSampler)
    assert isinstance(sampler(sweep_spec(digits, strategy="tpe", trials=40)), TPESampler)
    assert tpe_startup(12) == 3 and tpe_startup(100) == 10 and tpe_startup(4) == 2
    assert isinstance(sampler(sweep_spec(digits, strategy="grid")), GridSampler)
    assert isinstance(pruner(random), MedianPruner) and isinstance(pruner(sweep_spec(digits, prune=False)), NopPruner)
    assert distributions(random) == {"learning_rate": FloatDistribution(1e-3, 1e-1, log=True),
                                     "batch_size": CategoricalDistribution((16, 32, 64))}

    def first_values(spec):
        sweeps, sweep_id, _ = make(store, digits, *spec.settings, seed=spec.seed)
        study = open_study(sweeps, sweep_id, spec)
        return [ask(study, spec).params for _ in range(3)]

    assert first_values(random) == first_values(random)  # the same seed asks the same trials
    assert first_values(random) != first_values(sweep_spec(digits, RATES, BATCHES, seed=4))


def test_a_grid_visits_every_point_once_and_its_last_tell_does_not_raise(store, digits):
    sweeps, sweep_id, spec = make(store, digits, Setting("learning_rate", 0.01, 0.1, points=2), BATCHES,
                                  strategy="grid", trials=50)
    study = open_study(sweeps, sweep_id, spec)
    seen = []
    for _ in range(spec.planned_trials):
        trial = ask(study, spec)
        seen.append((trial.params["learning_rate"], trial.params["batch_size"]))
        tell(study, trial.number, TrialState.COMPLETE, 0.5)  # (Optuna's own grid stops an optimize loop here)
    assert sorted(seen) == sorted((rate, batch) for rate in (0.01, 0.1) for batch in (16, 32, 64))


def test_importances_need_enough_completed_trials_and_find_the_setting_that_matters(store, digits):
    sweeps, sweep_id, spec = make(store, digits, RATES, BATCHES, trials=20)
    study = open_study(sweeps, sweep_id, spec)
    for number in range(12):
        trial = ask(study, spec)
        if number < 3:
            with pytest.raises(RunError, match=re.escape("needs at least 4 completed trials (" + f"{number} so far).")):
                importances(sweeps, sweep_id, spec)
        # the metric follows the learning rate only
        tell(study, trial.number, TrialState.COMPLETE, 1 - abs(trial.params["learning_rate"] - 0.03))
    found = importances(sweeps, sweep_id, spec)
    assert set(found) == {"learning_rate", "batch_size"} and found["learning_rate"] > 0.8
    assert sum(found.values()) == pytest.approx(1.0)


def test_trials_that_all_scored_the_same_have_no_importances(store, digits):
    sweeps, sweep_id, spec = make(store, digits, Setting("learning_rate", values=(0.1, 0.2)), BATCHES)
    study = open_study(sweeps, sweep_id, spec)
    for _ in range(5):
        tell(study, ask(study, spec).number, TrialState.COMPLETE, 0.5)
    with pytest.raises(RunError, match=re.escape("The 5 completed trials all scored the same: no setting made a "
                                                 "difference.")):
        importances(sweeps, sweep_id, spec)
