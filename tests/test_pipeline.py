"""All four stages on real handwritten digits: the lab model and recipe, shortened to two epochs."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score

from core.data.registry import load_mnist_10k
from core.data.splits import subsample
from core.evaluation.metrics import evaluate
from core.model.architecture import PRESETS, layer_table
from core.runs.status import RunState
from core.training.config import TRAINING_PRESETS, override
from core.training.loop import train


def test_lab_model_and_recipe_learn_real_mnist_digits():
    # Stage 1: the real MNIST digits shipped with ConvLab (offline); 4,000 of them keep the test quick.
    shipped = load_mnist_10k()
    assert (len(shipped.x_train), len(shipped.x_test)) == (10_000, 10_000)
    dataset = subsample(shipped, train=4000, test=2000, seed=0)
    assert dataset.input_shape == (28, 28, 1) and dataset.num_classes == 10
    assert dataset.x_train.dtype == np.float32 and 0.0 <= dataset.x_train.min() < dataset.x_train.max() <= 1.0

    # Stage 2: the lab's architecture.
    arch = PRESETS["lab"]
    assert layer_table(arch, dataset.input_shape, dataset.num_classes).total_params == 542_230

    # Stage 3: the lab's recipe (SGD 0.01, momentum 0.9, batch 32), two epochs instead of ten.
    result = train(arch, dataset, override(TRAINING_PRESETS["lab"], epochs=2))
    assert result.outcome == RunState.FINISHED, result.message
    history = result.history()
    assert history["loss"][1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.85

    # Stage 4: accuracy_score on 2,000 official test digits. Seeded, so the figure is the same on every run
    # of this machine; chance is 0.1.
    result_test = evaluate(result.model, dataset.x_test, dataset.y_test, dataset.class_names)
    assert result_test.accuracy == accuracy_score(dataset.y_test, result_test.y_pred)
    assert result_test.accuracy > 0.88
    assert result_test.confusion().trace() == round(result_test.accuracy * len(dataset.y_test))
    assert min(row["recall"] for row in result_test.per_class()) > 0.6  # every digit is learnt, not just a few
