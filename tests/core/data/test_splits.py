"""Splitting images, seeded: the validation hold-out, the stratified split, fixed subsets, smaller copies."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.splits import fixed_subset, split_validation, subsample
from core.errors import DataError

# --- the validation hold-out ----------------------------------------------------------------------


def test_validation_split_is_seeded_disjoint_and_complete():
    x = np.arange(100)[:, None]
    y = np.arange(100)
    a = split_validation(x, y, 0.2, seed=3)
    b = split_validation(x, y, 0.2, seed=3)
    c = split_validation(x, y, 0.2, seed=4)
    assert len(a[2]) == 20 and len(a[0]) == 80
    np.testing.assert_array_equal(a[3], b[3])
    assert not np.array_equal(a[3], c[3])
    assert sorted(np.concatenate([a[1], a[3]])) == list(range(100))


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_validation_split_rejects_bad_fractions(fraction):
    with pytest.raises(DataError, match="validation fraction"):
        split_validation(np.zeros((10, 1)), np.zeros(10), fraction, 0)


def test_zero_validation_fraction_gives_empty_validation():
    x_fit, _, x_val, y_val = split_validation(np.zeros((10, 1)), np.zeros(10), 0.0, 0)
    assert len(x_fit) == 10 and len(x_val) == 0 and len(y_val) == 0


# --- fixed subsets and smaller copies -------------------------------------------------------------


def test_fixed_subset_indices_are_sorted_distinct_and_repeatable():
    a = fixed_subset(10_000, 1_000, seed=7)
    assert len(a) == 1_000 == len(np.unique(a)) and np.all(np.diff(a) > 0) and a.max() < 10_000
    np.testing.assert_array_equal(a, fixed_subset(10_000, 1_000, seed=7))
    assert not np.array_equal(a, fixed_subset(10_000, 1_000, seed=8))
    np.testing.assert_array_equal(fixed_subset(7, 1_000, seed=0), np.arange(7))
    with pytest.raises(ValueError, match="size == -1, must be an integer >= 0"):
        fixed_subset(10, -1, 0)


def test_subsample_keeps_classes_and_marks_sample(bars):
    small = subsample(bars, 40, 10, seed=1)
    assert (len(small.x_train), len(small.x_test)) == (40, 10)
    assert small.is_sample and small.class_names == bars.class_names and "Random subset" in small.source
