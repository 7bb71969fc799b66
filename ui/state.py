"""Session-state keys and their defaults, in one place: every key a page or widget uses is declared here.

A session's data, architecture, settings and current run live in
`st.session_state`, never in a process-wide cache. Trainings themselves live
in the run store and the server's job manager (`ui.runs`); the session only
remembers which run it shows.

The keys shared by every page come first; then each page's own keys, its
widgets' included, in a namespace named after the page (`DrawPage.STROKE`),
all with the page's prefix so that two pages never share a key by accident.
`tests/test_state.py` fails on a session key written as a literal anywhere else.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import streamlit as st

from core.model.architecture import PRESETS, Architecture, LayerTable
from core.training.config import TRAINING_PRESETS, TrainingConfig

if TYPE_CHECKING:
    from core.data.dataset import Dataset

DATASET = "dataset"                # the dataset in use (a ui.loading.DatasetHandle, or a Dataset without one), or None
DATASET_CHOICE = "dataset_choice"  # registry key, CHOICE_NPZ or CHOICE_IMAGES
CHOICE_NPZ, CHOICE_IMAGES = "upload", "images"  # the Data page's two upload choices
ARCHITECTURE = "architecture"      # Architecture being edited on the Architecture page
BUILT = "built"                    # BuiltArchitecture, after Build
TRAIN_CONFIG = "train_config"      # TrainingConfig being edited on the Training page
OWNER = "owner"                    # this browser session's id, for the job manager's queue
CURRENT_RUN = "current_run"        # id of the run this session shows, or None
URL_RUN = "url_run"                # the ?run= value last read from or written to the URL
VANISHED_RUN = "vanished_run"      # the current run's id when it was deleted under this session, to say so
RUN_PHASE = "run_phase"            # a Phase: pollers rerun the page when it changes
WORKSPACE = "workspace"            # this browser's workspace id (CONVLAB_WORKSPACES=per-browser), also in the URL
START_ERROR = "train_start_error"  # why Start refused, shown under the button
CONTROL_SAID = "run_control_said"  # (kind, text) what the last pause, resume, change or continue said
PER_RUN = "per_run"                # {what: (run_id, value)}: what a session keeps of its current run, by RunCache key

DEFAULTS: dict[str, Any] = {
    DATASET: None,
    DATASET_CHOICE: "mnist",
    ARCHITECTURE: PRESETS["lab"],
    BUILT: None,
    TRAIN_CONFIG: TRAINING_PRESETS["lab"],
    CURRENT_RUN: None,
    URL_RUN: None,
    VANISHED_RUN: None,
    RUN_PHASE: None,  # Phase.ENDED, set in init_state (Phase is defined below)
    START_ERROR: None,
    CONTROL_SAID: None,
    PER_RUN: None,
}


class RunCache:
    """What a session keeps of its current run (in PER_RUN), dropped when it shows another run."""

    READER, EVALUATION = "reader", "evaluation"


class Phase(str, Enum):
    """Where the current run is, as the pollers care: they poll faster near a change, and rerun the page on one."""

    WAITING = "waiting"  # queued behind others
    NEXT = "next"  # queued, next in line, every training slot busy
    STARTING = "starting"  # handed to a training process (or about to be), no batch trained yet
    TRAINING = "training"
    ENDING = "ending"  # its last batches (or a stop): then validating, saving and scoring the test set
    ENDED = "ended"  # also: no run


# --- each page's own keys (widgets included) ------------------------------------------------------------------


class DataPage:
    SAMPLE_SEED = "data_sample_seed"  # which samples the grid shows (Reshuffle adds one)
    NPZ_UPLOAD_ID = "data_upload_id"  # file id of the last parsed .npz upload (each upload is parsed once)
    UPLOAD_ROUND = "data_upload_round"  # a loaded upload's widget is replaced, so the server lets go of its bytes

    @staticmethod
    def upload_key(kind: str, session: Any) -> str:
        """The key of the Data page's uploader of `kind` ("npz" or "img") now (`session`: the session state)."""
        return f"data_{kind}_upload_{session.get(DataPage.UPLOAD_ROUND, 0) if hasattr(session, 'get') else 0}"

    @staticmethod
    def forget_upload(session: Any) -> None:
        """After a successful load: a fresh uploader, so the upload's bytes are dropped from the server."""
        session[DataPage.UPLOAD_ROUND] = session.get(DataPage.UPLOAD_ROUND, 0) + 1
    IMAGE_SIZE, COLOR, INVERT, TEST_FRACTION = "data_img_size", "data_img_color", "data_img_invert", "data_img_fraction"
    LOAD_IMAGES = "data_img_load"
    LISTED = "data_img_listed"  # (file_id, ListedZip or the DataError that refused it): each upload is listed once
    LOADED = "data_img_loaded"  # (DatasetRef, ImageFolderReport) of the last zip loaded in this session
    PREVIEWED = "data_img_preview"  # ((file_id, options), preview pairs)


class ArchitecturePage:
    PRESET = "arch_preset_{}"  # one button per preset name
    BUILD = "arch_build"
    BLOCKS, DENSE = "arch_blocks", "arch_dense"
    AUGMENT_PREVIEW = "arch_aug_preview"  # (what it was made for, (originals, augmented copies)): once per setting

    @staticmethod
    def block(i: int) -> dict[str, str]:
        """The widgets of conv block i, by the ConvBlock field they set."""
        return {name: f"arch_b{i}_{name}" for name in
                ("filters", "kernel_size", "activation", "pooling", "batch_norm", "dropout", "padding")}

    @staticmethod
    def dense(j: int) -> dict[str, str]:
        """The widgets of dense layer j, by the DenseLayer field they set."""
        return {name: f"arch_d{j}_{name}" for name in ("units", "dropout")}

    AUGMENT = {name: f"arch_aug_{name}" for name in ("horizontal_flip", "vertical_flip", "rotation", "zoom", "shift")}


class TrainingPage:
    PRESET = "train_preset_{}"
    START, STOP, PAUSE, RESUME = "train_start", "train_stop", "train_pause", "train_resume"
    CURVES = "train_curves"
    LIVE_CURVES = "live_curves"  # (per run) the live figure and filters, remade every CHART_SECONDS
    FIELDS = {  # widget key -> TrainingConfig field
        "train_optimizer": "optimizer",
        "train_learning_rate": "learning_rate",
        "train_momentum": "momentum",
        "train_schedule": "schedule",
        "train_batch_size": "batch_size",
        "train_epochs": "epochs",
        "train_validation": "validation_fraction",
        "train_seed": "seed",
        "train_early_stopping": "early_stopping",
        "train_patience": "patience",
        "train_reduce_on_plateau": "reduce_on_plateau",
        "train_plateau_patience": "plateau_patience",
        "train_monitor": "monitor",
    }


class RunControl:
    """Changing a run's course while it trains, and continuing one, on the page `{}` (training, runs)."""

    LEARNING_RATE, SET_LEARNING_RATE = "{}_change_rate", "{}_change_rate_set"
    EPOCHS, SET_EPOCHS, FINISH = "{}_change_epochs", "{}_change_epochs_set", "{}_change_finish"
    MORE_EPOCHS, CONTINUE_RATE, CONTINUE = "{}_continue_epochs", "{}_continue_rate", "{}_continue"
    RESUME, PAUSE = "{}_control_resume", "{}_control_pause"
    TRAINING, RUNS = "training", "runs"


class EvaluationPage:
    CONFUSION = "eval_cm"
    NORMALIZED = "eval_normalized"
    TRUE_CLASS, PREDICTED_CLASS = "eval_true", "eval_pred"
    CELL_OF = "eval_cell_of"  # the run the cell's classes were first chosen for (its largest confusion)


class CanvasKeys:
    """The keys of one drawing canvas with its stroke slider and Clear button (`ui.canvas.digit_canvas`)."""

    def __init__(self, prefix: str) -> None:
        self.stroke, self.clear = f"{prefix}_stroke", f"{prefix}_clear"
        self.round = f"{prefix}_canvas_round"  # Clear adds one: a new canvas key gives an empty canvas
        self.canvas = f"{prefix}_canvas_{{}}"  # formatted with the round


class DrawPage:
    CANVAS = CanvasKeys("draw")
    UPLOAD = "draw_upload"


class InsidePage:
    CANVAS = CanvasKeys("inside")
    SOURCE = "inside_source"
    CLASS, NUMBER, MISTAKE = "inside_class", "inside_number", "inside_mistake"
    LAYER, MAPS = "inside_layer", "inside_maps"
    FILTER, ROW, COL, CHANNEL = "inside_filter", "inside_row", "inside_col", "inside_channel"
    PLACED = "inside_placed"  # (row, col) the page last put the arithmetic at: the strongest value of the map
    WHERE, ARITHMETIC = "inside_where", "inside_arith"
    EXPLAIN_CLASS, SALIENCY = "inside_explain_class", "inside_saliency"
    FILTERS, WEIGHTS = "inside_filters", "inside_weights"
    EPOCH, CONFUSION, COMPARE = "inside_epoch", "inside_cm", "inside_compare"
    OFF_DIAGONAL, CONFUSION_CHANGE = "inside_off_diagonal", "inside_cm_change"
    PROJECTION, TSNE_START, EMBEDDING = "inside_projection", "inside_tsne_start", "inside_embedding_{}"
    POLLING = "inside_polling"  # the embedding part polls while a projection runs
    # (per run, in PER_RUN)
    CONFUSION_OVER_EPOCHS, PROJECTIONS = "inside_confusion", "inside_projections"


class RunsPage:
    WHOSE = "runs_whose"  # "mine" or "everyone's" on a shared store
    DATASETS = "runs_datasets"
    TABLE = "runs_table"
    MORE_COLUMNS = "runs_more_columns"  # the table's columns shown beside those runs are compared by
    USE, APPLY = "runs_use", "runs_apply"
    USE_SAID = "runs_use_said"  # (run id, the problem "Use this run" met, or None), said once after the click
    LABEL = "runs_label_{}"  # one per run
    DELETE, DELETE_YES, DELETE_NO = "runs_delete", "runs_delete_yes", "runs_delete_no"
    CONFIRM_DELETE = "runs_confirm_delete"  # the run whose deletion waits for a confirmation
    COMPARE = "runs_compare"
    MODEL_UPLOAD = "runs_model_upload"
    MODEL_UPLOAD_ID = "runs_model_upload_id"  # file id of the last checked model upload (each is checked once)
    MODEL_UPLOAD_SAID = "runs_model_upload_said"  # (its run id or None, what its check said)
    CLEAN_UPLOADS = "runs_clean_uploads"


class SweepsPage:
    """The Sweeps page: a new sweep's settings, the sweep it shows, what its buttons said."""

    VARY = "sweeps_vary"  # the settings chosen to vary
    RANGE = "sweeps_range_{}"  # one per setting, formatted with its name: its range or its values (the widget)
    KEPT = "sweeps_kept_{}"  # what that widget said last, kept across pages (range widgets take it as their value)
    TRIALS, STRATEGY, METRIC = "sweeps_trials", "sweeps_strategy", "sweeps_metric"
    PRUNE, SEED, GRID_POINTS = "sweeps_prune", "sweeps_seed", "sweeps_grid_points"
    START = "sweeps_start"
    START_ERROR = "sweeps_start_error"  # why Start sweep refused, shown under the button
    PICK = "sweeps_pick"  # the sweep the page shows (a select box; a new sweep is put in it)
    STOP, CANCEL, RESUME = "sweeps_stop", "sweeps_cancel", "sweeps_resume"
    USE, APPLY = "sweeps_use", "sweeps_apply"
    CSV = "sweeps_csv"
    TABLE, CURVES, PARALLEL, IMPORTANCE = "sweeps_table", "sweeps_curves", "sweeps_parallel", "sweeps_importance"
    SAID = "sweeps_said"  # (kind, text): what the last Stop, Resume, Use or Apply said
    ACTIVE = "sweeps_active"  # (sweep id, whether it was running at the last poll): the page reruns once it ends
    ENDED_RUNS = "sweeps_ended_runs"  # {run id: RunSummary} of trials' runs that have ended for good
    IMPORTANCES = "sweeps_importances"  # (sweep id, completed trials, importances or why none)


class TakeAway:
    """The take-away panel (`ui.exports.take_away`): its keys on each page that shows it (formatted with the page)."""

    CHOICE = "{}_takeaway_choice"
    PREPARE = "{}_takeaway_prepare"
    PREPARED = "{}_takeaway_prepared"  # (run id, choice, what was made) on that page: one file at a time
    DOWNLOAD, DATA = "{}_takeaway_download", "{}_takeaway_data"  # its download buttons
    RUNS, EVALUATION = "runs", "eval"  # the pages


# --- what a session holds ---------------------------------------------------------------------------------


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
    if st.session_state[RUN_PHASE] is None:
        st.session_state[RUN_PHASE] = Phase.ENDED
    if st.session_state[PER_RUN] is None:
        st.session_state[PER_RUN] = {}


def keep_widget_values(*keys: str) -> None:
    """Carry widget values across page switches (Streamlit drops a widget's state when it is not drawn)."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def first_values(run_id: str, marker: str, values: dict[str, Any]) -> None:
    """Widgets' first values for a run: set when the page first shows `run_id`, or once its widgets were
    dropped (another page was shown); else the user's choices stay. The widgets take no default of their own."""
    if st.session_state.get(marker) != run_id or any(key not in st.session_state for key in values):
        st.session_state.update(values)
        st.session_state[marker] = run_id


def dataset() -> "Dataset | None":
    """The session's dataset, from the server's memory (the session keeps only a handle to it)."""
    from ui.loading import resolve

    return resolve(st.session_state.get(DATASET))


def set_dataset(value: "Dataset", store_root: str = "") -> None:
    """Make `value` the session's dataset; the session keeps a handle, the server the arrays."""
    from ui.loading import handle_of

    st.session_state[DATASET] = handle_of(value, store_root)


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


def empty(session_state: Any) -> None:
    """Drop every value a session holds (it has ended): what it refers to can then be freed."""
    for key in list(session_state.filtered_state):
        try:
            del session_state[key]
        except KeyError:  # (a widget's value, already gone with its widget)
            pass
