"""Splitting images, seeded: the validation hold-out, the stratified split, fixed subsets, smaller copies."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.splits import fixed_subset


def test_fixed_subset_indices_are_sorted_distinct_and_repeatable():
    a = fixed_subset(10_000, 1_000, seed=7)
    assert len(a) == 1_000 == len(np.unique(a)) and np.all(np.diff(a) > 0) and a.max() < 10_000
    np.testing.assert_array_equal(a, fixed_subset(10_000, 1_000, seed=7))
    assert not np.array_equal(a, fixed_subset(10_000, 1_000, seed=8))
    np.testing.assert_array_equal(fixed_subset(7, 1_000, seed=0), np.arange(7))
    with pytest.raises(ValueError, match="size == -1, must be an integer >= 0"):
        fixed_subset(10, -1, 0)
