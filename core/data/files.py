"""Readers for dataset files: Keras-layout `.npz`, MNIST-format IDX, CIFAR batches.

Each reader checks what it reads and raises one DataError that names the
file and the problem. Sizes are checked against `core.limits` from the
headers, before any data is decompressed or allocated, and no read goes
past what a header declares. Pickle is never allowed for user files; the
CIFAR-10 reader (used only on the hash-checked official archive) restricts
the unpickler to numpy array reconstruction.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import struct
import tarfile
import tokenize
import zipfile
import zlib
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
from numpy.lib import format as npy_format

from core import limits
from core.data.archives import check_expansion, open_zip
from core.errors import DataError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
RawArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_DIMENSIONS = 4  # (N, H, W, C); anything deeper is not a dataset array


@dataclass(frozen=True)
class _NpyHeader:
    """What an .npy member declares, read without reading its data."""

    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    data_offset: int  # where the data starts in the member

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


Declared = dict[str, tuple[tuple[int, ...], int]]  # x_train, ...: (shape, bytes per value), as the headers say


def load_npz(source: str | Path | bytes | BinaryIO, name: str | None = None) -> RawArrays:
    """Read x_train, y_train, x_test, y_test from a Keras-layout `.npz` (pickle refused).

    Each member's .npy header is read and checked against `core.limits` before any data is
    decompressed, and no member is read beyond what its header declares: a small file that
    promises a huge array is refused without allocating it.
    """
    return _read_npz(source, name, data=True)  # type: ignore[return-value]


def declared_npz(source: str | Path | bytes | BinaryIO, name: str | None = None) -> Declared:
    """What a Keras-layout `.npz`'s four arrays declare, checked as `load_npz` checks them; no data is read."""
    return _read_npz(source, name, data=False)  # type: ignore[return-value]


def _read_npz(source: str | Path | bytes | BinaryIO, name: str | None, data: bool) -> RawArrays | Declared:
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "uploaded file")
    try:
        with _binary_stream(source) as stream:
            if stream.read(4) != b"PK\x03\x04":
                raise DataError(f"{label}: not a .npz archive (a .npz file is a zip of .npy arrays).")
            with open_zip(stream, label, limits.NPZ_ARCHIVE) as archive:
                members = _npz_members(archive, label)
                headers = {key: _read_npy_header(archive, key, info, label) for key, info in members.items()}
                declared = {key: (h.shape, h.dtype.itemsize) for key, h in headers.items()}
                limits.check_declared_dataset(label, declared)
                check_expansion(archive.infolist(), label, limits.NPZ_ARCHIVE)
                if not data:
                    return declared
                return tuple(_read_npy_data(archive, members[key], headers[key], label)  # type: ignore[return-value]
                             for key in NPZ_KEYS)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{label}: no such file.") from None
    except ValueError as exc:
        raise DataError(f"{label}: not a readable .npz file ({exc}).") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise DataError(f"{label}: not a valid .npz archive ({exc}).") from None


def _binary_stream(source: str | Path | bytes | BinaryIO) -> AbstractContextManager[BinaryIO]:
    """A seekable binary stream on `source`; only what is opened here is closed."""
    if isinstance(source, bytes):
        return io.BytesIO(source)
    if isinstance(source, (str, Path)):
        return open(source, "rb")
    source.seek(0)
    return nullcontext(source)


def _npz_members(archive: zipfile.ZipFile, label: str) -> dict[str, zipfile.ZipInfo]:
    """The zip members holding x_train, y_train, x_test, y_test (as `np.load` names them)."""
    infos = archive.infolist()
    by_key: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        by_key.setdefault(info.filename.removesuffix(".npy"), info)
    missing = [key for key in NPZ_KEYS if key not in by_key]
    if missing:
        found = ", ".join(by_key) or "nothing"
        raise DataError(
            f"{label}: missing {', '.join(repr(k) for k in missing)}; a Keras-layout .npz "
            f"needs x_train, y_train, x_test, y_test (found: {found})."
        )
    for key in NPZ_KEYS:
        info = by_key[key]
        if info.flag_bits & 0x1:
            raise DataError(f"{label}: {info.filename} is encrypted; ConvLab reads unencrypted .npz files.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise DataError(
                f"{label}: {info.filename} uses zip compression method {info.compress_type}; ConvLab reads "
                "stored or deflated members, as numpy's savez and savez_compressed write them."
            )
    return {key: by_key[key] for key in NPZ_KEYS}


def _read_npy_header(archive: zipfile.ZipFile, key: str, info: zipfile.ZipInfo, label: str) -> _NpyHeader:
    """Read and check one member's .npy header, decompressing at most a few kilobytes."""
    what = f"{label}: {info.filename}"
    with archive.open(info) as member:
        head = io.BytesIO(member.read(limits.MAX_NPY_HEADER_BYTES))
    version = npy_format.read_magic(head)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"{info.filename} has .npy format version {version[0]}.{version[1]}; expected 1.0 or 2.0")
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    try:
        shape, fortran_order, dtype = read_header(head)
    except (SyntaxError, RecursionError, tokenize.TokenError) as exc:  # numpy lets these through
        raise ValueError(f"{info.filename} has an unreadable .npy header ({type(exc).__name__})") from None
    if dtype.hasobject:
        raise DataError(f"{label}: contains object arrays (pickled data), which are refused.")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise DataError(f"{what} has dtype {dtype}; only plain numeric arrays are accepted.")
    if len(shape) > MAX_DIMENSIONS or any(d < 0 for d in shape):
        raise DataError(f"{what} declares shape {shape}; expected at most {MAX_DIMENSIONS} non-negative sizes.")
    header = _NpyHeader(tuple(shape), fortran_order, dtype, head.tell())
    limits.check_declared_array(what, header.shape, dtype.itemsize, "images" if key.startswith("x") else "labels")
    if info.file_size != header.data_offset + header.nbytes:
        raise DataError(
            f"{what} declares {'x'.join(map(str, shape)) or 'a single'} {dtype} values "
            f"({header.nbytes:,} bytes of data after a {header.data_offset}-byte header) but the zip directory "
            f"says it holds {info.file_size:,} bytes; the file is damaged or crafted."
        )
    return header


_CHUNK = 1 << 20


def _read_npy_data(archive: zipfile.ZipFile, info: zipfile.ZipInfo, header: _NpyHeader, label: str) -> np.ndarray:
    """The member's array, read in chunks straight into its buffer and never past its declared size."""
    array = np.empty(math.prod(header.shape), dtype=header.dtype)
    buffer = memoryview(array.view(np.uint8))
    with archive.open(info) as member:
        member.read(header.data_offset)
        filled = 0
        while filled < header.nbytes:
            chunk = member.read(min(_CHUNK, header.nbytes - filled))
            if not chunk:
                raise DataError(f"{label}: {info.filename} is truncated ({filled:,} of {header.nbytes:,} bytes).")
            buffer[filled: filled + len(chunk)] = chunk
            filled += len(chunk)
    if header.fortran_order:
        return array.reshape(header.shape[::-1]).transpose()
    return array.reshape(header.shape)


def read_idx(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Parse one IDX file (gzipped or raw) into an array, refusing truncated files.

    The header is checked against `core.limits` before the data is read, and no more than the
    header promises (plus one byte, to notice trailing data) is ever decompressed.
    """
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "IDX data")
    with _idx_stream(source, label) as stream:
        dtype, dims = _read_idx_header(stream, label)
        expected = math.prod(dims) * dtype.itemsize
        data = stream.read(expected + 1)
    if len(data) != expected:
        problem, follow = (("truncated", f"{len(data):,} bytes") if len(data) < expected
                           else ("has trailing bytes", f"more than {expected:,} bytes"))
        raise DataError(
            f"{label}: {problem}: header promises {'x'.join(map(str, dims))} values "
            f"({expected:,} bytes) but {follow} follow."
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


@contextmanager
def _idx_stream(source: str | Path | bytes, label: str) -> Iterator[BinaryIO]:
    """The IDX bytes as a stream, gunzipped as they are read; read errors become DataError."""
    try:
        with _binary_stream(source) as raw:
            if raw.read(2) != b"\x1f\x8b":
                raw.seek(0)
                yield raw
                return
            raw.seek(0)
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]
    except FileNotFoundError:
        raise DataError(f"{label}: no such file.") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{label}: corrupt or truncated gzip data ({exc}).") from None
    except OSError as exc:
        raise DataError(f"{label}: cannot be read ({exc}).") from None


def _read_idx_header(stream: BinaryIO, label: str) -> tuple[np.dtype, tuple[int, ...]]:
    """Data type and dimensions from an IDX header, checked against the limits."""
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0:
        raise DataError(f"{label}: not an IDX file (bad magic number).")
    dtype = _IDX_DTYPES.get(magic[2])
    if dtype is None:
        raise DataError(f"{label}: unknown IDX data type code 0x{magic[2]:02x}.")
    ndim = magic[3]
    packed = stream.read(4 * ndim)
    if ndim == 0 or len(packed) < 4 * ndim:
        raise DataError(f"{label}: truncated IDX header.")
    if ndim > MAX_DIMENSIONS:
        raise DataError(f"{label}: the header declares {ndim} dimensions; expected at most {MAX_DIMENSIONS}.")
    dims = struct.unpack(f">{ndim}I", packed)
    limits.check_declared_array(f"{label}: the header", dims, dtype.itemsize, "labels" if ndim == 1 else "images")
    return dtype, dims


_IDX_ROLES = {
    "x_train": ("train-images",),
    "y_train": ("train-labels",),
    "x_test": ("t10k-images", "test-images"),
    "y_test": ("t10k-labels", "test-labels"),
}


def find_idx_files(folder: str | Path) -> dict[str, Path]:
    """Map x_train, y_train, x_test, y_test to the IDX files of an MNIST-format folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder.")
    found: dict[str, Path] = {}
    for role, prefixes in _IDX_ROLES.items():
        matches = sorted(
            p for p in folder.iterdir()
            if p.is_file() and any(p.name.startswith(prefix) for prefix in prefixes)
        )
        if not matches:
            raise DataError(
                f"{folder}: no {prefixes[0]}* file; an MNIST-format folder needs "
                "train-images, train-labels, t10k-images and t10k-labels IDX files."
            )
        found[role] = matches[0]
    return found


def load_idx_folder(folder: str | Path) -> RawArrays:
    """Read the four IDX files of an MNIST-format folder (all four headers are checked first)."""
    files = find_idx_files(folder)
    declared_idx(folder)
    return tuple(read_idx(files[key]) for key in NPZ_KEYS)  # type: ignore[return-value]


def declared_idx(folder: str | Path) -> Declared:
    """What the four IDX files of an MNIST-format folder declare, checked; no data is read."""
    files = find_idx_files(folder)
    declared = {}
    for key in NPZ_KEYS:
        with _idx_stream(files[key], files[key].name) as stream:
            dtype, dims = _read_idx_header(stream, files[key].name)
        declared[key] = (tuple(dims), dtype.itemsize)
    limits.check_declared_dataset(str(folder), declared)
    return declared


class _NumpyOnlyUnpickler(pickle.Unpickler):
    _ALLOWED = frozenset({
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    })

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def load_cifar10_archive(path: str | Path) -> RawArrays:
    """Read the official `cifar-10-python.tar.gz` into (N, 32, 32, 3) uint8 arrays."""
    path = Path(path)
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive.getmembers():
                stem = Path(member.name).name
                if not member.isfile() or not (stem.startswith("data_batch_") or stem == "test_batch"):
                    continue
                handle = archive.extractfile(member)
                assert handle is not None
                record = _NumpyOnlyUnpickler(handle, encoding="bytes").load()
                data = np.asarray(record[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                batches[stem] = (data.transpose(0, 2, 3, 1), np.asarray(record[b"labels"], dtype=np.int64))
    except (tarfile.TarError, OSError, EOFError, KeyError, pickle.UnpicklingError, ValueError) as exc:
        raise DataError(f"{path.name}: not a valid CIFAR-10 archive ({exc}).") from None
    train_keys = sorted(k for k in batches if k.startswith("data_batch_"))
    if not train_keys or "test_batch" not in batches:
        raise DataError(f"{path.name}: the CIFAR-10 archive lacks its data or test batches.")
    x_train = np.concatenate([batches[k][0] for k in train_keys])
    y_train = np.concatenate([batches[k][1] for k in train_keys])
    return x_train, y_train, *batches["test_batch"]
