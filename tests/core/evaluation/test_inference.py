"""Single-image inference for the canvas and pictures: the same probabilities as model.predict, only faster."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.drawing import preprocess_drawing
from tests.conftest import SEVEN, ink_image, transparent_canvas

# --- the predictor --------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_model():
    """An untrained `fast` model: batch normalisation and dropout make training=False matter."""
    from core.model.architecture import PRESETS
    from core.model.build import build_model

    return build_model(PRESETS["fast"], (28, 28, 1), 10, seed=0)


@pytest.fixture(scope="module")
def predictor(fast_model):
    from core.evaluation.inference import Predictor

    return Predictor(fast_model)


def test_predictor_matches_model_predict(fast_model, predictor):
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    probabilities = predictor(x)
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, fast_model.predict(x, verbose=0), atol=1e-5)


def test_a_warmed_predictor_has_traced_its_function_once_for_every_batch_size(fast_model):
    from core.evaluation.inference import Predictor

    predictor = Predictor(fast_model)
    assert predictor._forward.experimental_get_tracing_count() == 0
    assert predictor.warmed() is predictor
    assert predictor._forward.experimental_get_tracing_count() == 1  # the page's warm-up, on a blank image
    predictor(np.random.default_rng(1).random((1, 28, 28, 1), dtype=np.float32))  # the first drawing
    predictor(np.random.default_rng(2).random((3, 28, 28, 1), dtype=np.float32))
    assert predictor._forward.experimental_get_tracing_count() == 1  # nothing left to trace


def test_predictor_takes_a_preprocessed_drawing(fast_model, predictor):
    steps = preprocess_drawing(transparent_canvas(ink_image(SEVEN)))
    probabilities = predictor(steps.model_input)
    assert probabilities.shape == (1, 10)
    assert np.isfinite(probabilities).all()
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(probabilities, fast_model.predict(steps.model_input, verbose=0), atol=1e-5)


def test_predictor_accepts_other_dtypes(predictor):
    x = np.zeros((2, 28, 28, 1), dtype=np.float64)
    assert predictor(x).dtype == np.float32


@pytest.mark.parametrize("shape", [(28, 28, 1), (1, 28, 28), (1, 28, 28, 3), (1, 32, 32, 1)])
def test_predictor_refuses_a_wrong_shape(predictor, shape):
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 28, 28, 1\), got"):
        predictor(np.zeros(shape, dtype=np.float32))
