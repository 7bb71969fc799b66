"""The training figures: curves live and compared, thinned long histories, no failure on empty or partial data."""

from __future__ import annotations

import numpy as np

from core.figures import training
from tests.core.figures.conftest import is_a_valid_plotly_figure, traces


def batch_rows(epochs: int, per_epoch: int) -> list[dict]:
    return [{"step": (e - 1) * per_epoch + b, "epoch": e, "batch": b, "loss": 1.0 / b, "accuracy": 1 - 1.0 / b}
            for e in range(1, epochs + 1) for b in range(1, per_epoch + 1)]


def test_training_curves_before_the_first_batch():
    fig = training.training_curves([], [], batches_per_epoch=10)
    assert [t["name"] for t in traces(fig)] == ["training (per batch)", "training (per batch)"]
    assert is_a_valid_plotly_figure(fig)


def test_training_curves_thin_long_histories_and_keep_the_last_point():
    rows = batch_rows(epochs=10, per_epoch=1875)
    epochs = [{"epoch": e, "step": e * 1875, "loss": 0.1, "accuracy": 0.9, "val_loss": 0.2, "val_accuracy": 0.8}
              for e in range(1, 11)]
    fig = training.training_curves(rows, epochs, batches_per_epoch=1875)
    per_batch = traces(fig)[0]
    assert len(per_batch["x"]) <= training.MAX_BATCH_POINTS + 1
    assert per_batch["x"][-1] == 10.0  # the newest batch is always drawn
    names = {t["name"] for t in traces(fig)}
    assert {"training (epoch)", "validation (epoch)"} <= names
    assert is_a_valid_plotly_figure(fig)


def keras_reports(per_batch_losses: list[list[float]], every: int) -> list[dict]:
    """What Keras hands a callback every `every` batches: the loss's mean since the epoch began."""
    rows = []
    for epoch, losses in enumerate(per_batch_losses, start=1):
        for batch in range(every, len(losses) + 1, every):
            rows.append({"epoch": epoch, "batch": batch, "loss": float(np.mean(losses[:batch])),
                         "accuracy": float(np.mean([loss < 0.5 for loss in losses[:batch]]))})
    return rows


def test_batch_points_are_the_mean_of_their_own_batches_with_no_drop_where_an_epoch_begins():
    rng = np.random.default_rng(0)
    first = list(np.linspace(2.0, 0.3, 32) + rng.normal(0, 0.05, 32))  # a network learning fast
    second = list(np.full(32, 0.3) + rng.normal(0, 0.05, 32))  # then no better
    rows = keras_reports([first, second], every=8)
    means = training.stretch_means(rows, "loss")
    expected = [np.mean(losses[start:start + 8]) for losses in (first, second) for start in range(0, 32, 8)]
    assert np.allclose(means, expected, atol=1e-9)
    # Keras' own numbers fall by more than half where epoch 2 begins; the batches themselves far less
    assert rows[4]["loss"] < 0.5 * rows[3]["loss"]
    assert abs(means[4] - means[3]) < 0.25 * (rows[3]["loss"] - rows[4]["loss"])
    accuracy = training.stretch_means(rows, "accuracy")
    assert all(0.0 <= value <= 1.0 for value in accuracy)
    fig = training.training_curves(rows, [], batches_per_epoch=32)
    assert np.allclose(traces(fig)[0]["y"], expected)


def test_a_missing_or_nan_report_leaves_a_gap_and_the_next_epoch_starts_afresh():
    rows = [{"epoch": 1, "batch": 10, "loss": 1.0}, {"epoch": 1, "batch": 20, "loss": float("nan")},
            {"epoch": 1, "batch": 30, "loss": 0.8}, {"epoch": 2, "batch": 10, "loss": 0.5},
            {"epoch": 2, "batch": 20, "loss": 0.4}]
    means = training.stretch_means(rows, "loss")
    assert means[:4] == [1.0, None, None, 0.5] and abs(means[4] - 0.3) < 1e-12
    assert training.stretch_means(rows, "accuracy") == [None] * 5  # not reported at all


def test_a_stopped_partial_epoch_sits_where_its_last_batch_was():
    epochs = [{"epoch": 1, "step": 5, "loss": 0.5, "accuracy": 0.8, "partial": True}]
    fig = training.training_curves(batch_rows(1, 5), epochs, batches_per_epoch=20)
    epoch_trace = next(t for t in traces(fig) if t["name"] == "training (epoch)")
    assert list(epoch_trace["x"]) == [0.25]


def test_history_curves_without_validation():
    fig = training.history_curves({"loss": [1.0, 0.5], "accuracy": [0.5, 0.8]})
    assert {t["name"] for t in traces(fig)} == {"training"}
    assert fig.to_dict()["layout"]["title"]["text"] == "Training and validation curves"
    assert fig.to_dict()["layout"]["xaxis"]["dtick"] == 1 and is_a_valid_plotly_figure(fig)


def test_compare_curves_overlay_runs_in_one_colour_each():
    epochs = [{"epoch": e, "loss": 1 / e, "accuracy": 0.9, "val_loss": 1.1 / e, "val_accuracy": 0.85}
              for e in (1, 2, 3)]
    fig = training.compare_curves([("lab", epochs), ("fast", epochs[:2])])
    names = [t["name"] for t in traces(fig)]
    assert names.count("lab · training") == 2 and names.count("fast · validation") == 2  # loss and accuracy
    colours = {t["name"]: t["line"]["color"] for t in traces(fig)}
    assert colours["lab · training"] == colours["lab · validation"] != colours["fast · training"]
    assert {t["line"]["dash"] for t in traces(fig) if t["name"].endswith("validation")} == {"dot"}
    assert is_a_valid_plotly_figure(fig)
