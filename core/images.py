"""Your own images: a folder (or a .zip) of class folders, as a dataset.

The layout follows Keras' `image_dataset_from_directory`: one subfolder per
class, class names are the folder names in sorted order, and the images of a
class may sit at any depth inside its folder. A `train/` folder beside a
`test/` folder (each holding the class folders) gives the test split;
otherwise a seeded, stratified fraction of each class is held out. A zip
that wraps everything in one top folder (what zipping a folder gives) is
read as that folder.

Each image is decoded with Pillow (only the formats listed in
`PILLOW_FORMATS`), turned upright by its EXIF orientation, its transparency
flattened as for uploaded pictures (`core.drawing._flatten`), converted to
grey or RGB, then fitted into a square: the longer side is scaled to the
chosen size and the shorter side padded with the picture's border colour.
Nothing is cropped and shapes keep their proportions; `preview` shows it.

`prepare_picture` is that same path for one picture to classify with a model
trained on such a dataset, so training images and classified pictures cannot
be preprocessed differently. A run's spec refers to the images with a
`DatasetRef` of kind "images" (`path_ref`, `stored_ref`; see core.data).

Zips are read in memory, one member at a time, with bounded reads; member
names are labels, never paths. Hostile zips (names that escape the folder,
symbolic links, zip bombs) are refused from the central directory, before
anything is decompressed or decoded.
"""

from __future__ import annotations

import functools
import io
import lzma
import os
import re
import stat
import struct
import time
import zipfile
import zlib
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.data import MAX_CLASSES, Dataset, DatasetRef, make_dataset, preprocess_images
from core.drawing import _flatten
from core.errors import DataError, DrawingError

MIN_IMAGES_PER_CLASS = 5
MAX_IMAGES = 20_000
MAX_ENTRIES = 50_000  # files and folders in a zip (hidden ones included) or a folder tree
# zipfile turns its whole central directory into objects before anything can be checked: bound its
# bytes first (50,000 entries with names of about 100 characters and their extra fields fit).
MAX_ZIP_DIRECTORY_BYTES = 10_000_000
MAX_TOTAL_BYTES = 200_000_000  # uncompressed; sizes here are decimal, as in core.limits
MAX_FILE_BYTES = 50_000_000
MAX_IMAGE_PIXELS = 40_000_000
MAX_COMPRESSION_RATIO = 500  # deflate tops out near 1,032:1; real images stay far below
RATIO_CHECK_BYTES = 1_000_000  # tiny members may compress absurdly well without harm
MAX_DATASET_VALUES = 150_000_000  # pixel values after resizing: 600 MB as float32

IMAGE_SIZES = (28, 32, 64, 96)  # what the Data page offers; any size in IMAGE_SIZE_RANGE is valid
IMAGE_SIZE_RANGE = (8, 128)
COLOR_MODES = ("grayscale", "rgb")
INVERT_MODES = ("never", "always", "auto")
TEST_FRACTION_RANGE = (0.05, 0.5)
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Pillow can open many more formats, some through external programs (EPS runs Ghostscript).
PILLOW_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "GIF", "WEBP", "TIFF")
IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
PREVIEW_MAX_SIDE = 256

NOT_AN_IMAGE = "not an image"
UNREADABLE = "damaged or unreadable"
TOO_LARGE = "too large"
OUTSIDE = "not inside a class folder"
OUTSIDE_SPLIT = "outside train/ and test/"
LINK = "a link (links are not followed)"
ENCRYPTED = "encrypted"

_MB = 1_000_000
_DRIVE = re.compile(r"^[A-Za-z]:")
_END_RECORD = struct.Struct("<4s4H2LH")  # zip's end-of-central-directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")


# ---------------------------------------------------------------- options and reports


@dataclass(frozen=True)
class ImageFolderOptions:
    """How images become arrays: size, colour, inversion and the test split (plain JSON data)."""

    image_size: int = 28
    color_mode: str = "grayscale"
    invert: str = "never"  # "always": dark ink on light paper becomes MNIST-like; "auto": per image, by its border
    test_fraction: float = 0.2  # used only when there is no test/ folder
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int(self.image_size, "image_size", *IMAGE_SIZE_RANGE)
        _check_choice(self.color_mode, "color_mode", COLOR_MODES)
        _check_choice(self.invert, "invert", INVERT_MODES)
        _check_fraction(self.test_fraction, "test_fraction", *TEST_FRACTION_RANGE)
        _check_int(self.seed, "seed", 0, 2**32 - 1)

    @property
    def channels(self) -> int:
        return 3 if self.color_mode == "rgb" else 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ImageFolderOptions":
        if not isinstance(data, dict):
            raise DataError(f"image folder options must be a mapping, not {type(data).__name__}.")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise DataError(f"image folder options: unknown setting {unknown[0]!r}.")
        return cls(**data)


def _check_int(value: object, name: str, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{name} == {value!r}, must be an integer.")
    if not lo <= value <= hi:
        raise DataError(f"{name} == {value}, must be in [{lo}, {hi}].")


def _check_fraction(value: object, name: str, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{name} == {value!r}, must be a number.")
    if not lo <= value <= hi:
        raise DataError(f"{name} == {value}, must be in [{lo}, {hi}].")


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise DataError(f"{name} == {value!r}, must be one of {', '.join(repr(c) for c in choices)}.")


@dataclass(frozen=True)
class SkippedFile:
    name: str  # as listed in the folder or zip
    reason: str  # one of NOT_AN_IMAGE, UNREADABLE, TOO_LARGE, OUTSIDE, OUTSIDE_SPLIT, LINK, ENCRYPTED
    detail: str = ""


@dataclass(frozen=True)
class FolderSummary:
    """What `describe_folder` finds without decoding: classes and image files per class."""

    source: str
    class_names: tuple[str, ...]
    train_counts: tuple[int, ...]  # image files per class (by extension, not yet decoded)
    test_counts: tuple[int, ...] | None  # None without a test/ folder
    skipped: tuple[SkippedFile, ...]
    total_bytes: int

    @property
    def has_test_folder(self) -> bool:
        return self.test_counts is not None

    @property
    def image_files(self) -> int:
        return sum(self.train_counts) + sum(self.test_counts or ())


@dataclass(frozen=True)
class ImageFolderReport:
    """What loading did: images per class, files skipped and why, how the test set was made."""

    source: str
    class_names: tuple[str, ...]
    train_counts: tuple[int, ...]
    test_counts: tuple[int, ...]
    images_read: int
    skipped: tuple[SkippedFile, ...]
    split: str
    inverted: int  # images inverted (all of them with invert="always")
    image_shape: tuple[int, int, int]
    seconds: float

    def skipped_summary(self, examples: int = 3) -> list[str]:
        return summarise_skipped(self.skipped, examples)

    def describe(self) -> str:
        """One paragraph for the Dataset's `source`."""
        h, w, c = self.image_shape
        colour = "colour" if c == 3 else "grey"
        skipped = f", {len(self.skipped):,} files skipped" if self.skipped else ""
        return (
            f"Your images from {self.source}: {len(self.class_names)} classes, "
            f"{sum(self.train_counts):,} train / {sum(self.test_counts):,} test ({self.split}), "
            f"{self.images_read:,} images read{skipped}; fitted into {h}x{w} {colour} "
            "(longer side scaled, padded with the border colour)."
        )


def summarise_skipped(skipped: Sequence[SkippedFile], examples: int = 3) -> list[str]:
    """One line per reason: how many files, and the first few names."""
    lines = []
    for reason, count in Counter(s.reason for s in skipped).items():
        names = [s.name for s in skipped if s.reason == reason]
        listed = ", ".join(names[:examples]) + (", ..." if len(names) > examples else "")
        lines.append(f"{count:,} {'file' if count == 1 else 'files'} skipped, {reason}: {listed}")
    return lines


@dataclass(frozen=True)
class ImageFolder:
    """The four raw uint8 arrays `core.data.make_dataset` accepts, with class names and a report."""

    x_train: np.ndarray  # (N, H, W) grey or (N, H, W, 3) colour, uint8
    y_train: np.ndarray  # int64 in 0..K-1
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    report: ImageFolderReport

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.x_train, self.y_train, self.x_test, self.y_test

    def to_dataset(self, name: str, ref: DatasetRef | None = None) -> Dataset:
        return make_dataset(
            name, *self.arrays(), source=self.report.describe(), origin=self.report.source,
            class_names=self.class_names, notes=tuple(self.report.skipped_summary()), ref=ref,
        )


# ---------------------------------------------------------------- how a run's spec refers to images
#
# A `DatasetRef` of kind "images" names the images and carries the `ImageFolderOptions` (see
# `core.data.DatasetRef`): `name` is a folder's or a .zip's absolute path on this machine, or, for a
# zip uploaded on the Data page, the SHA-256 of its bytes kept in the run store, with the options
# {"stored": True, "file_name": <the upload's name>, "suffix": ".zip"} beside the image options.

REF_LOCATION_KEYS = ("stored", "file_name", "suffix")
STORED_SUFFIX = ".zip"


def path_ref(path: str | Path, options: ImageFolderOptions = ImageFolderOptions()) -> DatasetRef:
    """The reference of a folder or .zip of class folders on this machine (its absolute path)."""
    return DatasetRef.of("images", str(Path(path).resolve()), options.to_dict())


def stored_ref(digest: str, file_name: str, options: ImageFolderOptions = ImageFolderOptions()) -> DatasetRef:
    """The reference of an uploaded zip kept in the run store under `digest` (`RunStore.store_dataset_file`)."""
    return DatasetRef.of("images", digest, options.to_dict() | {"stored": True, "file_name": file_name,
                                                                "suffix": STORED_SUFFIX})


def ref_options(ref: DatasetRef) -> ImageFolderOptions:
    """The image options an "images" reference carries (DataError when they are malformed)."""
    return ImageFolderOptions.from_dict({k: v for k, v in ref.option_dict.items() if k not in REF_LOCATION_KEYS})


def dataset_options(dataset: Dataset) -> ImageFolderOptions | None:
    """How a dataset made of image files was preprocessed; None for every other dataset."""
    ref = dataset.ref
    return ref_options(ref) if ref is not None and ref.kind == "images" else None


# ---------------------------------------------------------------- sources: a folder or a zip


@dataclass(frozen=True)
class _Entry:
    parts: tuple[str, ...]  # path below the root, as labels
    name: str  # as the folder or zip lists it, for messages
    size: int
    is_dir: bool = False
    problem: str = ""  # LINK or ENCRYPTED: listed, never read
    ref: object = None  # a Path or a ZipInfo


@dataclass(frozen=True)
class _Source:
    label: str
    entries: tuple[_Entry, ...]
    read: Callable[[_Entry], bytes]


class _Unreadable(Exception):
    """One file cannot be used: args are (reason, detail)."""


Source = str | Path | bytes


@contextmanager
def _open_source(source: Source, name: str | None) -> Iterator[_Source]:
    if isinstance(source, (bytes, bytearray)):
        with _open_zip(io.BytesIO(source), name or "the zip") as opened:
            yield opened
        return
    path = Path(source)
    label = name or path.name or str(path)
    if path.is_dir():
        yield _Source(label, _walk_folder(path, label), _read_file)
    elif path.is_file():
        with open(path, "rb") as handle, _open_zip(handle, label) as opened:
            yield opened
    else:
        raise DataError(f"{label}: no such file or folder.")


def _walk_folder(root: Path, label: str) -> tuple[_Entry, ...]:
    entries: list[_Entry] = []
    pending: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while pending:
        folder, parts = pending.pop()
        try:
            items = sorted(os.scandir(folder), key=lambda item: item.name)
        except OSError as exc:
            raise DataError(f"{label}: cannot list {folder}: {exc.strerror or exc}.") from None
        for item in items:
            if _ignored(item.name):
                continue
            here = parts + (item.name,)
            shown = "/".join(here)
            if item.is_symlink():
                entries.append(_Entry(here, shown, 0, problem=LINK))
            elif item.is_dir(follow_symlinks=False):
                entries.append(_Entry(here, shown + "/", 0, is_dir=True))
                pending.append((Path(item.path), here))
            elif item.is_file(follow_symlinks=False):
                entries.append(_Entry(here, shown, item.stat(follow_symlinks=False).st_size, ref=Path(item.path)))
            if len(entries) > MAX_ENTRIES:
                raise DataError(f"{label}: holds more than {MAX_ENTRIES:,} files and folders; "
                                f"at most {MAX_ENTRIES:,} are read.")
    return tuple(sorted(entries, key=lambda e: e.parts))  # the same order as the same files zipped


def _read_file(entry: _Entry) -> bytes:
    if entry.size > MAX_FILE_BYTES:
        raise _Unreadable(TOO_LARGE, f"{entry.size / _MB:,.0f} MB; at most {MAX_FILE_BYTES // _MB} MB per file")
    try:
        with open(entry.ref, "rb") as handle:  # type: ignore[arg-type]
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _Unreadable(UNREADABLE, exc.strerror or str(exc)) from None
    if len(data) > MAX_FILE_BYTES:  # it grew since it was listed
        raise _Unreadable(TOO_LARGE, f"over {MAX_FILE_BYTES // _MB} MB")
    return data


@contextmanager
def _open_zip(stream, label: str) -> Iterator[_Source]:
    directory_bytes = _declared_directory_bytes(stream)
    if directory_bytes > MAX_ZIP_DIRECTORY_BYTES:
        raise DataError(f"{label}: its zip directory takes {directory_bytes / _MB:,.1f} MB; at most "
                        f"{MAX_ZIP_DIRECTORY_BYTES // _MB} MB (about {MAX_ENTRIES:,} files) are read.")
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{label}: not a folder or a valid .zip file ({exc}).") from None
    with archive:
        infos = archive.infolist()
        check_zip_directory(infos, label)
        entries = tuple(sorted((_zip_entry(info) for info in infos), key=lambda e: e.parts))
        yield _Source(label, entries, lambda entry: _read_member(archive, entry, label))


def _declared_directory_bytes(stream) -> int:
    """The central directory's size as the end record declares it, read before zipfile parses it.

    0 when there is no end record (zipfile then says what is wrong with the file).
    """
    end = stream.seek(0, io.SEEK_END)
    stream.seek(max(0, end - _END_RECORD.size - 0xFFFF))  # the record, then a comment of up to 64 kB
    tail = stream.read()
    at = tail.rfind(b"PK\x05\x06")
    try:
        if at < 0 or len(tail) - at < _END_RECORD.size:
            return 0
        size = _END_RECORD.unpack_from(tail, at)[6]
        locator = at - _ZIP64_LOCATOR.size
        if size != 0xFFFFFFFF or locator < 0 or tail[locator: locator + 4] != b"PK\x06\x07":
            return size
        stream.seek(_ZIP64_LOCATOR.unpack_from(tail, locator)[2])
        record = stream.read(_ZIP64_END_RECORD.size)
        if len(record) < _ZIP64_END_RECORD.size or record[:4] != b"PK\x06\x06":
            return size
        return _ZIP64_END_RECORD.unpack(record)[8]
    finally:
        stream.seek(0)


def check_zip_directory(infos: Sequence[zipfile.ZipInfo], label: str) -> None:
    """Refuse a hostile zip from its central directory alone (nothing is decompressed).

    Names that escape the folder, symbolic links, too many entries, too many
    bytes once uncompressed, or an absurd compression ratio.
    """
    if len(infos) > MAX_ENTRIES:
        raise DataError(f"{label}: holds {len(infos):,} files and folders; at most {MAX_ENTRIES:,} are read.")
    for info in infos:
        if _unsafe_name(info.filename):
            raise DataError(f"{label}: member {info.filename!r} points outside the folder (an absolute path, "
                            "a drive letter or '..'); the zip is refused and nothing was extracted.")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DataError(f"{label}: member {info.filename!r} is a symbolic link; zips with links are refused.")
    total = sum(info.file_size for info in infos)
    if total > MAX_TOTAL_BYTES:
        raise DataError(f"{label}: its files add up to {total / _MB:,.0f} MB uncompressed; "
                        f"at most {MAX_TOTAL_BYTES // _MB} MB are read (a zip bomb?).")
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_CHECK_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise DataError(f"{label}: member {info.filename!r} is compressed {ratio:,.0f} to 1; "
                            f"at most {MAX_COMPRESSION_RATIO} to 1 is accepted (a zip bomb?).")


def _unsafe_name(name: str) -> bool:
    normal = name.replace("\\", "/")
    return normal.startswith("/") or bool(_DRIVE.match(normal)) or ".." in normal.split("/")


def _zip_entry(info: zipfile.ZipInfo) -> _Entry:
    parts = tuple(p for p in info.filename.replace("\\", "/").split("/") if p not in ("", "."))
    problem = ENCRYPTED if info.flag_bits & 0x1 else ""
    return _Entry(parts, info.filename, info.file_size, is_dir=info.is_dir(), problem=problem, ref=info)


def _read_member(archive: zipfile.ZipFile, entry: _Entry, label: str) -> bytes:
    """One member's bytes, read in memory with a bounded read (never extracted to disk)."""
    info: zipfile.ZipInfo = entry.ref  # type: ignore[assignment]
    if info.file_size > MAX_FILE_BYTES:
        raise _Unreadable(TOO_LARGE, f"{info.file_size / _MB:,.0f} MB; at most {MAX_FILE_BYTES // _MB} MB per file")
    try:
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except NotImplementedError as exc:
        raise _Unreadable(UNREADABLE, f"unsupported compression ({exc})") from None
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{label}: member {info.filename!r} is damaged or does not match its declared size "
                        f"({exc}); the zip is refused.") from None
    if len(data) != info.file_size:
        raise DataError(f"{label}: member {info.filename!r} does not match its declared size "
                        f"({info.file_size:,} bytes); the zip is refused.")
    return data


# ---------------------------------------------------------------- the layout: classes and splits


@dataclass(frozen=True)
class _Plan:
    label: str
    class_names: tuple[str, ...]
    train: tuple[tuple[_Entry, ...], ...]  # image files per class
    test: tuple[tuple[_Entry, ...], ...] | None  # None: hold out a fraction
    skipped: tuple[SkippedFile, ...]
    read: Callable[[_Entry], bytes]


def _ignored(name: str) -> bool:
    return name.startswith(".") or name in IGNORED_NAMES


def _unwrap(entries: list[_Entry]) -> list[_Entry]:
    """Descend through a single top folder that only wraps the real root (zipping a folder makes one)."""
    while entries:
        tops = {e.parts[0] for e in entries}
        if len(tops) != 1 or any(len(e.parts) == 1 and not e.is_dir for e in entries):
            return entries
        inner = [e for e in entries if len(e.parts) > 1]
        if not any(len(e.parts) > 2 or e.is_dir for e in inner):
            return entries
        entries = [replace(e, parts=e.parts[1:]) for e in inner]
    return entries


def _group(entries: list[_Entry]) -> tuple[dict[str, list[_Entry]], list[SkippedFile]]:
    classes: dict[str, list[_Entry]] = {}
    skipped: list[SkippedFile] = []
    for entry in entries:
        if entry.is_dir:
            if len(entry.parts) == 1:
                classes.setdefault(entry.parts[0], [])
            continue
        if len(entry.parts) == 1:
            skipped.append(SkippedFile(entry.name, OUTSIDE))
            continue
        classes.setdefault(entry.parts[0], [])
        suffix = Path(entry.parts[-1]).suffix.lower()
        if entry.problem:
            skipped.append(SkippedFile(entry.name, entry.problem))
        elif suffix not in IMAGE_EXTENSIONS:
            skipped.append(SkippedFile(entry.name, NOT_AN_IMAGE, f"extension {suffix or '(none)'}"))
        else:
            classes[entry.parts[0]].append(entry)
    return classes, skipped


def _plan(source: _Source) -> _Plan:
    """Classes, their image files and the split, from the listing alone; refusals that need no decoding."""
    label = source.label
    entries = _unwrap([e for e in source.entries if e.parts and not any(_ignored(p) for p in e.parts)])
    sections = {e.parts[0].lower(): e.parts[0] for e in entries if len(e.parts) > 1 or e.is_dir}
    test_section = None
    skipped: list[SkippedFile] = []
    if "train" in sections and "test" in sections:
        inside = {sections["train"], sections["test"]}
        skipped += [SkippedFile(e.name, OUTSIDE_SPLIT) for e in entries
                    if e.parts[0] not in inside and not e.is_dir]
        train_section, more = _group([replace(e, parts=e.parts[1:]) for e in entries
                                      if e.parts[0] == sections["train"] and len(e.parts) > 1])
        test_section, more_test = _group([replace(e, parts=e.parts[1:]) for e in entries
                                          if e.parts[0] == sections["test"] and len(e.parts) > 1])
        skipped += more + more_test
    else:
        train_section, more = _group(entries)
        skipped += more
    class_names = tuple(sorted(train_section))
    _check_classes(label, {name: len(train_section[name]) for name in class_names})
    if test_section is not None:
        extra = sorted(set(test_section) - set(train_section))
        if extra:
            raise DataError(f"{label}: test/ has a class folder {extra[0]!r} that train/ lacks; "
                            "both must hold the same class folders.")
    candidates = [e for files in train_section.values() for e in files]
    candidates += [e for files in (test_section or {}).values() for e in files]
    if len(candidates) > MAX_IMAGES:
        raise DataError(f"{label}: holds {len(candidates):,} images; at most {MAX_IMAGES:,} are read.")
    total = sum(e.size for e in candidates)
    if total > MAX_TOTAL_BYTES:
        raise DataError(f"{label}: its images add up to {total / _MB:,.0f} MB; "
                        f"at most {MAX_TOTAL_BYTES // _MB} MB are read.")
    return _Plan(
        label, class_names,
        train=tuple(tuple(train_section[name]) for name in class_names),
        test=None if test_section is None else tuple(tuple(test_section.get(name, ())) for name in class_names),
        skipped=tuple(skipped), read=source.read,
    )


def _check_classes(label: str, counts: dict[str, int], decoded: bool = False) -> None:
    if not counts:
        raise DataError(f"{label}: no class folders found; put each class's images in a folder named "
                        "after the class (for example cats/ and dogs/), or use train/<class>/ and test/<class>/.")
    if len(counts) < 2:
        raise DataError(f"{label}: only one class folder ({next(iter(counts))!r}); "
                        "a classifier needs at least 2 classes.")
    if len(counts) > MAX_CLASSES:
        raise DataError(f"{label}: {len(counts):,} class folders; at most {MAX_CLASSES:,} classes are supported.")
    few = [(name, n) for name, n in counts.items() if n < MIN_IMAGES_PER_CLASS]
    if few:
        listed = ", ".join(f"{name!r} ({n})" for name, n in few[:5]) + (", ..." if len(few) > 5 else "")
        readable = " readable" if decoded else ""
        raise DataError(f"{label}: too few{readable} images in {'class' if len(few) == 1 else 'classes'} "
                        f"{listed}; each class needs at least {MIN_IMAGES_PER_CLASS}.")


# ---------------------------------------------------------------- public API


def describe_folder(source: Source, name: str | None = None) -> FolderSummary:
    """Classes and image files per class, from the listing alone (nothing is decoded).

    Raises DataError for everything that can be refused without decoding:
    hostile zips, no or one class, a class with too few image files, limits.
    """
    with _open_source(source, name) as opened:
        plan = _plan(opened)
    return FolderSummary(
        source=plan.label,
        class_names=plan.class_names,
        train_counts=tuple(len(files) for files in plan.train),
        test_counts=None if plan.test is None else tuple(len(files) for files in plan.test),
        skipped=plan.skipped,
        total_bytes=sum(e.size for files in plan.train + (plan.test or ()) for e in files),
    )


def load_image_folder(
    source: Source, options: ImageFolderOptions = ImageFolderOptions(), name: str | None = None
) -> ImageFolder:
    """Decode and preprocess every image of a folder or zip of class folders.

    `source` is a folder, a .zip path or a zip's bytes; `name` labels it in
    messages (an uploaded file's name). Unreadable files are skipped and
    listed in the report; the dataset itself is refused with a DataError
    (see the module's limits).
    """
    start = time.perf_counter()
    with _open_source(source, name) as opened:
        plan = _plan(opened)
        _check_size(plan, options)
        skipped = list(plan.skipped)
        train = _decode_all(plan, plan.train, options, skipped)
        test = None if plan.test is None else _decode_all(plan, plan.test, options, skipped)
    _check_classes(plan.label, {n: len(images) for n, (images, _) in zip(plan.class_names, train)}, decoded=True)
    x_train, y_train = _stack(train, options)
    if test is None:
        x_train, y_train, x_test, y_test = split_stratified(x_train, y_train, options.test_fraction, options.seed)
        split = f"{options.test_fraction:.0%} of each class held out, seed {options.seed}"
    else:
        x_test, y_test = _stack(test, options)
        if not len(x_test):
            raise DataError(f"{plan.label}: test/ holds no readable images.")
        split = "the test/ folder"
    x_train, y_train = _shuffle(x_train, y_train, options.seed)
    inverted = sum(flags for _, flags in train + (test or []))
    k = len(plan.class_names)
    report = ImageFolderReport(
        source=plan.label, class_names=plan.class_names,
        train_counts=tuple(int(c) for c in np.bincount(y_train, minlength=k)),
        test_counts=tuple(int(c) for c in np.bincount(y_test, minlength=k)),
        images_read=len(x_train) + len(x_test), skipped=tuple(skipped), split=split,
        inverted=int(inverted), image_shape=options.input_shape, seconds=time.perf_counter() - start,
    )
    return ImageFolder(x_train, y_train, x_test, y_test, plan.class_names, report)


def sample_images(source: Source, count: int = 8, name: str | None = None) -> list[tuple[str, bytes]]:
    """A few (class name, file bytes) pairs, one class after another, for `preview`."""
    with _open_source(source, name) as opened:
        plan = _plan(opened)
        picked: list[tuple[str, bytes]] = []
        for position in range(max(len(files) for files in plan.train)):
            for class_name, files in zip(plan.class_names, plan.train):
                if len(picked) == count:
                    return picked
                if position < len(files):
                    try:
                        picked.append((class_name, plan.read(files[position])))
                    except _Unreadable:
                        continue
    return picked


def preview(images: Sequence[bytes], options: ImageFolderOptions) -> list[tuple[np.ndarray, np.ndarray]]:
    """(before, after) uint8 arrays for each image that can be decoded.

    `before` is the picture upright with transparency flattened (RGB, at most
    PREVIEW_MAX_SIDE px); `after` is exactly what the dataset holds.
    """
    pairs = []
    for data in images:
        try:
            prepared = _prepare(data, options, keep_original=True)
        except _Unreadable:
            continue
        pairs.append((prepared.original, prepared.image))
    return pairs


@dataclass(frozen=True)
class PreparedPicture:
    """One image file as a dataset loaded with the same options holds it, and as its model takes it."""

    original: np.ndarray | None  # upright RGB, transparency flattened, at most PREVIEW_MAX_SIDE px (to show)
    image: np.ndarray  # uint8, (size, size) grey or (size, size, 3) colour: what the dataset holds
    inverted: bool

    @property
    def model_input(self) -> np.ndarray:
        """(1, size, size, channels) float32 in [0, 1], scaled by `core.data.preprocess_images` as the dataset is."""
        return preprocess_images(self.image[np.newaxis], what="the picture")


def prepare_picture(data: bytes, options: ImageFolderOptions, name: str = "the picture") -> PreparedPicture:
    """An image file preprocessed exactly as `load_image_folder` preprocesses each image with `options`.

    The same code path decodes a dataset's images and a picture to classify with a model trained on
    them: same size, colour mode, inversion rule, fit-and-pad. Raises DrawingError when it cannot be read.
    """
    try:
        return _prepare(data, options, keep_original=True)
    except _Unreadable as exc:
        reason, detail = exc.args
        raise DrawingError(f"{name} cannot be read: {reason}" + (f" ({detail})." if detail else ".")) from None


def split_stratified(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out round(fraction * n) images of each class (at least one): x_train, y_train, x_test, y_test."""
    rng = np.random.default_rng(seed)
    test_idx = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        n_test = min(max(1, int(round(len(members) * fraction))), len(members) - 1)
        test_idx.append(members[:n_test])
    test = np.sort(np.concatenate(test_idx))
    train = np.setdiff1d(np.arange(len(y)), test)
    return x[train], y[train], x[test], y[test]


# ---------------------------------------------------------------- decoding and preprocessing


def _check_size(plan: _Plan, options: ImageFolderOptions) -> None:
    count = sum(len(files) for files in plan.train + (plan.test or ()))
    values = count * options.image_size ** 2 * options.channels
    if values > MAX_DATASET_VALUES:
        h, w, c = options.input_shape
        raise DataError(
            f"{plan.label}: {count:,} images at {h}x{w}x{c} would take {values * 4 / _MB:,.0f} MB as float32; "
            f"at most {MAX_DATASET_VALUES * 4 // _MB:,} MB. Choose a smaller image size or grayscale."
        )


def _decode_all(
    plan: _Plan, per_class: tuple[tuple[_Entry, ...], ...], options: ImageFolderOptions,
    skipped: list[SkippedFile],
) -> list[tuple[list[np.ndarray], int]]:
    """Per class: the preprocessed images and how many were inverted; failures go to `skipped`."""
    decoded = []
    for files in per_class:
        images, inverted = [], 0
        for entry in files:
            try:
                prepared = _prepare(plan.read(entry), options, keep_original=False)
            except _Unreadable as exc:
                skipped.append(SkippedFile(entry.name, *exc.args))
                continue
            images.append(prepared.image)
            inverted += prepared.inverted
        decoded.append((images, inverted))
    return decoded


def _stack(per_class: list[tuple[list[np.ndarray], int]], options: ImageFolderOptions) -> tuple[np.ndarray, np.ndarray]:
    shape = options.input_shape if options.channels == 3 else options.input_shape[:2]
    images = [image for class_images, _ in per_class for image in class_images]
    labels = [k for k, (class_images, _) in enumerate(per_class) for _ in class_images]
    x = np.stack(images) if images else np.zeros((0, *shape), dtype=np.uint8)
    return x, np.asarray(labels, dtype=np.int64)


def _shuffle(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # Class folders are read in order; a shuffled training set shows mixed samples and batches.
    order = np.random.default_rng(seed).permutation(len(y))
    return x[order], y[order]


def _prepare(data: bytes, options: ImageFolderOptions, keep_original: bool) -> PreparedPicture:
    """The one way from a file's bytes to a dataset image; _Unreadable(reason, detail) when it cannot be."""
    picture = _open_picture(data, options.image_size)
    original = None
    if keep_original:
        before = picture.copy()
        before.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
        original = np.asarray(before)
    image, inverted = preprocess_picture(picture, options)
    return PreparedPicture(original, image, inverted)


@functools.cache
def _pillow_formats() -> tuple[str, ...]:
    """PILLOW_FORMATS that this Pillow registers: Pillow 13 reads MPO through its JPEG plugin, and
    `Image.open` fails with a KeyError on a name it does not know (so BMP, GIF, WebP and TIFF, tried after
    it, would never open)."""
    Image.init()
    return tuple(name for name in PILLOW_FORMATS if name in Image.OPEN)


def _open_picture(data: bytes, size: int) -> Image.Image:
    """Decode upright, transparency flattened, as RGB; _Unreadable(reason, detail) when it cannot be."""
    try:
        picture = Image.open(io.BytesIO(data), formats=_pillow_formats())
        width, height = picture.size
        if width * height > MAX_IMAGE_PIXELS:
            raise _Unreadable(TOO_LARGE, f"{width}x{height} pixels; at most {MAX_IMAGE_PIXELS / 1e6:g} MP per image")
        picture.draft(picture.mode, (size, size))  # JPEG only: decode at a reduced scale, much faster
        picture.load()
        return _flatten(ImageOps.exif_transpose(picture))
    except UnidentifiedImageError:
        raise _Unreadable(UNREADABLE, "Pillow cannot identify it as PNG, JPEG, BMP, GIF, WebP or TIFF") from None
    except Image.DecompressionBombError:
        raise _Unreadable(TOO_LARGE, f"at most {MAX_IMAGE_PIXELS / 1e6:g} MP per image") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError) as exc:
        raise _Unreadable(UNREADABLE, str(exc)) from None


def preprocess_picture(picture: Image.Image, options: ImageFolderOptions) -> tuple[np.ndarray, bool]:
    """An upright RGB picture as the dataset holds it (uint8, size x size [x 3]), and whether it was inverted."""
    picture = _fit(picture.convert("L" if options.channels == 1 else "RGB"), options.image_size)
    image = _pad(np.asarray(picture), options.image_size)
    if options.invert == "always" or (options.invert == "auto" and _light_background(image)):
        return 255 - image, True
    return image, False


def fit_and_pad(image: np.ndarray, size: int) -> np.ndarray:
    """Scale the longer side to `size` (Lanczos), pad the shorter one with the median border colour."""
    return _pad(np.asarray(_fit(Image.fromarray(image), size)), size)


def _fit(picture: Image.Image, size: int) -> Image.Image:
    width, height = picture.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new_size == picture.size:
        return picture
    return picture.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _pad(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.array(image)  # writable, owned
    out = np.empty((size, size, *image.shape[2:]), dtype=np.uint8)
    out[...] = np.median(_border(image), axis=0).round().astype(np.uint8)
    top, left = (size - height) // 2, (size - width) // 2
    out[top: top + height, left: left + width] = image
    return out


def _border(image: np.ndarray) -> np.ndarray:
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def _light_background(image: np.ndarray) -> bool:
    """Dark ink on light paper, judged by the border as `core.drawing.read_picture` does."""
    border = _border(image).astype(np.float32)
    if border.ndim == 2:
        border = border @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return bool(np.median(border) > 127.5)
