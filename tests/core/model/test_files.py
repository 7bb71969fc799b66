"""Model files: a run's model loaded in Keras' safe mode, an uploaded one checked before it becomes a run."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest

from core import limits
from core.errors import ModelFileError
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.model.build import build_model
from core.model.files import inspect_model_file, load_checked_model, load_model_file

TINY = Architecture(conv_blocks=(ConvBlock(filters=4),), dense_layers=(DenseLayer(units=8),), name="tiny_cnn")
SHAPE, CLASSES = (12, 12, 1), 4


def saved(model, folder) -> bytes:
    path = folder / "model.keras"
    model.save(path)
    return path.read_bytes()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, bytes]:
    """.keras files: one that fits the 12x12x1, 4-class data, one for 28x28 images, one with 3 classes."""
    folder = tmp_path_factory.mktemp("models")
    files = {}
    for key, shape, classes in (("good", SHAPE, CLASSES), ("28x28", (28, 28, 1), CLASSES), ("3 classes", SHAPE, 3)):
        (folder / key).mkdir()
        files[key] = saved(build_model(TINY, shape, classes, seed=1), folder / key)
    return files


def test_a_saved_model_loads_uncompiled_and_predicts_the_same(tmp_path):
    model = build_model(TINY, SHAPE, CLASSES, seed=2)
    model.save(tmp_path / "model.keras")
    loaded = load_model_file(tmp_path / "model.keras")
    assert loaded.name == "tiny_cnn" and not loaded.compiled
    x = np.random.default_rng(0).random((3, *SHAPE), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict_on_batch(x), model.predict_on_batch(x), atol=1e-6)


def test_an_uploaded_file_that_fits_the_data_is_sized_without_loading_then_loads(model_files, tmp_path,
                                                                                 monkeypatch):
    import keras

    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: pytest.fail("the check loaded the model"))
    summary = inspect_model_file(model_files["good"], "mine.keras", SHAPE, CLASSES)
    expected = build_model(TINY, SHAPE, CLASSES)
    assert (summary.input_shape, summary.output_shape) == (SHAPE, (CLASSES,))
    assert summary.size.params == expected.count_params() and summary.layers == len(expected.layers) - 1
    monkeypatch.undo()
    (tmp_path / "mine.keras").write_bytes(model_files["good"])
    model = load_checked_model(tmp_path / "mine.keras", "mine.keras", SHAPE, CLASSES)
    assert model.name == "tiny_cnn" and tuple(model.output_shape) == (None, CLASSES)
    with pytest.raises(ModelFileError, match=r"does not take 12x12x1 images to 3 class scores"):
        load_checked_model(tmp_path / "mine.keras", "mine.keras", SHAPE, 3)


LAMBDA_CONFIG = {"class_name": "Functional", "config": {"layers": [
    {"class_name": "InputLayer", "config": {}},
    {"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__", "config": {"code": "print('ran')"}}}},
]}}

REFUSED = {
    "random bytes": (lambda files: np.random.default_rng(0).bytes(5000),
                     "evil.keras is not a Keras model file: a .keras file is a zip archive (saved by "
                     "model.save('name.keras')); legacy .h5 and SavedModel folders are not accepted."),
    "a broken zip": (lambda files: b"PK\x03\x04" + bytes(100),
                     "evil.keras: not a valid .zip file (File is not a zip file); expected a Keras model file."),
    "a zip of other files": (lambda files: zip_of({"readme.txt": b"hello"}),
                             "evil.keras is a zip archive but not a Keras model: it lacks config.json and "
                             "model.weights.h5."),
    "no weights": (lambda files: zip_of({"config.json": b"{}"}),
                   "evil.keras is a zip archive but not a Keras model: it lacks model.weights.h5."),
    "config not JSON": (lambda files: zip_of({"config.json": b"{not json", "model.weights.h5": b""}),
                        re.compile(r"^evil\.keras: its config\.json is not valid JSON \(.+\)\.$")),
    "a Lambda layer": (lambda files: zip_of({"config.json": json.dumps(LAMBDA_CONFIG).encode(),
                                             "model.weights.h5": b""}),
                       "evil.keras contains a Lambda layer, which holds Python code that would run when the model "
                       "is loaded; ConvLab loads models in Keras' safe mode and refuses it. Rebuild the model with "
                       "standard layers only."),
    "not a model's config": (lambda files: zip_of({"config.json": b"{}", "model.weights.h5": b""}),
                             "evil.keras: its config.json does not describe a Keras Sequential or Functional model."),
    "an extra member": (lambda files: zip_of({"config.json": b"{}", "model.weights.h5": b"", "run.sh": b"rm -rf /"}),
                        "evil.keras holds 'run.sh', which is not part of a Keras model file (it holds only "
                        "metadata.json, config.json, model.weights.h5)."),
    "other images": (lambda files: files["28x28"],
                     "evil.keras takes inputs of shape 28x28x1, but the current dataset's images are 12x12x1."),
    "other classes": (lambda files: files["3 classes"],
                      "evil.keras predicts 3 classes, but the current dataset has 4."),
}


@pytest.mark.parametrize("make, message", REFUSED.values(), ids=REFUSED.keys())
def test_an_unusable_upload_is_refused_with_its_reason(model_files, make, message):
    with pytest.raises(ModelFileError) as info:
        inspect_model_file(make(model_files), "evil.keras", SHAPE, CLASSES)
    if isinstance(message, str):
        assert str(info.value) == message
    else:
        assert message.match(str(info.value)), str(info.value)


def test_the_limits_on_model_files_are_those_of_the_limits_table(model_files, monkeypatch):
    data = model_files["good"]
    monkeypatch.setattr(limits, "MAX_MODEL_FILE_BYTES", 1000)
    with pytest.raises(ModelFileError, match=rf"^big\.keras is {re.escape(limits.format_bytes(len(data)))}; model "
                                             r"files of at most 1\.0 kB are accepted\.$"):
        inspect_model_file(data, "big.keras", SHAPE, CLASSES)
    monkeypatch.setattr(limits, "MAX_MODEL_FILE_BYTES", len(data))
    monkeypatch.setattr(limits, "MAX_MODEL_CONFIG_BYTES", 100)
    with pytest.raises(ModelFileError, match=r"^big\.keras: its config\.json is implausibly large \([\d.]+ kB; at most "
                                             r"100 bytes\)\.$"):
        inspect_model_file(data, "big.keras", SHAPE, CLASSES)
