"""Session-state keys and their defaults, in one place.

A session's data, model and training job belong to that session only: they
live in `st.session_state`, never in a process-wide cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from core.architecture import PRESETS, Architecture
from core.training import TRAINING_PRESETS, JobState, TrainingConfig

if TYPE_CHECKING:
    import keras

    from core.data import Dataset
    from core.evaluation import Evaluation
    from core.inference import Predictor
    from core.training import TrainingJob

DATASET = "dataset"            # core.data.Dataset in use, or None
DATASET_CHOICE = "dataset_choice"  # registry key, or "upload"
ARCHITECTURE = "architecture"  # Architecture being edited on the Architecture page
BUILT = "built"                # BuiltModel, after Build
TRAIN_CONFIG = "train_config"  # TrainingConfig being edited on the Training page
JOB = "job"                    # the session's TrainingJob (running or done), or None
JOB_DATASET = "job_dataset"    # the Dataset the job trains on
JOB_WAS_ACTIVE = "job_was_active"  # lets polling fragments notice the end of a run
EVALUATION = "evaluation"      # (job, Evaluation): the evaluation of that run
PREDICTOR = "predictor"        # (job, Predictor): the single-image predictor of that run

DEFAULTS: dict[str, Any] = {
    DATASET: None,
    DATASET_CHOICE: "mnist",
    ARCHITECTURE: PRESETS["lab"],
    BUILT: None,
    TRAIN_CONFIG: TRAINING_PRESETS["lab"],
    JOB: None,
    JOB_DATASET: None,
    JOB_WAS_ACTIVE: False,
    EVALUATION: None,
    PREDICTOR: None,
}


@dataclass(frozen=True)
class BuiltModel:
    """What Build put into the session: the architecture, the shape it was built for, the model."""

    arch: Architecture
    input_shape: tuple[int, int, int]
    num_classes: int
    model: "keras.Model"
    params: int


@dataclass(frozen=True)
class TrainedRun:
    """A finished or stopped run, with the dataset it was trained on (for evaluation)."""

    job: "TrainingJob"
    dataset: "Dataset"


def init_state() -> None:
    """Set every key's default once per session."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)


def keep_widget_values(*keys: str) -> None:
    """Carry widget values across page switches (Streamlit drops a widget's state when it is not drawn)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def dataset() -> "Dataset | None":
    return st.session_state.get(DATASET)


def built() -> BuiltModel | None:
    return st.session_state.get(BUILT)


def job() -> "TrainingJob | None":
    return st.session_state.get(JOB)


def trained_run() -> TrainedRun | None:
    """The session's last run if it ended with usable weights (finished or stopped)."""
    current = job()
    if current is None or current.state not in (JobState.FINISHED, JobState.STOPPED):
        return None
    if not current.snapshot().batch_history:
        return None  # stopped before a single batch: nothing learned
    return TrainedRun(current, st.session_state[JOB_DATASET])


def set_dataset(value: "Dataset") -> None:
    st.session_state[DATASET] = value


def config() -> TrainingConfig:
    return st.session_state[TRAIN_CONFIG]


def _per_run(key: str, run: TrainedRun, make):
    """`make()` computed once per run and kept under `key` until another run replaces it."""
    cached = st.session_state.get(key)
    if cached is None or cached[0] is not run.job:
        cached = (run.job, make())
        st.session_state[key] = cached
    return cached[1]


def evaluation_for(run: TrainedRun) -> "Evaluation":
    """The test-set evaluation of `run`, computed once per run."""
    from core.evaluation import evaluate

    data = run.dataset
    return _per_run(EVALUATION, run, lambda: evaluate(run.job.model, data.x_test, data.y_test, data.class_names))


def predictor_for(run: TrainedRun) -> "Predictor":
    """A fast single-image predictor for `run`'s model, built once per run."""
    from core.inference import Predictor

    return _per_run(PREDICTOR, run, lambda: Predictor(run.job.model))
