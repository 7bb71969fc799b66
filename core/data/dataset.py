"""Stage 1: a dataset as arrays ready for a CNN, and as a reference a run can load it again from.

Raw images arrive as integer arrays (N, H, W) or (N, H, W, C) with values
0..255. `make_dataset` checks them (`check_arrays`) and applies the lab's
preprocessing (`preprocess_images`): scale to [0, 1] as float32 and add a
channel axis, giving (N, H, W, C).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from core import limits
from core.checks import check_choice
from core.errors import DataError


@dataclass(frozen=True)
class ArraySummary:
    """Shape, dtype and value range of an array, for showing a preprocessing step."""

    shape: tuple[int, ...]
    dtype: str
    minimum: float
    maximum: float

    @classmethod
    def of(cls, array: "np.ndarray | ScaledImages") -> "ArraySummary":
        if isinstance(array, ScaledImages):  # from the compact values: no float copy of the whole array
            lo, hi = (float(array.scale(array.raw.min())), float(array.scale(array.raw.max()))) if array.size \
                else (0.0, 0.0)
        else:
            lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        return cls(tuple(int(d) for d in array.shape), str(array.dtype), lo, hi)

    def describe(self) -> str:
        shape = "(" + ", ".join(str(d) for d in self.shape) + ")"
        return f"{shape} {self.dtype}, values {self.minimum:g} to {self.maximum:g}"


class ScaledImages:
    """A dataset's images as the network sees them (float32 in [0, 1]), kept as compactly as their source allows.

    Images that arrive as whole numbers 0..255 are kept as uint8 (a quarter of float32) and scaled by the
    lab's rule (`preprocess_images`: / 255 in float32) when read: `images[i]`, `images[mask]`,
    `images[a:b]` and `np.asarray(images)` all give float32 in [0, 1], bit for bit what scaling them all at
    once gives. Read-only: one copy may serve every session of a server.
    """

    def __init__(self, raw: np.ndarray) -> None:
        raw = raw.view()
        raw.flags.writeable = False
        self.raw = raw  # (N, H, W, C): uint8 0..255, or float32 already in [0, 1]

    @staticmethod
    def scale(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        if values.dtype == np.uint8:
            return values.astype(np.float32) / np.float32(255.0)
        return values.astype(np.float32, copy=False)

    def __getitem__(self, index: object) -> np.ndarray:
        return self.scale(self.raw[index])  # type: ignore[index]

    def __setitem__(self, index: object, value: object) -> None:
        raise ValueError("assignment destination is read-only: a dataset's images are shared and never written")

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        scaled = self.scale(self.raw)
        return scaled if dtype is None else scaled.astype(dtype)

    def __len__(self) -> int:
        return len(self.raw)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.raw.shape

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    @property
    def size(self) -> int:
        return self.raw.size

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def nbytes(self) -> int:
        """What it takes in memory: its compact values."""
        return self.raw.nbytes

    def __getattr__(self, name: str) -> object:  # any other ndarray method, on the scaled values
        if name.startswith("__") or name == "raw":
            raise AttributeError(name)
        return getattr(np.asarray(self), name)



DATASET_KINDS = ("builtin", "file", "stored", "images")


@dataclass(frozen=True)
class DatasetRef:
    """How to load a dataset again, as plain data: what a run's spec stores instead of arrays.

    `kind` is "builtin" (a registry name such as "mnist" or "mnist-10k"),
    "file" (a path to a .npz file or IDX folder on this machine), "stored" (a
    .npz uploaded into the run store: `name` is its SHA-256, `options` are
    {"file_name", "suffix"}) or "images" (a folder or zip of class folders).

    An "images" reference carries the `core.data.pictures.ImageFolderOptions` as its
    options (image_size, color_mode, invert, test_fraction, seed). Its `name`
    is the absolute path of a folder or .zip on this machine (the CLI), or,
    for a zip uploaded on the Data page, the zip's SHA-256 in the run store,
    and then the options also hold {"stored": True, "file_name": <the upload's
    name>, "suffix": ".zip"} (`core.data.folders.path_ref`, `stored_ref`).
    """

    kind: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, kind: str, name: str, options: Mapping[str, Any] | None = None) -> "DatasetRef":
        return cls(kind, name, tuple(sorted((options or {}).items())))

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "options": self.option_dict}

    @classmethod
    def from_dict(cls, data: object) -> "DatasetRef":
        """Inverse of `to_dict`; raises DataError for anything else."""
        if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str) \
                or not isinstance(data.get("name"), str) or not isinstance(data.get("options", {}), Mapping):
            raise DataError(f"a dataset reference needs a kind, a name and options; got {data!r:.200}.")
        check_choice(data["kind"], "dataset kind", DATASET_KINDS, DataError)
        return cls.of(data["kind"], data["name"], data.get("options", {}))

    def describe(self) -> str:
        """A few words, never a path of the server: 'mnist', 'file x.npz', 'upload mine.npz'."""
        if self.kind == "builtin":
            return self.name
        options = self.option_dict
        if self.kind == "stored":
            return f"upload {options.get('file_name', self.name[:12])}"
        if self.kind == "images":
            where = options.get("file_name") or self.name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
            size, colour = options.get("image_size", "?"), options.get("color_mode", "?")
            invert = f", invert {options['invert']}" if options.get("invert", "never") != "never" else ""
            return f"images {where} ({size}px {colour}{invert})"
        return f"{self.kind} {self.name.replace(chr(92), '/').rstrip('/').rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class Dataset:
    """Train and test images ready for a CNN, with where they came from.

    Images read as float32 in [0, 1], shaped (N, H, W, C) (`ScaledImages` keeps them compact: uint8 where they
    arrived as uint8); labels are int64 in 0..len(class_names)-1.
    """

    name: str
    x_train: "ScaledImages | np.ndarray"
    y_train: np.ndarray
    x_test: "ScaledImages | np.ndarray"
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    is_sample: bool = False
    handwritten_digits: bool = False
    raw_train: ArraySummary | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    ref: DatasetRef | None = None  # how to load it again; None for arrays made in memory

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary_line(self) -> str:
        """One line for a status bar: name, sizes and whether it is a sample."""
        kind = "offline sample" if self.is_sample else "full data"
        h, w, c = self.input_shape
        return (
            f"{self.name}: {len(self.x_train):,} train / {len(self.x_test):,} test, "
            f"{h}x{w}x{c}, {kind}"
        )


def compact_images(images: np.ndarray, *, what: str = "images") -> ScaledImages:
    """Images as a dataset keeps them: whole numbers 0..255 as uint8, anything else scaled to float32 now."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise DataError(f"{what}: expected shape (N, H, W) or (N, H, W, C), got {images.shape}.")
    if np.issubdtype(images.dtype, np.integer):  # (checked to lie in 0..255)
        return ScaledImages(images if images.dtype == np.uint8 else images.astype(np.uint8))
    return ScaledImages(preprocess_images(images, what=what))


def preprocess_images(images: np.ndarray, *, what: str = "images") -> np.ndarray:
    """Scale integer pixels 0..255 to float32 [0, 1] and add a channel axis.

    (N, H, W) becomes (N, H, W, 1); (N, H, W, C) keeps its channels.
    Floating input already in [0, 1] is only cast.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4:
        raise DataError(f"{what}: expected shape (N, H, W) or (N, H, W, C), got {images.shape}.")
    if np.issubdtype(images.dtype, np.floating):
        if images.size and (np.nanmin(images) < 0 or np.nanmax(images) > 255):
            raise DataError(f"{what}: pixel values must lie in 0..255.")
        if images.size and np.nanmax(images) <= 1.0:
            return images.astype(np.float32, copy=False)
    return (images.astype(np.float32) / np.float32(255.0)).astype(np.float32, copy=False)


def check_arrays(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    origin: str,
    num_classes: int | None = None,
) -> None:
    """Raise DataError naming `origin` and the problem if the four arrays do not form a dataset."""
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, array in arrays.items():
        if array.dtype == object:
            raise DataError(f"{origin}: '{key}' is an object array; only numeric arrays are accepted.")
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise DataError(f"{origin}: '{key}' has dtype {array.dtype}; expected numbers.")
    for key in ("x_train", "x_test"):
        array = arrays[key]
        if array.ndim not in (3, 4):
            raise DataError(
                f"{origin}: '{key}' has shape {array.shape}; expected (N, H, W) or (N, H, W, C)."
            )
        if array.ndim == 4 and array.shape[-1] not in (1, 3):
            raise DataError(f"{origin}: '{key}' has {array.shape[-1]} channels; expected 1 or 3.")
        if len(array) == 0:
            raise DataError(f"{origin}: '{key}' holds no images.")
        if min(array.shape[1:]) == 0:
            raise DataError(f"{origin}: '{key}' has shape {array.shape}; images need a height, a width and "
                            "channels of at least 1.")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise DataError(f"{origin}: '{key}' contains NaN or infinite pixel values.")
        if array.min() < 0 or array.max() > 255:
            raise DataError(
                f"{origin}: '{key}' pixel values span {array.min():g}..{array.max():g}; expected 0..255 or 0..1."
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{origin}: train images are {_image_size(x_train)} but test images are "
            f"{_image_size(x_test)}; both must have the same size."
        )
    for x_key, y_key in (("x_train", "y_train"), ("x_test", "y_test")):
        labels = arrays[y_key]
        if labels.size == 0:
            raise DataError(f"{origin}: '{y_key}' holds no labels.")
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1:
            raise DataError(f"{origin}: '{y_key}' has shape {arrays[y_key].shape}; expected (N,) integer labels.")
        if len(labels) != len(arrays[x_key]):
            raise DataError(
                f"{origin}: '{x_key}' has {len(arrays[x_key])} images but '{y_key}' has {len(labels)} labels."
            )
        if np.issubdtype(labels.dtype, np.floating) and not np.all(np.equal(np.mod(labels, 1), 0)):
            raise DataError(f"{origin}: '{y_key}' holds non-integer labels.")
        if labels.min() < 0:
            raise DataError(f"{origin}: '{y_key}' has negative labels (minimum {labels.min():g}).")
        if num_classes is None:
            num_classes = int(labels.max()) + 1  # y_train sets the classes; y_test must stay within them
            if len(np.unique(labels)) < 2:
                raise DataError(f"{origin}: '{y_key}' holds a single class ({labels.max():g}); "
                                "a classifier needs at least two.")
            if num_classes > limits.MAX_CLASSES:
                raise DataError(
                    f"{origin}: '{y_key}' has label {labels.max():g}, which implies {num_classes:,} classes "
                    f"(at most {limits.MAX_CLASSES:,} are supported); labels must be 0..K-1."
                )
            counts = np.bincount(labels.astype(np.int64), minlength=num_classes)
            missing = np.flatnonzero(counts == 0)
            if len(missing):
                top = int(labels.max())
                raise DataError(
                    f"{origin}: '{y_key}' has labels up to {top}, so {num_classes:,} classes, but "
                    f"{_ranges(missing)} {'has' if len(missing) == 1 else 'have'} no training image (label {top} "
                    f"appears {_times(int(counts[top]))}). Labels must be 0..K-1 "
                    "with every class present: a stray label widens the output layer to classes that do not exist."
                )
        elif labels.max() >= num_classes:
            raise DataError(
                f"{origin}: '{y_key}' has label {labels.max():g}, out of range for {num_classes} classes "
                f"(0..{num_classes - 1})."
            )


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count:,} times")


def _ranges(values: np.ndarray, most: int = 4) -> str:
    """'class 3', 'classes 10..998', 'classes 2, 5..7 and 9' (the first few runs of consecutive values)."""
    runs: list[tuple[int, int]] = []
    for value in (int(v) for v in values):
        if runs and value == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    parts = [str(a) if a == b else f"{a}..{b}" for a, b in runs[:most]] + (["..."] if len(runs) > most else [])
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"class {listed}" if len(values) == 1 else f"classes {listed}"


def _image_size(images: np.ndarray) -> str:
    channels = images.shape[3] if images.ndim == 4 else 1
    return f"{images.shape[1]}x{images.shape[2]}x{channels}"


def make_dataset(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    source: str,
    origin: str,
    class_names: tuple[str, ...] | None = None,
    is_sample: bool = False,
    handwritten_digits: bool = False,
    notes: tuple[str, ...] = (),
    ref: DatasetRef | None = None,
) -> Dataset:
    """Check raw arrays, preprocess them and wrap them in a Dataset (its arrays read-only)."""
    check_arrays(
        x_train, y_train, x_test, y_test, origin=origin,
        num_classes=len(class_names) if class_names else None,
    )
    y_train = np.asarray(y_train).reshape(-1).astype(np.int64)
    y_test = np.asarray(y_test).reshape(-1).astype(np.int64)
    if class_names is None:
        count = int(max(y_train.max(), y_test.max())) + 1
        class_names = tuple(str(i) for i in range(count))
    labels = [y_train.view(), y_test.view()]
    for array in labels:  # one Dataset may be shared by every session of a server: nobody may write to it
        array.flags.writeable = False
    return Dataset(
        name=name,
        x_train=compact_images(x_train, what=f"{origin} x_train"),
        y_train=labels[0],
        x_test=compact_images(x_test, what=f"{origin} x_test"),
        y_test=labels[1],
        class_names=tuple(class_names),
        source=source,
        is_sample=is_sample,
        handwritten_digits=handwritten_digits,
        raw_train=ArraySummary.of(np.asarray(x_train)),
        notes=notes,
        ref=ref,
    )


def dataset_from_arrays(
    name: str, arrays: tuple[np.ndarray, ...], source: str, origin: str, ref: DatasetRef | None = None
) -> Dataset:
    """Wrap user-supplied raw arrays; 28x28 grey images in 10 classes are taken for digits."""
    dataset = make_dataset(name, *arrays, source=source, origin=origin, ref=ref)
    if dataset.input_shape == (28, 28, 1) and dataset.num_classes == 10:
        dataset = replace(dataset, handwritten_digits=True)
    return dataset
