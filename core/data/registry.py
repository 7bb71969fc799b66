"""The dataset registry: built-in datasets by name, local files by path, and a run's dataset by reference.

Built-ins try Keras' download (cached in Keras' own cache folder, hash
checked) and fall back to local copies where there are some. A fallback is
never silent: the returned Dataset's `source` says what was loaded and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from core.data.dataset import Dataset, DatasetRef, dataset_from_arrays, make_dataset
from core.data.download import KERAS_BASE_URL, cached_or_downloaded, file_sha256, keras_cache_dir
from core.data.files import load_cifar10_archive, load_idx_folder, load_npz
from core.data.splits import split_stratified
from core.errors import DataError

if TYPE_CHECKING:
    from core.data.folders import ImageFolder, ImageFolderReport
    from core.data.pictures import ImageFolderOptions

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
SHIPPED_MNIST = Path(__file__).resolve().parent / "assets" / "mnist-10k.npz"
SHIPPED_MNIST_SHA256 = "3be1bb6efef62c4154f22f1c60c12b6a271e20181b29300050905b41f0045b24"

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
    "or whoever runs the server can copy Keras' mnist.npz into Keras' dataset cache (~/.keras/datasets, or "
    "$KERAS_HOME/datasets); you can also upload it on the Data page."
)


def load_mnist_10k(reason: str = "") -> Dataset:
    """The offline MNIST shipped with ConvLab: 10,000 real training digits and the official 10,000 test digits."""
    if file_sha256(SHIPPED_MNIST) != SHIPPED_MNIST_SHA256:
        raise DataError(f"{SHIPPED_MNIST} is damaged (its SHA-256 does not match); reinstall ConvLab.")
    why = f" Full MNIST is not used: {reason}." if reason else ""
    return make_dataset(
        "mnist", *load_npz(SHIPPED_MNIST),
        source=("Offline MNIST shipped with ConvLab: the first 10,000 official training digits and the official "
                f"10,000 test digits (MNIST by LeCun, Cortes and Burges, CC BY-SA 3.0).{why}"),
        origin="ConvLab's offline MNIST", class_names=DIGIT_NAMES, is_sample=True, handwritten_digits=True,
        notes=(FULL_MNIST_HINT,), ref=DatasetRef.of("builtin", "mnist-10k"),
    )


def load_mnist(allow_download: bool = True) -> Dataset:
    """Full MNIST from Keras' cache or download; the shipped 10,000 digits when that cannot be had."""
    try:
        path = cached_or_downloaded(KERAS_BASE_URL + "mnist.npz", keras_cache_dir() / "mnist.npz",
                                     MNIST_SHA256, allow_download)
    except DataError as exc:
        return load_mnist_10k(reason=str(exc))
    return make_dataset(
        "mnist", *load_npz(path),
        source="Full MNIST (60,000 train / 10,000 test) from Keras' mnist.npz, in Keras' dataset cache.",
        origin=str(path), class_names=DIGIT_NAMES, handwritten_digits=True, ref=DatasetRef.of("builtin", "mnist"),
    )


def load_fashion_mnist(allow_download: bool = True, debian_dir: Path = DEBIAN_FASHION_DIR) -> Dataset:
    """Full Fashion-MNIST: Debian's IDX files when installed, else Keras' download."""
    if debian_dir.is_dir():
        return make_dataset(
            "fashion-mnist", *load_idx_folder(debian_dir),
            source="Full Fashion-MNIST (60,000 train / 10,000 test) from the IDX files of Debian's "
                   "dataset-fashion-mnist package.",
            origin=str(debian_dir), class_names=FASHION_NAMES, ref=DatasetRef.of("builtin", "fashion-mnist"),
        )
    if not allow_download:
        raise DataError(
            "Fashion-MNIST is not installed locally and downloads are switched off: "
            "install Debian's 'dataset-fashion-mnist' package or allow the download."
        )
    folder = keras_cache_dir() / "fashion-mnist"
    try:
        for name in FASHION_FILES:
            cached_or_downloaded(KERAS_BASE_URL + name, folder / name, None, allow_download)
    except DataError as exc:
        raise DataError(
            f"Fashion-MNIST is unavailable: {exc}. Install Debian's 'dataset-fashion-mnist' "
            "package, or connect to the internet."
        ) from None
    return make_dataset(
        "fashion-mnist", *load_idx_folder(folder),
        source="Full Fashion-MNIST downloaded from Keras' URLs into Keras' dataset cache.",
        origin=str(folder), class_names=FASHION_NAMES, ref=DatasetRef.of("builtin", "fashion-mnist"),
    )


def load_cifar10(allow_download: bool = True) -> Dataset:
    """CIFAR-10 (32x32 colour) from Keras' cache or the official archive."""
    try:
        path = cached_or_downloaded(CIFAR10_URL, keras_cache_dir() / "cifar-10-python.tar.gz", CIFAR10_SHA256,
                                     allow_download, timeout=30)
    except DataError as exc:
        raise DataError(f"CIFAR-10 is unavailable: {exc}. It needs the network once (163 MB).") from None
    return make_dataset(
        "cifar10", *load_cifar10_archive(path),
        source="CIFAR-10 (50,000 train / 10,000 test, 32x32 colour) from the official archive in Keras' dataset "
               "cache (SHA-256 checked).",
        origin=str(path), class_names=CIFAR10_NAMES, ref=DatasetRef.of("builtin", "cifar10"),
    )


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits file (8x8 images with values 0..16, and labels), read without importing scikit-learn.

    Importing sklearn.datasets takes seconds on a small machine; the data is one small CSV in its package.
    """
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the 8x8 digits ship with scikit-learn, which is not installed.")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    except OSError as exc:
        raise DataError(f"scikit-learn's digits file cannot be read ({exc}).") from None
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def load_digits_8x8(allow_download: bool = True) -> Dataset:
    """scikit-learn's 1,797 handwritten 8x8 digits, split 80/20 (stratified, seed 0)."""
    pixels, labels = _sklearn_digits()
    images = np.rint(pixels * (255.0 / 16.0)).astype(np.uint8)
    x_tr, y_tr, x_te, y_te = split_stratified(images, labels, 0.2, seed=0)
    return make_dataset(
        "digits-8x8", x_tr, y_tr, x_te, y_te,
        source="scikit-learn's load_digits: 1,797 handwritten digits at 8x8 pixels (UCI), "
        "split 1,438 train / 359 test (20% of each class, seed 0). Small and fast, for quick experiments.",
        origin="sklearn digits", class_names=DIGIT_NAMES, handwritten_digits=True,
        ref=DatasetRef.of("builtin", "digits-8x8"),
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
                    "28x28 grey digits 0-9: full MNIST when it can be downloaded, else the 10,000 + 10,000 "
                    "real digits shipped with ConvLab.", load_mnist),
        DatasetInfo("fashion-mnist", "Fashion-MNIST",
                    "28x28 grey clothing images in 10 classes.", load_fashion_mnist),
        DatasetInfo("cifar10", "CIFAR-10",
                    "32x32 colour photos in 10 classes (needs a download).", load_cifar10),
        DatasetInfo("digits-8x8", "scikit-learn digits (8x8)",
                    "1,797 tiny 8x8 digits: trains in seconds.", load_digits_8x8),
    )
}


# names a run's spec may hold besides the registry's: what a registry entry actually loaded
VARIANTS: dict[str, Callable[[bool], Dataset]] = {"mnist-10k": lambda allow_download: load_mnist_10k()}


def load_file(path: str | Path, image_options: "ImageFolderOptions | None" = None) -> Dataset:
    """A Keras-layout `.npz` file, a folder of MNIST-format IDX files, or a folder or `.zip` of class folders.

    `image_options` (`core.data.pictures.ImageFolderOptions`, default ones when None) apply to images only.
    """
    return load_ref(local_ref(path, image_options))


def local_ref(path: str | Path, image_options: "ImageFolderOptions | None" = None) -> DatasetRef:
    """The reference of a dataset on this machine, without loading it (see `is_image_source`)."""
    from core.data.folders import path_ref
    from core.data.pictures import ImageFolderOptions

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder.")
    if is_image_source(path):
        return path_ref(path, image_options or ImageFolderOptions())
    if image_options is not None:
        raise DataError(f"{path}: image options (size, colour, inversion, test fraction) apply only to a folder "
                        "or .zip of class folders, not to a .npz file or an IDX folder.")
    return DatasetRef.of("file", str(path.resolve()))


IDX_PREFIXES = ("train-images", "train-labels", "t10k-images", "t10k-labels", "test-images", "test-labels")


def is_image_source(path: str | Path) -> bool:
    """A `.zip` file, or a folder that holds no MNIST-format IDX file (train-images*, t10k-*, ...)."""
    path = Path(path)
    if path.is_dir():
        try:
            return not any(item.is_file() and item.name.startswith(IDX_PREFIXES) for item in path.iterdir())
        except OSError as exc:
            raise DataError(f"{path}: cannot list it: {exc.strerror or exc}.") from None
    return path.suffix.lower() == ".zip"


def _load_arrays_file(path: Path, ref: DatasetRef) -> Dataset:
    """A `.npz` file or an IDX folder (a reference of kind "file")."""
    if path.is_dir():
        arrays = load_idx_folder(path)
        kind = "IDX files in"
    elif path.exists():
        arrays = load_npz(path)
        kind = "the .npz file"
    else:
        raise DataError(f"{path}: no such file or folder.")
    return dataset_from_arrays(path.name or str(path), arrays, f"Local data: {kind} {path.name or path}.",
                               path.name or str(path), ref=ref)


def load_images(ref: DatasetRef, stored: Callable[[str, str], Path] | None = None,
                decode: Callable[..., "ImageFolder"] | None = None) -> "tuple[Dataset, ImageFolderReport]":
    """A reference of kind "images" (see `core.data.dataset.DatasetRef`): the dataset, and the report of its loading.

    `decode(path, options, name)` decodes the pictures: in this process by default (a training process, the
    CLI); a web server passes `core.data.decode.decode_images`, which decodes in a process of its own.
    """
    from core.data.folders import STORED_SUFFIX, load_image_folder, ref_options

    options = ref_options(ref)
    located = ref.option_dict
    if located.get("stored"):
        file_name = str(located.get("file_name") or "upload.zip")
        if stored is None:
            raise DataError(f"the images {file_name} were uploaded into a run store, and none was given to find "
                            "them in.")
        path = stored(ref.name, str(located.get("suffix", STORED_SUFFIX)))
        if not path.exists():
            raise DataError(f"the uploaded images {file_name} are no longer in the run store (they were deleted); "
                            "upload the zip again.")
        name = file_name
    else:
        path = Path(ref.name)
        name = path.name or str(path)
    folder = (decode or load_image_folder)(path, options, name=name)
    return folder.to_dataset(name, ref=ref), folder.report


def load_stored_npz(path: Path, file_name: str, ref: DatasetRef) -> Dataset:
    """An uploaded `.npz` kept in the run store (by its hash), named as the user named it."""
    return dataset_from_arrays(file_name, load_npz(path, name=file_name), f"Uploaded file {file_name}.",
                               file_name, ref=ref)


def load_dataset(spec: str, allow_download: bool = True) -> Dataset:
    """A registry name (`mnist`, `fashion-mnist`, `cifar10`, `digits-8x8`) or a path."""
    info = REGISTRY.get(spec)
    if info is not None:
        return info.loader(allow_download)
    if spec in VARIANTS:
        return VARIANTS[spec](allow_download)
    if Path(spec).exists():
        return load_file(spec)
    names = ", ".join(REGISTRY)
    raise DataError(f"unknown dataset '{spec}': use one of {names}, or the path of a .npz file, an IDX folder, "
                    "or a folder or .zip of class folders of images.")


def load_ref(ref: DatasetRef, stored: Callable[[str, str], Path] | None = None,
             allow_download: bool = True) -> Dataset:
    """Load a dataset again from its reference. `stored(digest, suffix)` finds uploaded files."""
    if ref.kind == "builtin":
        if ref.name not in REGISTRY and ref.name not in VARIANTS:
            raise DataError(f"unknown built-in dataset '{ref.name}'.")
        return load_dataset(ref.name, allow_download)
    if ref.kind == "file":
        return _load_arrays_file(Path(ref.name), ref)
    if ref.kind == "images":
        return load_images(ref, stored)[0]
    if ref.kind == "stored":
        if stored is None:
            raise DataError("this dataset was uploaded into a run store, and none was given to find it in.")
        options = ref.option_dict
        path = stored(ref.name, str(options.get("suffix", ".npz")))
        if not path.exists():
            raise DataError(f"the uploaded dataset {options.get('file_name', ref.name)} is no longer in the "
                            "run store (it was deleted); upload it again.")
        return load_stored_npz(path, str(options.get("file_name", "upload.npz")), ref)
    raise DataError(f"datasets of kind '{ref.kind}' cannot be loaded here.")


# Values a built-in dataset's images hold (train and test together), for estimating memory before a load.
BUILTIN_IMAGE_VALUES = {"mnist": 70_000 * 784, "mnist-10k": 20_000 * 784, "fashion-mnist": 70_000 * 784,
                        "cifar10": 60_000 * 3072, "digits-8x8": 1_797 * 64}
BUILTIN_IMAGES = {"mnist": 70_000, "mnist-10k": 20_000, "fashion-mnist": 70_000, "cifar10": 60_000,
                  "digits-8x8": 1_797}


def loaded_bytes(image_values: int, images: int) -> int:
    """Memory a loaded dataset takes: its images as float32 and its labels as int64."""
    return image_values * 4 + images * 8


def estimate_bytes(ref: DatasetRef, stored: Callable[[str, str], Path] | None = None) -> int:
    """What loading `ref` will take in memory, from its headers or listing (nothing is decoded); 0 if unknown.

    Raises DataError where the headers themselves are refused (the load would be too).
    """
    from core.data.files import declared_idx, declared_npz

    if ref.kind == "builtin":
        return loaded_bytes(BUILTIN_IMAGE_VALUES.get(ref.name, 0), BUILTIN_IMAGES.get(ref.name, 0))
    if ref.kind == "images":
        from core.data.folders import describe_folder
        from core.data.pictures import ImageFolderOptions

        location = ref.option_dict
        path = (stored(ref.name, str(location.get("suffix", ".zip"))) if location.get("stored") and stored
                else Path(ref.name))
        options = ImageFolderOptions.from_dict({k: v for k, v in location.items()
                                                if k not in ("stored", "file_name", "suffix")})
        if not path.exists():
            return 0
        files = describe_folder(path).image_files
        return loaded_bytes(files * options.image_size ** 2 * options.channels, files)
    path = stored(ref.name, str(ref.option_dict.get("suffix", ".npz"))) if ref.kind == "stored" and stored \
        else Path(ref.name)
    if not path.exists():
        return 0
    declared = declared_idx(path) if path.is_dir() else declared_npz(path)
    return declared_bytes(declared)


def declared_bytes(declared: dict[str, tuple[tuple[int, ...], int]]) -> int:
    """Memory the four arrays a file declares will take once loaded (float32 images, int64 labels)."""
    values = sum(math.prod(shape) for key, (shape, _) in declared.items() if key.startswith("x"))
    images = sum(shape[0] for key, (shape, _) in declared.items() if key.startswith("y") and shape)
    return loaded_bytes(values, images)
