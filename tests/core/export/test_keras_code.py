"""The run as plain Keras code: each piece, executed, does exactly what ConvLab's own code does."""

from __future__ import annotations

import math
import shutil

import keras
import numpy as np
import pytest
from keras import layers

from core.data.dataset import DatasetRef, preprocess_images
from core.data.registry import SHIPPED_MNIST, load_dataset, load_mnist_10k
from core.data.splits import split_validation
from core.errors import ExportError
from core.export.keras_code import (
    compile_code,
    data_code,
    model_code,
    preprocess_code,
    safe_file_name,
    split_code,
    training_steps,
)
from core.model.architecture import PRESETS, Architecture, ConvBlock, DenseLayer
from core.model.augment import Augmentation
from core.model.build import build_model
from core.training.config import TrainingConfig
from core.training.loop import make_optimizer
from core.training.schedule import live_schedule
from tests.core.export.conftest import RICH

FLIPS = Architecture(conv_blocks=(ConvBlock(filters=4, kernel_size=5, pooling="none", activation="tanh"),),
                     dense_layers=(DenseLayer(units=8, activation="elu", dropout=0.3), DenseLayer(units=6)),
                     name="flips", augmentation=Augmentation(horizontal_flip=True, vertical_flip=True, shift=0.2))
CASES = {"lab": (PRESETS["lab"], (28, 28, 1), 10), "fast": (PRESETS["fast"], (28, 28, 1), 10),
         "photos": (PRESETS["photos"], (32, 32, 3), 10),
         "keras-example": (PRESETS["keras-example"], (28, 28, 1), 10), "rich": (RICH, (8, 8, 1), 10),
         "flips": (FLIPS, (16, 16, 3), 4)}


def run(code: str, **names) -> dict:
    namespace = {"np": np, "keras": keras, "layers": layers, "math": math, **names}
    exec(code, namespace)  # noqa: S102 - the code under test
    return namespace


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 7])
def test_the_sequential_code_builds_the_runs_model_with_its_initial_weights(case, seed):
    arch, shape, classes = CASES[case]
    ours = run(model_code(arch, shape, classes, seed))["model"]
    theirs = build_model(arch, shape, classes, seed=seed)
    their_layers = [layer for layer in theirs.layers if not isinstance(layer, layers.InputLayer)]
    assert [layer.name for layer in ours.layers] == [layer.name for layer in their_layers]
    assert [type(layer) for layer in ours.layers] == [type(layer) for layer in their_layers]
    for mine, original in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, original)
    assert ours.count_params() == theirs.count_params()


@pytest.mark.parametrize("count, fraction", [(1438, 0.1), (100, 0.0), (57, 0.5), (9, 0.01), (1000, 0.25)])
def test_the_validation_split_is_split_validation(count, fraction):
    x = np.arange(count * 2, dtype=np.float32).reshape(count, 2)
    y = np.arange(count)
    got = run(split_code(fraction), SEED=5, x_train=x, y_train=y)
    for mine, theirs in zip((got["x_fit"], got["y_fit"], got["x_val"], got["y_val"]),
                            split_validation(x, y, fraction, seed=5), strict=True):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("optimizer, schedule", [("sgd", "constant"), ("adam", "warmup-cosine"),
                                                  ("rmsprop", "cosine"), ("sgd", "warmup-cosine")])
def test_the_optimizer_and_its_schedule_are_make_optimizers(optimizer, schedule):
    config = TrainingConfig(optimizer=optimizer, learning_rate=0.02, momentum=0.5 if optimizer != "adam" else 0.0,
                            batch_size=16, epochs=3, schedule=schedule)
    fitted, steps = training_steps(500, config)
    model = keras.Sequential([keras.Input((4,)), layers.Dense(2, activation="softmax")])
    got = run(compile_code(config, 7), model=model, BATCH_SIZE=16, EPOCHS=3, x_fit=np.zeros((fitted, 4)))
    theirs = make_optimizer(config, live_schedule(config, steps * config.epochs, warmup_steps=steps))
    mine = model.optimizer
    assert type(mine) is type(theirs) and model.steps_per_execution == 7
    if schedule == "constant":
        assert float(mine.learning_rate) == float(theirs.learning_rate) == np.float32(0.02)
    else:  # (ConvLab's live schedule, left unchanged, is the recipe's bit for bit)
        for step in (0, 1, steps - 1, steps, steps * 2, steps * 3 - 1):
            assert float(mine._learning_rate(step)) == float(theirs._learning_rate(step))
    assert got["steps_per_epoch"] == steps
    if optimizer != "adam":
        assert float(mine.momentum) == float(theirs.momentum) == 0.5


def test_the_digits_come_out_as_convlab_loads_them():
    code = data_code(DatasetRef.of("builtin", "digits-8x8"), "run")
    assert code.data_file is None and code.known_uint8
    got = run(code.load + preprocess_code(True) + "x_train, x_test = preprocess(x_train_raw), preprocess(x_test_raw)")
    digits = load_dataset("digits-8x8")
    np.testing.assert_array_equal(got["x_train"], digits.x_train)  # the same bits
    np.testing.assert_array_equal(got["x_test"], digits.x_test)
    np.testing.assert_array_equal(got["y_train"], digits.y_train)
    assert got["class_names"] == list(digits.class_names)


def test_the_offline_mnist_is_read_from_the_shipped_file_beside_the_notebook(tmp_path, monkeypatch):
    code = data_code(DatasetRef.of("builtin", "mnist-10k"), "run")
    assert code.data_file.kind == "asset" and code.data_file.name == "mnist-10k.npz"
    shutil.copy(SHIPPED_MNIST, tmp_path / code.data_file.name)
    monkeypatch.chdir(tmp_path)
    got = run(code.load + preprocess_code(code.known_uint8) + "x_test = preprocess(x_test_raw)")
    np.testing.assert_array_equal(got["x_test"], load_mnist_10k().x_test)


@pytest.mark.parametrize("images", [
    np.random.default_rng(0).integers(0, 256, (5, 4, 4), dtype=np.uint8),
    np.random.default_rng(1).integers(0, 256, (5, 4, 4, 3)).astype(np.int64),
    np.random.default_rng(2).random((5, 4, 4)).astype(np.float64),  # floats in [0, 1]: only cast
    np.random.default_rng(3).random((5, 4, 4, 1)).astype(np.float32) * 255,  # floats 0..255: scaled
])
def test_an_uploads_pixels_are_scaled_as_preprocess_images_scales_them(images):
    got = run(preprocess_code(known_uint8=False))["preprocess"](images)
    np.testing.assert_array_equal(got, preprocess_images(images))
    assert got.dtype == np.float32


def test_file_names_from_users_are_made_harmless():
    assert safe_file_name("../../my data (1).npz", ".npz") == "my_data_1_.npz"
    assert safe_file_name("C:\\Users\\x\\a\"b'.npz", ".npz") == "a_b_.npz"
    assert safe_file_name("", ".npz") == "data.npz"
    assert safe_file_name("arrays", ".npz") == "arrays.npz"
    code = data_code(DatasetRef.of("stored", "ab" * 32, {"file_name": "x'); import os; ('.npz", "suffix": ".npz"}),
                     "run")
    assert code.data_file.name == "x_import_os_.npz" and "import os" not in code.load.replace("import os_", "")


def test_an_image_folder_needs_its_class_names_and_reads_the_decoded_pixels():
    ref = DatasetRef.of("images", "/somewhere/photos.zip", {"image_size": 28})
    with pytest.raises(ExportError, match="class names"):
        data_code(ref, "run")
    code = data_code(ref, "20260101-000000-abcdef", ["cat's", "dog"])
    assert code.data_file.kind == "arrays" and code.data_file.name == "20260101-000000-abcdef-data.npz"
    assert "class_names = [\"cat's\", 'dog']" in code.load
