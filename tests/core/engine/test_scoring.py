"""Scoring a model into a run: the test metrics and probabilities kept in the store are scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score

from core.engine.scoring import evaluate_into
from core.model.build import build_model
from core.runs.spec import RunSpec
from core.runs.store import RunStore
from core.training.config import TrainingConfig
from tests.core.engine.conftest import TINY


def test_the_scores_kept_in_the_run_are_those_of_the_model_on_the_test_images(tmp_path, bars_data):
    store = RunStore(tmp_path)
    run_id = store.create(RunSpec(bars_data.ref, TINY, TrainingConfig(epochs=1)))
    model = build_model(TINY, bars_data.input_shape, bars_data.num_classes, seed=3)
    metrics = evaluate_into(store, run_id, model, bars_data)
    probabilities = store.test_probabilities(run_id)
    np.testing.assert_allclose(probabilities, model.predict(bars_data.x_test, verbose=0), atol=1e-5)
    expected = accuracy_score(bars_data.y_test, probabilities.argmax(axis=1))
    assert store.test_metrics(run_id)["accuracy"] == metrics["accuracy"] == pytest.approx(expected)
    assert metrics["images"] == len(bars_data.x_test) and metrics["loss"] > 0
