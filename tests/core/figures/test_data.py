"""The Data page's figures: class counts and the pixel histogram."""

from __future__ import annotations

import numpy as np

from core.figures import data
from tests.core.figures.conftest import is_a_valid_plotly_figure, traces


def test_data_figures():
    fig = data.class_counts(np.array([3, 4]), np.array([1, 2]), ("a", "b"))
    assert [list(t["y"]) for t in traces(fig)] == [[3, 4], [1, 2]] and is_a_valid_plotly_figure(fig)
    hist = data.pixel_histogram(np.histogram(np.linspace(0, 1, 1000), bins=50, range=(0, 1))[0])
    assert int(sum(traces(hist)[0]["y"])) == 1000 and is_a_valid_plotly_figure(hist)
