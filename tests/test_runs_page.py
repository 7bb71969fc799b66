"""The Runs page (AppTest): every run listed, two compared, one used, one deleted with confirmation,
damaged runs shown as such, and models uploaded by users checked before they become runs."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.engine.execute import execute
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.model.build import build_model
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import SPEC, RunStore
from core.training.config import TrainingConfig
from tests.conftest import ROOT, session_dataset, wait_for
from ui import state

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny_cnn")
WIDER = Architecture(conv_blocks=(ConvBlock(filters=12),), dense_layers=(DenseLayer(units=16),), name="wider_cnn")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2)


@pytest.fixture(scope="module")
def two_runs(bars_data, tmp_path_factory):
    """Two finished runs of the bars that differ in filters and learning rate, and a damaged one."""
    store = RunStore(tmp_path_factory.mktemp("store") / "runs")
    first = store.create(RunSpec(bars_data.ref, TINY, QUICK, label="first"), {"dataset_name": "bars.npz"})
    second = store.create(RunSpec(bars_data.ref, WIDER, TrainingConfig(optimizer="adam", learning_rate=0.02,
                                                                       batch_size=32, epochs=2), label="second"),
                          {"dataset_name": "bars.npz"})
    for run_id in (first, second):
        assert execute(store, run_id) is RunState.FINISHED
    return store, first, second


@pytest.fixture()
def runs_app(two_runs, bars_data, monkeypatch):
    store, first, second = two_runs
    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[state.DATASET] = bars_data
    return at.run().switch_page("pages/runs.py").run()


def select(at: AppTest, *rows: int) -> AppTest:
    at.session_state["runs_table"] = {"selection": {"rows": list(rows), "columns": [], "cells": []}}
    return at.run()


def listed_runs(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["run"])


def test_every_run_is_listed_with_its_metrics(runs_app, two_runs):
    store, first, second = two_runs
    assert not runs_app.exception
    table = runs_app.dataframe[0].value
    assert list(table["run"]) == [second, first]  # newest first
    assert list(table["label"]) == ["second", "first"]
    assert list(table["state"]) == ["finished", "finished"]
    assert list(table["architecture"]) == ["conv 12 · dense 16", "conv 8 · dense 16"]
    assert table["test accuracy"].iloc[1] == pytest.approx(100 * store.test_metrics(first)["accuracy"])  # percent
    assert list(table["epochs"]) == ["2/2", "2/2"]


def test_two_selected_runs_are_compared(runs_app, two_runs):
    store, first, second = two_runs
    at = select(runs_app, 0, 1)
    assert not at.exception
    assert any(h.value == "Comparing 2 runs" for h in at.subheader)
    differences = at.dataframe[1].value
    assert list(differences["setting"]) == ["architecture", "conv1.filters", "training.learning_rate"]
    assert list(differences["second"]) == ["wider_cnn", "12", "0.02"]
    assert list(differences["first"]) == ["tiny_cnn", "8", "0.01"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["first"] == f"{store.test_metrics(first)['accuracy']:.2%}"
    chart = at.get("plotly_chart")[0]
    assert chart is not None
    assert any(b.label == "Comparison (.csv)" for b in at.get("download_button"))


def test_one_run_is_used_and_evaluation_works_on_it(runs_app, two_runs):
    store, first, second = two_runs
    at = select(runs_app, 1)
    assert not any("It is now the current run" in s.value for s in at.success)
    at.button(key="runs_use").click().run()
    assert at.session_state[state.CURRENT_RUN] == first
    assert any("It is now the current run" in s.value for s in at.success)
    at.run()  # any later rerun (a widget, the table's selection) still says so
    assert any("It is now the current run" in s.value for s in at.success)
    at.switch_page("pages/evaluation.py").run()
    shown = next(m.value for m in at.metric if m.label == "Test accuracy")
    assert shown == f"{store.test_metrics(first)['accuracy']:.2%}"
    at.switch_page("pages/data.py").run()  # the Data page shows the run's dataset, and does not load another
    assert session_dataset(at).name == "bars.npz" and at.session_state[state.DATASET_CHOICE] == "upload"


def test_a_runs_settings_go_into_the_sliders(runs_app, two_runs):
    _, _, second = two_runs
    at = select(runs_app, 0)
    at.button(key="runs_apply").click().run()
    assert at.session_state[state.ARCHITECTURE] == WIDER
    assert at.session_state[state.TRAIN_CONFIG].learning_rate == 0.02
    at.switch_page("pages/architecture.py").run()
    assert at.select_slider(key="arch_b0_filters").value == 12


def test_delete_asks_for_confirmation_first(two_runs, bars_data, monkeypatch, tmp_path):
    store = RunStore(tmp_path / "runs")
    victim = store.create(RunSpec(bars_data.ref, TINY, QUICK, label="victim"), state=RunState.FINISHED)
    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run().switch_page("pages/runs.py").run()
    at = select(at, 0)
    at.button(key="runs_delete").click().run()
    assert any("Delete run **victim** and all its files" in w.value for w in at.warning)
    assert store.exists(victim)
    at.button(key="runs_delete_no").click().run()
    assert store.exists(victim)
    at = select(at, 0)
    at.button(key="runs_delete").click().run()
    at.button(key="runs_delete_yes").click().run()
    assert not store.exists(victim) and store.run_ids() == []
    assert any("No runs yet" in i.value for i in at.info)


def test_a_damaged_run_is_listed_as_such(bars_data, monkeypatch, tmp_path):
    store = RunStore(tmp_path / "runs")
    good = store.create(RunSpec(bars_data.ref, TINY, QUICK, label="good"), state=RunState.FINISHED)
    broken = store.create(RunSpec(bars_data.ref, TINY, QUICK, label="broken"), state=RunState.FINISHED)
    (store.path(broken) / SPEC).write_text('{"schema": 1, "spe')  # half written
    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run().switch_page("pages/runs.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    states = dict(zip(table["run"], table["state"]))
    assert states == {good: "finished", broken: "damaged"}
    at = select(at, list(table["run"]).index(broken))
    assert any("spec.json cannot be read" in c.value for c in at.caption)
    assert at.button(key="runs_use").disabled


# --- bring your own model ---------------------------------------------------------------------------


def keras_bytes(model) -> bytes:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.keras"
        model.save(path)
        return path.read_bytes()


def upload(runs_app: AppTest, name: str, data: bytes) -> AppTest:
    runs_app.file_uploader(key="runs_model_upload").upload(name, data, "application/octet-stream").run()
    return runs_app


def test_a_good_model_file_becomes_a_run_that_evaluation_uses(runs_app, bars_data, two_runs):
    store, *_ = two_runs
    model = build_model(TINY, bars_data.input_shape, bars_data.num_classes, seed=5)
    at = upload(runs_app, "mine.keras", keras_bytes(model))
    assert not at.exception and not at.error
    run_id = at.session_state[state.CURRENT_RUN]
    assert "passed the checks" in " ".join(s.value for s in at.success)  # checked here, scored by a worker
    wait_for(lambda: store.status(run_id).state is RunState.FINISHED, what="the upload to be scored")
    summary = store.summary(run_id)
    assert (summary.state, summary.origin, summary.label, summary.architecture) == (
        RunState.FINISHED, "upload", "mine.keras", "uploaded model")
    assert summary.test_accuracy is not None and summary.params == model.count_params()
    at.switch_page("pages/evaluation.py").run()
    assert any(m.label == "Test accuracy" for m in at.metric)
    store.delete(run_id)


def lambda_model_bytes(bars_data) -> bytes:
    import keras

    inputs = keras.Input(bars_data.input_shape)
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(bars_data.num_classes, activation="softmax")(x)
    return keras_bytes(keras.Model(inputs, outputs))


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("case, message", [
    ("lambda", "evil.keras contains a Lambda layer, which holds Python code that would run when the model is "
               "loaded; ConvLab loads models in Keras' safe mode and refuses it."),
    ("not a model", "evil.keras is a zip archive but not a Keras model: it lacks model.weights.h5."),
    ("wrong shape", "evil.keras takes inputs of shape 28x28x1, but the current dataset's images are 12x12x1."),
    ("random bytes", "evil.keras is not a Keras model file: a .keras file is a zip archive"),
])
def test_broken_and_hostile_model_files_are_refused_with_their_reason(runs_app, bars_data, two_runs, case, message):
    store, *_ = two_runs
    before = store.run_ids()
    if case == "lambda":
        data = lambda_model_bytes(bars_data)
    elif case == "not a model":
        data = zip_bytes({"readme.txt": b"hello", "config.json": b"{}"})
    elif case == "wrong shape":
        data = keras_bytes(build_model(TINY, (28, 28, 1), bars_data.num_classes))
    else:
        data = np.random.default_rng(0).bytes(5000)
    at = upload(runs_app, "evil.keras", data)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(f"Refused: {message}"), errors
    assert store.run_ids() == before  # nothing kept of a refused file


def test_the_current_run_marker_moves_at_once_when_a_run_is_used(runs_app, two_runs):
    _, first, second = two_runs
    at = select(runs_app, 1)
    at.button(key="runs_use").click().run()
    table = at.dataframe[0].value
    assert dict(zip(table["run"], table[""])) == {second: "", first: "▶"}  # in the very rerun of the click
    at = select(at, 0)
    at.button(key="runs_use").click().run()
    table = at.dataframe[0].value
    assert dict(zip(table["run"], table[""])) == {second: "▶", first: ""}


def test_the_table_shows_the_columns_runs_are_compared_by_and_the_rest_on_request(runs_app):
    import json

    proto = runs_app.dataframe[0].proto
    assert list(proto.column_order) == ["", "label", "dataset", "architecture", "epochs", "best val accuracy",
                                        "test accuracy", "state"]
    config = json.loads(proto.columns)
    assert config["test accuracy"]["type_config"]["format"] == "%.2f%%"  # 97.00% beside 96.57%
    assert config["best val accuracy"]["type_config"]["format"] == "%.2f%%"
    runs_app.multiselect(key="runs_more_columns").set_value(["run", "continues"]).run()
    assert list(runs_app.dataframe[0].proto.column_order)[-2:] == ["continues", "run"]
