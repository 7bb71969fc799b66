"""What the data tests share: small Keras-layout arrays as .npz files, hand-made (hostile) zips, a guard against decoding."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from numpy.lib import format as npy_format

from core.data import pictures
from core.errors import DataError
from tests.conftest import encode, shape_picture


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


# --- building hostile files quickly ------------------------------------------------------

MB = 1_000_000


def deflated(prefix: bytes, zero_chunk: int, chunks: int) -> tuple[bytes, int, int]:
    """Raw deflate of `prefix` then `chunks` x `zero_chunk` zero bytes: (stream, CRC-32, size).

    After a full flush zlib starts afresh, so one compressed chunk of zeros can be repeated:
    gigabytes of zeros cost a fraction of a second to write (np.savez_compressed takes 25 s).
    """
    zeros = bytes(zero_chunk)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    piece = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(chunks):
        crc = zlib.crc32(zeros, crc)
    return head + piece * (chunks - 1) + compressor.flush(), crc, len(prefix) + chunks * zero_chunk


def npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def hand_zip(members: list[tuple[str, bytes, int, int]], entries: int | None = None) -> bytes:
    """A zip of deflated members (name, raw deflate stream, CRC-32, size it claims), written by hand
    so that its directory can say anything; `entries` overrides the end record's member count."""
    out, directory = io.BytesIO(), []
    for name, stream, crc, size in members:
        offset, encoded = out.tell(), name.encode()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(stream), size,
                              len(encoded), 0) + encoded + stream)
        directory.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0x21, crc, len(stream),
                                     size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded)
    start = out.tell()
    out.write(b"".join(directory))
    count = len(members) if entries is None else entries
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, out.tell() - start, start, 0))
    return out.getvalue()


def deflated_npy(array: np.ndarray) -> tuple[bytes, int, int]:
    data = npy(array)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(), zlib.crc32(data), len(data)


SMALL = {
    "x_train": np.zeros((20, 28, 28), np.uint8), "y_train": np.arange(20, dtype=np.uint8) % 10,
    "x_test": np.zeros((10, 28, 28), np.uint8), "y_test": np.arange(10, dtype=np.uint8),
}


def small_members(**replace: tuple[bytes, int, int]) -> list[tuple[str, bytes, int, int]]:
    return [(f"{key}.npy", *replace.get(key, deflated_npy(array))) for key, array in SMALL.items()]


def peak_rss_growth(action: Callable[[], object]) -> int:
    """Bytes the process's peak RSS grew by while `action()` ran (Linux; the peak is reset first)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("this system cannot reset the peak RSS (/proc/self/clear_refs)")

    def peak() -> int:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024

    before = peak()
    action()
    return peak() - before


def refuses(load: Callable[[bytes, str], object], data: bytes, name: str, message: str) -> Callable[[], None]:
    """An action for `peak_rss_growth`: `load(data, name)` must raise DataError matching `message`."""
    def action() -> None:
        with pytest.raises(DataError, match=message):
            load(data, name)
    return action


# --- zips of class folders ----------------------------------------------------------------


def zip_members(members: dict[str, bytes], infos: list[zipfile.ZipInfo] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
        for info in infos:
            archive.writestr(info, b"target")
    return buffer.getvalue()


def valid_members(per_class: int = 5) -> dict[str, bytes]:
    return {f"{kind}/{i}.png": encode(shape_picture(kind, i)) for kind in ("circle", "square")
            for i in range(per_class)}


def forbid_reading(monkeypatch) -> None:
    """From now on, fail the test if any zip member is decompressed or any image decoded."""
    def refuse(*args, **kwargs):
        raise AssertionError("a member was read or decoded")

    monkeypatch.setattr(pictures.Image, "open", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)
