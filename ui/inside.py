"""Streamlit helpers of the "Inside the network" page: the per-run explainer, the input pickers, the test set's
projections (PCA, t-SNE) off the page's thread, and the explanation beside each view.

Every computation is `core.explain`'s; this module only caches its results in the session (per run) and
draws widgets.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import numpy as np
import streamlit as st

from core.explain.glossary import EXPLANATIONS
from ui import canvas, runs, state
from ui.runs import UsableRun

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from core.data.dataset import Dataset
    from core.explain.confusion import ConfusionOverEpochs
    from core.explain.embedding import Embedding, EmbeddingFeatures
    from core.explain.network import Explainer

EMBEDDED_IMAGES = 2000  # test images projected by PCA (features and PCA: about a second on 2 idle cores)
TSNE_IMAGES = 1000  # of those, projected by t-SNE (seconds on 2 idle cores; a minute on a loaded machine)
MISTAKES = 50  # the most confident mistakes offered as inputs
DRAWING, TEST_IMAGE, MISTAKE = "drawing", "test image", "mistake"
SOURCE_LABELS = {DRAWING: "Draw a digit", TEST_IMAGE: "A test image, by class", MISTAKE: "A confident mistake"}


class Picked(NamedTuple):
    """The input to look inside: an (H, W, C) float32 image in [0, 1], and what it is."""

    image: np.ndarray
    caption: str
    true_class: int | None = None


def explained(key: str, ratio: tuple[int, int] = (3, 1)) -> "DeltaGenerator":
    """Two columns: the explanation of `key` on the right; returns the left one for the view."""
    view, words = st.columns(ratio, vertical_alignment="top")
    words.caption(EXPLANATIONS[key])
    return view


# --- what is computed once per run ------------------------------------------------------------------------


def explainer_for(run: UsableRun) -> "tuple[Explainer | None, str | None]":
    """The run's Explainer (built once per session and run), or (None, why it cannot look inside this model)."""
    from core.explain.network import Explainer

    def make() -> "tuple[Explainer | None, str | None]":
        try:
            return Explainer(runs.model_for(run)), None
        except ValueError as error:
            return None, f"ConvLab cannot look inside this model: {error}"

    return state.per_run("inside_explainer", run.run_id, make)


def confusion_for(run: UsableRun) -> "ConfusionOverEpochs | None":
    """The run's confusion matrices over its epochs (None when its training recorded none)."""
    from core.explain.confusion import confusion_over_epochs

    return state.per_run("inside_confusion", run.run_id,
                         lambda: confusion_over_epochs(runs.store().confusion(run.run_id)))


# --- projections in threads the session owns ---------------------------------------------------------------


class BackgroundJob:
    """One function run in a daemon thread; the script reads its outcome under a lock. It never calls Streamlit."""

    def __init__(self, function: Callable[[], Any]) -> None:
        self._function = function
        self._lock = threading.Lock()
        self._result: Any = None
        self._error: BaseException | None = None
        self._started = time.monotonic()
        self._seconds: float | None = None
        self._thread = threading.Thread(target=self._run, name="convlab-inside-tsne", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            result, error = self._function(), None
        except Exception as exc:  # noqa: BLE001 - handed to the page, which shows it
            result, error = None, exc
        with self._lock:
            self._result, self._error = result, error
            self._seconds = time.monotonic() - self._started

    def wait(self, timeout: float | None = None) -> bool:
        """Block until done (for tests and scripts, never in a page); True if it is."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def outcome(self) -> tuple[bool, Any, BaseException | None, float]:
        """(done, result, error, seconds so far or taken)."""
        with self._lock:
            done = self._seconds is not None
            return done, self._result, self._error, self._seconds if done else time.monotonic() - self._started


def _project_test_images(explainer: "Explainer", data: "Dataset", method: str,
                         before: BackgroundJob | None) -> "tuple[EmbeddingFeatures, Embedding]":
    """In the job's thread: (features, projection); t-SNE reuses the features PCA computed (`before`)."""
    from core.explain.embedding import project

    if before is None:
        features = explainer.embedding_features(data.x_test, data.y_test, max_points=EMBEDDED_IMAGES)
        return features, project(features, "pca")
    before.wait()
    _, result, error, _ = before.outcome()
    if error is not None:
        raise error
    features = result[0].subset(TSNE_IMAGES)
    return features, project(features, "tsne")


def projection(run: UsableRun, explainer: "Explainer", method: str, start: bool = False) -> BackgroundJob | None:
    """The session's job projecting the run's test images by `method` ("pca" or "tsne"), started if `start`."""
    jobs: dict[str, BackgroundJob] = state.per_run("inside_projections", run.run_id, dict)
    if method not in jobs and start:
        before = None if method == "pca" else projection(run, explainer, "pca", start=True)
        jobs[method] = BackgroundJob(functools.partial(_project_test_images, explainer, run.dataset, method, before))
    return jobs.get(method)


def start_and_poll(run: UsableRun, explainer: "Explainer") -> bool:
    """Start the PCA of the test images (once per run); True while a projection is running: the part polls.

    Remembered, so that the part can stop polling once it sees the work done (`stop_polling`).
    """
    projection(run, explainer, "pca", start=explainer.feature_layer is not None)
    jobs: dict[str, BackgroundJob] = state.per_run("inside_projections", run.run_id, dict)
    polling = any(not job.outcome()[0] for job in jobs.values())
    st.session_state["inside_polling"] = polling
    return polling


def stop_polling() -> bool:
    """True once, when the work ended while the part was polling: rerun the page to stop the polling."""
    was = bool(st.session_state.get("inside_polling"))
    st.session_state["inside_polling"] = False
    return was


# --- the input ------------------------------------------------------------------------------------------------


def source_choices(run: UsableRun) -> tuple[str, ...]:
    return (DRAWING, TEST_IMAGE, MISTAKE) if run.dataset.handwritten_digits else (TEST_IMAGE, MISTAKE)


def drawn_input(run: UsableRun, view: "DeltaGenerator") -> Picked | None:
    """The canvas on the left, what the network sees on the right; None (and a prompt) while it is empty."""
    from core.data.drawing import preprocess_drawing, scale_drawing_to

    st.session_state.setdefault("inside_canvas_round", 0)
    pad, side = view.columns([3, 2])
    with side:
        stroke = st.slider("Stroke width", 4, 40, canvas.CANVAS_SIZE // 15, key="inside_stroke")
        if st.button("Clear", icon=":material/delete:", key="inside_clear"):
            st.session_state["inside_canvas_round"] += 1  # a new key gives an empty canvas
    with pad:
        st.write("")  # room for the canvas's floating toolbar
        key = f"inside_canvas_{st.session_state['inside_canvas_round']}"
        rgba = canvas.draw_canvas(key, stroke)  # looked up on each call: page tests replace it
    steps = preprocess_drawing(rgba)
    if steps is None:
        side.info("Draw a digit on the canvas: its feature maps, their arithmetic and the saliency maps follow "
                  "each stroke.", icon=":material/draw:")
        return None
    image = scale_drawing_to(steps, run.dataset.input_shape)[0]
    return Picked(image, "your drawing, preprocessed as MNIST (cropped, 20x20, centred by mass)")


def test_input(run: UsableRun, view: "DeltaGenerator") -> Picked | None:
    data = run.dataset
    left, right = view.columns(2)
    names = data.class_names
    cls = left.selectbox("Class", range(len(names)), format_func=lambda i: str(names[i]), key="inside_class")
    members = np.flatnonzero(data.y_test == cls)
    if not len(members):
        view.info(f"The test set has no image of class {names[cls]}.")
        return None
    number = right.number_input(f"Image (1 to {len(members)})", 1, len(members), 1, key="inside_number") \
        if len(members) > 1 else 1
    index = int(members[min(int(number), len(members)) - 1])
    return Picked(data.x_test[index], f"test image {index} (class {names[cls]})", cls)


def mistake_input(run: UsableRun, view: "DeltaGenerator") -> Picked | None:
    data, result = run.dataset, runs.evaluation_for(run)
    wrong = [int(i) for i in result.misclassified(limit=MISTAKES)]
    if not wrong:
        view.info("This model makes no mistake on the test set: pick a test image instead.")
        return None
    names = data.class_names

    def label(i: int) -> str:
        said = f"{names[result.y_pred[i]]} ({result.confidence[i]:.0%})"
        return f"test image {i}: {names[result.y_true[i]]} read as {said}"

    index = view.selectbox(f"One of the {len(wrong)} most confident mistakes", wrong, format_func=label,
                           key="inside_mistake")
    true, said = int(result.y_true[index]), int(result.y_pred[index])
    return Picked(data.x_test[index], f"test image {index}: a {names[true]} the model read as {names[said]}. Why "
                  f"did it say {names[said]}? Pick class {names[true]} below to see what spoke for the truth.", true)


PICKERS = {DRAWING: drawn_input, TEST_IMAGE: test_input, MISTAKE: mistake_input}


def clamp(key: str, low: int, high: int, default: int) -> None:
    """Keep a number input's stored value in [low, high] before it is drawn (its bounds change with the layer)."""
    value = st.session_state.get(key, default)
    st.session_state[key] = int(min(max(value if isinstance(value, (int, np.integer)) else default, low), high))


def select_cell(key: str) -> None:
    """on_select of the clickable map: the clicked cell becomes the row and column of the arithmetic."""
    points = [p for p in st.session_state[key].selection.points if "x" in p and "y" in p]
    if points:
        st.session_state["inside_row"] = int(points[0]["y"])
        st.session_state["inside_col"] = int(points[0]["x"])
