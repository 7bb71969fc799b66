"""Take it away (AppTest): from the Runs and Evaluation pages, a notebook, a report and checked model exports
are made on a click and offered for download; a model too big, or a busy server, is refused politely."""

from __future__ import annotations

import io

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import limits
from core.data.folders import stored_ref
from core.data.pictures import ImageFolderOptions
from core.data.registry import load_images
from core.export.notebook import arrays_npz
from core.model.architecture import PRESETS
from core.runs.details import run_details
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TRAINING_PRESETS
from tests.conftest import ROOT, zip_folder
from tests.core.export.conftest import LAB_RECIPE, trained_run
from ui import state
from ui.state import TakeAway


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory) -> tuple[RunStore, str]:
    store = RunStore(tmp_path_factory.mktemp("takeaway") / "runs")
    return store, trained_run(store, PRESETS["lab"], LAB_RECIPE, "lab on digits")


@pytest.fixture()
def runs_page(digits_store, monkeypatch):
    store, _ = digits_store
    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run().switch_page("pages/runs.py").run()
    at.session_state[state.RunsPage.TABLE] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    return at.run()


def make(at: AppTest, page: str, choice: str) -> AppTest:
    at.selectbox(key=TakeAway.CHOICE.format(page)).set_value(choice).run()
    return at.button(key=TakeAway.PREPARE.format(page)).click().run()


def downloads(at: AppTest) -> list[str]:
    return [button.label for button in at.get("download_button")]


@pytest.mark.parametrize("choice, suffix, says", [
    ("notebook", ".ipynb", "reproduces the run"),
    ("report", ".html", "without a network"),
    ("onnx", ".onnx", "checked with onnxruntime"),
    ("litert", ".tflite", "checked with ai-edge-litert"),
])
def test_the_runs_page_makes_each_thing_on_a_click(runs_page, digits_store, choice, suffix, says):
    _, run_id = digits_store
    at = make(runs_page, TakeAway.RUNS, choice)
    assert not at.exception
    assert any(says in message.value for message in at.success), [m.value for m in at.success]
    assert f"Download {run_id}{suffix}" in downloads(at)


def test_the_evaluation_page_has_the_same_panel(digits_store, monkeypatch):
    store, run_id = digits_store
    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.query_params["run"] = run_id
    at = at.run().switch_page("pages/evaluation.py").run()
    at = make(at, TakeAway.EVALUATION, "keras")
    assert not at.exception
    assert f"Download {run_id}.keras" in downloads(at)
    assert any("largest difference from Keras" in message.value for message in at.success)


def test_a_model_too_big_for_the_dashboard_is_sent_to_the_cli(runs_page, monkeypatch):
    monkeypatch.setattr(limits, "MAX_EXPORT_PARAMS", 1000)
    at = make(runs_page, TakeAway.RUNS, "onnx")
    assert any("python -m core export" in message.value for message in at.warning)
    assert not any(label.endswith(".onnx") for label in downloads(at))


def test_a_busy_server_asks_to_try_again(runs_page):
    from ui.exports import _export_slots

    slots = _export_slots()
    assert slots.acquire(blocking=False)
    try:
        at = make(runs_page, TakeAway.RUNS, "saved_model")
    finally:
        slots.release()
    assert any("try again" in message.value for message in at.info)


def test_a_zip_of_pictures_gets_its_decoded_pixels_beside_the_notebook(shapes, tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs")
    digest, _ = store.store_dataset_file(zip_folder(shapes), "my shapes.zip", ".zip")
    dataset, _ = load_images(stored_ref(digest, "my shapes.zip", ImageFolderOptions(image_size=16)),
                             store.stored_dataset_path)
    store.create(RunSpec(dataset.ref, PRESETS["lab"], TRAINING_PRESETS["lab"]), run_details(dataset, 1),
                 state=RunState.FINISHED)
    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run().switch_page("pages/runs.py").run()
    at.session_state[state.RunsPage.TABLE] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at = make(at.run(), TakeAway.RUNS, "notebook")
    assert not at.exception
    data_button = at.get("download_button")[-1]
    assert data_button.label.endswith("-data.npz")
    assert any("put it in the notebook's folder" in message.value for message in at.success)
    with np.load(io.BytesIO(arrays_npz(dataset))) as arrays:  # what the button hands out: the decoded pixels
        assert arrays["x_train"].shape == (len(dataset.x_train), 16, 16)
