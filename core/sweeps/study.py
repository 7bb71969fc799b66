"""A sweep as an Optuna study: its sampler, its pruner, its storage in the run store (ask and tell).

The study lives in Optuna's JournalStorage file inside the sweep's folder
(`SweepStore.journal_path`): every trial asked, told, reported and pruned is a
line appended to it, so the study is whole again when a restarted server or
`python -m core sweep --resume` opens it. Strategies map to Optuna's samplers:
`grid` to GridSampler (over each setting's `grid()` values), `random` to
RandomSampler and `tpe` to TPESampler, each seeded by the sweep's seed
(and, when a sweep is picked up again, by how many trials it has asked, so that
a resumed random search does not ask its first trials again). Pruning is
Optuna's MedianPruner after `prune_after` completed trials, from the first epoch.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from core.errors import RunError
from core.sweeps.spec import SweepSpec
from core.sweeps.store import SweepStore

optuna.logging.set_verbosity(optuna.logging.WARNING)  # a sweep says what happens in its own words
STUDY = "convlab-sweep"  # the one study in each sweep's journal
MIN_TRIALS_FOR_IMPORTANCE = 4  # completed trials before the importance of each setting is worth computing


class _Grid(GridSampler):
    """Optuna's grid, without its habit of stopping an `optimize` loop (ask-and-tell has none: it would raise).
    The sweep runs `planned_trials`, never more than the grid holds."""

    def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001 - as Optuna's
        return None


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """What Optuna samples each setting from: a float or integer range (log or not) or a list of values."""
    found: dict[str, BaseDistribution] = {}
    for setting in spec.settings:
        if setting.values:
            found[setting.name] = CategoricalDistribution(setting.values)
        elif setting.kind is int:
            found[setting.name] = IntDistribution(int(setting.low), int(setting.high), log=setting.log)
        else:
            found[setting.name] = FloatDistribution(float(setting.low), float(setting.high), log=setting.log)
    return found


def tpe_startup(trials: int) -> int:
    """Random trials before TPE models the results: a quarter of the budget, from 2 to Optuna's default 10."""
    return min(10, max(2, trials // 4))


def sampler(spec: SweepSpec, asked: int = 0) -> BaseSampler:
    """The strategy's sampler, seeded; `asked`: trials the study already holds (a resumed sweep)."""
    seed = (spec.seed + asked) % 2**31
    if spec.strategy == "grid":
        return _Grid({setting.name: setting.grid() for setting in spec.settings}, seed=spec.seed)
    if spec.strategy == "tpe":
        return TPESampler(seed=seed, n_startup_trials=tpe_startup(spec.trials), constant_liar=True)
    return RandomSampler(seed=seed)


def pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """The median pruner (from the first epoch, once `prune_after` trials have completed), or none."""
    if not spec.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=spec.prune_after, n_warmup_steps=0)


def _storage(sweeps: SweepStore, sweep_id: str) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(sweeps.journal_path(sweep_id))))


def open_study(sweeps: SweepStore, sweep_id: str, spec: SweepSpec) -> optuna.Study:
    """The sweep's study, created on first use, with the sampler and pruner of its spec (for asking and telling)."""
    study = optuna.create_study(storage=_storage(sweeps, sweep_id), study_name=STUDY, direction=spec.direction,
                                load_if_exists=True)
    study.sampler, study.pruner = sampler(spec, len(study.get_trials(deepcopy=False))), pruner(spec)
    return study


def read_trials(sweeps: SweepStore, sweep_id: str) -> list[FrozenTrial]:
    """The sweep's trials as its journal holds them now, oldest first; none before its study exists. Reads only
    (a page, another process): the journal is appended to by whoever drives the sweep."""
    if not sweeps.journal_path(sweep_id).is_file():
        return []
    storage = _storage(sweeps, sweep_id)
    try:
        study_id = storage.get_study_id_from_name(STUDY)
    except KeyError:
        return []
    return storage.get_all_trials(study_id, deepcopy=False)


def live_trial(study: optuna.Study, frozen: FrozenTrial) -> Trial:
    """A trial the study holds as running, to report to and ask `should_prune` of (also after a restart)."""
    return Trial(study, frozen._trial_id)


def ask(study: optuna.Study, spec: SweepSpec) -> Trial:
    """The next trial: its values drawn by the strategy over the sweep's settings."""
    return study.ask(distributions(spec))


def tell(study: optuna.Study, number: int, state: TrialState, value: float | None = None, **attrs: Any) -> None:
    """Record how trial `number` ended (COMPLETE with its value, PRUNED or FAIL), with `attrs` kept beside it."""
    for key, item in attrs.items():
        study._storage.set_trial_user_attr(_trial_id(study, number), key, item)
    study.tell(number, value if state is TrialState.COMPLETE else None, state=state, skip_if_finished=True)


def set_attr(study: optuna.Study, number: int, key: str, value: Any) -> None:
    """Keep `value` beside trial `number` (its run's id, why it failed)."""
    study._storage.set_trial_user_attr(_trial_id(study, number), key, value)


def _trial_id(study: optuna.Study, number: int) -> int:
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def importances(sweeps: SweepStore, sweep_id: str, spec: SweepSpec) -> dict[str, float]:
    """How much each setting explains the metric's variation over the completed trials (Optuna's fANOVA,
    seeded; shares adding up to 1). RunError when fewer than MIN_TRIALS_FOR_IMPORTANCE trials have completed."""
    complete = [t for t in read_trials(sweeps, sweep_id) if t.state is TrialState.COMPLETE]
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        raise RunError(f"The importance of each setting needs at least {MIN_TRIALS_FOR_IMPORTANCE} completed trials "
                       f"({len(complete)} so far).")
    if len({t.value for t in complete}) == 1:
        raise RunError(f"The {len(complete)} completed trials all scored the same: no setting made a difference.")
    study = optuna.load_study(study_name=STUDY, storage=_storage(sweeps, sweep_id))
    try:
        found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=0), params=spec.names())
    except (ValueError, RuntimeError) as error:  # Optuna's, when the trials cannot tell the settings apart
        raise RunError(f"Optuna could not tell the settings apart yet ({error}).") from None
    return {name: float(found.get(name, 0.0)) for name in spec.names()}
