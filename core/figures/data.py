"""Figures of the Data page: class counts and the pixel histogram."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.figures.base import TRAIN_COLOUR, VAL_COLOUR, FigureSpec, _plain_layout


def class_counts(train_counts: np.ndarray, test_counts: np.ndarray, class_names: Sequence[str]) -> FigureSpec:
    """Images per class in the training and test sets."""
    names = [str(n) for n in class_names]
    bars = [{"type": "bar", "x": names, "y": np.asarray(counts).tolist(), "name": name, "marker": {"color": colour}}
            for counts, name, colour in ((train_counts, "train", TRAIN_COLOUR), (test_counts, "test", VAL_COLOUR))]
    return FigureSpec({"data": bars, "layout": _plain_layout(
        "Images per class", 320, barmode="group", xaxis={"type": "category", "title": {"text": "class"}},
        yaxis={"title": {"text": "images"}})})


def pixel_histogram(counts: np.ndarray) -> FigureSpec:
    """Distribution of pixel values after scaling to [0, 1], from equal-width bin counts."""
    bins = len(counts)
    centres = (np.arange(bins) + 0.5) / bins
    bars = {"type": "bar", "x": centres.round(4).tolist(), "y": np.asarray(counts).tolist(), "width": 1 / bins,
            "marker": {"color": TRAIN_COLOUR}}
    return FigureSpec({"data": [bars], "layout": _plain_layout(
        "Pixel intensities", 320, xaxis={"title": {"text": "pixel value after scaling"}},
        yaxis={"title": {"text": "pixels"}, "type": "log"})})
