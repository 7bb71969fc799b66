"""Your own images through the pages (AppTest): upload a zip of class folders, load it, augment, train, classify."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data.folders import stored_ref
from core.data.pictures import ImageFolderOptions
from core.data.registry import load_ref
from core.engine.execute import execute
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TrainingConfig
from tests.conftest import CLASSES, ROOT, encode, patch_declared_size, session_dataset, shape_picture
from ui import state

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny_cnn")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=8, epochs=2)


def shapes_zip(per_class: int = 8, extra: dict[str, bytes] | None = None) -> bytes:
    """Coloured shapes in class folders, inside one top folder (what zipping a folder gives)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for kind in CLASSES:
            for i in range(per_class):
                archive.writestr(f"shapes/{kind}/{kind}_{i:02d}.png", encode(shape_picture(kind, i)))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def run_store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


def data_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"  # loads offline in milliseconds
    at.run().switch_page("pages/data.py").run()
    return at


def choose_images(at: AppTest) -> AppTest:
    return at.selectbox(key=state.DATASET_CHOICE).set_value("images").run()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def image_captions(at: AppTest) -> str:
    return " ".join(caption for image in at.get("image") for caption in image.captions)


def test_upload_describe_choose_options_and_load(run_store):
    at = data_page()
    previous = session_dataset(at)
    choose_images(at)
    assert "100 MB per upload" in texts(at.caption) and "at most 20,000 images" in texts(at.caption)
    zipped = shapes_zip(extra={"shapes/square/notes.txt": b"labels are folder names"})
    at.file_uploader(key=state.DataPage.upload_key("img", at.session_state)).upload("shapes.zip", zipped, "application/zip").run()
    assert not at.exception and not at.error
    # listed at once, nothing decoded or kept yet
    assert "**shapes.zip**: 3 classes, 24 image files" in texts(at.markdown)
    assert list(at.dataframe[0].value["class"]) == list(CLASSES)
    assert list(at.dataframe[0].value["train files"]) == [8, 8, 8]
    assert "1 file skipped, not an image: shapes/square/notes.txt" in texts(at.caption)
    assert any("Before" in m.value for m in at.markdown) and "Fitted into 28x28" in texts(at.caption)
    assert image_captions(at).split()[:12] == list(CLASSES) * 4  # the preview: 6 images before, 6 after
    assert session_dataset(at) is previous and not (run_store.root / "datasets").exists()

    at.selectbox(key=state.DataPage.IMAGE_SIZE).set_value(32)
    at.radio(key=state.DataPage.COLOR).set_value("rgb")
    at.slider(key=state.DataPage.TEST_FRACTION).set_value(0.25).run()
    assert "Fitted into 32x32" in texts(at.caption)
    at.button(key=state.DataPage.LOAD_IMAGES).click().run()
    assert not at.exception and not at.error
    dataset = session_dataset(at)
    assert dataset.class_names == tuple(CLASSES) and dataset.input_shape == (32, 32, 3)
    assert (len(dataset.x_train), len(dataset.x_test)) == (18, 6)
    assert "Your images from shapes.zip: 3 classes, 18 train / 6 test" in texts(at.success)
    assert "Decoded 24 images" in texts(at.caption)
    assert "1 file skipped, not an image" in texts(at.caption)  # in the report too
    assert at.metric[3].value == "3"  # the usual exploration follows: classes, samples, mean images

    ref = dataset.ref
    assert ref == stored_ref(ref.name, "shapes.zip", ImageFolderOptions(32, "rgb", test_fraction=0.25))
    assert run_store.stored_dataset_path(ref.name, ".zip").read_bytes() == zipped
    again = load_ref(ref, run_store.stored_dataset_path)  # what a worker process does
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(again, key), getattr(dataset, key))
    assert again.class_names == dataset.class_names

    at.switch_page("pages/architecture.py").run()  # the layer table for the chosen size
    assert at.dataframe[0].value["output shape"][0] == "(30, 30, 32)"  # lab: 3x3 conv on 32x32x3


def test_a_hostile_zip_is_refused_and_the_previous_dataset_stays(run_store):
    at = data_page()
    previous = session_dataset(at)
    choose_images(at)
    hostile = shapes_zip(extra={"../evil.png": encode(shape_picture("circle", 0))})
    at.file_uploader(key=state.DataPage.upload_key("img", at.session_state)).upload("evil.zip", hostile, "application/zip").run()
    assert not at.exception
    assert ("Could not load this dataset: evil.zip: member '../evil.png' points outside the folder"
            in texts(at.error))
    assert "Still using the previous dataset: digits-8x8" in texts(at.caption)
    assert session_dataset(at) is previous
    assert not [b for b in at.button if b.key == state.DataPage.LOAD_IMAGES]  # nothing to load
    assert not (run_store.root / "datasets").exists()

    # a member whose size lies passes the listing, is refused on Load, and is not kept
    at.file_uploader(key=state.DataPage.upload_key("img", at.session_state)).clear()
    zipped = shapes_zip()
    name = "shapes/square/square_06.png"
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        size = archive.getinfo(name).file_size
    damaged = patch_declared_size(zipped, name, size - 10)
    at.file_uploader(key=state.DataPage.upload_key("img", at.session_state)).upload("damaged.zip", damaged, "application/zip").run()
    assert not at.error
    at.button(key=state.DataPage.LOAD_IMAGES).click().run()
    assert not at.exception
    assert f"member '{name}' is damaged or does not match its declared size" in texts(at.error)
    assert session_dataset(at) is previous
    assert not list((run_store.root / "datasets").glob("*.zip"))


def test_augmentation_settings_change_the_layer_table_and_warn_for_digits():
    at = data_page()  # scikit-learn's 8x8 digits
    at.switch_page("pages/architecture.py").run()
    layers = list(at.dataframe[0].value["layer"])
    assert layers[0] == "conv1" and not at.warning
    at.checkbox(key="arch_aug_horizontal_flip").check()
    at.slider(key="arch_aug_zoom").set_value(0.1).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["layer"]) == ["augment_flip", "augment_zoom", *layers]
    assert list(table["type"][:2]) == ["RandomFlip (left-right)", "RandomZoom (±10%)"]
    assert "For handwritten digits: a flipped digit is not a digit" in texts(at.warning)
    assert image_captions(at).split()[:6] == ["original", "#1", "#2", "#3", "#4", "#5"]  # the preview
    at.button(key="arch_preset_lab").click().run()  # a preset keeps the augmentation chosen for the data
    assert at.dataframe[0].value["layer"][0] == "augment_flip"
    at.button(key="arch_build").click().run()
    assert at.session_state[state.BUILT].arch.augmentation.horizontal_flip
    at.switch_page("pages/training.py").run()  # shown again where training starts
    assert not at.exception
    assert any("flip left-right, zoom ±10%" in e.label for e in at.expander if "Augmentation" in e.label)
    assert image_captions(at).split()[:6] == ["original", "#1", "#2", "#3", "#4", "#5"]


@pytest.fixture(scope="module")
def run_on_a_zip(tmp_path_factory):
    """A run trained from an uploaded zip in the run store, as the Data page leaves it."""
    store = RunStore(tmp_path_factory.mktemp("zip_run") / "runs")
    digest, _ = store.store_dataset_file(shapes_zip(), "shapes.zip", ".zip")
    ref = stored_ref(digest, "shapes.zip", ImageFolderOptions(image_size=16, color_mode="rgb"))
    run_id = store.create(RunSpec(ref, TINY, QUICK, label="shapes run"), {"dataset_name": "shapes.zip"})
    assert execute(store, run_id) is RunState.FINISHED, store.status(run_id).message
    return store, run_id


def test_a_run_on_an_uploaded_zip_trains_evaluates_and_classifies_a_picture(run_on_a_zip, monkeypatch):
    store, run_id = run_on_a_zip
    assert len(store.epochs(run_id)) == 2 and store.test_metrics(run_id) is not None
    monkeypatch.setenv("CONVLAB_RUNS", str(store.root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.query_params["run"] = run_id  # a new session on the run's link: its dataset comes from the stored zip
    at.run()
    assert session_dataset(at).class_names == tuple(CLASSES)
    at.switch_page("pages/evaluation.py").run()
    assert not at.exception and any(m.label == "Test accuracy" for m in at.metric)
    assert "circle" in at.selectbox(key="eval_true").options
    at.switch_page("pages/draw.py").run()
    assert not at.exception
    assert "trained on **shapes.zip** (circle, square, triangle" in texts(at.info)
    picture = shape_picture("triangle", 3, size=(120, 80))
    at.file_uploader(key="draw_upload").upload("triangle.jpg", encode(picture, "JPEG"), "image/jpeg").run()
    assert not at.exception and not at.error
    prediction = [m for m in at.metric if m.label == "Prediction"]
    assert len(prediction) == 1 and prediction[0].value in CLASSES
    assert "what the network sees: fitted into 16x16, rgb" in image_captions(at)
    at.file_uploader(key="draw_upload").clear().upload("broken.png", b"not an image", "image/png").run()
    assert "broken.png is not an image that can be read (PNG, JPEG, BMP, GIF, WebP or TIFF)." in texts(at.error)
