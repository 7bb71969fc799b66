"""Session-state keys and their defaults, in one place.

A session's data, architecture, settings and current run live in
`st.session_state`, never in a process-wide cache. Trainings themselves live
in the run store and the server's job manager (`ui.runs`); the session only
remembers which run it shows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import streamlit as st

from core.model.architecture import PRESETS, Architecture, LayerTable
from core.training.config import TRAINING_PRESETS, TrainingConfig

if TYPE_CHECKING:
    from core.data.dataset import Dataset

DATASET = "dataset"                # core.data.dataset.Dataset in use, or None
DATASET_CHOICE = "dataset_choice"  # registry key, CHOICE_NPZ or CHOICE_IMAGES
CHOICE_NPZ, CHOICE_IMAGES = "upload", "images"  # the Data page's two upload choices
DATA_UPLOAD_ID = "data_upload_id"  # file id of the last parsed upload (each upload is parsed once)
ARCHITECTURE = "architecture"      # Architecture being edited on the Architecture page
BUILT = "built"                    # BuiltArchitecture, after Build
TRAIN_CONFIG = "train_config"      # TrainingConfig being edited on the Training page
OWNER = "owner"                    # this browser session's id, for the job manager's queue
CURRENT_RUN = "current_run"        # id of the run this session shows, or None
URL_RUN = "url_run"                # the ?run= value last read from or written to the URL
RUN_PHASE = "run_phase"            # "waiting", "next", "training" or "ended": pollers rerun the page when it changes
START_ERROR = "train_start_error"  # why Start refused, shown under the button
PER_RUN = "per_run"                # {what: (run_id, value)}: reader, model, predictor, evaluation of a run

DEFAULTS: dict[str, Any] = {
    DATASET: None,
    DATASET_CHOICE: "mnist",
    ARCHITECTURE: PRESETS["lab"],
    BUILT: None,
    TRAIN_CONFIG: TRAINING_PRESETS["lab"],
    CURRENT_RUN: None,
    URL_RUN: None,
    RUN_PHASE: "ended",
    START_ERROR: None,
    PER_RUN: None,
}


@dataclass(frozen=True)
class BuiltArchitecture:
    """What Build put into the session: the architecture, the input it was checked for, its layer table.

    No Keras model is built here: the layer table already counts every parameter, and the
    training process builds the model itself.
    """

    arch: Architecture
    input_shape: tuple[int, int, int]
    num_classes: int
    table: LayerTable

    @property
    def params(self) -> int:
        return self.table.total_params


def init_state() -> None:
    """Set every key's default once per session."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault(OWNER, uuid.uuid4().hex)
    if st.session_state[PER_RUN] is None:
        st.session_state[PER_RUN] = {}


def keep_widget_values(*keys: str) -> None:
    """Carry widget values across page switches (Streamlit drops a widget's state when it is not drawn)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def dataset() -> "Dataset | None":
    return st.session_state.get(DATASET)


def set_dataset(value: "Dataset") -> None:
    st.session_state[DATASET] = value


def built() -> BuiltArchitecture | None:
    return st.session_state.get(BUILT)


def training_config() -> TrainingConfig:
    return st.session_state[TRAIN_CONFIG]


def current_run_id() -> str | None:
    return st.session_state.get(CURRENT_RUN)


def owner() -> str:
    return st.session_state[OWNER]


T = TypeVar("T")


def per_run(what: str, run_id: str, make: Callable[[], T]) -> T:
    """`make()` computed once per run and kept until the session shows another run."""
    cache: dict[str, tuple[str, Any]] = st.session_state[PER_RUN]
    cached = cache.get(what)
    if cached is None or cached[0] != run_id:
        cached = (run_id, make())
        cache[what] = cached
    return cached[1]


def refreshed_every(what: str, run_id: str, seconds: float, make: Callable[[], T]) -> T:
    """`make()` for this run, made again only when `seconds` have passed since it was last made (0: every time).

    Between two makes the page draws the very same value again, which the browser does not redraw.
    """
    now = time.monotonic()
    cached = cached_for_run(what, run_id)
    if cached is None or now - cached[0] >= seconds:
        cached = (now, make())
        st.session_state[PER_RUN][what] = (run_id, cached)
    return cached[1]


def cached_for_run(what: str, run_id: str) -> Any | None:
    """What `per_run` holds for `run_id`, without computing it."""
    cached = st.session_state[PER_RUN].get(what)
    return cached[1] if cached is not None and cached[0] == run_id else None


def forget_run_caches() -> None:
    st.session_state[PER_RUN] = {}
