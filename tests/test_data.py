"""Stage 1: loaders, registry, preprocessing, validation split and statistics."""

from __future__ import annotations

import gzip
import io
import struct
from pathlib import Path

import numpy as np
import pytest

from core.data import download, registry
from core.data.dataset import ArraySummary, DatasetRef, make_dataset, preprocess_images
from core.data.download import fetch, file_sha256
from core.data.files import load_npz, read_idx
from core.data.registry import (
    DEBIAN_FASHION_DIR,
    SHIPPED_MNIST,
    load_dataset,
    load_file,
    load_mnist,
    load_mnist_10k,
    load_ref,
)
from core.data.splits import split_validation, subsample
from core.data.stats import dataset_stats
from core.errors import DataError
from tests.conftest import bars_arrays


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def good_arrays(n: int = 20, size: int = 28) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.integers(0, 256, (n, size, size), dtype=np.uint8),
        "y_train": np.arange(n) % 10,
        "x_test": rng.integers(0, 256, (n // 2, size, size), dtype=np.uint8),
        "y_test": np.arange(n // 2) % 10,
    }


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


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


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    arrays = good_arrays()
    arrays["y_train"] = np.array([object()] * 20, dtype=object)
    path = write_npz(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(DataError, match=r"pickled.npz: contains object arrays"):
        load_npz(path)


@pytest.mark.parametrize("content, message", [
    (b"this is not a zip file", r"junk.npz: not a \.npz archive"),
    (b"PK\x03\x04 broken", r"junk.npz: not a valid \.zip file .*; expected a Keras-layout \.npz"),
])
def test_garbage_npz_is_refused(tmp_path, content, message):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_npz(path)


def test_uploaded_npz_bytes_load(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, **good_arrays())
    x_train, y_train, x_test, y_test = load_npz(buffer.getvalue(), name="upload.npz")
    assert x_train.shape == (20, 28, 28) and len(y_test) == 10


# --- IDX -----------------------------------------------------------------------------

def test_idx_round_trip_raw_and_gzipped(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "raw").write_bytes(idx_bytes(images))
    (tmp_path / "z.gz").write_bytes(gzip.compress(idx_bytes(images)))
    np.testing.assert_array_equal(read_idx(tmp_path / "raw"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "z.gz"), images)


@pytest.mark.parametrize("mangle, message", [
    (lambda b: b[:-5], r"truncated: header promises 2x3x4 values \(24 bytes\) but 19 bytes follow"),
    (lambda b: b + b"xx", r"has trailing bytes"),
    (lambda b: b"\x01" + b[1:], r"not an IDX file"),
    (lambda b: b[:2] + b"\x42" + b[3:], r"unknown IDX data type code 0x42"),
    (lambda b: b[:6], r"truncated IDX header"),
    (lambda b: gzip.compress(b)[:-10], r"corrupt or truncated gzip"),
])
def test_malformed_idx_is_refused(tmp_path, mangle, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(mangle(idx_bytes(np.zeros((2, 3, 4), np.uint8))))
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_idx_folder_loads_and_names_missing_files(tmp_path):
    x_tr, y_tr, x_te, y_te = bars_arrays(n_train=8, n_test=4)
    for name, array in (("train-images-idx3-ubyte.gz", x_tr), ("train-labels-idx1-ubyte.gz", y_tr),
                        ("t10k-images-idx3-ubyte.gz", x_te)):
        (tmp_path / name).write_bytes(gzip.compress(idx_bytes(array)))
    with pytest.raises(DataError, match=r"no t10k-labels\* file"):
        load_file(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(y_te))
    ds = load_file(tmp_path)
    assert ds.x_train.shape == (8, 12, 12, 1) and ds.num_classes == 4


# --- registry and downloads ----------------------------------------------------------

def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DataError, match=r"unknown dataset 'nope': use one of mnist, fashion-mnist"):
        load_dataset("nope")


def test_mnist_falls_back_to_the_shipped_real_digits_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    ds = load_mnist(allow_download=False)
    assert ds.is_sample and ds.handwritten_digits
    assert "Offline MNIST shipped with ConvLab" in ds.source and "CC BY-SA 3.0" in ds.source
    assert "downloads are switched off" in ds.source
    assert (len(ds.x_train), len(ds.x_test)) == (10_000, 10_000)
    assert ds.input_shape == (28, 28, 1) and 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    # the official t10k test set
    assert np.bincount(ds.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert ds.ref == DatasetRef.of("builtin", "mnist-10k")
    assert load_ref(ds.ref).source == load_mnist_10k().source
    assert any("full MNIST" in note for note in ds.notes)


def test_without_a_network_mnist_falls_back_at_once_and_remembers(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    attempts: list[tuple] = []

    def refuse(address, timeout):
        attempts.append(address)
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(download.socket, "create_connection", refuse)
    monkeypatch.setattr(download, "_network_checked", {})
    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("no download may be tried offline"))
    ds = load_mnist(allow_download=True)
    assert "no network: storage.googleapis.com cannot be reached (Network is unreachable)" in ds.source
    load_mnist(allow_download=True)
    assert attempts == [("storage.googleapis.com", 443)]  # asked once, then remembered


def test_the_shipped_mnist_is_refused_if_damaged(tmp_path, monkeypatch):
    damaged = tmp_path / "mnist-10k.npz"
    damaged.write_bytes(b"PK\x03\x04 not the real file")
    monkeypatch.setattr(registry, "SHIPPED_MNIST", damaged)
    with pytest.raises(DataError, match="is damaged .its SHA-256 does not match.; reinstall ConvLab"):
        load_mnist_10k()


def test_dataset_references_load_the_same_data_again(tmp_path):
    path = write_npz(tmp_path / "mine.npz", **good_arrays())
    ds = load_file(path)
    assert ds.ref == DatasetRef.of("file", str(path.resolve()))
    again = load_ref(DatasetRef.from_dict(ds.ref.to_dict()))
    np.testing.assert_array_equal(again.x_train, ds.x_train)
    assert load_ref(DatasetRef.of("builtin", "digits-8x8")).name == "digits-8x8"
    stored = DatasetRef.of("stored", "ab" * 32, {"file_name": "up.npz", "suffix": ".npz"})
    assert load_ref(stored, lambda digest, suffix: path).name == "up.npz"
    with pytest.raises(DataError, match="the uploaded dataset up.npz is no longer in the run store"):
        load_ref(stored, lambda digest, suffix: tmp_path / "deleted.npz")
    with pytest.raises(DataError, match="unknown built-in dataset 'imagenet'"):
        load_ref(DatasetRef.of("builtin", "imagenet"))


def test_loaded_arrays_are_read_only(bars):
    with pytest.raises(ValueError, match="read-only"):
        bars.x_train[0, 0, 0, 0] = 1.0


def test_fetch_downloads_checks_hash_and_caches(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"digits" * 100)
    digest = file_sha256(source)
    dest = tmp_path / "cache" / "copy.bin"
    assert fetch(source.as_uri(), dest, digest) == dest
    assert dest.read_bytes() == source.read_bytes()
    source.unlink()  # cached now: no second download
    assert fetch(source.as_uri(), dest, digest) == dest


def test_fetch_refuses_a_bad_hash_and_leaves_nothing(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"tampered")
    dest = tmp_path / "cache" / "copy.bin"
    with pytest.raises(DataError, match="SHA-256 does not match"):
        fetch(source.as_uri(), dest, "0" * 64)
    assert not dest.exists() and not list(dest.parent.iterdir())


def test_fetch_reports_an_unreachable_url(tmp_path):
    with pytest.raises(DataError, match=r"could not download file://"):
        fetch((tmp_path / "absent.bin").as_uri(), tmp_path / "x.bin")


def test_mnist_uses_a_valid_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache = tmp_path / "datasets" / "mnist.npz"
    cache.parent.mkdir(parents=True)
    write_npz(cache, **good_arrays())
    monkeypatch.setattr(registry, "MNIST_SHA256", file_sha256(cache))
    ds = load_mnist(allow_download=False)
    assert not ds.is_sample and "Full MNIST" in ds.source and len(ds.x_train) == 20


def test_cifar10_archive_reader(tmp_path, monkeypatch):
    import pickle
    import tarfile

    def batch(n: int, seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        return pickle.dumps({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                             b"labels": list(range(n))})

    archive = tmp_path / "datasets" / "cifar-10-python.tar.gz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("data_batch_1", batch(10, 1)), ("test_batch", batch(10, 2))):
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(registry, "CIFAR10_SHA256", file_sha256(archive))
    ds = registry.load_cifar10(allow_download=False)
    assert ds.input_shape == (32, 32, 3) and ds.class_names[0] == "airplane"
    assert "SHA-256 checked" in ds.source


def test_a_cached_cifar10_archive_is_hash_checked_offline_too(tmp_path, monkeypatch):
    archive = tmp_path / "datasets" / "cifar-10-python.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"a tampered archive: it would be unpickled")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DataError, match="CIFAR-10 is unavailable: downloads are switched off and Keras' cache "
                                        "has no valid cifar-10-python.tar.gz"):
        registry.load_cifar10(allow_download=False)


def test_cifar10_refuses_pickled_code(tmp_path):
    import pickle
    import tarfile

    from core.data.files import load_cifar10_archive

    payload = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": Path("/")})
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("data_batch_1")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(DataError, match="not a valid CIFAR-10 archive.*refusing"):
        load_cifar10_archive(archive)


def test_digits_8x8_is_small_and_complete():
    ds = load_dataset("digits-8x8")
    assert ds.input_shape == (8, 8, 1) and len(ds.x_train) + len(ds.x_test) == 1797
    assert ds.handwritten_digits


def test_real_mnist_10k_npz():
    ds = load_file(SHIPPED_MNIST)  # the same file as ../shared/data/mnist-10k.npz, shipped with ConvLab
    assert (len(ds.x_train), len(ds.x_test)) == (10000, 10000)
    assert ds.handwritten_digits and not ds.is_sample
    np.testing.assert_array_equal(np.bincount(ds.y_test),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


@pytest.mark.skipif(not DEBIAN_FASHION_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_idx_files():
    ds = load_dataset("fashion-mnist", allow_download=False)
    assert (len(ds.x_train), len(ds.x_test)) == (60000, 10000)
    assert ds.class_names[9] == "Ankle boot" and "Debian's dataset-fashion-mnist" in ds.source
    assert str(DEBIAN_FASHION_DIR) not in ds.source  # the page shows it: no path of the server


# --- split and statistics ------------------------------------------------------------

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


def test_dataset_stats(bars):
    stats = dataset_stats(bars)
    assert stats.train_counts.tolist() == [60, 60, 60, 60]
    assert stats.class_means.shape == (4, 12, 12, 1)
    assert stats.pixel_mean == pytest.approx(float(bars.x_train.mean()))
    assert int(stats.pixel_counts.sum()) == bars.x_train.size and stats.scaled.dtype == "float32"
    # the "horizontal" class mean is brighter along rows than down columns where bars are
    assert stats.class_means[1].mean(axis=0).max() > stats.class_means[1].mean(axis=1).max()


def test_subsample_keeps_classes_and_marks_sample(bars):
    small = subsample(bars, 40, 10, seed=1)
    assert (len(small.x_train), len(small.x_test)) == (40, 10)
    assert small.is_sample and small.class_names == bars.class_names and "Random subset" in small.source
