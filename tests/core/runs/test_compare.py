"""Comparing runs: the settings that differ, the curves side by side."""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import numpy as np

from core.model.architecture import PRESETS
from core.runs.compare import comparison_csv, comparison_rows, spec_differences
from core.runs.writer import RunWriter
from core.training.config import TRAINING_PRESETS, override
from tests.core.runs.conftest import LAB


def test_spec_differences_lists_only_the_settings_that_differ():
    other = replace(LAB, architecture=PRESETS["fast"], training=override(TRAINING_PRESETS["lab"], learning_rate=0.05))
    differences = spec_differences([LAB, other])
    assert differences["training.learning_rate"] == [0.01, 0.05]
    assert differences["architecture"] == ["lab_cnn", "fast_cnn"]
    assert differences["conv1.kernel_size"] == [3, 5] and "conv1.filters" not in differences  # (32 in both)
    assert differences["conv2.filters"] == [None, 32] and differences["conv3.filters"] == [None, 64]
    assert "training.momentum" not in differences and "dataset" not in differences
    assert spec_differences([LAB, LAB]) == {}


def test_test_metrics_and_comparison_rows(store):
    first, second = store.create(LAB), store.create(replace(LAB, training=override(LAB.training, seed=3)))
    for run_id, loss in ((first, 0.3), (second, 0.2)):
        writer = RunWriter(store, run_id)
        writer.on_epoch({"epoch": 1, "step": 10, "loss": loss, "accuracy": 0.9, "val_loss": loss, "val_accuracy": 0.8,
                         "epoch_s": 1.0, "elapsed_s": 1.0, "partial": False})
    store.write_test(first, {"accuracy": 0.97, "loss": 0.1}, np.eye(10, dtype=np.float32))
    assert store.test_metrics(first)["accuracy"] == 0.97
    assert store.test_probabilities(first).shape == (10, 10) and store.test_probabilities(second) is None
    rows = comparison_rows(store, [first, second])
    assert [(row["run"], row["epoch"], row["loss"], row["training.seed"]) for row in rows] == [
        (first, 1, 0.3, 0), (second, 1, 0.2, 3)]
    assert rows[0]["test_accuracy"] == 0.97 and rows[1]["test_accuracy"] is None


def test_the_comparison_as_csv_has_a_row_per_run_and_epoch(store):
    first = store.create(LAB)
    second = store.create(replace(LAB, training=override(LAB.training, learning_rate=0.05)))
    writer = RunWriter(store, first)
    for epoch, loss in ((1, 0.5), (2, 0.25)):
        writer.on_epoch({"epoch": epoch, "step": 10 * epoch, "loss": loss, "accuracy": 0.9, "val_loss": loss,
                         "val_accuracy": 0.8, "epoch_s": 1.0, "elapsed_s": 1.0 * epoch, "partial": False})
    store.set_label(first, 'lab, "the first"')  # a comma and quotes: quoted as CSV quotes them
    store.write_test(first, {"accuracy": 0.97, "loss": 0.1}, np.eye(10, dtype=np.float32))
    text = comparison_csv(store, [first, second])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ("run,label,test_accuracy,epoch,loss,accuracy,val_loss,val_accuracy,partial,"
                                    "training.learning_rate")
    assert [(row["run"], row["epoch"], row["loss"], row["training.learning_rate"]) for row in rows] == [
        (first, "1", "0.5", "0.01"), (first, "2", "0.25", "0.01"), (second, "", "", "0.05")]  # no epochs yet: one row
    assert [row["label"] for row in rows] == ['lab, "the first"'] * 2 + ["lab run"]
    assert [row["test_accuracy"] for row in rows] == ["0.97", "0.97", ""]  # not evaluated: empty
