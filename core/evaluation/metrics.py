"""Stage 4: estimate a trained model's performance on unseen test data.

Accuracy is scikit-learn's `accuracy_score` on argmax predictions, as in the
lab; the loss is the mean sparse categorical cross-entropy, computed the way
Keras does (probabilities clipped at 1e-7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

if TYPE_CHECKING:
    import keras

    from core.evaluation.inference import Predictor

_EPSILON = 1e-7


PREDICT_CHUNK = 8192  # images scaled at a time: a compact dataset is never turned into float32 all at once


def predict_probabilities(model: "keras.Model", images: np.ndarray, batch_size: int = 512,
                          forward: "Predictor | None" = None) -> np.ndarray:
    """Class probabilities for many images (an array, or a dataset's `ScaledImages`), (N, num_classes) float32.

    Through one traced forward pass (`Predictor`), not `model.predict`: a model compiled with several steps per
    execution (as ConvLab trains) has `predict` trace its forward pass once for each batch of a call, and
    again for each new number of batches (20 traces, 1-3 s here, for the 10,000 MNIST test images).
    `forward`: the model's `Predictor` already traced (a training validating after every epoch).
    """
    from core.evaluation.inference import Predictor

    forward = forward or Predictor(model)
    parts = []
    for start in range(0, len(images), PREDICT_CHUNK):
        chunk = np.asarray(images[start:start + PREDICT_CHUNK], dtype=np.float32)
        parts.extend(forward(chunk[first:first + batch_size]) for first in range(0, len(chunk), batch_size))
    return np.concatenate(parts) if parts else np.zeros((0, model.output_shape[-1]), dtype=np.float32)


@dataclass(frozen=True)
class Evaluation:
    """Predictions on a test set and the metrics derived from them."""

    probabilities: np.ndarray
    y_true: np.ndarray
    class_names: tuple[str, ...]

    @property
    def y_pred(self) -> np.ndarray:
        return self.probabilities.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        """The probability the model gave to its predicted class."""
        return self.probabilities.max(axis=1)

    @property
    def correct(self) -> np.ndarray:
        return self.y_pred == self.y_true

    @property
    def accuracy(self) -> float:
        return float(accuracy_score(self.y_true, self.y_pred))

    @property
    def loss(self) -> float:
        picked = self.probabilities[np.arange(len(self.y_true)), self.y_true]
        return float(-np.log(np.clip(picked, _EPSILON, 1.0)).mean())

    def confusion(self, normalize: bool = False) -> np.ndarray:
        """Rows are true classes, columns predicted; `normalize` divides each row by its total."""
        labels = list(range(len(self.class_names)))
        matrix = confusion_matrix(self.y_true, self.y_pred, labels=labels)
        if not normalize:
            return matrix
        totals = matrix.sum(axis=1, keepdims=True)
        return np.divide(matrix, totals, out=np.zeros(matrix.shape, dtype=float), where=totals > 0)

    def per_class(self) -> list[dict[str, object]]:
        """Precision, recall, F1 and support for each class."""
        labels = list(range(len(self.class_names)))
        precision, recall, f1, support = precision_recall_fscore_support(
            self.y_true, self.y_pred, labels=labels, zero_division=0
        )
        return [
            {"class": name, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(self.class_names, precision, recall, f1, support)
        ]

    def misclassified(self, limit: int | None = None) -> np.ndarray:
        """Indices of wrong predictions, the most confident mistakes first."""
        wrong = np.flatnonzero(~self.correct)
        order = wrong[np.argsort(-self.confidence[wrong], kind="stable")]
        return order if limit is None else order[:limit]

    def largest_confusion(self) -> tuple[int, int]:
        """(true, predicted): the off-diagonal cell holding the most mistakes (the first such in reading order);
        with no mistake at all, the diagonal cell of the most common class."""
        matrix = self.confusion()
        mistakes = matrix.copy()
        np.fill_diagonal(mistakes, 0)
        if mistakes.max(initial=0) > 0:
            true, predicted = np.unravel_index(int(mistakes.argmax()), mistakes.shape)
            return int(true), int(predicted)
        most = int(np.diag(matrix).argmax()) if matrix.size else 0
        return most, most

    def cell(self, true_class: int, predicted_class: int) -> np.ndarray:
        """Indices of test images with this true class and this prediction."""
        return np.flatnonzero((self.y_true == true_class) & (self.y_pred == predicted_class))


def confusion_counts(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, num_classes: int,
                     batch_size: int = 256) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, true class down, predicted across.

    `predict` maps a batch of images to class probabilities (a model's `predict_on_batch`, a
    `Predictor`); it is called on batches of `batch_size`.
    """
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels.")
    predicted = [np.asarray(predict(x[start:start + batch_size])).argmax(axis=1)
                 for start in range(0, len(x), batch_size)]
    y_pred = np.concatenate(predicted).astype(np.int64) if predicted else np.zeros(0, dtype=np.int64)
    return pair_counts(y, y_pred, num_classes)


def pair_counts(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts of (true, predicted) class pairs, true class down."""
    pairs = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(pairs, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def evaluate(model: "keras.Model", images: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
             forward: "Predictor | None" = None) -> Evaluation:
    """Predict `images` with `model` (through `forward`, its traced forward pass, when given) and wrap the
    results for the metrics."""
    return Evaluation(predict_probabilities(model, images, forward=forward), np.asarray(labels, dtype=np.int64),
                      tuple(class_names))
