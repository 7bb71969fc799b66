"""core.limits: the size limits on architectures, the training-memory estimate, and byte formatting.

The limits on dataset files, zips and pictures are exercised with hostile files in data/test_files.py,
data/test_archives.py and data/test_pictures.py.
"""

from __future__ import annotations

import re

import pytest

from core import limits
from core.errors import ArchitectureError
from core.model.architecture import PRESETS, Architecture, ConvBlock, DenseLayer, layer_table, validate
from core.model.build import build_model

LIMITS = ("ConvLab allows at most 100,000,000 parameters and 2.0 GB for training: add pooling, use fewer filters "
          "or smaller dense layers.")

TOO_LARGE = [
    ("no pooling before dense 1024",
     Architecture((ConvBlock(256, 3, padding="same", pooling="none"),), (DenseLayer(1024),)), (28, 28, 1),
     f"this architecture has 205,534,730 parameters and needs about 3.4 GB to train in batches of 32; {LIMITS}"),
    ("wide unpooled maps on 96x96",
     Architecture((ConvBlock(256, 3, padding="same", pooling="none", batch_norm=True),), ()), (96, 96, 3),
     "each image produces 9,464,842 values in this architecture's layers (37.9 MB as float32); ConvLab allows at "
     "most 8,000,000 per image: add pooling or use fewer filters."),
    ("activations and weights together",
     Architecture((ConvBlock(192, 3, padding="same", batch_norm=True), ConvBlock(256, 3, padding="same")),
                  (DenseLayer(128),)), (96, 96, 3),
     f"this architecture has 19,324,554 parameters and needs about 2.2 GB to train in batches of 32; {LIMITS}"),
]


@pytest.mark.parametrize("arch, input_shape, message", [c[1:] for c in TOO_LARGE], ids=[c[0] for c in TOO_LARGE])
def test_an_architecture_too_large_to_train_is_refused_before_building(arch, input_shape, message):
    exact = f"^{re.escape(message)}$"
    for check in (validate, layer_table, build_model):  # build_model refuses before importing Keras
        with pytest.raises(ArchitectureError, match=exact):
            check(arch, input_shape, 10)


@pytest.mark.parametrize("input_shape", [(28, 28, 1), (32, 32, 3), (96, 96, 3)])
@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_is_within_the_limits(name, input_shape):
    layer_table(PRESETS[name], input_shape, 100)


def test_the_largest_pooled_slider_settings_pass_on_mnist_and_cifar():
    blocks = tuple(ConvBlock(256, 7, padding="same", batch_norm=True, dropout=0.7) for _ in range(4))
    arch = Architecture(blocks, tuple(DenseLayer(1024, dropout=0.7) for _ in range(3)))
    for input_shape in ((28, 28, 1), (32, 32, 3)):
        table = layer_table(arch, input_shape, 100)
        assert table.size(input_shape).training_memory(32) < limits.MAX_TRAINING_BYTES


def test_the_training_memory_estimate_of_the_lab_model():
    table = layer_table(PRESETS["lab"], (28, 28, 1), 10)
    # input 784, conv 26x26x32 and its ReLU, pool 13x13x32, flatten, dense 100, output 10
    values = 784 + 2 * 21_632 + 2 * 5_408 + 100 + 10
    assert table.size((28, 28, 1)).activations_per_image == values
    assert table.size((28, 28, 1)).training_memory(32) == 542_230 * 16 + 32 * values * 8


def test_training_checks_again_with_its_own_batch_size():
    table = layer_table(PRESETS["lab"], (28, 28, 1), 10)
    limits.check_model_size(table.size((28, 28, 1)), batch_size=4096)
    with pytest.raises(ArchitectureError, match=r"^this architecture has 542,230 parameters and needs about 3\.6 GB "
                                                r"to train in batches of 8192; ConvLab allows"):
        limits.check_model_size(table.size((28, 28, 1)), batch_size=8192)


@pytest.mark.parametrize("count, text", [
    (0, "0 bytes"), (999, "999 bytes"), (1000, "1.0 kB"), (15_680, "15.7 kB"), (999_949, "999.9 kB"),
    (999_950, "1.0 MB"), (1_568_000_000, "1.6 GB"), (4 * 10**12, "4.0 TB"), (3 * 10**18, "3,000.0 PB"),
    (10**30, "over 1,000,000 PB"),
])
def test_format_bytes(count, text):
    assert limits.format_bytes(count) == text
