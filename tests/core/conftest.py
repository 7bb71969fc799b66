"""Fixtures the tests of several core packages share.

`explainers`: one Explainer per architecture of CASES (explain, figures); `trained`: a small CNN trained on
the bars, with its confusion matrix recorded after each epoch (explain, figures, training).
"""

from __future__ import annotations

import numpy as np
import pytest

from core.data.splits import fixed_subset
from core.explain.network import Explainer
from core.model.architecture import PRESETS, Architecture, ConvBlock, DenseLayer
from core.model.build import build_model

SAME_NO_POOL = Architecture(
    conv_blocks=(ConvBlock(filters=4, kernel_size=3, pooling="none", padding="same"),
                 ConvBlock(filters=6, kernel_size=3, pooling="none", padding="same", activation="tanh"),
                 ConvBlock(filters=5, kernel_size=5, pooling="none", padding="same", dropout=0.3)),
    dense_layers=(DenseLayer(units=12),),
    name="same_no_pool",
)
COLOUR = Architecture(conv_blocks=(ConvBlock(filters=8, kernel_size=3, batch_norm=True, pooling="average"),),
                      dense_layers=(DenseLayer(units=16, dropout=0.2),), name="colour")
CASES = {
    "lab": (PRESETS["lab"], (28, 28, 1), 10),
    "fast": (PRESETS["fast"], (28, 28, 1), 10),
    "same-no-pool": (SAME_NO_POOL, (12, 12, 1), 4),
    "colour": (COLOUR, (32, 32, 3), 10),
    "no-dense": (PRESETS["keras-example"], (28, 28, 1), 10),
}


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.fixture(scope="module")
def explainers():
    """One (model, Explainer) per architecture, built once for the module."""
    out = {}
    for key, (arch, shape, classes) in CASES.items():
        model = build_model(arch, shape, classes, seed=1)
        out[key] = (model, Explainer(model), shape, classes)
    return out


@pytest.fixture(scope="module")
def trained(bars):
    """A small CNN trained 2 epochs on the bars data, with a confusion matrix recorded after each epoch."""
    import keras

    keras.utils.set_random_seed(0)
    arch = Architecture(conv_blocks=(ConvBlock(filters=8, kernel_size=3),), dense_layers=(DenseLayer(units=16),))
    model = build_model(arch, bars.input_shape, bars.num_classes, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    from core.training.callbacks import ConfusionRecorder

    subset = fixed_subset(len(bars.x_test), 60, seed=3)
    recorded = []
    record = ConfusionRecorder(bars.x_test[subset], bars.y_test[subset], bars.num_classes, recorded.append)
    model.fit(bars.x_train, bars.y_train, epochs=2, batch_size=16, verbose=0, callbacks=[record])
    matrices = [np.asarray(entry["matrix"], dtype=np.int64) for entry in recorded[-1]]
    return model, Explainer(model), matrices, subset
