"""Hostile files: decompression bombs, lying headers and directories, pickles, huge pictures.

Each is refused (or read within its declared size) quickly and without allocating what it
promises; the limits come from `core.limits` and are stated in the message.
"""

from __future__ import annotations

import gzip
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
from PIL import Image

from core import limits
from core.data.dataset import make_dataset
from core.data.drawing import read_digit_picture
from core.data.files import load_idx_folder, load_npz, read_idx
from core.data.pictures import read_picture
from core.errors import DataError, DrawingError

MB = 1_000_000


# --- building hostile files quickly ------------------------------------------------------

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


# --- .npz --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def npz_bomb() -> bytes:
    """1.5 MB: 2,000,000 blank 28x28 images (1.6 GB once decompressed) and their 10 labels."""
    x_train = deflated(npy_header((2_000_000, 28, 28)), 15_680_000, 100)
    labels = np.arange(2_000_000, dtype=np.uint8) % 10
    return hand_zip(small_members(x_train=x_train, y_train=deflated_npy(labels)))


def test_the_npz_bomb_is_refused_from_its_header_without_allocating(npz_bomb):
    assert len(npz_bomb) < 2 * MB
    message = (r"^bomb\.npz: x_train\.npy declares 2,000,000 images of 28x28 \(1\.6 GB\); "
               r"ConvLab accepts at most 200,000 images per array\.$")
    assert peak_rss_growth(refuses(load_npz, npz_bomb, "bomb.npz", message)) < 200 * MB


def test_the_npz_bomb_is_a_well_formed_npz(npz_bomb):
    with zipfile.ZipFile(io.BytesIO(npz_bomb)) as archive, archive.open("x_train.npy") as member:
        assert archive.getinfo("x_train.npy").file_size == len(npy_header((2_000_000, 28, 28))) + 1_568_000_000
        assert npy_format.read_magic(member) == (1, 0)
        assert npy_format.read_array_header_1_0(member) == ((2_000_000, 28, 28), False, np.dtype(np.uint8))
        assert member.read(MB) == bytes(MB)


def test_images_larger_than_the_limit_are_refused_from_the_header():
    x_train = deflated(npy_header((10, 1024, 1024)), 1024 * 1024, 10)
    data = hand_zip(small_members(x_train=x_train))
    with pytest.raises(DataError, match=r"^big\.npz: x_train\.npy declares images of 1024x1024 \(1,048,576 values "
                                        r"each\); ConvLab accepts images of at most 512x512 pixels"):
        load_npz(data, "big.npz")


def test_arrays_over_the_dataset_total_are_refused_before_reading():
    x = deflated(npy_header((150_000, 32, 32, 3)), 32 * 32 * 3 * 1000, 150)  # 460 MB each, 921 MB both
    data = hand_zip(small_members(x_train=x, x_test=x))
    with pytest.raises(DataError, match=r"^pair\.npz: the images hold 921,600,000 pixel values \(3\.7 GB as "
                                        r"float32 for training\); ConvLab accepts at most 250,000,000 \(1\.0 GB\)\.$"):
        load_npz(data, "pair.npz")


def test_a_member_header_that_lies_about_its_size_is_refused():
    lying = npy_header((10, 28, 28)) + bytes(100)  # promises 7,840 bytes of pixels, holds 100
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, array in SMALL.items():
            archive.writestr(f"{key}.npy", lying if key == "x_test" else npy(array))
    with pytest.raises(DataError, match=r"^liar\.npz: x_test\.npy declares 10x28x28 uint8 values \(7,840 bytes of "
                                        r"data after a 128-byte header\) but the zip directory says it holds 228 "
                                        r"bytes; the file is damaged or crafted\.$"):
        load_npz(buffer.getvalue(), "liar.npz")


def test_a_directory_that_understates_a_member_is_read_only_as_far_as_it_says():
    # x_train.npy's deflate stream inflates to 1.6 GB, but the directory (and the .npy header) say 15,808 bytes.
    stream, _, _ = deflated(npy_header((20, 28, 28)), 15_680, 100_000)
    declared = npy(SMALL["x_train"])
    data = hand_zip(small_members(x_train=(stream, zlib.crc32(declared), len(declared))))
    loaded: list[tuple[np.ndarray, ...]] = []
    assert peak_rss_growth(lambda: loaded.append(load_npz(data, "short.npz"))) < 200 * MB
    np.testing.assert_array_equal(loaded[0][0], SMALL["x_train"])


def test_a_directory_that_declares_a_huge_total_is_refused():
    members = small_members()
    extra = deflated(b"", 1_000_000, 1)
    data = hand_zip([*members, ("padding.bin", extra[0], extra[1], 4_000_000_000)])
    with pytest.raises(DataError, match=r"^padded\.npz: its files add up to 4\.0 GB once uncompressed; ConvLab reads "
                                        r"at most 1\.1 GB of a Keras-layout \.npz \(which holds 4 arrays\) "
                                        r"\(a zip bomb\?\)\.$"):
        load_npz(data, "padded.npz")


def test_a_zip_with_thousands_of_members_is_refused_before_parsing_them():
    tiny = deflated(b"", 1, 1)
    members = small_members() + [(f"junk{i}.npy", *tiny) for i in range(5000)]
    with pytest.raises(DataError, match=r"^many\.npz: the archive lists 5,004 files and folders; ConvLab reads at "
                                        r"most 64 in a Keras-layout \.npz \(which holds 4 arrays\)\.$"):
        load_npz(hand_zip(members), "many.npz")
    with pytest.raises(DataError, match=r"^many\.npz: the archive lists 5,004 files"):  # the end record lies
        load_npz(hand_zip(members, entries=4), "many.npz")


def test_a_zip_directory_too_large_to_parse_is_refused():
    tiny = deflated(b"", 1, 1)
    members = small_members() + [("j" * 60_000 + str(i), *tiny) for i in range(20)]  # long names, few files
    with pytest.raises(DataError, match=r"^long\.npz: its zip directory takes 1\.2 MB; ConvLab reads at most "
                                        r"1\.0 MB for a Keras-layout \.npz \(which holds 4 arrays\) "
                                        r"\(about 64 files\)\.$"):
        load_npz(hand_zip(members), "long.npz")


class _Exploit:
    """Unpickling this would create a file: proof that pickled code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (Path.touch, (self.marker,))


def test_an_object_array_npz_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "pickle-ran"
    arrays = {**SMALL, "y_train": np.array([_Exploit(marker)] * 20, dtype=object)}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with pytest.raises(DataError, match=r"^evil\.npz: contains object arrays \(pickled data\), which are refused\.$"):
        load_npz(buffer.getvalue(), "evil.npz")
    assert not marker.exists()


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.99])
def test_a_truncated_npz_is_refused(keep):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{**SMALL, "x_train": np.random.default_rng(0).integers(0, 256, (20, 28, 28))})
    data = buffer.getvalue()
    with pytest.raises(DataError, match=r"^cut\.npz: not a valid \.(npz archive|zip file)"):
        load_npz(data[: int(len(data) * keep)], "cut.npz")


@pytest.mark.parametrize("compression, method", [(zipfile.ZIP_BZIP2, 12), (zipfile.ZIP_LZMA, 14)])
def test_compression_methods_numpy_never_writes_are_refused(compression, method):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for key, array in SMALL.items():
            archive.writestr(f"{key}.npy", npy(array))
    with pytest.raises(DataError, match=rf"^odd\.npz: x_train\.npy uses zip compression method {method}; ConvLab "
                                        r"reads stored or deflated members"):
        load_npz(buffer.getvalue(), "odd.npz")


@pytest.mark.parametrize("header, message", [
    ({"descr": [("a", "<i4")], "fortran_order": False, "shape": (20,)}, r"has dtype \[\('a', '<i4'\)\]; only plain"),
    ({"descr": "|u1", "fortran_order": False, "shape": (20, 28, 28, 1, 1)}, r"declares shape \(20, 28, 28, 1, 1\)"),
    ({"descr": "|u1", "fortran_order": False, "shape": (-20, 28)}, r"declares shape \(-20, 28\)"),
])
def test_headers_that_are_no_dataset_array_are_refused(header, message):
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, header)
    data = hand_zip(small_members(x_train=deflated(buffer.getvalue(), 1, 1)))
    with pytest.raises(DataError, match=rf"^odd\.npz: x_train\.npy {message}"):
        load_npz(data, "odd.npz")


def test_a_fortran_ordered_npz_loads_like_numpy():
    x_train = np.asfortranarray(np.arange(20 * 28 * 28).reshape(20, 28, 28) % 256).astype(np.uint8, order="F")
    buffer = io.BytesIO()
    np.savez(buffer, **{**SMALL, "x_train": x_train})
    np.testing.assert_array_equal(load_npz(buffer.getvalue(), "f.npz")[0], x_train)


# --- IDX ---------------------------------------------------------------------------------


def idx_header(dims: tuple[int, ...], code: int = 0x08) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("dims, message", [
    ((2_000_000, 28, 28), r"declares 2,000,000 images of 28x28 \(1\.6 GB\); ConvLab accepts at most 200,000 images"),
    ((4_294_967_295,) * 3, r"declares 4,294,967,295 images of 4294967295x4294967295 \(over 1,000,000 PB\)"),
    ((10, 4096, 4096), r"declares images of 4096x4096 \(16,777,216 values each\)"),
    ((3_000_000,), r"declares 3,000,000 labels \(3\.0 MB\); ConvLab accepts at most 200,000 labels per array"),
])
def test_an_idx_header_promising_a_huge_array_is_refused_from_the_header(dims, message):
    data = idx_header(dims) + bytes(1000)
    assert peak_rss_growth(refuses(read_idx, data, "train-images-idx3-ubyte", rf"^train-images-idx3-ubyte: the "
                                                                             rf"header {message}")) < 50 * MB
    assert peak_rss_growth(refuses(read_idx, gzip.compress(data), "train-images-idx3-ubyte.gz", "the header")) < 50 * MB


def test_an_idx_gzip_bomb_is_read_only_as_far_as_its_header_says():
    # 10 images of 28x28 announced, then 1.6 GB of zeros in a 1.5 MB gzip member.
    stream, crc, size = deflated(idx_header((10, 28, 28)), 15_680_000, 100)
    bomb = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + stream + struct.pack("<2L", crc, size % 2**32)
    message = (r"^train-images-idx3-ubyte\.gz: has trailing bytes: header promises 10x28x28 values \(7,840 bytes\) "
               r"but more than 7,840 bytes follow\.$")
    assert peak_rss_growth(refuses(read_idx, bomb, "train-images-idx3-ubyte.gz", message)) < 50 * MB


def test_an_idx_folder_over_the_dataset_total_is_refused_from_its_headers(tmp_path):
    for name, dims in (("train-images-idx3-ubyte", (200_000, 28, 28)), ("train-labels-idx1-ubyte", (200_000,)),
                       ("t10k-images-idx3-ubyte", (200_000, 28, 28)), ("t10k-labels-idx1-ubyte", (200_000,))):
        (tmp_path / name).write_bytes(idx_header(dims))  # headers only: reading the data would fail
    with pytest.raises(DataError, match=r"the images hold 313,600,000 pixel values \(1\.3 GB as float32 for "
                                        r"training\); ConvLab accepts at most 250,000,000 \(1\.0 GB\)\.$"):
        load_idx_folder(tmp_path)


# --- arrays handed to make_dataset ---------------------------------------------------------


def test_zero_sized_images_are_refused_with_a_data_error():
    with pytest.raises(DataError, match=r"^o: 'x_train' has shape \(5, 0, 28\); images need a height, a width "
                                        r"and channels of at least 1\.$"):
        make_dataset("t", np.zeros((5, 0, 28), np.uint8), np.arange(5) % 2, np.zeros((2, 0, 28), np.uint8),
                     np.arange(2), source="s", origin="o")


# --- pictures on the Draw page -------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height grey pixels (its data is a few bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">L", len(body)) + kind + body + struct.pack(">L", zlib.crc32(kind + body))

    header = struct.pack(">2L5B", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + chunk(b"IEND", b""))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("read", [read_digit_picture, lambda data, name: read_picture(data, (28, 28, 1), name)],
                         ids=["digit", "picture"])
def test_a_picture_declaring_too_many_pixels_is_refused_from_its_header(read):
    # PIL itself only refuses above 179 megapixels; this one would take 2.5 GB on the way to 28x28.
    message = (r"^huge\.png is too large to read: 12,000x12,000 pixels; ConvLab reads pictures of at most "
               r"40,000,000 pixels\.$")
    with pytest.raises(DrawingError, match=message):
        read(png_declaring(12_000, 12_000), "huge.png")


def test_a_large_picture_is_shrunk_before_its_float_steps():
    buffer = io.BytesIO()
    Image.new("L", (3000, 1000), 255).save(buffer, "PNG")
    steps = read_picture(buffer.getvalue(), (28, 28, 1), "wide.png")
    assert steps.original.shape[:2] == (683, limits.MAX_PICTURE_SIDE)
