"""Models that work elsewhere: each format, loaded back in its own runtime, agrees with Keras; they take raw
pixels; an ONNX file classifies a picture in a process that has only onnxruntime, NumPy and Pillow."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data.dataset import make_dataset
from core.data.registry import load_dataset
from core.errors import ExportError
from core.export import formats
from core.export.formats import FORMATS, MAX_DIFFERENCE, export_model, export_run, pixel_input, raw_images
from core.model.files import load_model_file


@pytest.mark.parametrize("key", list(FORMATS))
def test_each_format_agrees_with_keras_on_100_test_images_in_its_own_runtime(lab_run, key):
    store, run_id = lab_run
    path, check = export_run(store, run_id, key)
    assert path.is_file() and path.stat().st_size == check.size > 0
    assert check.images == 100 and 0 <= check.max_difference <= MAX_DIFFERENCE
    assert check.runtime.split()[0] == FORMATS[key].runtime and check.file_name == f"{run_id}{FORMATS[key].suffix}"
    assert "uint8 images (N, 8, 8, 1), values 0..255" in check.pixels
    again, kept = export_run(store, run_id, key)  # made once per model file, then kept with its check
    assert again == path and kept == check


@pytest.mark.parametrize("key", ["onnx", "litert", "saved_model"])
def test_augmentation_batch_norm_and_dropout_export_as_their_inference_selves(rich_run, key):
    store, run_id = rich_run
    _, check = export_run(store, run_id, key)
    assert check.max_difference <= MAX_DIFFERENCE


def test_a_savedmodel_comes_as_a_zip_of_its_folder(lab_run):
    store, run_id = lab_run
    path, _ = export_run(store, run_id, "saved_model")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert f"{run_id}-saved_model/saved_model.pb" in names


def test_the_keras_file_takes_raw_pixels_and_scales_them_itself(lab_run):
    import keras

    store, run_id = lab_run
    path, _ = export_run(store, run_id, "keras")
    digits = load_dataset("digits-8x8")
    standalone = keras.models.load_model(path)  # plain Keras: nothing of ConvLab registered or needed
    raw, scaled = raw_images(digits, pixel_input(digits), count=20)
    assert raw.dtype == np.uint8 and raw.max() > 1
    original = load_model_file(store.model_path(run_id))
    np.testing.assert_allclose(standalone.predict(raw, verbose=0), original.predict(scaled, verbose=0), atol=1e-6)


def test_an_export_that_disagrees_with_keras_is_refused_with_the_difference(lab_run, monkeypatch):
    store, run_id = lab_run
    check = formats._CHECKERS["onnx"]
    monkeypatch.setitem(formats._CHECKERS, "onnx", lambda path, images: check(path, images) + 3e-4)
    model = load_model_file(store.model_path(run_id))
    with pytest.raises(ExportError, match=r"disagrees with Keras.*3\.\d+e-04, over the 0\.0001 allowed"):
        export_model(model, load_dataset("digits-8x8"), "onnx")


def test_an_unknown_format_is_refused():
    with pytest.raises(ExportError, match="unknown export format 'pdf'"):
        export_model(None, None, "pdf")


def test_what_an_exported_model_takes_follows_how_the_dataset_stores_its_pixels():
    labels = np.array([0, 1, 0, 1])
    as_bytes = make_dataset("u", np.zeros((4, 5, 5), np.uint8), labels, np.zeros((4, 5, 5), np.uint8), labels,
                            source="", origin="t")
    as_unit = make_dataset("f", np.full((4, 5, 5, 3), 0.5), labels, np.full((4, 5, 5, 3), 0.5), labels,
                           source="", origin="t")
    assert pixel_input(as_bytes).dtype == "uint8" and pixel_input(as_bytes).scale == pytest.approx(1 / 255)
    assert pixel_input(as_unit).dtype == "float32" and pixel_input(as_unit).scale is None
    assert pixel_input(as_unit).describe().startswith("float32 images (N, 5, 5, 3), values in [0, 1]")


OUTSIDE = textwrap.dedent("""
    import sys
    import numpy as np
    import onnxruntime
    from PIL import Image

    session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    pixels = np.asarray(Image.open(sys.argv[2]).convert("L"), dtype=np.uint8)[np.newaxis, :, :, np.newaxis]
    probabilities = session.run(None, {session.get_inputs()[0].name: pixels})[0][0]
    print(int(probabilities.argmax()), float(probabilities.max()))
    print(sorted(name for name in sys.modules if name.split(".")[0] in ("keras", "tensorflow", "core", "tf2onnx")))
""")


def test_an_onnx_file_classifies_a_png_with_onnxruntime_alone(lab_run, tmp_path):
    store, run_id = lab_run
    path, _ = export_run(store, run_id, "onnx")
    digits = load_dataset("digits-8x8")
    picture = tmp_path / "digit.png"
    Image.fromarray(np.rint(digits.x_test[7, :, :, 0] * 255).astype(np.uint8)).save(picture)
    script = tmp_path / "classify.py"
    script.write_text(OUTSIDE)
    done = subprocess.run([sys.executable, "-I", str(script), str(path), str(picture)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    label, confidence = done.stdout.splitlines()[0].split()
    assert done.stdout.splitlines()[1] == "[]"  # no Keras, TensorFlow or ConvLab in that process
    expected = load_model_file(store.model_path(run_id)).predict(digits.x_test[7:8], verbose=0)[0]
    assert int(label) == int(expected.argmax())
    assert float(confidence) == pytest.approx(float(expected.max()), abs=1e-5)
