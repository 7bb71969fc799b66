"""Readers for dataset files: Keras-layout `.npz`, MNIST-format IDX, CIFAR batches.

Each reader checks what it reads and raises one DataError that names the
file and the problem. Pickle is never allowed for user files; the CIFAR-10
reader (used only on the hash-checked official archive) restricts the
unpickler to numpy array reconstruction.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
import urllib.error
import urllib.request
import zipfile
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO

import numpy as np

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


def load_npz(source: str | Path | bytes | BinaryIO, name: str | None = None) -> RawArrays:
    """Read x_train, y_train, x_test, y_test from a Keras-layout `.npz` (pickle refused)."""
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "uploaded file")
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        if isinstance(stream, (str, Path)):
            with open(stream, "rb") as handle:
                magic = handle.read(4)
        else:
            magic = stream.read(4)
            stream.seek(0)
        if magic != b"PK\x03\x04":
            raise DataError(f"{label}: not a .npz archive (a .npz file is a zip of .npy arrays).")
        with np.load(stream, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                found = ", ".join(archive.files) or "nothing"
                raise DataError(
                    f"{label}: missing {', '.join(repr(k) for k in missing)}; a Keras-layout .npz "
                    f"needs x_train, y_train, x_test, y_test (found: {found})."
                )
            arrays = tuple(archive[key] for key in NPZ_KEYS)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{label}: no such file.") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(f"{label}: contains object arrays (pickled data), which are refused.") from None
        raise DataError(f"{label}: not a readable .npz file ({exc}).") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{label}: not a valid .npz archive ({exc}).") from None
    return arrays  # type: ignore[return-value]


def read_idx(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Parse one IDX file (gzipped or raw) into an array, refusing truncated files."""
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "IDX data")
    try:
        raw = source if isinstance(source, bytes) else Path(source).read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise DataError(f"{label}: no such file.") from None
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        raise DataError(f"{label}: corrupt or truncated gzip data ({exc}).") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{label}: not an IDX file (bad magic number).")
    dtype = _IDX_DTYPES.get(raw[2])
    if dtype is None:
        raise DataError(f"{label}: unknown IDX data type code 0x{raw[2]:02x}.")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{label}: truncated IDX header.")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims)) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{label}: {problem}: header promises {'x'.join(map(str, dims))} values "
            f"({expected:,} bytes) but {actual:,} bytes follow."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


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
    """Read the four IDX files of an MNIST-format folder."""
    files = find_idx_files(folder)
    return tuple(read_idx(files[key]) for key in NPZ_KEYS)  # type: ignore[return-value]


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


def file_sha256(path: str | Path) -> str:
    digest = sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url: str, dest: Path, expected_sha256: str | None = None, timeout: float = 15.0) -> Path:
    """Return `dest`, downloading `url` there first if it is absent; check its SHA-256.

    Raises DataError when the download fails or the hash does not match (the
    partial file is removed, so a later call tries again).
    """
    if dest.exists() and (expected_sha256 is None or file_sha256(dest) == expected_sha256):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DataError(f"could not download {url}: {reason}") from None
    if expected_sha256 is not None and file_sha256(partial) != expected_sha256:
        partial.unlink(missing_ok=True)
        raise DataError(f"downloaded {url} but its SHA-256 does not match; the file was discarded.")
    partial.replace(dest)
    return dest
