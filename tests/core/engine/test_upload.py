"""An uploaded model becomes a run: checked where it arrives, kept with its file, then loaded and scored on the
test images by a training process (`execute`)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from core.engine.execute import execute
from core.engine.upload import import_model
from core.errors import ModelFileError
from core.evaluation.metrics import evaluate
from core.model.build import build_model
from core.runs.status import RunState
from core.runs.store import RunStore
from tests.core.engine.conftest import TINY


def keras_bytes(model, folder) -> bytes:
    path = folder / "upload.keras"
    model.save(path)
    return path.read_bytes()


def test_an_uploaded_model_is_a_finished_run_scored_on_the_test_images(tmp_path, bars_data):
    model = build_model(TINY, bars_data.input_shape, bars_data.num_classes, seed=4)
    data = keras_bytes(model, tmp_path)
    store = RunStore(tmp_path / "runs")
    run_id = import_model(store, data, "mine.keras", bars_data)
    assert store.run_ids() == [run_id] and store.raw_status(run_id).state is RunState.QUEUED
    assert execute(store, run_id) is RunState.FINISHED  # what a training process does with it
    status = store.status(run_id)
    assert status.state is RunState.FINISHED
    assert re.fullmatch(r"Uploaded model file mine\.keras: \d+\.\d\d% on 80 test images\.", status.message)
    spec = store.spec(run_id)
    assert (spec.dataset, spec.architecture, spec.training, spec.label, spec.origin) == (
        bars_data.ref, None, None, "mine.keras", "upload")
    assert store.model_bytes(run_id) == data  # the file as uploaded
    details = store.spec_file(run_id)["details"]
    assert (details["params"], details["model_file"], details["layers"]) == (
        model.count_params(), "mine.keras", len(model.layers) - 1)  # (the input layer not counted)
    assert (details["test_images"], details["num_classes"]) == (len(bars_data.x_test), bars_data.num_classes)
    expected = evaluate(model, bars_data.x_test, bars_data.y_test, bars_data.class_names)
    assert store.test_metrics(run_id)["accuracy"] == pytest.approx(expected.accuracy)
    assert store.test_metrics(run_id)["images"] == len(bars_data.x_test)
    np.testing.assert_allclose(store.test_probabilities(run_id), expected.probabilities, atol=1e-5)


def test_nothing_is_kept_of_a_model_that_cannot_become_a_run(tmp_path, bars, bars_data):
    store = RunStore(tmp_path / "runs")
    fits = keras_bytes(build_model(TINY, bars_data.input_shape, bars_data.num_classes), tmp_path)
    assert bars.ref is None  # arrays made in memory: a run could not load them again
    with pytest.raises(ModelFileError, match=r"^the current dataset cannot be loaded again later; load it from "
                                             r"the Data page first\.$"):
        import_model(store, fits, "mine.keras", bars)
    with pytest.raises(ModelFileError, match=r"^other\.keras predicts 3 classes, but the current dataset has 4\.$"):
        import_model(store, keras_bytes(build_model(TINY, bars_data.input_shape, 3), tmp_path), "other.keras",
                     bars_data)
    assert store.run_ids() == []


def test_an_upload_keras_cannot_load_fails_saying_what_is_wrong_with_the_file(tmp_path, bars_data):
    import io
    import zipfile

    model = build_model(TINY, bars_data.input_shape, bars_data.num_classes, seed=4)
    data = keras_bytes(model, tmp_path)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["model.weights.h5"] = members["model.weights.h5"][:2000]  # a download that did not finish
    cut = io.BytesIO()
    with zipfile.ZipFile(cut, "w") as archive:
        for name, member in members.items():
            archive.writestr(name, member)
    store = RunStore(tmp_path / "runs")
    run_id = import_model(store, cut.getvalue(), "mine.keras", bars_data)  # its config passes the checks
    assert execute(store, run_id) is RunState.FAILED
    assert store.status(run_id).message == ("mine.keras is cut short: its weights (model.weights.h5) end early, as "
                                            "when a download or a copy did not finish. Save or download the model "
                                            "again.")
