"""A sweep's spec: plain data through JSON, refused with its reason (the limits stated), its trials' run specs."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from core import limits
from core.errors import RunError
from core.runs.spec import SweepTag
from core.sweeps.space import Setting
from core.sweeps.spec import SweepSpec
from tests.core.sweeps.conftest import QUICK, RATES, SMALL, sweep_spec

BATCHES = Setting("batch_size", values=(16, 32, 64))


def test_a_sweep_spec_round_trips_through_json(digits):
    spec = sweep_spec(digits, RATES, BATCHES, Setting("optimizer", values=("sgd", "adam")), strategy="tpe",
                      metric="val_loss", prune=False, seed=7, label="rates")
    assert SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.direction == "minimize" and spec.names() == ["learning_rate", "batch_size", "optimizer"]


@pytest.mark.parametrize("changes, message", [
    ({"trials": 500}, "trials == 500, must be an integer from 1 to 100 (ConvLab runs at most 100 trials a sweep)."),
    ({"trials": 0}, "trials == 0, must be an integer from 1 to 100"),
    ({"strategy": "bayes"}, "strategy == 'bayes', must be one of 'random', 'tpe', 'grid'."),
    ({"metric": "test_accuracy"}, "metric == 'test_accuracy', must be one of 'val_accuracy', 'val_loss'."),
    ({"settings": ()}, "Choose at least one setting to vary."),
    ({"settings": (RATES, RATES)}, "learning_rate is varied twice: give it one range or one list."),
    ({"settings": tuple(Setting(f"conv1.{f}", 1, 2) for f in ("filters", "kernel_size")) * 5},
     "A sweep varies at most 8 settings at once (10 chosen)."),
    ({"training": replace(QUICK, validation_fraction=0.0)},
     "A sweep ranks its trials by the validation accuracy: hold out some training images for validation"),
    ({"strategy": "grid", "settings": tuple(Setting(f"conv{n}.filters", 1, 20, points=20) for n in (1, 2, 3, 4))},
     "This grid has 160,000 points; ConvLab takes grids of at most 10,000: fewer values, or a random or TPE search."),
    ({"prune_after": 0}, "prune after == 0, must be an integer from 1 to 100 (completed trials before pruning)."),
    ({"seed": -1}, "seed == -1, must be an integer from 0 to 2147483647."),
])
def test_bad_sweeps_are_refused_with_their_reason(digits, changes, message):
    with pytest.raises(RunError, match=re.escape(message)):
        sweep_spec(digits, **changes)


def test_the_budget_limit_is_the_limits_table(digits):
    assert limits.MAX_SWEEP_TRIALS == 100
    assert sweep_spec(digits, trials=limits.MAX_SWEEP_TRIALS).trials == 100


def test_a_grid_runs_its_points_or_its_budget_whichever_is_fewer(digits):
    grid = sweep_spec(digits, RATES, BATCHES, strategy="grid", trials=50)
    assert grid.grid_size == 12 and grid.planned_trials == 12
    assert replace(grid, trials=5).planned_trials == 5 and replace(grid, strategy="random").planned_trials == 50
    assert "12 trials of a grid over learning_rate=0.001:0.1:log, batch_size=16,32,64" in grid.describe()
    assert "(12 points; 5 of them)" in replace(grid, trials=5).describe()


def test_settings_are_checked_against_the_images_before_the_sweep_starts(digits):
    spec = sweep_spec(digits, Setting("conv1.kernel_size", values=(3, 9)))
    with pytest.raises(RunError, match=re.escape("conv1.kernel_size=9: conv block 1: a 9x9 kernel does not fit the "
                                                 "8x8 feature map")):
        spec.check_for(digits.input_shape, digits.num_classes)
    sweep_spec(digits, BATCHES).check_for(digits.input_shape, digits.num_classes)


def test_a_trial_is_an_ordinary_run_tagged_with_its_sweep(digits):
    spec = sweep_spec(digits, RATES, BATCHES, label="rates")
    arch, config, params = spec.trial({"learning_rate": 0.02, "batch_size": 16}, digits.input_shape, 10)
    run = spec.run_spec("s20261206-101500-a1b2c3", 3, {"learning_rate": 0.02, "batch_size": 16}, arch, config)
    assert run.sweep == SweepTag("s20261206-101500-a1b2c3", 3) and run.sweep.describe().endswith("#4")
    assert run.training == replace(QUICK, learning_rate=0.02, batch_size=16) and run.architecture == SMALL
    assert run.label == "rates #4 · learning_rate 0.02 · batch_size 16" and params == 4874
    assert run.dataset == digits.ref and run.origin == "dashboard"
