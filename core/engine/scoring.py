"""Scoring a run's model on its dataset's test images, into the run store (a trained run's last step, an upload's only one)."""

from __future__ import annotations

import time

from core.runs.store import RunStore


def evaluate_into(store: RunStore, run_id: str, model, dataset) -> dict:
    """Score `model` on the dataset's test images and keep the metrics and probabilities in the run."""
    from core.evaluation.metrics import evaluate

    result = evaluate(model, dataset.x_test, dataset.y_test, dataset.class_names)
    metrics = {"accuracy": result.accuracy, "loss": result.loss, "images": int(len(result.y_true)),
               "evaluated": time.time()}
    store.write_test(run_id, metrics, result.probabilities)
    return metrics
