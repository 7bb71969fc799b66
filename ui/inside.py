"""Streamlit helpers of the "Inside the network" page: the per-run explainer and confusion matrices, the test
set's projections (PCA, t-SNE) off the page's thread, and the explanation beside each view.

Every computation is `core.explain`'s; this module only caches its results in the session (per run) and
draws widgets.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import streamlit as st

from core.explain.glossary import EXPLANATIONS
from ui import runs, state
from ui.runs import UsableRun
from ui.state import InsidePage as KEYS

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from core.data.dataset import Dataset
    from core.explain.confusion import ConfusionOverEpochs
    from core.explain.embedding import Embedding, EmbeddingFeatures
    from core.explain.network import Explainer

EMBEDDED_IMAGES = 2000  # test images projected by PCA (features and PCA: about a second on 2 idle cores)
TSNE_IMAGES = 1000  # of those, projected by t-SNE (seconds on 2 idle cores; a minute on a loaded machine)


def explained(key: str, ratio: tuple[int, int] = (3, 1)) -> "DeltaGenerator":
    """Two columns: the explanation of `key` on the right; returns the left one for the view."""
    view, words = st.columns(ratio, vertical_alignment="top")
    words.caption(EXPLANATIONS[key])
    return view


# --- what is computed once per run ------------------------------------------------------------------------


def explainer_for(run: UsableRun) -> "tuple[Explainer | None, str | None]":
    """The run's Explainer (built once per server and run), or (None, why it cannot look inside this model)."""
    from core.explain.network import Explainer

    def make() -> "tuple[Explainer | None, str | None]":
        try:
            return Explainer(runs.model_for(run)), None
        except ValueError as error:
            return None, f"ConvLab cannot look inside this model: {error}"

    return runs.shared_for_run("explainer", run, make)


def confusion_for(run: UsableRun) -> "ConfusionOverEpochs | None":
    """The run's confusion matrices over its epochs (None when its training recorded none)."""
    from core.explain.confusion import confusion_over_epochs

    return state.per_run(KEYS.CONFUSION_OVER_EPOCHS, run.run_id,
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
    jobs: dict[str, BackgroundJob] = state.per_run(KEYS.PROJECTIONS, run.run_id, dict)
    if method not in jobs and start:
        before = None if method == "pca" else projection(run, explainer, "pca", start=True)
        jobs[method] = BackgroundJob(functools.partial(_project_test_images, explainer, run.dataset, method, before))
    return jobs.get(method)


def start_and_poll(run: UsableRun, explainer: "Explainer") -> bool:
    """Start the PCA of the test images (once per run); True while a projection is running: the part polls.

    Remembered, so that the part can stop polling once it sees the work done (`stop_polling`).
    """
    projection(run, explainer, "pca", start=explainer.feature_layer is not None)
    jobs: dict[str, BackgroundJob] = state.per_run(KEYS.PROJECTIONS, run.run_id, dict)
    polling = any(not job.outcome()[0] for job in jobs.values())
    st.session_state[KEYS.POLLING] = polling
    return polling


def stop_polling() -> bool:
    """True once, when the work ended while the part was polling: rerun the page to stop the polling."""
    was = bool(st.session_state.get(KEYS.POLLING))
    st.session_state[KEYS.POLLING] = False
    return was
