"""Stage 2's architecture as plain data: presets, the layer table against Keras, refused architectures, (de)serialisation."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from core.errors import ArchitectureError
from core.model.architecture import (
    PRESET_DESCRIPTIONS,
    PRESETS,
    Architecture,
    ConvBlock,
    DenseLayer,
    LayerRow,
    architecture_from_dict,
    architecture_to_dict,
    layer_table,
    validate,
)
from core.model.augment import Augmentation
from core.model.build import build_model
from tests.conftest import ROOT

MNIST_SHAPE = (28, 28, 1)


# --- the presets -------------------------------------------------------------------------


def test_lab_preset_is_the_lab_model():
    table = layer_table(PRESETS["lab"], MNIST_SHAPE, 10)
    assert table.rows == (
        LayerRow("conv1", "Conv2D", (26, 26, 32), 3 * 3 * 1 * 32 + 32),
        LayerRow("conv1_relu", "Activation", (26, 26, 32), 0),
        LayerRow("pool1", "MaxPooling2D", (13, 13, 32), 0),
        LayerRow("flatten", "Flatten", (13 * 13 * 32,), 0),
        LayerRow("dense1", "Dense (relu)", (100,), 5408 * 100 + 100),
        LayerRow("output", "Dense (softmax)", (10,), 100 * 10 + 10),
    )
    assert table.total_params == 542_230


def test_keras_example_preset_matches_keras_io_convnet():
    table = layer_table(PRESETS["keras-example"], MNIST_SHAPE, 10)
    assert table.total_params == 34_826  # the figure keras-io prints for mnist_convnet
    assert [row.name for row in table.rows] == [
        "conv1", "conv1_relu", "pool1", "conv2", "conv2_relu", "pool2", "conv2_dropout", "flatten", "output",
    ]
    dropout = table.rows[6]
    assert (dropout.kind, dropout.output_shape) == ("Dropout", (5, 5, 64))


def test_fast_preset_is_three_blocks_normalised_where_the_maps_are_small():
    arch = PRESETS["fast"]
    table = layer_table(arch, MNIST_SHAPE, 10)
    assert table.total_params == 441_386
    assert [(b.filters, b.kernel_size, b.batch_norm, b.padding, b.pooling) for b in arch.conv_blocks] == [
        (32, 5, False, "valid", "max"), (32, 3, True, "valid", "max"), (64, 3, True, "same", "none")]
    assert arch.dense_layers == (DenseLayer(units=256, dropout=0.5),)
    shapes = {row.name: row.output_shape for row in table.rows}
    assert shapes["pool1"] == (12, 12, 32) and shapes["conv3"] == (5, 5, 64) and shapes["flatten"] == (1600,)


def test_photos_preset_keeps_the_edges_mirrors_and_fits_colour_photos():
    arch = PRESETS["photos"]
    assert arch.augmentation == Augmentation(horizontal_flip=True)  # a mirrored shirt is a shirt; no up-down flip
    assert [(b.filters, b.kernel_size, b.padding, b.batch_norm, b.pooling, b.dropout) for b in arch.conv_blocks] == [
        (32, 3, "same", False, "max", 0.0), (64, 3, "same", True, "max", 0.0), (128, 3, "valid", True, "none", 0.25)]
    assert arch.dense_layers == (DenseLayer(units=256, dropout=0.5),)
    table = layer_table(arch, MNIST_SHAPE, 10)
    shapes = {row.name: row.output_shape for row in table.rows}
    assert shapes["pool2"] == (7, 7, 64) and shapes["flatten"] == (5 * 5 * 128,) and table.total_params == 915_466
    colour = {row.name: row.output_shape for row in layer_table(arch, (32, 32, 3), 10).rows}
    assert colour["flatten"] == (6 * 6 * 128,)  # CIFAR-10's photos fit too


def test_every_preset_is_described_with_what_it_is_for():
    assert set(PRESET_DESCRIPTIONS) == set(PRESETS)
    assert "digits" in PRESET_DESCRIPTIONS["fast"] and "photos" in PRESET_DESCRIPTIONS["photos"]
    assert "clothing" in PRESET_DESCRIPTIONS["photos"]


def test_layer_table_records_for_display():
    records = layer_table(PRESETS["lab"], MNIST_SHAPE, 10).as_records()
    assert records[0] == {"layer": "conv1", "type": "Conv2D", "output shape": "(26, 26, 32)", "parameters": 320}
    assert records[-1]["parameters"] == 1010 and len(records) == 6


def test_layer_table_does_not_import_keras():
    code = (
        "import sys; from core.model.architecture import PRESETS, layer_table; "
        "t = layer_table(PRESETS['fast'], (28, 28, 1), 10); "
        "print(t.total_params, 'keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    total, keras_loaded, tf_loaded = out.stdout.split()
    assert int(total) > 0 and keras_loaded == "False" and tf_loaded == "False"


# --- layer_table equals what Keras builds ---------------------------------------------------


CASES = {
    "lab": (PRESETS["lab"], MNIST_SHAPE, 10),
    "keras-example": (PRESETS["keras-example"], MNIST_SHAPE, 10),
    "fast (batch norm, same padding, no pooling, dense dropout)": (PRESETS["fast"], MNIST_SHAPE, 10),
    "photos on colour photos (flips)": (PRESETS["photos"], (32, 32, 3), 10),
    "colour, same padding, average pooling, no dense": (
        Architecture(
            conv_blocks=(
                ConvBlock(filters=8, kernel_size=5, padding="same", pooling="average", batch_norm=True),
                ConvBlock(filters=12, kernel_size=3, activation="elu", pooling="max", pool_size=3, dropout=0.25),
                ConvBlock(filters=6, kernel_size=1, activation="tanh", pooling="none", padding="same"),
            ),
            dense_layers=(),
            name="colour_net",
        ),
        (32, 32, 3), 10,
    ),
    "odd sizes, no pooling, two dense with dropout": (
        Architecture(
            conv_blocks=(
                ConvBlock(filters=4, kernel_size=4, activation="gelu", pooling="none"),
                ConvBlock(filters=5, kernel_size=3, activation="sigmoid", pool_size=2, dropout=0.1),
            ),
            dense_layers=(DenseLayer(units=7, activation="tanh", dropout=0.3), DenseLayer(units=3, activation="elu")),
            name="odd_net",
        ),
        (13, 11, 1), 4,
    ),
    "augmentation first, colour": (
        Architecture(
            conv_blocks=(ConvBlock(filters=6, kernel_size=3),),
            dense_layers=(DenseLayer(units=8),),
            name="augmented_net",
            augmentation=Augmentation(horizontal_flip=True, vertical_flip=True, rotation=0.1, zoom=0.2, shift=0.1),
        ),
        (16, 16, 3), 3,
    ),
    "kernel exactly fills the map": (
        Architecture(conv_blocks=(ConvBlock(filters=3, kernel_size=5, pooling="none"),), dense_layers=()),
        (5, 5, 2), 2,
    ),
}


@pytest.mark.parametrize("arch, input_shape, num_classes", CASES.values(), ids=CASES.keys())
def test_layer_table_matches_keras_layer_by_layer(arch, input_shape, num_classes):
    table = layer_table(arch, input_shape, num_classes)
    model = build_model(arch, input_shape, num_classes)
    assert model.name == arch.name
    assert model.count_params() == table.total_params
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    assert [layer.name for layer in layers] == [row.name for row in table.rows]
    for layer, row in zip(layers, table.rows):
        assert tuple(layer.output.shape[1:]) == row.output_shape, row.name
        assert layer.count_params() == row.params, row.name
        assert row.kind.split(" ")[0] == type(layer).__name__, row.name
        if row.kind.startswith("Dense ("):
            assert row.kind == f"Dense ({layer.activation.__name__})", row.name
    assert tuple(model.output.shape) == (None, num_classes)
    assert tuple(model.input.shape) == (None, *input_shape)


# --- architectures that cannot work ------------------------------------------------------


def blocks(n: int, **kwargs) -> tuple[ConvBlock, ...]:
    return tuple(ConvBlock(**kwargs) for _ in range(n))


def arch_of(*conv: ConvBlock, dense: tuple[DenseLayer, ...] = (DenseLayer(),)) -> Architecture:
    return Architecture(conv_blocks=conv, dense_layers=dense)


IMPOSSIBLE = [
    ("four 3x3+pool blocks on 28x28", arch_of(*blocks(4)), MNIST_SHAPE, 10,
     "conv block 4: a 3x3 kernel does not fit the 1x1 feature map; use a smaller kernel, 'same' padding, "
     "or fewer blocks."),
    ("pooling to 0x0", arch_of(*blocks(5, padding="same")), MNIST_SHAPE, 10,
     "conv block 5: 2x2 pooling would shrink the 1x1 feature map to 0x0; remove a block or its pooling."),
    ("big pool", arch_of(ConvBlock(pool_size=8), ConvBlock(pool_size=8)), MNIST_SHAPE, 10,
     "conv block 2: 8x8 pooling would shrink the 1x1 feature map to 0x0; remove a block or its pooling."),
    ("narrow input", arch_of(*blocks(2)), (28, 6, 1), 10,
     "conv block 2: a 3x3 kernel does not fit the 13x2 feature map; use a smaller kernel, 'same' padding, "
     "or fewer blocks."),
    ("kernel larger than image", arch_of(ConvBlock(kernel_size=15)), (12, 12, 1), 4,
     "conv block 1: a 15x15 kernel does not fit the 12x12 feature map; use a smaller kernel, 'same' padding, "
     "or fewer blocks."),
    ("zero filters", arch_of(ConvBlock(filters=0)), MNIST_SHAPE, 10,
     "conv block 1: filters == 0, must be between 1 and 1024."),
    ("float filters", arch_of(ConvBlock(), ConvBlock(filters=32.0)), MNIST_SHAPE, 10,
     "conv block 2: filters == 32.0, must be an integer."),
    ("bool filters", arch_of(ConvBlock(filters=True)), MNIST_SHAPE, 10,
     "conv block 1: filters == True, must be an integer."),
    ("zero kernel", arch_of(ConvBlock(kernel_size=0)), MNIST_SHAPE, 10,
     "conv block 1: kernel size == 0, must be between 1 and 15."),
    ("bad conv activation", arch_of(ConvBlock(activation="swish")), MNIST_SHAPE, 10,
     "conv block 1: activation == 'swish', must be one of 'relu', 'elu', 'gelu', 'tanh', 'sigmoid'."),
    ("bad pooling", arch_of(ConvBlock(pooling="min")), MNIST_SHAPE, 10,
     "conv block 1: pooling == 'min', must be one of 'max', 'average', 'none'."),
    ("bad padding", arch_of(ConvBlock(padding="full")), MNIST_SHAPE, 10,
     "conv block 1: padding == 'full', must be one of 'valid', 'same'."),
    ("zero pool size", arch_of(ConvBlock(pool_size=0)), MNIST_SHAPE, 10,
     "conv block 1: pool size == 0, must be between 1 and 8."),
    ("conv dropout 1.0", arch_of(ConvBlock(), ConvBlock(dropout=1.0)), MNIST_SHAPE, 10,
     "conv block 2: dropout == 1.0, must be in [0, 1)."),
    ("negative dropout", arch_of(ConvBlock(dropout=-0.1)), MNIST_SHAPE, 10,
     "conv block 1: dropout == -0.1, must be in [0, 1)."),
    ("zero units", arch_of(ConvBlock(), dense=(DenseLayer(units=0),)), MNIST_SHAPE, 10,
     "dense layer 1: units == 0, must be between 1 and 8192."),
    ("softmax hidden layer", arch_of(ConvBlock(), dense=(DenseLayer(), DenseLayer(activation="softmax"))),
     MNIST_SHAPE, 10, "dense layer 2: activation == 'softmax', must be one of 'relu', 'elu', 'gelu', 'tanh', 'sigmoid'."),
    ("dense dropout 1.0", arch_of(ConvBlock(), dense=(DenseLayer(dropout=1.0),)), MNIST_SHAPE, 10,
     "dense layer 1: dropout == 1.0, must be in [0, 1)."),
    ("no conv blocks", Architecture(conv_blocks=()), MNIST_SHAPE, 10, "a CNN needs at least one conv block."),
    ("one class", PRESETS["lab"], MNIST_SHAPE, 1, "num_classes == 1, must be >= 2."),
    ("2-D input shape", PRESETS["lab"], (28, 28), 10, "input shape (28, 28) must be (height, width, channels)."),
    ("empty input", PRESETS["lab"], (0, 28, 1), 10, "input shape (0, 28, 1) must be (height, width, channels)."),
]


@pytest.mark.parametrize("arch, input_shape, num_classes, message",
                         [case[1:] for case in IMPOSSIBLE], ids=[case[0] for case in IMPOSSIBLE])
def test_impossible_architecture_is_refused_with_its_reason(arch, input_shape, num_classes, message):
    exact = f"^{re.escape(message)}$"
    with pytest.raises(ArchitectureError, match=exact):
        validate(arch, input_shape, num_classes)
    with pytest.raises(ArchitectureError, match=exact):
        layer_table(arch, input_shape, num_classes)
    with pytest.raises(ArchitectureError, match=exact):  # refused before any Keras layer exists
        build_model(arch, input_shape, num_classes)


def test_deepest_fitting_stack_is_accepted():
    # 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1: three blocks fit, the fourth (above) does not.
    table = layer_table(arch_of(*blocks(3)), MNIST_SHAPE, 10)
    assert table.rows[-3].output_shape == (32,)  # flatten of 1x1x32


# --- to/from dict ------------------------------------------------------------------------------


ROUND_TRIP = [*PRESETS.values(), CASES["colour, same padding, average pooling, no dense"][0],
              CASES["odd sizes, no pooling, two dense with dropout"][0], CASES["augmentation first, colour"][0]]


@pytest.mark.parametrize("arch", ROUND_TRIP, ids=[a.name for a in ROUND_TRIP])
def test_architecture_dict_round_trip_through_json(arch):
    data = json.loads(json.dumps(architecture_to_dict(arch)))
    assert data["name"] == arch.name and len(data["conv_blocks"]) == len(arch.conv_blocks)
    assert architecture_from_dict(data) == arch


def test_a_description_from_before_augmentation_loads_without_it():
    data = architecture_to_dict(PRESETS["lab"])
    del data["augmentation"]
    assert architecture_from_dict(data) == PRESETS["lab"] and not PRESETS["lab"].augmentation.enabled


def test_only_the_fast_and_photos_presets_augment_their_training_images():
    assert PRESETS["fast"].augmentation == Augmentation(shift=0.05)
    assert PRESETS["photos"].augmentation.enabled
    assert not PRESETS["lab"].augmentation.enabled and not PRESETS["keras-example"].augmentation.enabled


MALFORMED = [
    ("unknown block field", {"conv_blocks": [{"filterz": 8}]},
     r"^conv block 1: unknown setting\(s\) 'filterz'; known: filters, kernel_size, "),
    ("unknown dense field", {"conv_blocks": [{}], "dense_layers": [{"units": 10, "size": 3}]},
     r"^dense layer 1: unknown setting\(s\) 'size'; known: units, activation, dropout\.$"),
    ("block is a number", {"conv_blocks": [3]}, r"^conv block 1 must be a mapping, not int\.$"),
    ("blocks is null", {"conv_blocks": None}, r"^architecture description: conv_blocks must be a list, not NoneType\.$"),
    ("not a mapping", [1, 2], r"^architecture description must be a mapping, not list\.$"),
    ("unknown field", {"conv_blocks": [{}], "depth": 3}, r"^architecture description: unknown setting\(s\) 'depth'"),
]


def test_bad_augmentation_in_a_description_is_refused_with_its_reason():
    with pytest.raises(ArchitectureError, match=r"^rotation == 0\.6, must be in \[0, 0\.25\]\.$"):
        architecture_from_dict({"conv_blocks": [{}], "augmentation": {"rotation": 0.6}})


@pytest.mark.parametrize("data, detail", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_architecture_dict_is_refused(data, detail):
    with pytest.raises(ArchitectureError, match=detail):
        architecture_from_dict(data)


def test_dict_with_bad_values_loads_but_does_not_validate():
    arch = architecture_from_dict({"conv_blocks": [{"filters": "32"}]})
    with pytest.raises(ArchitectureError, match=r"^conv block 1: filters == '32', must be an integer\.$"):
        validate(arch, MNIST_SHAPE, 10)
