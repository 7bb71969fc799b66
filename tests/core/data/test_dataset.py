"""Datasets from raw arrays: the lab's scaling, the raw summary, the checks of the arrays, read-only arrays."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.dataset import ArraySummary, make_dataset, preprocess_images
from core.data.registry import load_file
from core.errors import DataError
from tests.core.data.conftest import good_arrays, write_npz

# --- preprocessing --------------------------------------------------------------------


def test_preprocess_scales_to_unit_range_and_adds_channel():
    raw = np.array([[[0, 255], [128, 64]]], dtype=np.uint8)
    out = preprocess_images(raw)
    assert out.shape == (1, 2, 2, 1) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert out[0, 1, 0, 0] == pytest.approx(128 / 255)


def test_preprocess_keeps_colour_channels():
    assert preprocess_images(np.zeros((2, 4, 4, 3), np.uint8)).shape == (2, 4, 4, 3)


def test_make_dataset_records_raw_summary_and_casts_labels():
    ds = make_dataset("t", **good_arrays(), source="s", origin="o")
    assert ds.raw_train == ArraySummary((20, 28, 28), "uint8", ds.raw_train.minimum, ds.raw_train.maximum)
    assert ds.x_train.shape == (20, 28, 28, 1) and ds.y_train.dtype == np.int64
    assert ds.class_names == tuple(str(i) for i in range(10))
    assert "(20, 28, 28) uint8" in ds.raw_train.describe()


# --- malformed input -----------------------------------------------------------------


MALFORMED = [
    ("missing key", lambda a: {k: v for k, v in a.items() if k != "y_test"}, r"missing 'y_test'"),
    ("flat images", lambda a: {**a, "x_train": a["x_train"].reshape(20, -1)}, r"'x_train' has shape \(20, 784\)"),
    ("sizes differ", lambda a: {**a, "x_test": np.zeros((10, 32, 32), np.uint8)},
     r"train images are 28x28x1 but test images are 32x32x1"),
    ("label count", lambda a: {**a, "y_train": a["y_train"][:5]}, r"'x_train' has 20 images but 'y_train' has 5 labels"),
    ("negative label", lambda a: {**a, "y_test": -np.ones(10, int)}, r"'y_test' has negative labels"),
    ("test label unseen", lambda a: {**a, "y_test": np.full(10, 12)}, r"'y_test' has label 12, out of range for 10 classes"),
    ("one class", lambda a: {**a, "y_train": np.zeros(20, int)}, r"'y_train' holds a single class \(0\)"),
    ("huge label", lambda a: {**a, "y_train": np.r_[np.arange(19) % 10, 99999]}, r"implies 100,000 classes"),
    ("string dtype", lambda a: {**a, "y_train": np.array(["a"] * 20)}, r"'y_train' has dtype <U1; expected numbers"),
    ("pixel range", lambda a: {**a, "x_train": a["x_train"].astype(np.int32) * 4}, r"pixel values span 0..1020"),
    ("nan pixels", lambda a: {**a, "x_test": np.full((10, 28, 28), np.nan)}, r"'x_test' contains NaN"),
    ("four channels", lambda a: {**a, "x_train": np.zeros((20, 28, 28, 4), np.uint8)}, r"has 4 channels"),
    ("empty", lambda a: {**a, "x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, int)},
     r"'x_train' holds no images"),
]


@pytest.mark.parametrize("case, mutate, message", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_npz_is_refused_with_file_name_and_reason(tmp_path, case, mutate, message):
    path = write_npz(tmp_path / "bad.npz", **mutate(good_arrays()))
    with pytest.raises(DataError, match=message) as info:
        load_file(path)
    assert "bad.npz" in str(info.value)


def test_loaded_arrays_are_read_only(bars):
    with pytest.raises(ValueError, match="read-only"):
        bars.x_train[0, 0, 0, 0] = 1.0


# --- arrays handed to make_dataset ---------------------------------------------------------


def test_zero_sized_images_are_refused_with_a_data_error():
    with pytest.raises(DataError, match=r"^o: 'x_train' has shape \(5, 0, 28\); images need a height, a width "
                                        r"and channels of at least 1\.$"):
        make_dataset("t", np.zeros((5, 0, 28), np.uint8), np.arange(5) % 2, np.zeros((2, 0, 28), np.uint8),
                     np.arange(2), source="s", origin="o")
