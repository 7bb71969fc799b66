"""The plotly figures: right traces, cheap redraws, no failure on empty or partial data."""

from __future__ import annotations

import numpy as np

from core.figures import base, data, evaluation, training


def batch_rows(epochs: int, per_epoch: int) -> list[dict]:
    return [{"step": (e - 1) * per_epoch + b, "epoch": e, "batch": b, "loss": 1.0 / b, "accuracy": 1 - 1.0 / b}
            for e in range(1, epochs + 1) for b in range(1, per_epoch + 1)]


def traces(fig) -> list[dict]:
    """The curves are plain figure dicts (FigureSpec): read them as plotly.js will."""
    return fig.to_dict()["data"]


def is_a_valid_plotly_figure(fig) -> bool:
    import plotly.graph_objects as go

    go.Figure(fig.to_dict())  # plotly's full validation raises on anything plotly.js would not draw
    return True


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


def test_confusion_heatmap_has_a_clickable_marker_per_cell():
    matrix = np.array([[5, 1], [0, 4]])
    fig = evaluation.confusion_heatmap(matrix, ("cat", "dog"), normalized=False)
    heatmap, markers = fig.data
    assert heatmap.type == "heatmap" and list(heatmap.text.ravel()) == ["5", "1", "0", "4"]
    assert markers.type == "scatter" and len(markers.x) == 4
    assert (markers.x[1], markers.y[1]) == ("dog", "cat")  # row 0 = true cat, column 1 = predicted dog
    assert fig.layout.clickmode == "event+select"


def test_normalised_confusion_shows_fractions():
    fig = evaluation.confusion_heatmap(np.array([[0.75, 0.25], [0.0, 1.0]]), ("a", "b"), normalized=True)
    assert list(fig.data[0].text.ravel()) == ["0.75", "0.25", "0.00", "1.00"]


def test_probability_bars_highlight_the_top_class_and_escape_names():
    block = evaluation.probability_bars(np.array([0.1, 0.7, 0.2]), ("a", "<b>", "c"))
    rows = block.split('<div style="display:flex')[1:]
    assert len(rows) == 3 and "<b>" not in block and "&lt;b&gt;" in block
    assert [base.VAL_COLOUR in row for row in rows] == [False, True, False]
    assert ["width:10.0%" in rows[0], "width:70.0%" in rows[1], "width:20.0%" in rows[2]] == [True] * 3
    assert [f">{text}</span></div>" in row for row, text in zip(rows, ["10%", "70%", "20%"])] == [True] * 3


def test_confidence_histogram_counts_right_and_wrong():
    fig = evaluation.confidence_histogram(np.array([0.9, 0.8, 0.4]), np.array([True, True, False]))
    assert [t.name for t in fig.data] == ["correct (2)", "wrong (1)"]


def test_data_figures():
    fig = data.class_counts(np.array([3, 4]), np.array([1, 2]), ("a", "b"))
    assert [list(t["y"]) for t in traces(fig)] == [[3, 4], [1, 2]] and is_a_valid_plotly_figure(fig)
    hist = data.pixel_histogram(np.histogram(np.linspace(0, 1, 1000), bins=50, range=(0, 1))[0])
    assert int(sum(traces(hist)[0]["y"])) == 1000 and is_a_valid_plotly_figure(hist)
