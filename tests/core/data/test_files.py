"""Dataset files (.npz, IDX, CIFAR), read from their headers: malformed files, decompression bombs, lying headers, pickles."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from core.data.files import load_idx_folder, load_npz, read_idx
from core.data.registry import load_file
from core.errors import DataError
from tests.conftest import bars_arrays
from tests.core.data.conftest import (
    MB,
    SMALL,
    deflated,
    deflated_npy,
    good_arrays,
    hand_zip,
    npy,
    npy_header,
    peak_rss_growth,
    refuses,
    small_members,
    write_npz,
)

# --- .npz -----------------------------------------------------------------------------------------


def test_object_arrays_are_refused_without_unpickling(tmp_path):
    arrays = good_arrays()
    arrays["y_train"] = np.array([object()] * 20, dtype=object)
    path = write_npz(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(DataError, match=r"pickled.npz: contains object arrays"):
        load_npz(path)


@pytest.mark.parametrize("content, message", [
    (b"this is not a zip file", r"junk.npz: not a \.npz archive"),
    (b"PK\x03\x04 broken", r"junk.npz: not a valid \.zip file .*; expected a Keras-layout \.npz"),
])
def test_garbage_npz_is_refused(tmp_path, content, message):
    path = tmp_path / "junk.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_npz(path)


def test_uploaded_npz_bytes_load(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, **good_arrays())
    x_train, y_train, x_test, y_test = load_npz(buffer.getvalue(), name="upload.npz")
    assert x_train.shape == (20, 28, 28) and len(y_test) == 10


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


# --- IDX ------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_idx_round_trip_raw_and_gzipped(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "raw").write_bytes(idx_bytes(images))
    (tmp_path / "z.gz").write_bytes(gzip.compress(idx_bytes(images)))
    np.testing.assert_array_equal(read_idx(tmp_path / "raw"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "z.gz"), images)


@pytest.mark.parametrize("mangle, message", [
    (lambda b: b[:-5], r"truncated: header promises 2x3x4 values \(24 bytes\) but 19 bytes follow"),
    (lambda b: b + b"xx", r"has trailing bytes"),
    (lambda b: b"\x01" + b[1:], r"not an IDX file"),
    (lambda b: b[:2] + b"\x42" + b[3:], r"unknown IDX data type code 0x42"),
    (lambda b: b[:6], r"truncated IDX header"),
    (lambda b: gzip.compress(b)[:-10], r"corrupt or truncated gzip"),
])
def test_malformed_idx_is_refused(tmp_path, mangle, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(mangle(idx_bytes(np.zeros((2, 3, 4), np.uint8))))
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_idx_folder_loads_and_names_missing_files(tmp_path):
    x_tr, y_tr, x_te, y_te = bars_arrays(n_train=8, n_test=4)
    for name, array in (("train-images-idx3-ubyte.gz", x_tr), ("train-labels-idx1-ubyte.gz", y_tr),
                        ("t10k-images-idx3-ubyte.gz", x_te)):
        (tmp_path / name).write_bytes(gzip.compress(idx_bytes(array)))
    with pytest.raises(DataError, match=r"no t10k-labels\* file"):
        load_file(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(y_te))
    ds = load_file(tmp_path)
    assert ds.x_train.shape == (8, 12, 12, 1) and ds.num_classes == 4


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


# --- CIFAR-10 -------------------------------------------------------------------------------------


def test_cifar10_refuses_pickled_code(tmp_path):
    import pickle
    import tarfile

    from core.data.files import load_cifar10_archive

    payload = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": Path("/")})
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("data_batch_1")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(DataError, match="not a valid CIFAR-10 archive.*refusing"):
        load_cifar10_archive(archive)
