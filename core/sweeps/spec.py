"""A sweep's spec: what to vary and how, as plain data, checked before any trial is asked.

The sweep starts from one model and recipe on one dataset (the sliders' as they
stand, or a CLI preset) and varies some of their settings (`core.sweeps.space`)
over a budget of trials, with a strategy (a grid, a random search, or Optuna's
TPE), for a metric measured on the validation images (never the test images:
picking the best on the test set would make its test score a lie), optionally
pruning trials that fall behind. Each trial becomes an ordinary run whose spec
is the sweep's with the trial's values put in (`run_spec`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from core import limits
from core.checks import check_choice, check_flag, check_scalar, check_seed, from_mapping
from core.data.dataset import DatasetRef
from core.errors import RunError
from core.model.architecture import Architecture, architecture_from_dict, architecture_to_dict
from core.runs.spec import RunSpec, SweepTag
from core.sweeps.space import Setting, Value, check_setting, check_trial, largest
from core.training.config import TrainingConfig

STRATEGIES = ("random", "tpe", "grid")
STRATEGY_NAMES = {"random": "random search", "tpe": "TPE (Optuna's Bayesian search)", "grid": "grid"}
METRICS = {"val_accuracy": "maximize", "val_loss": "minimize"}  # the metric and which way is better
METRIC_NAMES = {"val_accuracy": "validation accuracy", "val_loss": "validation loss"}
ORIGINS = ("dashboard", "cli")
PRUNE_AFTER = 3  # trials that must complete before the median of earlier trials means anything


@dataclass(frozen=True)
class SweepSpec:
    """A study over some settings of one model and recipe: `trials` runs, chosen by `strategy`, ranked by `metric`.

    `prune`: stop a trial whose metric after an epoch is worse than the median of the completed trials at that
    epoch (Optuna's median pruner), once `prune_after` trials have completed. `seed` drives the sampler; each
    trial's own seed is the recipe's, so two trials differ only in the settings varied.
    """

    dataset: DatasetRef
    architecture: Architecture
    training: TrainingConfig
    settings: tuple[Setting, ...]
    trials: int = 12
    strategy: str = "random"
    metric: str = "val_accuracy"
    prune: bool = True
    prune_after: int = PRUNE_AFTER
    seed: int = 0
    label: str = ""
    origin: str = "dashboard"

    @property
    def direction(self) -> str:
        """'maximize' or 'minimize' (Optuna's words)."""
        return METRICS[self.metric]

    @property
    def grid_size(self) -> int:
        return math.prod(len(setting.grid()) for setting in self.settings)

    @property
    def planned_trials(self) -> int:
        """The trials it will run: its budget, or its grid's size when that is smaller."""
        return min(self.trials, self.grid_size) if self.strategy == "grid" else self.trials

    def names(self) -> list[str]:
        return [setting.name for setting in self.settings]

    def validated(self) -> "SweepSpec":
        """Return self, or raise RunError saying what is wrong (the limits stated); the settings are checked
        against a dataset's images by `check_for`."""
        check_scalar(self.trials, "trials", RunError, integer=True, lo=1, hi=limits.MAX_SWEEP_TRIALS,
                     what=f"an integer from 1 to {limits.MAX_SWEEP_TRIALS} (ConvLab runs at most "
                          f"{limits.MAX_SWEEP_TRIALS} trials a sweep)")
        check_choice(self.strategy, "strategy", STRATEGIES, RunError)
        check_choice(self.metric, "metric", tuple(METRICS), RunError)
        check_choice(self.origin, "origin", ORIGINS, RunError)
        check_flag(self.prune, "prune", RunError)
        check_scalar(self.prune_after, "prune after", RunError, integer=True, lo=1, hi=limits.MAX_SWEEP_TRIALS,
                     what=f"an integer from 1 to {limits.MAX_SWEEP_TRIALS} (completed trials before pruning)")
        check_seed(self.seed, "seed", RunError)
        if not isinstance(self.architecture, Architecture) or not isinstance(self.training, TrainingConfig):
            raise RunError("a sweep needs a model and a recipe to start from.")
        self.training.validated()
        if not self.settings:
            raise RunError("Choose at least one setting to vary.")
        if len(self.settings) > limits.MAX_SWEEP_SETTINGS:
            raise RunError(f"A sweep varies at most {limits.MAX_SWEEP_SETTINGS} settings at once "
                           f"({len(self.settings)} chosen).")
        names = self.names()
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise RunError(f"{twice[0]} is varied twice: give it one range or one list.")
        for setting in self.settings:
            setting.checked()
        if self.training.validation_fraction == 0:
            raise RunError(f"A sweep ranks its trials by the {METRIC_NAMES[self.metric]}: hold out some training "
                           "images for validation (validation fraction above 0 on Training).")
        if self.strategy == "grid" and self.grid_size > limits.MAX_GRID_SIZE:
            raise RunError(f"This grid has {self.grid_size:,} points; ConvLab takes grids of at most "
                           f"{limits.MAX_GRID_SIZE:,}: fewer values, or a random or TPE search.")
        return self

    def check_for(self, input_shape: tuple[int, int, int], num_classes: int) -> None:
        """Refuse (RunError) a value a trial could not train with on these images: each setting's values alone
        (by the recipe's and the model's own checks), and the largest model the settings make together."""
        self.validated()
        for setting in self.settings:
            check_setting(setting, self.architecture, self.training, input_shape, num_classes)
        biggest = largest(self.settings)
        if len(biggest) > 1:
            check_trial(self.architecture, self.training, biggest, input_shape, num_classes,
                        what="the largest trial (" + ", ".join(f"{k}={v}" for k, v in biggest.items()) + ")")

    def trial(self, values: dict[str, Value], input_shape: tuple[int, int, int],
              num_classes: int) -> tuple[Architecture, TrainingConfig, int]:
        """One trial's model, recipe and parameter count (RunError when this combination cannot train)."""
        return check_trial(self.architecture, self.training, values, input_shape, num_classes,
                           what=describe_values(values))

    def run_spec(self, sweep_id: str, number: int, values: dict[str, Value], arch: Architecture,
                 config: TrainingConfig) -> RunSpec:
        """The run of trial `number` (from 0): an ordinary spec, tagged with its sweep."""
        label = f"{self.label or 'sweep'} #{number + 1} · {describe_values(values)}"
        return RunSpec(self.dataset, arch, config, label=label[:200], origin=self.origin,
                       sweep=SweepTag(sweep_id, number))

    def describe(self) -> str:
        """One sentence: '12 trials of a random search over learning_rate=0.001:0.1:log, ranked by ...'."""
        what = ", ".join(setting.describe() for setting in self.settings)
        grid = (f" ({self.grid_size:,} points; {self.planned_trials} of them)" if self.strategy == "grid"
                and self.grid_size > self.trials else "")
        pruning = (f"; a trial behind the median of the completed ones after an epoch is pruned (once "
                   f"{self.prune_after} have completed)" if self.prune else "; no pruning")
        return (f"{self.planned_trials} trials of a {STRATEGY_NAMES[self.strategy]}{grid} over {what}, ranked by the "
                f"{METRIC_NAMES[self.metric]}{pruning}; seed {self.seed}.")

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset.to_dict(), "architecture": architecture_to_dict(self.architecture),
                "training": self.training.to_dict(), "settings": [setting.to_dict() for setting in self.settings],
                "trials": self.trials, "strategy": self.strategy, "metric": self.metric, "prune": self.prune,
                "prune_after": self.prune_after, "seed": self.seed, "label": self.label, "origin": self.origin}

    @classmethod
    def from_dict(cls, data: object) -> "SweepSpec":
        """Inverse of `to_dict`, validated; RunError (or the part's own error) saying what is wrong."""
        fields = from_mapping(cls, data, "a sweep spec", RunError)
        settings = fields.settings
        if not isinstance(settings, (list, tuple)) or len(settings) > limits.MAX_SWEEP_SETTINGS:
            raise RunError(f"a sweep spec's settings must be a list of at most {limits.MAX_SWEEP_SETTINGS}.")
        return replace(fields, dataset=DatasetRef.from_dict(fields.dataset),
                       architecture=architecture_from_dict(fields.architecture),
                       training=TrainingConfig.from_dict(fields.training),
                       settings=tuple(Setting.from_dict(setting) for setting in settings),
                       label=str(fields.label)[:200]).validated()


def describe_values(values: dict[str, Value]) -> str:
    """'learning_rate 0.0123 · batch_size 64': a trial's values, short."""
    return " · ".join(f"{name} {value:.3g}" if isinstance(value, float) else f"{name} {value}"
                      for name, value in values.items())
