"""Splitting images, seeded: the validation hold-out, the stratified split, fixed subsets, smaller copies."""

from __future__ import annotations

import numpy as np
import pytest

from core.checks import type_error_of
from core.data.splits import fixed_subset, split_stratified, split_validation, subsample
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


# --- the stratified split -----------------------------------------------------------------------


def stratified(fraction: float, seed: int):
    """Classes of 20, 5 and 2 images: x is each image's index, so the two sides say which images went where."""
    y = np.repeat([0, 1, 2], [20, 5, 2])
    x = np.arange(len(y))[:, None]
    return y, split_stratified(x, y, fraction, seed)


@pytest.mark.parametrize("fraction, held_out", [(0.2, [4, 1, 1]), (0.5, [10, 2, 1]), (0.9, [18, 4, 1]),
                                                (0.01, [1, 1, 1])])
def test_the_stratified_split_holds_out_each_classs_share_and_keeps_one_on_each_side(fraction, held_out):
    y, (x_train, y_train, x_test, y_test) = stratified(fraction, seed=0)
    assert np.bincount(y_test, minlength=3).tolist() == held_out
    assert np.bincount(y_train, minlength=3).tolist() == [20 - held_out[0], 5 - held_out[1], 2 - held_out[2]]
    assert np.array_equal(y[x_train[:, 0]], y_train) and np.array_equal(y[x_test[:, 0]], y_test)  # pairs kept
    assert sorted(np.concatenate([x_train[:, 0], x_test[:, 0]]).tolist()) == list(range(len(y)))  # disjoint, complete
    assert np.all(np.diff(x_train[:, 0]) > 0) and np.all(np.diff(x_test[:, 0]) > 0)  # in their order


def test_the_stratified_split_is_seeded():
    _, first = stratified(0.2, seed=3)
    _, again = stratified(0.2, seed=3)
    _, other = stratified(0.2, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[2], other[2])


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


def test_a_fixed_subset_of_more_than_there_is_is_everything_and_of_nothing_is_empty():
    np.testing.assert_array_equal(fixed_subset(5, 5, seed=1), np.arange(5))
    assert fixed_subset(5, 0, seed=1).tolist() == [] and fixed_subset(0, 10, seed=1).tolist() == []
    assert fixed_subset(10, 3, seed=np.int64(2)).dtype == np.int64
    with pytest.raises(type_error_of(DataError), match=r"^size == 2\.5, must be an integer >= 0\.$"):
        fixed_subset(10, 2.5, seed=0)
    with pytest.raises(DataError, match=r"^seed == -1, must be an integer >= 0\.$"):
        fixed_subset(10, 2, seed=-1)
