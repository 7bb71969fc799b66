"""Your own images: a folder (or a .zip) of class folders, as a dataset.

The layout follows Keras' `image_dataset_from_directory`: one subfolder per
class, class names are the folder names in sorted order, and the images of a
class may sit at any depth inside its folder. A `train/` folder beside a
`test/` folder (each holding the class folders) gives the test split;
otherwise a seeded, stratified fraction of each class is held out. A zip
that wraps everything in one top folder (what zipping a folder gives) is
read as that folder.

Each image is decoded with Pillow (only the formats listed in
`core.data.pictures.PICTURE_FORMATS`), turned upright by its EXIF orientation, its transparency
flattened as for uploaded pictures (`core.data.pictures.flatten_transparency`), converted to
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

import io
import os
import time
import zipfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from core import limits
from core.data.archives import check_expansion, open_zip, read_member
from core.data.dataset import Dataset, DatasetRef, make_dataset
from core.data.pictures import (
    NOT_AN_IMAGE,
    TOO_LARGE,
    UNREADABLE,
    ImageFolderOptions,
    Unreadable,
    decode_pixels,
    prepare_picture,
)
from core.data.splits import split_stratified
from core.errors import DataError
from core.limits import format_bytes

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
IGNORED_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
OUTSIDE = "not inside a class folder"
OUTSIDE_SPLIT = "outside train/ and test/"
LINK = "a link (links are not followed)"
ENCRYPTED = "encrypted"


# ---------------------------------------------------------------- options and reports


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
    """The four raw uint8 arrays `core.data.dataset.make_dataset` accepts, with class names and a report."""

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
# `core.data.dataset.DatasetRef`): `name` is a folder's or a .zip's absolute path on this machine, or, for a
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


def image_folder_options(dataset: Dataset) -> ImageFolderOptions | None:
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
            if len(entries) > limits.MAX_IMAGE_ENTRIES:
                raise DataError(f"{label}: holds more than {limits.MAX_IMAGE_ENTRIES:,} files and folders; "
                                f"at most {limits.MAX_IMAGE_ENTRIES:,} are read.")
    return tuple(sorted(entries, key=lambda e: e.parts))  # the same order as the same files zipped


def _unreadable(entry: _Entry, reason: str, detail: str) -> Unreadable:
    return Unreadable(entry.name, reason, detail, f"{entry.name} cannot be read: {reason} ({detail}).")


def _too_large(entry: _Entry, size: int) -> Unreadable:
    return _unreadable(entry, TOO_LARGE, f"{format_bytes(size)}; at most "
                                         f"{format_bytes(limits.MAX_IMAGE_FILE_BYTES)} per file")


def _read_file(entry: _Entry) -> bytes:
    if entry.size > limits.MAX_IMAGE_FILE_BYTES:
        raise _too_large(entry, entry.size)
    try:
        with open(entry.ref, "rb") as handle:  # type: ignore[arg-type]
            data = handle.read(limits.MAX_IMAGE_FILE_BYTES + 1)
    except OSError as exc:
        raise _unreadable(entry, UNREADABLE, exc.strerror or str(exc)) from None
    if len(data) > limits.MAX_IMAGE_FILE_BYTES:  # it grew since it was listed
        raise _too_large(entry, len(data))
    return data


@contextmanager
def _open_zip(stream, label: str) -> Iterator[_Source]:
    with open_zip(stream, label, limits.IMAGE_ARCHIVE) as archive:
        infos = archive.infolist()
        check_expansion(infos, label, limits.IMAGE_ARCHIVE)
        entries = tuple(sorted((_zip_entry(info) for info in infos), key=lambda e: e.parts))
        yield _Source(label, entries, lambda entry: _read_member(archive, entry, label))


def _zip_entry(info: zipfile.ZipInfo) -> _Entry:
    parts = tuple(p for p in info.filename.replace("\\", "/").split("/") if p not in ("", "."))
    problem = ENCRYPTED if info.flag_bits & 0x1 else ""
    return _Entry(parts, info.filename, info.file_size, is_dir=info.is_dir(), problem=problem, ref=info)


def _read_member(archive: zipfile.ZipFile, entry: _Entry, label: str) -> bytes:
    """One member's bytes, read in memory with a bounded read (never extracted to disk)."""
    info: zipfile.ZipInfo = entry.ref  # type: ignore[assignment]
    if info.file_size > limits.MAX_IMAGE_FILE_BYTES:
        raise _too_large(entry, info.file_size)
    try:
        return read_member(archive, info, label)
    except NotImplementedError as exc:
        raise _unreadable(entry, UNREADABLE, f"unsupported compression ({exc})") from None


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
    if len(candidates) > limits.MAX_IMAGE_FILES:
        raise DataError(f"{label}: holds {len(candidates):,} images; at most {limits.MAX_IMAGE_FILES:,} are read.")
    total = sum(e.size for e in candidates)
    if total > limits.MAX_IMAGE_BYTES:
        raise DataError(f"{label}: its images add up to {format_bytes(total)}; "
                        f"at most {format_bytes(limits.MAX_IMAGE_BYTES)} are read.")
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
    if len(counts) > limits.MAX_CLASSES:
        raise DataError(f"{label}: {len(counts):,} class folders; at most {limits.MAX_CLASSES:,} classes are "
                        "supported.")
    few = [(name, n) for name, n in counts.items() if n < limits.MIN_IMAGES_PER_CLASS]
    if few:
        listed = ", ".join(f"{name!r} ({n})" for name, n in few[:5]) + (", ..." if len(few) > 5 else "")
        readable = " readable" if decoded else ""
        raise DataError(f"{label}: too few{readable} images in {'class' if len(few) == 1 else 'classes'} "
                        f"{listed}; each class needs at least {limits.MIN_IMAGES_PER_CLASS}.")


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
        _check_pixels(plan, options)
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
                    except Unreadable:
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
            prepared = prepare_picture(data, options)
        except Unreadable:
            continue
        pairs.append((prepared.original, prepared.image))
    return pairs


# ---------------------------------------------------------------- decoding and preprocessing


def _check_size(plan: _Plan, options: ImageFolderOptions) -> None:
    count = sum(len(files) for files in plan.train + (plan.test or ()))
    values = count * options.image_size ** 2 * options.channels
    if values > limits.MAX_DATASET_VALUES:
        h, w, c = options.input_shape
        raise DataError(
            f"{plan.label}: {count:,} images at {h}x{w}x{c} would take {format_bytes(values * 4)} as float32; "
            f"at most {format_bytes(limits.MAX_DATASET_VALUES * 4)}. Choose a smaller image size or grayscale."
        )


def _check_pixels(plan: _Plan, options: ImageFolderOptions) -> None:
    """Refuse images whose headers declare more pixels to decode than one dataset may cost, before decoding any."""
    total = 0
    for entry in (e for files in plan.train + (plan.test or ()) for e in files):
        try:
            total += decode_pixels(plan.read(entry), options.image_size)
        except Unreadable:
            continue  # (skipped when decoded, and reported)
        if total > limits.MAX_DECODE_PIXELS:
            raise DataError(
                f"{plan.label}: its images declare more than {limits.MAX_DECODE_PIXELS / 1e6:,.0f} megapixels to "
                f"decode (counted from their headers, up to {entry.name}); ConvLab decodes at most "
                f"{limits.MAX_DECODE_PIXELS / 1e6:,.0f} megapixels per dataset. Shrink the pictures (a CNN here "
                f"sees them at {options.image_size}x{options.image_size}) and zip them again.")


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
                prepared = prepare_picture(plan.read(entry), options, entry.name, keep_original=False)
            except Unreadable as exc:
                skipped.append(SkippedFile(entry.name, exc.reason, exc.detail))
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
