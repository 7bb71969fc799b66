"""Scoring a run's model on its dataset's test images, into the run store (a trained run's last step, an upload's only one)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from core.runs.store import RunStore

if TYPE_CHECKING:
    from core.evaluation.inference import Predictor


def evaluate_into(store: RunStore, run_id: str, model, dataset, forward: "Predictor | None" = None) -> dict:
    """Score `model` on the dataset's test images and keep the metrics and probabilities in the run.
    `forward`: the model's forward pass already traced (by the training's validation)."""
    from core.evaluation.metrics import evaluate

    result = evaluate(model, dataset.x_test, dataset.y_test, dataset.class_names, forward=forward)
    metrics = {"accuracy": result.accuracy, "loss": result.loss, "images": int(len(result.y_true)),
               "evaluated": time.time()}
    store.write_test(run_id, metrics, result.probabilities)
    return metrics
