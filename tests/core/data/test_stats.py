"""What the Data page shows of a dataset: class counts, pixel statistics, class mean images."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.dataset import make_dataset
from core.data.stats import PIXEL_BINS, dataset_stats


def test_dataset_stats(bars):
    stats = dataset_stats(bars)
    assert stats.train_counts.tolist() == [60, 60, 60, 60]
    assert stats.class_means.shape == (4, 12, 12, 1)
    assert stats.pixel_mean == pytest.approx(float(bars.x_train.mean()))
    assert int(stats.pixel_counts.sum()) == bars.x_train.size and stats.scaled.dtype == "float32"
    # the "horizontal" class mean is brighter along rows than down columns where bars are
    assert stats.class_means[1].mean(axis=0).max() > stats.class_means[1].mean(axis=1).max()


def test_hand_made_statistics_and_a_class_absent_from_training():
    x_train = np.array([[[0, 255], [0, 255]], [[255, 255], [0, 0]],  # class a
                        [[51, 51], [51, 51]], [[153, 153], [153, 153]]], np.uint8)  # class b: 0.2 and 0.6
    dataset = make_dataset("hand", x_train, np.array([0, 0, 1, 1]), x_train[:2], np.array([2, 0]), source="s",
                           origin="hand", class_names=("a", "b", "c"))
    stats = dataset_stats(dataset)
    assert stats.train_counts.tolist() == [2, 2, 0] and stats.test_counts.tolist() == [1, 0, 1]
    np.testing.assert_allclose(stats.class_means[..., 0], [[[0.5, 1.0], [0.0, 0.5]],
                                                           [[0.4, 0.4], [0.4, 0.4]],
                                                           [[0.0, 0.0], [0.0, 0.0]]], atol=1e-6)  # c: zeros, no NaN
    # four pixels each at 0, 0.2, 0.6 and 1
    assert stats.pixel_mean == pytest.approx(0.45) and stats.pixel_std == pytest.approx(np.sqrt(2.36 / 16))
    assert len(stats.pixel_counts) == PIXEL_BINS
    filled = np.flatnonzero(stats.pixel_counts)  # bins of 0.02: 0 in the first, 1 in the last
    assert filled.tolist() == [0, 10, 30, 49] and stats.pixel_counts[filled].tolist() == [4, 4, 4, 4]
    assert (stats.scaled.shape, stats.scaled.dtype, stats.scaled.minimum, stats.scaled.maximum) == (
        (4, 2, 2, 1), "float32", 0.0, 1.0)


def test_pixel_moments_are_numpys_chunk_by_chunk(monkeypatch):
    import core.data.stats as stats

    monkeypatch.setattr(stats, "_CHUNK", 1000)  # many chunks, the last one short
    values = np.random.default_rng(0).integers(0, 256, 12_345, dtype=np.uint8)
    mean, std = stats._moments(values)
    assert mean == pytest.approx(values.mean(dtype=np.float64), rel=1e-12)
    assert std == pytest.approx(values.std(dtype=np.float64), rel=1e-12)
    assert stats._moments(values[:0]) == (0.0, 0.0)
