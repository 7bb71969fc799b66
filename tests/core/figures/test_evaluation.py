"""The evaluation figures: a clickable confusion matrix, the confidence histogram, the canvas's probability bars."""

from __future__ import annotations

import numpy as np

from core.figures import base, evaluation


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
