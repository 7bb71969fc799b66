"""What the Data page shows of a dataset: class counts, pixel statistics and each class's mean image."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.dataset import ArraySummary, Dataset


@dataclass(frozen=True)
class DatasetStats:
    """What the Data page shows: class counts, pixel statistics, class mean images."""

    train_counts: np.ndarray
    test_counts: np.ndarray
    pixel_mean: float
    pixel_std: float
    pixel_counts: np.ndarray  # histogram of the scaled pixels in PIXEL_BINS equal bins over [0, 1]
    class_means: np.ndarray  # (num_classes, H, W, C), NaN-free; zeros for an absent class
    scaled: ArraySummary  # the training images as the network sees them


PIXEL_BINS = 50
_HISTOGRAM_SAMPLE = 2_000_000  # pixels: a strided sample is plenty for the shape of the histogram


def dataset_stats(dataset: Dataset) -> DatasetStats:
    """Class counts for train and test, pixel statistics and the mean image of each class.

    Computed once per dataset (the Data page keeps it), so reruns never rescan the pixels.
    """
    k = dataset.num_classes
    means = np.zeros((k, *dataset.input_shape), dtype=np.float32)
    for label in range(k):
        members = dataset.x_train[dataset.y_train == label]
        if len(members):
            means[label] = members.mean(axis=0)
    raw = getattr(dataset.x_train, "raw", dataset.x_train)  # compact values: no float copy of the whole set
    scale = 255.0 if raw.dtype == np.uint8 else 1.0
    pixels = raw.reshape(-1)
    mean, std = _moments(pixels)
    sample = pixels[:: max(1, pixels.size // _HISTOGRAM_SAMPLE)].astype(np.float32) / np.float32(scale)
    return DatasetStats(
        train_counts=np.bincount(dataset.y_train, minlength=k),
        test_counts=np.bincount(dataset.y_test, minlength=k),
        pixel_mean=mean / scale,
        pixel_std=std / scale,
        pixel_counts=np.histogram(sample, bins=PIXEL_BINS, range=(0.0, 1.0))[0],
        class_means=means,
        scaled=ArraySummary.of(dataset.x_train),
    )


_CHUNK = 1 << 22  # values at a time: 32 MB as float64


def _moments(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of `values`, a chunk at a time: `ndarray.std` makes a float64 copy of the
    whole array (752 MB for 120,000 28x28 images), this at most one chunk's."""
    if values.size == 0:
        return 0.0, 0.0
    total = sum(float(values[i:i + _CHUNK].sum(dtype=np.float64)) for i in range(0, values.size, _CHUNK))
    mean = total / values.size
    squares = 0.0
    for i in range(0, values.size, _CHUNK):
        centred = values[i:i + _CHUNK].astype(np.float64) - mean
        squares += float(np.dot(centred, centred))
    return mean, (squares / values.size) ** 0.5
