"""Built-in datasets by name, local files by path, a run's dataset from its reference; MNIST offline and CIFAR-10's hash."""

from __future__ import annotations

import io

import numpy as np
import pytest

from core.data import download, registry
from core.data.dataset import DatasetRef
from core.data.download import file_sha256
from core.data.pictures import ImageFolderOptions
from core.data.registry import DEBIAN_FASHION_DIR, SHIPPED_MNIST, load_dataset, load_file, load_mnist, load_mnist_10k, load_ref
from core.errors import DataError
from tests.conftest import CLASSES, zip_folder
from tests.core.data.conftest import good_arrays, write_npz


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


def test_local_paths_tell_images_from_idx_folders_and_npz_files(shapes, tmp_path):
    from core.data.registry import is_image_source, load_file, local_ref

    (tmp_path / "shapes.zip").write_bytes(zip_folder(shapes))
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train-images-idx3-ubyte").write_bytes(b"")
    np.savez(tmp_path / "data.npz", x=np.zeros(1))
    assert is_image_source(shapes) and is_image_source(tmp_path / "shapes.zip")
    assert not is_image_source(tmp_path / "idx") and not is_image_source(tmp_path / "data.npz")
    ref = local_ref(shapes, ImageFolderOptions(image_size=12))
    assert (ref.kind, ref.name, ref.option_dict["image_size"]) == ("images", str(shapes.resolve()), 12)
    assert local_ref(tmp_path / "data.npz").kind == "file"
    with pytest.raises(DataError, match=r"image options .* apply only to a folder or \.zip of class folders"):
        local_ref(tmp_path / "data.npz", ImageFolderOptions())
    dataset = load_file(tmp_path / "shapes.zip")
    assert dataset.name == "shapes.zip" and dataset.class_names == tuple(CLASSES)
    assert dataset.input_shape == (28, 28, 1) and dataset.ref.kind == "images"
