"""The Sweeps page's form: which of the sliders' settings to vary, over what, how many trials, how to choose them.

Each setting gets the widget that fits what is tried of it: a learning rate a
range on a log scale, a dropout or a rotation a range, a batch size, a number of
filters or of epochs a list of values, an optimizer a list of names. The form
reads them into a `core.sweeps.spec.SweepSpec`; Start sweep (`ui.sweeps`)
checks it and starts it.
"""

from __future__ import annotations

import streamlit as st

from core import limits
from core.checks import MAX_SEED
from core.data.dataset import Dataset
from core.model.architecture import Architecture
from core.sweeps.space import GRID_POINTS, Setting, kind_of, settings_of
from core.sweeps.spec import METRIC_NAMES, METRICS, PRUNE_AFTER, STRATEGIES, STRATEGY_NAMES, SweepSpec
from core.training.config import OPTIMIZER_NAMES, SCHEDULES, TrainingConfig
from ui import state
from ui.state import SweepsPage as KEYS
from ui.widgets import code, md

RATES = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
# what a list-valued setting offers, and what it starts with
LISTS = {"batch_size": ((8, 16, 32, 64, 128, 256), (16, 32, 64)),
         "epochs": ((1, 2, 3, 5, 8, 10, 15, 20), (5, 10)),
         "filters": ((4, 8, 16, 32, 48, 64, 128), (8, 16, 32)),
         "kernel_size": ((1, 3, 5, 7), (3, 5)),
         "units": ((16, 32, 64, 100, 128, 256), (32, 64, 128)),
         "optimizer": (("sgd", "adam", "rmsprop"), ("sgd", "adam")),
         "schedule": (SCHEDULES, ("constant", "cosine"))}
# a range: (lowest, highest, step, the range it starts with)
RANGES = {"momentum": (0.0, 0.99, 0.01, (0.5, 0.95)), "dropout": (0.0, 0.9, 0.05, (0.0, 0.5)),
          "rotation": (0.0, 0.25, 0.01, (0.0, 0.1)), "zoom": (0.0, 0.5, 0.05, (0.0, 0.2)),
          "shift": (0.0, 0.5, 0.05, (0.0, 0.15))}


def label(name: str) -> str:
    """'learning rate', 'conv 1 filters': a setting's name as the form says it."""
    return Setting(name).label


def _field(name: str) -> str:
    return name.split(".")[-1]


def _default(name: str) -> object:
    """What the widget of `name` starts with."""
    field = _field(name)
    if name == "learning_rate":
        return (1e-3, 0.1)
    if field in LISTS:
        return list(LISTS[field][1])
    return RANGES[field][3]


def range_widget(name: str) -> None:
    """The widget for one setting; what it says is kept under KEPT (`read_setting` reads it).

    (A range slider needs its value passed each time: one set through session state alone turns into a
    single-value slider on the next run. So the value is kept apart from the widget's key.)
    """
    key, kept, field = KEYS.RANGE.format(name), KEYS.KEPT.format(name), _field(name)
    value = st.session_state.get(kept, _default(name))
    if name == "learning_rate":
        chosen = st.select_slider("Learning rate (log scale)", RATES, value=tuple(value), key=key,
                                  format_func=lambda rate: f"{rate:g}",
                                  help="Tried on a log scale: as many small rates as large ones.")
    elif field in LISTS:
        words = OPTIMIZER_NAMES if field == "optimizer" else {}
        chosen = st.multiselect(label(name).capitalize(), LISTS[field][0], default=list(value), key=key,
                                format_func=lambda item: words.get(item, str(item)))
    else:
        lowest, highest, step, _ = RANGES[field]
        chosen = st.slider(label(name).capitalize(), lowest, highest, value=tuple(value), step=step, key=key)
    st.session_state[kept] = chosen


def sweep_form(dataset: Dataset, arch: Architecture, config: TrainingConfig) -> None:
    """Draw the form (its values stay in session state); Start sweep reads them back with `spec_from_widgets`."""
    st.caption(f"Each trial trains {code(arch.name)} on {md(dataset.name)} with the recipe of **Training** "
               f"({config.describe()}), changing only the settings chosen here. Trials are ordinary runs, listed on "
               "**Runs**, queued like any other (in turns with everyone else's runs).")
    names = settings_of(arch)
    session = st.session_state
    for key, value in FORM_DEFAULTS.items():
        session.setdefault(key, value)
    session[KEYS.VARY] = [name for name in session[KEYS.VARY] if name in names]  # (the model may have changed)
    chosen = st.multiselect("Settings to vary", names, key=KEYS.VARY, format_func=label,
                            max_selections=limits.MAX_SWEEP_SETTINGS,
                            help="The settings the sliders on Architecture and Training offer.")
    columns = st.columns(2)
    for index, name in enumerate(chosen):
        with columns[index % 2]:
            range_widget(name)
    left, middle, right = st.columns(3)
    left.number_input("Trials", min_value=1, step=1, key=KEYS.TRIALS,
                      help=f"How many runs at most (this server takes at most {limits.MAX_SWEEP_TRIALS} a sweep).")
    strategy = middle.radio("Strategy", STRATEGIES, key=KEYS.STRATEGY, format_func=STRATEGY_NAMES.__getitem__,
                            horizontal=True, help="Random: values drawn at random. TPE: Optuna's Bayesian search, "
                            "which tries more where the results were good. Grid: every combination (or as many as "
                            "the trials allow).")
    right.radio("Ranked by", tuple(METRICS), key=KEYS.METRIC, format_func=METRIC_NAMES.__getitem__, horizontal=True,
                help="Measured on the validation images, never the test images: the best trial's test score stays an "
                     "honest estimate.")
    left, middle, right = st.columns(3)
    left.toggle("Prune hopeless trials", key=KEYS.PRUNE,
                help=f"After each epoch, a trial worse than the median of the completed trials at that epoch is "
                     f"stopped (Optuna's median pruner, once {PRUNE_AFTER} trials have completed). It keeps its "
                     "weights and shows as pruned.")
    if strategy == "grid" and any(kind_of(name) is not str and _field(name) not in LISTS for name in chosen):
        middle.number_input("Grid points of each range", min_value=2, max_value=limits.MAX_SWEEP_VALUES,
                            key=KEYS.GRID_POINTS)
    right.number_input("Search seed", min_value=0, max_value=MAX_SEED, key=KEYS.SEED,
                       help="Seeds the strategy's choices; each trial's own seed is the recipe's.")


FORM_DEFAULTS = {KEYS.VARY: ["learning_rate"], KEYS.TRIALS: 12, KEYS.STRATEGY: "random", KEYS.METRIC: "val_accuracy",
                 KEYS.PRUNE: True, KEYS.GRID_POINTS: GRID_POINTS, KEYS.SEED: 0}


def spec_from_widgets(dataset: Dataset, arch: Architecture, config: TrainingConfig) -> SweepSpec:
    """The sweep the form describes (RunError saying what is wrong, limits stated)."""
    session = st.session_state
    points = int(session.get(KEYS.GRID_POINTS) or GRID_POINTS) if session.get(KEYS.STRATEGY) == "grid" else 0
    settings = []
    for name in session.get(KEYS.VARY) or []:
        setting = read_setting(name)
        settings.append(Setting(setting.name, setting.low, setting.high, setting.log, points, setting.values)
                        if setting.is_range else setting)
    return SweepSpec(dataset.ref, arch, config, tuple(settings), trials=int(session.get(KEYS.TRIALS) or 12),
                     strategy=session.get(KEYS.STRATEGY) or "random", metric=session.get(KEYS.METRIC) or "val_accuracy",
                     prune=bool(session.get(KEYS.PRUNE, True)), seed=int(session.get(KEYS.SEED) or 0),
                     label=f"{arch.name} sweep", origin="dashboard").validated()


def read_setting(name: str) -> Setting:
    """What the widget of `name` holds now (its default before it was drawn)."""
    value = st.session_state.get(KEYS.KEPT.format(name))
    value = _default(name) if value is None else value
    field = _field(name)
    if field in LISTS:
        return Setting(name, values=tuple(v for v in LISTS[field][0] if v in value))
    low, high = value
    return Setting(name, float(low), float(high), log=name == "learning_rate")


def keep_values() -> None:
    """The form's values survive a visit to another page (Streamlit drops the state of widgets not drawn)."""
    keys = [KEYS.VARY, KEYS.TRIALS, KEYS.STRATEGY, KEYS.METRIC, KEYS.PRUNE, KEYS.SEED, KEYS.GRID_POINTS]
    state.keep_widget_values(*keys)
