"""The Training page's settings and its Start/Stop actions, bound to session state."""

from __future__ import annotations

import streamlit as st

from core.checks import MAX_SEED
from core.training.config import (
    MONITOR_NAMES,
    MONITORS,
    OPTIMIZER_NAMES,
    OPTIMIZERS,
    SCHEDULES,
    TRAINING_PRESETS,
    TrainingConfig,
)
from ui import state
from ui.widgets import choices_with, lower, upper

BATCH_CHOICES = (8, 16, 32, 64, 128, 256, 512)
FIELDS = state.TrainingPage.FIELDS  # widget key -> TrainingConfig field
KEY = {name: key for key, name in FIELDS.items()}  # TrainingConfig field -> widget key


def load_into_widgets(config: TrainingConfig, overwrite: bool) -> None:
    for key, name in FIELDS.items():
        if overwrite or key not in st.session_state:
            st.session_state[key] = getattr(config, name)


def apply_preset(name: str) -> None:
    """Button callback: fill every setting from a training preset."""
    st.session_state[state.TRAIN_CONFIG] = TRAINING_PRESETS[name]
    load_into_widgets(TRAINING_PRESETS[name], overwrite=True)


def training_form(disabled: bool) -> TrainingConfig:
    """Draw the settings; return the TrainingConfig they describe (also saved in session state)."""
    load_into_widgets(st.session_state[state.TRAIN_CONFIG], overwrite=False)
    left, middle, right = st.columns(3)
    with left:
        optimizer = st.selectbox("Optimizer", OPTIMIZERS, key=KEY["optimizer"], disabled=disabled,
                                 format_func=OPTIMIZER_NAMES.__getitem__)
        learning_rate = st.number_input("Learning rate", min_value=lower(1e-5, KEY["learning_rate"]), max_value=10.0,
                                        step=0.001,
                                        format="%.4f", key=KEY["learning_rate"], disabled=disabled)
        momentum = st.slider("Momentum", 0.0, upper(0.99, KEY["momentum"]), step=0.01, key=KEY["momentum"],
                             disabled=disabled or optimizer == "adam",
                             help="Used by SGD and RMSprop; Adam keeps its own moment estimates.")
    with middle:
        batch_size = st.select_slider("Batch size", choices_with(BATCH_CHOICES, KEY["batch_size"]),
                                      key=KEY["batch_size"], disabled=disabled)
        epochs = st.slider("Epochs", 1, int(upper(50, KEY["epochs"])), key=KEY["epochs"], disabled=disabled)
        schedule = st.selectbox("Learning-rate schedule", SCHEDULES, key=KEY["schedule"], disabled=disabled,
                                help="cosine: the rate decays smoothly to 0 by the last batch. warmup-cosine: it first rises "
                                     "from 0 over one epoch (steadier starts with Adam and batch norm), then decays.")
    with right:
        validation = st.slider("Validation fraction", 0.0, 0.5, step=0.05, key=KEY["validation_fraction"], disabled=disabled,
                               help="Held out from the training images, to watch over-fitting epoch by epoch.")
        seed = st.number_input("Seed", min_value=0, max_value=int(upper(MAX_SEED, KEY["seed"])), step=1,
                               key=KEY["seed"], disabled=disabled,
                               help="Fixes the initial weights, the validation split and the order of the batches.")
    watching = watching_form(disabled)
    config = TrainingConfig(optimizer=optimizer, learning_rate=float(learning_rate), momentum=float(momentum),
                            batch_size=int(batch_size), epochs=int(epochs), validation_fraction=float(validation),
                            seed=int(seed), schedule=schedule, **watching)
    st.session_state[state.TRAIN_CONFIG] = config
    return config


def watching_form(disabled: bool) -> dict:
    """Early stopping and reduce-on-plateau: the recipes that watch the validation metrics."""
    on = st.session_state[KEY["early_stopping"]] or st.session_state[KEY["reduce_on_plateau"]]
    with st.expander("Stop by itself: early stopping, reduce on plateau" + (" (on)" if on else ""),
                     icon=":material/monitoring:"):
        left, middle, right = st.columns(3)
        monitor = left.selectbox("Watch", MONITORS, key=KEY["monitor"], disabled=disabled,
                                 format_func=MONITOR_NAMES.__getitem__,
                                 help="Measured on the validation images after every epoch.")
        early = middle.toggle("Early stopping", key=KEY["early_stopping"], disabled=disabled,
                              help="Stop when it has not improved for this many epochs; the best epoch's weights "
                                   "are kept (the run says which).")
        patience = middle.slider("Patience (epochs)", 1, int(upper(20, KEY["patience"])), key=KEY["patience"],
                                 disabled=disabled or not early)
        plateau = right.toggle("Reduce on plateau", key=KEY["reduce_on_plateau"], disabled=disabled,
                               help="Halve the learning rate when it has not improved for this many epochs.")
        plateau_patience = right.slider("Plateau patience (epochs)", 1, int(upper(20, KEY["plateau_patience"])),
                                        key=KEY["plateau_patience"], disabled=disabled or not plateau)
    return {"monitor": monitor, "early_stopping": bool(early), "patience": int(patience),
            "reduce_on_plateau": bool(plateau), "plateau_patience": int(plateau_patience)}
