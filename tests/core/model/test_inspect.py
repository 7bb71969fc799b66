"""Sizing a model from its config.json alone: the same shapes and parameters Keras builds, hostile files refused
before Keras builds anything."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from core.errors import ArchitectureError, ModelFileError
from core.model.architecture import PRESETS
from core.model.build import build_model
from core.model.files import inspect_model_file
from core.model.inspect import inspect_config


def config_of(model) -> dict:
    return json.loads(model.to_json())


def keras_models():
    import keras
    from keras import layers

    inputs = keras.Input((20, 20, 3), name="image")
    a = layers.Conv2D(6, 3, padding="same", name="a")(inputs)
    b = layers.SeparableConv2D(6, (3, 5), padding="same", depth_multiplier=2, name="b")(inputs)
    x = layers.Concatenate(name="join")([a, b])
    x = layers.Add(name="add")([x, layers.Conv2D(12, 1, name="skip")(inputs)])
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.DepthwiseConv2D(3, strides=2, depth_multiplier=2, name="depthwise")(x)
    x = layers.ZeroPadding2D(((1, 2), (0, 1)), name="pad")(x)
    x = layers.Cropping2D(1, name="crop")(x)
    x = layers.UpSampling2D(2, name="up")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    x = layers.GlobalAveragePooling2D(keepdims=True, name="gap")(x)
    x = layers.Reshape((-1,), name="reshape")(x)
    x = layers.LayerNormalization(name="ln")(x)
    outputs = layers.Dense(5, activation="softmax", name="out")(x)
    functional = keras.Model(inputs, outputs, name="mixed")
    sequential = keras.Sequential([keras.Input((28, 28, 1)), layers.Rescaling(1 / 255), layers.RandomFlip(),
                                   layers.Conv2D(8, 5, strides=2, dilation_rate=1), layers.AveragePooling2D(2),
                                   layers.Resizing(16, 16), layers.Flatten(), layers.Dropout(0.2), layers.Dense(10)])
    nested = keras.Sequential([keras.Input((28, 28, 1)), sequential, layers.Dense(3)], name="nested")
    return {"functional": functional, "sequential": sequential, "nested": nested,
            **{name: build_model(arch, (28, 28, 1), 10) for name, arch in PRESETS.items()}}


@pytest.fixture(scope="module")
def models():
    return keras_models()


@pytest.mark.parametrize("name", ["functional", "sequential", "nested", "lab", "keras-example", "fast", "photos"])
def test_the_config_gives_the_parameters_and_shapes_keras_builds(models, name):
    model = models[name]
    summary = inspect_config(config_of(model), f"{name}.keras")
    assert summary.size.params == model.count_params()
    assert summary.input_shape == tuple(model.input_shape[1:]) and summary.output_shape == tuple(model.output_shape[1:])
    if name == "functional":  # every layer's shape, in the order Keras lists them
        shapes = [tuple(layer.output.shape[1:]) for layer in model.layers[1:]]
        assert list(summary.size.output_shapes) == shapes


def sequential_config(*layers: dict, input_shape=(28, 28, 1)) -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, *input_shape]}},
        *({"module": "keras.layers", "class_name": kind, "config": config} for kind, config in layers)]}}


def keras_file(config: dict, members: dict[str, bytes] | None = None, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        archive.writestr("config.json", json.dumps(config))
        for name, data in (members or {"model.weights.h5": b"\x89HDF"}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


# the attack that was measured: a file of a few kB whose layers blow up the activations (950 MB added to the server)
BLOW_UP = sequential_config(("UpSampling2D", {"size": [64, 64]}), ("Conv2D", {"filters": 64, "kernel_size": 1}),
                            ("GlobalAveragePooling2D", {}), ("Dense", {"units": 10}))
HUGE_DENSE = sequential_config(("Flatten", {}), ("Dense", {"units": 200_000}), ("Dense", {"units": 10}))


@pytest.mark.parametrize("config, error, message", [
    (BLOW_UP, ArchitectureError, r"^each image produces 208,733,018 values in this model's layers \(834\.9 MB as "
                                 r"float32\); ConvLab allows at most 8,000,000 per image"),
    (HUGE_DENSE, ArchitectureError, r"^this model has 159,000,010 parameters and needs about 2\.6 GB to train in "
                                    r"batches of 32; ConvLab allows at most 100,000,000 parameters"),
    (sequential_config(("TextVectorization", {})), ModelFileError,
     r"it has a TextVectorization layer, which ConvLab cannot size from the file before loading it\. Uploaded "
     r"models may use Activation, ActivityRegularization, Add, "),
    (sequential_config(("Conv2D", {"filters": 4, "kernel_size": 30})), ModelFileError,
     r"its Conv2D layer shrinks the feature maps to -1x-1x4"),
    (sequential_config(("Conv2D", {"filters": 4, "kernel_size": 3, "data_format": "channels_first"})),
     ModelFileError, r"its Conv2D layer is channels_first"),
    (sequential_config(("Conv2D", {"filters": 4, "kernel_size": "three"})), ModelFileError,
     r"a layer in its config\.json has settings ConvLab cannot read"),
    (sequential_config(("Dense", {"units": 3}), input_shape=(None, 28, 1)), ModelFileError,
     r"its input shape \[None, 28, 1\] is not fixed"),
    ({"class_name": "Functional", "config": {"layers": [], "output_layers": []}}, ModelFileError,
     r"it has 0 inputs; ConvLab classifies single images"),
])
def test_a_hostile_or_unsizable_config_is_refused_before_anything_is_built(config, error, message, monkeypatch):
    import keras

    monkeypatch.setattr(keras.models, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    monkeypatch.setattr(keras.Model, "from_config", lambda *a, **k: pytest.fail("the model was built"))
    with pytest.raises(error, match=message):
        inspect_model_file(keras_file(config), "evil.keras", (28, 28, 1), 10)


def test_a_compressed_member_that_would_unpack_past_its_budget_is_refused():
    bomb = keras_file(sequential_config(("Flatten", {}), ("Dense", {"units": 10})),
                      {"model.weights.h5": bytes(5_000_000)}, compress=True)
    assert len(bomb) < 20_000
    with pytest.raises(ModelFileError, match=r"member 'model\.weights\.h5' is compressed [\d,]+ to 1; at most 100 to 1"):
        inspect_model_file(bomb, "bomb.keras", (28, 28, 1), 10)


def test_objects_from_outside_keras_are_refused():
    config = sequential_config(("Dense", {"units": 10}))
    config["config"]["layers"][1]["module"] = "os"
    with pytest.raises(ModelFileError, match=r"uses objects from 'os', outside Keras"):
        inspect_model_file(keras_file(config), "evil.keras", (28, 28, 1), 10)
