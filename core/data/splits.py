"""Splitting images in two, seeded: the validation hold-out and the one stratified split.

`split_validation` is the lab's hold-out: a seeded random fraction of the
training images (as Keras' `validation_split`, but shuffled first), the same
for the same seed. `split_stratified` keeps each class's share on both sides
(scikit-learn's `stratify=y`); it makes the test sets of datasets that come
without one (scikit-learn's 8x8 digits, a folder of images with no test/). `fixed_subset`
picks the same sample of a set every time.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.checks import check_scalar
from core.data.dataset import Dataset
from core.errors import DataError

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> Split:
    """Hold out a seeded random `fraction` of (x, y): returns x_fit, y_fit, x_val, y_val.

    A fraction of 0 returns empty validation arrays.
    """
    fit_idx, val_idx = validation_indices(len(x), fraction, seed)
    return x[fit_idx], y[fit_idx], x[val_idx], y[val_idx]


def validation_indices(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The sorted indices `split_validation` keeps for fitting and holds out for validation."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"validation fraction == {fraction}, must be in [0, 1).")
    n_val = int(round(count * fraction))
    if fraction > 0 and n_val == 0:
        n_val = 1
    if n_val >= count:
        raise DataError(f"validation fraction {fraction} leaves no training images out of {count}.")
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def split_stratified(x: np.ndarray, y: np.ndarray, fraction: float, seed: int) -> Split:
    """Hold out round(fraction * n) images of each class: returns x_train, y_train, x_test, y_test (in their order).

    Every class keeps at least one image on each side; the images held out are a seeded random draw.
    """
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        is_test[members[:min(max(1, int(round(len(members) * fraction))), len(members) - 1)]] = True
    return x[~is_test], y[~is_test], x[is_test], y[is_test]


def fixed_subset(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted indices of min(n, size) distinct items out of n, the same for the same (n, size, seed).

    The one rule for a fixed sample: the validation images scored after every epoch, the test images
    of an embedding.
    """
    for value, name in ((n, "n"), (size, "size"), (seed, "seed")):
        check_scalar(value, name, DataError, integer=True, lo=0, hi=2**63 - 1, what="an integer >= 0")
    return np.sort(np.random.default_rng(seed).permutation(n)[:size]).astype(np.int64)


def subsample(dataset: Dataset, train: int, test: int, seed: int = 0) -> Dataset:
    """A smaller copy of `dataset` (seeded random subsets), for quick demos and tests."""
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.permutation(len(dataset.x_train))[: min(train, len(dataset.x_train))])
    te = np.sort(rng.permutation(len(dataset.x_test))[: min(test, len(dataset.x_test))])
    return replace(
        dataset,
        x_train=dataset.x_train[tr],
        y_train=dataset.y_train[tr],
        x_test=dataset.x_test[te],
        y_test=dataset.y_test[te],
        source=f"{dataset.source} Random subset: {len(tr):,} train, {len(te):,} test.",
        is_sample=True,
    )
