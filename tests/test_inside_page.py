"""The "Inside the network" page with Streamlit's AppTest: on finished runs trained here (grey and colour bars,
with and without pooling and batch norm), an uploaded model without convolutions, and no run at all."""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import replace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.drawing import preprocess_drawing, scale_drawing_to
from core.data.registry import load_file
from core.engine.execute import execute
from core.explain.network import Explainer
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.model.files import load_model_file
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TrainingConfig
from tests.conftest import ROOT, bars_arrays
from ui import state

PAGE = "pages/inside.py"
TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny_cnn")
# two blocks, batch norm, no pooling, 'same' padding: every stage but pooling, and a second conv reading 6 maps
DEEPER = Architecture(conv_blocks=(ConvBlock(filters=6, batch_norm=True, pooling="none", padding="same"),
                                   ConvBlock(filters=5, batch_norm=True, pooling="none", padding="same")),
                      dense_layers=(DenseLayer(units=12),), name="bn_no_pool")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2)


@pytest.fixture(autouse=True)
def empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))


def save_bars(path, colour: bool = False):
    x_train, y_train, x_test, y_test = bars_arrays()
    if colour:  # the bars in red on a blue-ish background: (N, 12, 12, 3)
        x_train, x_test = (np.stack([x, x // 4, 255 - x], axis=-1).astype(np.uint8) for x in (x_train, x_test))
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return load_file(path)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("inside") / "runs")


def trained(store: RunStore, dataset, arch: Architecture) -> str:
    run_id = store.create(RunSpec(dataset.ref, arch, QUICK, label=arch.name), {"dataset_name": dataset.name})
    assert execute(store, run_id) is RunState.FINISHED
    return run_id


@pytest.fixture(scope="module")
def grey(store, tmp_path_factory):
    dataset = save_bars(tmp_path_factory.mktemp("grey") / "bars.npz")
    return dataset, {arch.name: trained(store, dataset, arch) for arch in (TINY, DEEPER)}


@pytest.fixture(scope="module")
def colour(store, tmp_path_factory):
    dataset = save_bars(tmp_path_factory.mktemp("colour") / "colour-bars.npz", colour=True)
    return dataset, trained(store, dataset, TINY)


def open_page(store: RunStore, run_id: str | None, monkeypatch, drawing=None, digits: bool = False) -> AppTest:
    """The page with `run_id` as the session's current run; optionally the canvas replaced and the data digits."""
    import ui.canvas
    import ui.runs

    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    monkeypatch.setattr(ui.canvas, "draw_canvas", lambda key, stroke_width: drawing)
    if digits:
        real = ui.runs.dataset_of
        monkeypatch.setattr(ui.runs, "dataset_of", lambda spec: replace(real(spec), handwritten_digits=True))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"
    at.session_state[state.CURRENT_RUN] = run_id
    at.session_state[state.URL_RUN] = run_id
    at.run().switch_page(PAGE).run()
    assert not at.exception, at.exception
    if drawing is not None:  # (the page opens on a test image)
        at.radio(key="inside_source").set_value("drawing").run()
    return at


def figures(at: AppTest) -> dict[str, dict]:
    """Every plotly chart on the page, by its title."""
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def titled(at: AppTest, pattern: str) -> dict:
    found = [spec for title, spec in figures(at).items() if re.search(pattern, title)]
    assert len(found) == 1, f"no single figure titled /{pattern}/ among {list(figures(at))}"
    return found[0]


def array(value) -> np.ndarray:
    """A figure's array: plotly sends numpy arrays base64-encoded ({"dtype", "bdata", "shape"})."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


def image_captions(at: AppTest) -> list[str]:
    return [image.caption for element in at.get("image") for image in element.proto.imgs]


def panel_titles(spec: dict) -> list[str]:
    return [a["text"] for a in spec["layout"].get("annotations", [])]


def a_vertical_stroke() -> np.ndarray:
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[40:240, 130:150, 3] = 255
    return drawing


def model_input(store: RunStore, run_id: str, drawing: np.ndarray) -> tuple[Explainer, np.ndarray]:
    explainer = Explainer(load_model_file(store.model_path(run_id)))
    return explainer, scale_drawing_to(preprocess_drawing(drawing), explainer.input_shape)[0]


# --- no run, no convolutions ----------------------------------------------------------------------------------


def test_without_a_run_the_page_says_where_to_get_one(store, monkeypatch):
    at = open_page(store, None, monkeypatch)
    assert [i.value for i in at.info] == [
        "Nothing to look inside yet: train a model on **Training** (a stopped run counts too), or pick one on "
        "**Runs**."]
    assert not at.get("plotly_chart")


def test_an_uploaded_model_without_convolutions_is_explained(store, grey, monkeypatch):
    import keras

    from core.engine.upload import import_model

    dataset, _ = grey
    model = keras.Sequential([keras.Input(dataset.input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(dataset.num_classes, activation="softmax")], name="flat")
    buffer = io.BytesIO()
    path = store.root / "flat.keras"
    model.save(path)
    buffer.write(path.read_bytes())
    run_id = import_model(store, buffer.getvalue(), "flat.keras", dataset)
    assert execute(store, run_id) is RunState.FINISHED  # (what a training process does with it)
    at = open_page(store, run_id, monkeypatch)
    assert [i.value for i in at.info] == ["ConvLab cannot look inside this model: model 'flat' has no Conv2D layer "
                                          "at its top level: nothing to look inside."]
    assert not at.error


# --- a drawing on a digit dataset ------------------------------------------------------------------------------


def test_a_digit_model_opens_on_a_test_image_with_the_arithmetic_where_the_map_is_strongest(store, grey, monkeypatch):
    dataset, runs = grey
    at = open_page(store, runs["tiny_cnn"], monkeypatch, digits=True)
    assert at.radio(key="inside_source").value == "test image"  # not the empty canvas
    index = int(np.flatnonzero(dataset.y_test == 0)[0])
    assert image_captions(at) == [f"test image {index} (class {dataset.class_names[0]})"]
    assert [m.label for m in at.metric] == ["Prediction"]
    explainer = Explainer(load_model_file(store.model_path(runs["tiny_cnn"])))
    trace = explainer.activations(dataset.x_test[index])
    row, col = trace.strongest("conv1", 0)
    assert (at.number_input(key="inside_row").value, at.number_input(key="inside_col").value) == (row, col)
    assert any(m.value.startswith(f"`conv1[{row}, {col}, 0]`") for m in at.markdown)
    at.number_input(key="inside_filter").set_value(3).run()  # another filter: its own strongest place
    row3, col3 = trace.strongest("conv1", 3)
    assert (at.number_input(key="inside_row").value, at.number_input(key="inside_col").value) == (row3, col3)
    at.number_input(key="inside_col").set_value((col3 + 1) % 10).run()  # the user's place stays
    at.number_input(key="inside_filter").set_value(4).run()
    assert (at.number_input(key="inside_row").value, at.number_input(key="inside_col").value) == (row3,
                                                                                                  (col3 + 1) % 10)


def test_an_empty_canvas_asks_for_a_digit(store, grey, monkeypatch):
    _, runs = grey
    at = open_page(store, runs["tiny_cnn"], monkeypatch, np.zeros((280, 280, 4), np.uint8), digits=True)
    assert at.radio(key="inside_source").options == ["Draw a digit", "A test image, by class", "A confident mistake"]
    assert any(i.value.startswith("Draw a digit on the canvas") for i in at.info)
    assert not [m for m in at.metric if m.label == "Prediction"]
    titled(at, r"Kernel weights of each layer")  # the views that need no input are there


def test_a_drawing_shows_its_feature_maps_arithmetic_and_saliency(store, grey, monkeypatch):
    dataset, runs = grey
    drawing = a_vertical_stroke()
    at = open_page(store, runs["tiny_cnn"], monkeypatch, drawing, digits=True)
    explainer, image = model_input(store, runs["tiny_cnn"], drawing)
    trace = explainer.activations(image)
    predicted = [m.value for m in at.metric if m.label == "Prediction"]
    assert predicted == [dataset.class_names[trace.predicted_class]]

    # every layer of the block, with its shape; the grid of the chosen one
    assert at.selectbox(key="inside_layer").options == [
        "block 1 · conv · conv1 → 10x10x8", "block 1 · activation · conv1_relu → 10x10x8",
        "block 1 · pooling · pool1 → 5x5x8"]
    titled(at, r"^conv1 \(Conv2D\): 8 maps of 10x10$")
    at.selectbox(key="inside_layer").set_value("pool1").run()
    maps = titled(at, r"^pool1 \(MaxPooling2D\): 8 maps of 5x5$")
    assert maps["data"][1]["text"] == [str(i) for i in range(8)]  # each map labelled by its filter number,
    assert maps["data"][1]["textfont"]["size"] >= 13  # large enough to read

    # one value of conv1, computed: the sum and bias shown equal the value the map holds
    at.number_input(key="inside_filter").set_value(5).run()
    at.number_input(key="inside_row").set_value(2).run()
    at.number_input(key="inside_col").set_value(7).run()
    sentence = next(m.value for m in at.markdown if m.value.startswith("`conv1[2, 7, 5]`"))
    numbers = [float(x) for x in re.findall(r"\*\*(-?\d+\.\d+)\*\*", sentence)]
    expected = float(trace.feature_maps["conv1"][2, 7, 5])
    assert numbers == pytest.approx([expected, expected], abs=2e-4)
    a = explainer.conv_arithmetic(trace, "conv1", 2, 7, 5)
    assert f"sum of the 9 products (3x3x1) {a.total:.4f} + bias {a.bias:.4f}" in sentence
    assert titled(at, r"^Row 2, column 7 of filter 5: the 3x3 window it reads$")
    arith = titled(at, r"^conv1\[2, 7, 5\]: sum ")
    np.testing.assert_allclose(array(arith["data"][1]["z"]), a.kernel[:, :, 0], atol=1e-6)

    # saliency, gradient x input and Grad-CAM of the predicted class, then of another class
    saliency = titled(at, r"which pixels raised its logit")
    assert panel_titles(saliency) == ["input", "saliency", "gradient x input", "grad-cam (conv1_relu)"]
    assert saliency["layout"]["title"]["text"].startswith(f"Class {trace.predicted_class} (")
    other = (trace.predicted_class + 1) % dataset.num_classes
    at.selectbox(key="inside_explain_class").set_value(other).run()
    assert titled(at, r"which pixels raised its logit")["layout"]["title"]["text"].startswith(f"Class {other} (")
    assert any("Grad-CAM weighs the last convolution" in c.value for c in at.caption)
    assert any(c.value.startswith("Server time for this input:") for c in at.caption)
    assert not at.exception and not at.error


def test_every_figure_the_page_sends_is_valid_plotly(store, grey, monkeypatch):
    """The figures redrawn after each stroke skip plotly's validation (it costs tens of ms): check them here."""
    import plotly.graph_objects as go

    _, runs = grey
    at = open_page(store, runs["bn_no_pool"], monkeypatch, a_vertical_stroke(), digits=True)
    at.session_state[state.PER_RUN]["inside_projections"][1]["pca"].wait(timeout=120)
    sent = figures(at.run())
    assert len(sent) == 9, list(sent)  # maps, location, arithmetic, attributions, filters, weights, confusion x2, PCA
    for title, spec in sent.items():
        # valid (plotly raises naming any property it does not know) and already in plotly's canonical form, as
        # plotly.js needs it: a colour scale's name that only plotly.py knows ("gray", "RdBu_r") would not be
        validated = json.loads(go.Figure(spec).to_json())
        validated["layout"].pop("template"), spec["layout"].pop("template", None)  # plotly's default look
        assert validated == spec, title


def test_batch_norm_without_pooling_shows_every_stage_and_reads_previous_maps(store, grey, monkeypatch):
    _, runs = grey
    drawing = a_vertical_stroke()
    at = open_page(store, runs["bn_no_pool"], monkeypatch, drawing, digits=True)
    layers = at.selectbox(key="inside_layer").options
    assert [o.split(" · ")[1] for o in layers] == ["conv", "batch norm", "activation"] * 2
    assert layers[3] == "block 2 · conv · conv2 → 12x12x5"
    at.selectbox(key="inside_layer").set_value("conv2_bn").run()
    titled(at, r"^conv2_bn \(BatchNormalization\): 5 maps of 12x12$")
    assert any(m.value.startswith("One value of conv2") for m in at.subheader)
    at.number_input(key="inside_channel").set_value(4).run()  # conv2 reads conv1's 6 maps: one channel at a time
    at.number_input(key="inside_row").set_value(0).run()  # on the border: 'same' padding
    at.number_input(key="inside_col").set_value(6).run()
    explainer, image = model_input(store, runs["bn_no_pool"], drawing)
    held = float(explainer.activations(image).feature_maps["conv2"][0, 6, 0])
    sentence = next(m.value for m in at.markdown if m.value.startswith("`conv2[0, 6, 0]`"))
    assert "sum of the 54 products (3x3x6)" in sentence and f"The feature map holds **{held:.4f}**" in sentence
    assert "channel 4 of 6" in titled(at, r"^conv2\[0, 6, 0\]")["layout"]["title"]["text"]
    assert "grad-cam (conv2_relu)" in panel_titles(titled(at, r"which pixels raised its logit"))


# --- test images, mistakes, colour -----------------------------------------------------------------------------


def test_non_digit_data_has_no_canvas_and_picks_test_images_by_class(store, grey, monkeypatch):
    dataset, runs = grey
    at = open_page(store, runs["tiny_cnn"], monkeypatch)
    assert at.radio(key="inside_source").options == ["A test image, by class", "A confident mistake"]
    at.selectbox(key="inside_class").set_value(2).run()
    at.number_input(key="inside_number").set_value(3).run()
    index = int(np.flatnonzero(dataset.y_test == 2)[2])
    assert image_captions(at) == [f"test image {index} (class {dataset.class_names[2]})"]
    probabilities = store.test_probabilities(runs["tiny_cnn"])[index]
    assert [m.value for m in at.metric if m.label == "Prediction"] == [dataset.class_names[probabilities.argmax()]]
    assert [m.delta for m in at.metric if m.label == "Prediction"] == [f"{probabilities.max():.0%} sure"]


def test_a_confident_mistake_asks_why(store, grey, monkeypatch):
    dataset, runs = grey
    at = open_page(store, runs["tiny_cnn"], monkeypatch)
    at.radio(key="inside_source").set_value("mistake").run()
    probabilities = store.test_probabilities(runs["tiny_cnn"])
    wrong = np.flatnonzero(probabilities.argmax(axis=1) != dataset.y_test)
    if not len(wrong):
        assert any("makes no mistake on the test set" in i.value for i in at.info)
        return
    worst = int(wrong[np.argmax(probabilities[wrong].max(axis=1))])
    assert at.selectbox(key="inside_mistake").value == worst
    said = dataset.class_names[probabilities[worst].argmax()]
    assert any(f"Why did it say {said}?" in caption for caption in image_captions(at))
    assert titled(at, r"which pixels raised its logit")


def test_colour_images_show_rgb_filters_and_overlays(store, colour, monkeypatch):
    dataset, run_id = colour
    at = open_page(store, run_id, monkeypatch)
    assert dataset.input_shape == (12, 12, 3)
    filters = titled(at, r"^conv1: 8 filters of 3x3 \(RGB\)$")
    assert filters["data"][0]["type"] == "image"
    at.number_input(key="inside_channel").set_value(2).run()  # conv1 reads the three colour channels
    assert "channel 2 of 3" in titled(at, r"^conv1\[")["layout"]["title"]["text"]
    assert titled(at, r"which pixels raised its logit")
    assert not at.exception and not at.error


# --- the test set: confusion over epochs, embedding -----------------------------------------------------------


def test_confusion_over_epochs_has_an_epoch_slider_and_the_cells_that_changed(store, grey, monkeypatch):
    dataset, runs = grey
    at = open_page(store, runs["tiny_cnn"], monkeypatch)
    recorded = json.loads((store.path(runs["tiny_cnn"]) / "confusion.json").read_text())
    subset = int(np.sum(recorded[0]["matrix"]))
    assert at.select_slider(key="inside_epoch").options == ["1", "2"]
    titled(at, rf"^Confusion matrix after epoch 2 \({subset} validation images\)$")
    at.select_slider(key="inside_epoch").set_value(1).run()
    titled(at, rf"^Confusion matrix after epoch 1 \({subset} validation images\)$")
    table = at.dataframe[0].value
    assert list(table.columns) == ["true", "predicted", "epoch 1", "epoch 2", "change", "so it got"]
    before, after = (np.array(r["matrix"]) for r in recorded)
    biggest = int(np.abs(after - before).max())
    assert abs(int(table["change"].iloc[0])) == biggest
    for _, row in table.iterrows():  # a gain on the diagonal or a loss off it is better; the opposite worse
        right = row["true"] == row["predicted"]
        assert row["so it got"] == ("better" if right == (row["change"] > 0) else "worse")
    change = titled(at, r"^Change from epoch 1 to epoch 2: blue better, red worse$")["data"][0]
    better = after - before
    better[~np.eye(len(better), dtype=bool)] *= -1
    np.testing.assert_array_equal(array(change["z"]), better)


def test_confusion_over_epochs_is_absent_for_an_uploaded_model(store, grey, monkeypatch):
    import keras

    from core.engine.upload import import_model

    dataset, runs = grey
    model = keras.models.load_model(store.model_path(runs["tiny_cnn"]))
    path = store.root / "mine.keras"
    model.save(path)
    run_id = import_model(store, path.read_bytes(), "mine.keras", dataset)
    assert execute(store, run_id) is RunState.FINISHED
    at = open_page(store, run_id, monkeypatch)
    assert any(i.value.startswith("This run recorded no confusion matrix per epoch") for i in at.info)
    assert titled(at, r"which pixels raised its logit")  # the rest of the page works on an uploaded model


def test_embedding_shows_pca_then_tsne_computed_in_the_background(store, grey, monkeypatch):
    dataset, runs = grey
    at = open_page(store, runs["tiny_cnn"], monkeypatch)
    jobs = at.session_state[state.PER_RUN]["inside_projections"][1]
    assert any(i.value.startswith("Projecting the test images in the background") for i in at.info) \
        or jobs["pca"].outcome()[0]  # the page does not wait for it ...
    assert jobs["pca"].wait(timeout=120)
    at.run()  # ... the part polls, and shows it once it is ready
    pca = titled(at, r"^80 images by their dense1 activations \(PCA\)$")
    assert pca["layout"]["xaxis"]["title"]["text"].startswith("PC 1 (")
    assert [t["name"] for t in pca["data"]] == list(dataset.class_names)
    at.radio(key="inside_projection").set_value("tsne").run()
    at.button(key="inside_tsne_start").click().run()
    assert jobs["tsne"].wait(timeout=300)
    at.run()
    titled(at, r"^80 images by their dense1 activations \(t-SNE\)$")
    assert any(re.match(r"Computed in \d+\.\d s, off the page's thread", c.value) for c in at.caption)
    assert not at.exception and not at.error
