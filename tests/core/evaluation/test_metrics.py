"""Stage 4: metrics on hand-made probabilities, then on a tiny trained model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from core.evaluation.metrics import Evaluation, confusion_counts, evaluate
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.runs.status import RunState
from core.training.config import TrainingConfig
from core.training.loop import train

NAMES = ("a", "b", "c", "d")  # class "d" is never the true class
PROBS = np.array(
    [
        [0.70, 0.20, 0.10, 0.00],  # true a, predicted a
        [0.10, 0.60, 0.30, 0.00],  # true b, predicted b
        [0.50, 0.30, 0.20, 0.00],  # true b, predicted a (confidence 0.5)
        [0.05, 0.05, 0.90, 0.00],  # true c, predicted c
        [0.10, 0.80, 0.10, 0.00],  # true c, predicted b (confidence 0.8)
        [0.00, 0.00, 0.40, 0.60],  # true a, predicted d (confidence 0.6), p(true) = 0
    ],
    dtype=np.float32,
)
TRUE = np.array([0, 1, 1, 2, 2, 0])


@pytest.fixture
def ev() -> Evaluation:
    return Evaluation(PROBS, TRUE, NAMES)


def test_predictions_confidence_and_correctness(ev):
    assert ev.y_pred.tolist() == [0, 1, 0, 2, 1, 3]
    assert ev.confidence == pytest.approx([0.7, 0.6, 0.5, 0.9, 0.8, 0.6])
    assert ev.correct.tolist() == [True, True, False, True, False, False]


def test_accuracy_is_sklearns_accuracy_score(ev):
    assert ev.accuracy == 0.5
    assert ev.accuracy == accuracy_score(TRUE, PROBS.argmax(axis=1))
    assert isinstance(ev.accuracy, float)


def test_loss_is_mean_cross_entropy_with_clipping(ev):
    picked = [0.7, 0.6, 0.3, 0.9, 0.1, 1e-7]  # the last true-class probability is 0, clipped to 1e-7
    expected = -sum(math.log(p) for p in picked) / len(picked)
    assert ev.loss == pytest.approx(expected, rel=1e-6)
    assert math.isfinite(ev.loss)


def test_perfect_predictions_have_zero_loss_and_full_accuracy():
    perfect = Evaluation(np.eye(3, dtype=np.float32), np.arange(3), ("x", "y", "z"))
    assert perfect.accuracy == 1.0 and perfect.loss == pytest.approx(0.0, abs=1e-6)
    assert perfect.misclassified().size == 0


def test_confusion_counts(ev):
    matrix = ev.confusion()
    assert matrix.tolist() == [
        [1, 0, 0, 1],
        [1, 1, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 0, 0],
    ]
    assert matrix.sum() == len(TRUE)


def test_the_largest_confusion_is_the_off_diagonal_cell_with_the_most_mistakes(ev):
    assert ev.largest_confusion() == (0, 3)  # three cells hold one mistake each: the first in reading order
    more = Evaluation(np.vstack([PROBS, PROBS[4:5]]), np.append(TRUE, 2), NAMES)
    assert more.largest_confusion() == (2, 1)  # two c read as b
    assert more.cell(*more.largest_confusion()).tolist() == [4, 6]


def test_with_no_mistake_the_largest_confusion_is_the_most_common_class():
    probabilities = np.eye(3, dtype=np.float32)[[0, 1, 1, 2]]
    assert Evaluation(probabilities, np.array([0, 1, 1, 2]), ("x", "y", "z")).largest_confusion() == (1, 1)


def test_confusion_rows_normalise_and_an_empty_class_gives_zeros(ev):
    normalised = ev.confusion(normalize=True)
    assert not np.isnan(normalised).any()
    assert normalised == pytest.approx(np.array([
        [0.5, 0.0, 0.0, 0.5],
        [0.5, 0.5, 0.0, 0.0],
        [0.0, 0.5, 0.5, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ]))
    assert normalised[:3].sum(axis=1) == pytest.approx([1.0, 1.0, 1.0])


def test_confusion_keeps_classes_never_predicted_nor_seen():
    ev = Evaluation(np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0]], np.float32), np.array([0, 1]), ("p", "q", "r"))
    assert ev.confusion().shape == (3, 3)
    assert ev.confusion().tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 0]]


def test_per_class_matches_sklearn_and_hand_values(ev):
    rows = ev.per_class()
    assert [row["class"] for row in rows] == list(NAMES)
    precision, recall, f1, support = precision_recall_fscore_support(
        TRUE, PROBS.argmax(axis=1), labels=[0, 1, 2, 3], zero_division=0
    )
    for row, p, r, f, s in zip(rows, precision, recall, f1, support):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p, r, f, s))
    # by hand: class a is predicted for rows 0 and 2 (one right) and is the truth of rows 0 and 5
    assert rows[0] == {"class": "a", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert rows[2] == {"class": "c", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert rows[3] == {"class": "d", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert all(isinstance(row["support"], int) for row in rows)


def test_misclassified_most_confident_first(ev):
    assert ev.misclassified().tolist() == [4, 5, 2]
    assert ev.misclassified(limit=2).tolist() == [4, 5]
    assert ev.misclassified(limit=0).tolist() == []


def test_misclassified_ties_keep_the_test_set_order():
    probs = np.array([[0.4, 0.6], [0.9, 0.1], [0.4, 0.6], [0.3, 0.7]], np.float32)
    ev = Evaluation(probs, np.array([0, 0, 0, 0]), ("x", "y"))
    assert ev.misclassified().tolist() == [3, 0, 2]


def test_cell_finds_the_images_of_a_confusion_cell(ev):
    assert ev.cell(1, 0).tolist() == [2]
    assert ev.cell(0, 0).tolist() == [0]
    assert ev.cell(0, 3).tolist() == [5]
    assert ev.cell(3, 3).tolist() == []
    matrix = ev.confusion()
    assert all(len(ev.cell(t, p)) == matrix[t, p] for t in range(4) for p in range(4))


def test_confusion_counts_take_a_predict_function_in_batches():
    x = np.zeros((5, 2, 2, 1), dtype=np.float32)
    y = np.array([0, 1, 2, 2, 1])
    predicted = np.array([0, 2, 2, 1, 1])
    calls = []

    def predict(batch):
        calls.append(len(batch))
        start = sum(calls[:-1])
        return np.eye(3)[predicted[start:start + len(batch)]]

    matrix = confusion_counts(predict, x, y, 3, batch_size=2)
    assert calls == [2, 2, 1]
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 1], [0, 1, 1]])

# --- on a trained model ------------------------------------------------------------------------


def test_evaluate_a_tiny_trained_model(bars):
    arch = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny")
    job = train(arch, bars, TrainingConfig(optimizer="adam", learning_rate=0.01, epochs=2))
    assert job.outcome == RunState.FINISHED
    result = evaluate(job.model, bars.x_test, bars.y_test, bars.class_names)
    assert result.probabilities.shape == (len(bars.y_test), 4) and result.probabilities.dtype == np.float32
    assert result.probabilities.sum(axis=1) == pytest.approx(np.ones(len(bars.y_test)), abs=1e-5)
    assert result.class_names == ("horizontal", "vertical", "diagonal", "box")
    assert result.y_true.tolist() == bars.y_test.tolist()
    direct = np.asarray(job.model(bars.x_test, training=False)).argmax(axis=1)
    assert result.accuracy == accuracy_score(bars.y_test, direct)
    assert result.accuracy > 0.8  # chance is 0.25; the bars are learnt in two epochs
    keras_loss, keras_accuracy = job.model.evaluate(bars.x_test, bars.y_test, verbose=0)
    assert result.loss == pytest.approx(keras_loss, rel=1e-3, abs=1e-5)
    assert result.accuracy == pytest.approx(keras_accuracy, abs=1e-6)
    assert result.confusion().sum() == len(bars.y_test)
    assert sum(row["support"] for row in result.per_class()) == len(bars.y_test)


def test_a_test_set_is_scored_through_one_traced_forward_pass_not_keras_predict(bars):
    """Keras' `predict`, on a model compiled with several steps per execution (as ConvLab trains), traces its
    forward pass once per batch of a call and again for each new number of batches: seconds for a test set."""
    from core.evaluation.metrics import predict_probabilities
    from core.model.build import build_model

    model = build_model(Architecture(conv_blocks=(ConvBlock(filters=4),), dense_layers=(), name="tiny"),
                        bars.input_shape, bars.num_classes, seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", steps_per_execution=8)
    images = np.concatenate([bars.x_test] * 3)[:1000]  # batches of 64: 15 full and one short
    probabilities = predict_probabilities(model, images, batch_size=64)
    assert model.predict_function is None  # Keras' predict was never set up
    np.testing.assert_allclose(probabilities, model.predict(images, batch_size=64, verbose=0), atol=1e-5)
