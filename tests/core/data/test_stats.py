"""What the Data page shows of a dataset: class counts, pixel statistics, class mean images."""

from __future__ import annotations

import pytest

from core.data.stats import dataset_stats


def test_dataset_stats(bars):
    stats = dataset_stats(bars)
    assert stats.train_counts.tolist() == [60, 60, 60, 60]
    assert stats.class_means.shape == (4, 12, 12, 1)
    assert stats.pixel_mean == pytest.approx(float(bars.x_train.mean()))
    assert int(stats.pixel_counts.sum()) == bars.x_train.size and stats.scaled.dtype == "float32"
    # the "horizontal" class mean is brighter along rows than down columns where bars are
    assert stats.class_means[1].mean(axis=0).max() > stats.class_means[1].mean(axis=1).max()
