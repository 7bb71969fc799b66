"""Shared fixtures: tiny learnable datasets, the optional real MNIST file, quiet TensorFlow."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.data.dataset import Dataset, make_dataset  # noqa: E402


def bars_arrays(n_train: int = 240, n_test: int = 80, size: int = 12, seed: int = 0):
    """Raw uint8 images of four easy classes: horizontal, vertical, diagonal bar, and a box."""
    rng = np.random.default_rng(seed)

    def draw(label: int) -> np.ndarray:
        image = rng.integers(0, 40, size=(size, size)).astype(np.float64)
        offset = int(rng.integers(2, size - 3))
        if label == 0:
            image[offset, 1:-1] = 255
        elif label == 1:
            image[1:-1, offset] = 255
        elif label == 2:
            np.fill_diagonal(image, 255)
        else:
            image[2, 2:-2] = image[-3, 2:-2] = image[2:-2, 2] = image[2:-2, -3] = 255
        return image

    def batch(n: int):
        labels = np.arange(n) % 4
        return np.stack([draw(int(k)) for k in labels]).astype(np.uint8), labels.astype(np.uint8)

    return (*batch(n_train), *batch(n_test))


def wait_for(condition: Callable[[], object], timeout: float = 180.0, what: str = "condition") -> None:
    """Await a condition that another process or thread makes true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def training(store, run_id: str) -> bool:
    """The run's worker is past its first batch, in its log and in its status (which says where a kill hit)."""
    from core.runs.status import RunState

    status = store.status(run_id)
    return (status.state is RunState.RUNNING and status.progress.epoch >= 1
            and bool(store.reader(run_id).snapshot().batches))


@pytest.fixture(scope="session")
def bars() -> Dataset:
    """A tiny 12x12, 4-class dataset a small CNN learns in one epoch."""
    return make_dataset("bars", *bars_arrays(), source="synthetic bars", origin="bars",
                        class_names=("horizontal", "vertical", "diagonal", "box"))


@pytest.fixture(scope="session")
def bars_data(tmp_path_factory) -> Dataset:
    """The bars saved as an .npz file and loaded from it: a dataset with a reference, so that a training
    process (or a run used again) can load it again."""
    from core.data.registry import load_file

    path = tmp_path_factory.mktemp("bars") / "bars.npz"
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return load_file(path)


def make_apptest_run_app_py() -> Callable[[], None]:
    """Make AppTest run app.py on every run, as the server does; returns the undo.

    The server runs app.py (which calls st.navigation) on every rerun. Streamlit 1.67's AppTest resets
    `PagesManager.uses_pages_directory` before each run and, finding our pages/ folder, would rerun a page
    file alone, skipping app.py (session hooks, the URL, the sidebar). st.navigation sets the flag to False
    in the server; this does the same for AppTest.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    return lambda: setattr(PagesManager, "__init__", original)


@pytest.fixture(autouse=True, scope="session")
def apptest_runs_app_py_on_every_run():
    undo = make_apptest_run_app_py()
    yield
    undo()


def session_dataset(at) -> Dataset | None:
    """The dataset an AppTest session uses (the session keeps a handle; the server's memory the arrays)."""
    from ui.loading import resolve
    from ui.state import DATASET

    return resolve(at.session_state[DATASET]) if DATASET in at.session_state else None
