"""The architecture as a Keras model: seeded, without touching NumPy's global state."""

from __future__ import annotations

import numpy as np

from core.model.architecture import PRESETS, Architecture, ConvBlock, DenseLayer
from core.model.build import build_model

MNIST_SHAPE = (28, 28, 1)


def test_build_model_is_seeded_without_touching_global_state():
    arch = PRESETS["keras-example"]
    before = np.random.get_state()[1].copy()
    first = build_model(arch, MNIST_SHAPE, 10, seed=3).get_weights()
    again = build_model(arch, MNIST_SHAPE, 10, seed=3).get_weights()
    other = build_model(arch, MNIST_SHAPE, 10, seed=4).get_weights()
    assert np.array_equal(np.random.get_state()[1], before)
    assert len(first) == len(again) == len(other)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    kernels = [i for i, w in enumerate(first) if w.ndim > 1]
    assert kernels and all(not np.array_equal(first[i], other[i]) for i in kernels)


def test_same_seed_gives_same_predictions_including_dropout_layers():
    arch = Architecture(conv_blocks=(ConvBlock(filters=4, dropout=0.5),), dense_layers=(DenseLayer(8, dropout=0.5),))
    x = np.random.default_rng(0).random((3, 12, 12, 1), dtype=np.float32)
    a = np.asarray(build_model(arch, (12, 12, 1), 4, seed=1)(x, training=True))
    b = np.asarray(build_model(arch, (12, 12, 1), 4, seed=1)(x, training=True))
    assert np.array_equal(a, b)
    assert np.allclose(a.sum(axis=1), 1.0, atol=1e-5)
