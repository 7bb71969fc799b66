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


def edited(data: bytes, config=None, weights: bytes | None = None) -> bytes:
    """A real .keras file with its config.json changed by `config(config_dict)` or its weights replaced."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if config is not None:
        parsed = json.loads(members["config.json"])
        config(parsed)
        members["config.json"] = json.dumps(parsed).encode()
    if weights is not None:
        members["model.weights.h5"] = weights
    return zip_of(members)


def weights_of(data: bytes) -> bytes:
    return zipfile.ZipFile(io.BytesIO(data)).read("model.weights.h5")


def conv_config(config: dict) -> dict:
    return next(layer["config"] for layer in config["config"]["layers"] if layer["class_name"] == "Conv2D")


def dense_config(config: dict) -> dict:
    return [layer["config"] for layer in config["config"]["layers"] if layer["class_name"] == "Dense"][-1]


KERAS_FAILURES = {
    "a setting Keras does not know": (
        lambda files: edited(files["good"], lambda c: conv_config(c).update(frobnicate=3)),
        "bad.keras: Keras cannot rebuild its Conv2D layer from the settings in the file's config.json (Keras says: "
        "Unrecognized keyword arguments passed to Conv2D: {'frobnicate': 3}). The file was edited by hand, or saved by "
        "a Keras other than ConvLab's {keras}."),
    "an activation Keras does not know": (
        lambda files: edited(files["good"], lambda c: dense_config(c).update(activation="swishy")),
        "bad.keras: Keras cannot rebuild its Dense layer from the settings in the file's config.json (Keras says: "
        "Could not interpret activation function identifier: swishy). The file was edited by hand, or saved by a Keras "
        "other than ConvLab's {keras}."),
    "the weights of another model": (
        lambda files: edited(files["good"], weights=weights_of(files["3 classes"])),
        re.compile(r"^bad\.keras: its weights do not fit its layers \(layer 'output' needs weights of shape "
                   r"\(8, 4\), the file holds \(8, 3\)\): the weights were saved from another model, or its "
                   r"config\.json was changed after they were saved\.$")),
    "weights that are not HDF5": (
        lambda files: edited(files["good"], weights=b"not an HDF5 file" * 64),
        "bad.keras: its weights (model.weights.h5) are not a readable HDF5 file, as Keras writes them; the file is "
        "damaged. Save the model again with model.save('name.keras')."),
    "weights cut short": (
        lambda files: edited(files["good"], weights=weights_of(files["good"])[:3000]),
        "bad.keras is cut short: its weights (model.weights.h5) end early, as when a download or a copy did not "
        "finish. Save or download the model again."),
    "layers that no longer fit together": (
        lambda files: edited(files["good"], lambda c: conv_config(c).update(filters=5)),
        re.compile(r"^bad\.keras: its layers do not fit together: layer '\w+' takes \d+ values but the layer before "
                   r"it gives \d+ \(its config\.json was changed after the model was built\?\)\.$")),
}


@pytest.mark.parametrize("make, message", KERAS_FAILURES.values(), ids=KERAS_FAILURES.keys())
def test_a_file_keras_cannot_load_is_explained_in_convlabs_words(model_files, tmp_path, make, message):
    import keras

    data = make(model_files)
    inspect_model_file(data, "bad.keras", SHAPE, CLASSES)  # each passes the checks made without loading it
    (tmp_path / "bad.keras").write_bytes(data)
    with pytest.raises(ModelFileError) as info:
        load_checked_model(tmp_path / "bad.keras", "bad.keras", SHAPE, CLASSES)
    if isinstance(message, str):
        assert str(info.value) == message.replace("{keras}", keras.__version__)
    else:
        assert message.match(str(info.value)), str(info.value)
    assert "could not be deserialized properly" not in str(info.value)  # Keras' own words stay out
    with pytest.raises(ModelFileError, match=r"^model\.keras"):  # a run's own file, named by its file name
        (tmp_path / "model.keras").write_bytes(data)
        load_model_file(tmp_path / "model.keras")


def test_a_model_convlab_trained_is_accepted_back_though_its_optimizer_names_convlabs_schedule(tmp_path):
    """The optimizer's config (compile_config) names core.training.schedule; loading never builds it."""
    from core.training.config import TrainingConfig
    from core.training.loop import make_optimizer
    from core.training.schedule import live_schedule

    model = build_model(TINY, SHAPE, CLASSES, seed=3)
    config = TrainingConfig(optimizer="sgd", learning_rate=0.01, batch_size=8, epochs=1)
    model.compile(optimizer=make_optimizer(config, live_schedule(config, 10, 10)), loss="sparse_categorical_crossentropy")
    data = saved(model, tmp_path)
    assert b"core.training.schedule" in zipfile.ZipFile(io.BytesIO(data)).read("config.json")
    assert inspect_model_file(data, "mine.keras", SHAPE, CLASSES).input_shape == SHAPE
    (tmp_path / "mine.keras").write_bytes(data)
    assert load_checked_model(tmp_path / "mine.keras", "mine.keras", SHAPE, CLASSES).name == "tiny_cnn"
