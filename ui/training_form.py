"""The Training page's settings and its Start/Stop actions, bound to session state."""

from __future__ import annotations

import streamlit as st

from core.errors import ConvLabError
from core.training import OPTIMIZERS, SCHEDULES, TRAINING_PRESETS, TrainingConfig, TrainingJob
from ui import state

BATCH_CHOICES = (8, 16, 32, 64, 128, 256, 512)
FIELDS = {  # widget key -> TrainingConfig field
    "train_optimizer": "optimizer",
    "train_learning_rate": "learning_rate",
    "train_momentum": "momentum",
    "train_schedule": "schedule",
    "train_batch_size": "batch_size",
    "train_epochs": "epochs",
    "train_validation": "validation_fraction",
    "train_seed": "seed",
}
START_ERROR = "train_start_error"


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
        optimizer = st.selectbox("Optimizer", OPTIMIZERS, key="train_optimizer", disabled=disabled,
                                 format_func=lambda name: {"sgd": "SGD", "adam": "Adam", "rmsprop": "RMSprop"}[name])
        learning_rate = st.number_input("Learning rate", min_value=1e-5, max_value=10.0, step=0.001,
                                        format="%.4f", key="train_learning_rate", disabled=disabled)
        momentum = st.slider("Momentum", 0.0, 0.99, step=0.01, key="train_momentum",
                             disabled=disabled or optimizer == "adam",
                             help="Used by SGD and RMSprop; Adam keeps its own moment estimates.")
    with middle:
        batch_size = st.select_slider("Batch size", BATCH_CHOICES, key="train_batch_size", disabled=disabled)
        epochs = st.slider("Epochs", 1, 50, key="train_epochs", disabled=disabled)
        schedule = st.selectbox("Learning-rate schedule", SCHEDULES, key="train_schedule", disabled=disabled,
                                help="cosine: the rate decays smoothly to 0 by the last batch.")
    with right:
        validation = st.slider("Validation fraction", 0.0, 0.5, step=0.05, key="train_validation", disabled=disabled,
                               help="Held out from the training images, to watch over-fitting epoch by epoch.")
        seed = st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="train_seed", disabled=disabled,
                               help="Fixes the initial weights and the validation split.")
    config = TrainingConfig(optimizer=optimizer, learning_rate=float(learning_rate), momentum=float(momentum),
                            batch_size=int(batch_size), epochs=int(epochs), validation_fraction=float(validation),
                            seed=int(seed), schedule=schedule)
    st.session_state[state.TRAIN_CONFIG] = config
    return config


def start_training() -> None:
    """Start button callback: a fresh model from the built architecture, trained in the background."""
    st.session_state[START_ERROR] = None
    current, dataset, built = state.job(), state.dataset(), state.built()
    if current is not None and current.state.is_active:
        st.session_state[START_ERROR] = "A run is already going: stop it first (one training at a time)."
        return
    if dataset is None or built is None:
        st.session_state[START_ERROR] = "Load a dataset and build a model first."
        return
    try:
        job = TrainingJob(built.arch, dataset, state.config())
    except ConvLabError as error:
        st.session_state[START_ERROR] = str(error)
        return
    st.session_state[state.JOB] = job.start()
    st.session_state[state.JOB_DATASET] = dataset
    st.session_state[state.EVALUATION] = None
    st.session_state[state.PREDICTOR] = None


def stop_training() -> None:
    current = state.job()
    if current is not None:
        current.stop()
