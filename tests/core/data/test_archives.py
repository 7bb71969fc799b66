"""The one zip reader: hostile zips refused from their central directory before anything is decompressed."""

from __future__ import annotations

import dataclasses
import io
import re
import stat
import struct
import zipfile
import zlib

import numpy as np
import pytest

from core import limits
from core.data.files import load_npz
from core.data.folders import describe_folder, load_image_folder
from core.errors import DataError
from tests.conftest import patch_declared_size, zip_folder
from tests.core.data.conftest import (
    MB,
    SMALL,
    deflated,
    forbid_reading,
    hand_zip,
    npy,
    npy_header,
    peak_rss_growth,
    small_members,
    valid_members,
    zip_members,
)

# --- a Keras-layout .npz (hand-made zips) ---------------------------------------------------------


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


# --- a zip of class folders -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../evil.png", "circle/../../evil.png", "/abs/evil.png", "C:/evil.png", "c:evil.png", "..\\evil.png"]
)
def test_zip_member_escaping_the_folder_is_refused_before_reading(name, monkeypatch):
    data = zip_members({**valid_members(), name: b"x"})
    forbid_reading(monkeypatch)
    expected = f"evil.zip: member {name!r} points outside the folder (an absolute path, a drive letter or '..')"
    with pytest.raises(DataError, match=re.escape(expected)):
        load_image_folder(data, name="evil.zip")


def test_zip_symlink_is_refused(monkeypatch):
    link = zipfile.ZipInfo("circle/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = zip_members(valid_members(), [link])
    forbid_reading(monkeypatch)
    with pytest.raises(DataError, match=re.escape("member 'circle/link.png' is a symbolic link")):
        describe_folder(data, name="links.zip")


def test_zip_bomb_by_declared_size_is_refused_from_the_directory(monkeypatch):
    data = patch_declared_size(zip_members(valid_members()), "circle/0.png", 300_000_000)
    forbid_reading(monkeypatch)
    with pytest.raises(DataError, match=r"its files add up to 300\.0 MB once uncompressed; ConvLab reads at most "
                                        r"200\.0 MB of a zip of class folders \(a zip bomb\?\)"):
        load_image_folder(data, name="bomb.zip")


def test_real_zip_bomb_is_refused_by_its_ratio(monkeypatch):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, member in valid_members().items():
            archive.writestr(name, member)
        info = zipfile.ZipInfo("circle/zeros.png")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w") as handle:
            for _ in range(20):  # 20 MB of zeros, streamed: the test never holds them at once
                handle.write(bytes(1 << 20))
    assert len(buffer.getvalue()) < 100_000
    forbid_reading(monkeypatch)
    with pytest.raises(DataError, match=r"member 'circle/zeros.png' is compressed 1,0\d\d to 1; "
                                        r"at most 500 to 1 is accepted"):
        load_image_folder(buffer.getvalue(), name="bomb.zip")


def test_member_larger_than_declared_is_refused():
    data = valid_members()
    declared = len(data["square/4.png"]) - 10
    crafted = patch_declared_size(zip_members(data), "square/4.png", declared)
    with pytest.raises(DataError, match=re.escape("member 'square/4.png' is damaged or does not match its "
                                                  "declared size")):
        load_image_folder(crafted, name="crafted.zip")


def test_too_many_entries_in_a_zip(monkeypatch, shapes):
    data = zip_folder(shapes)
    monkeypatch.setattr(limits, "IMAGE_ARCHIVE", dataclasses.replace(limits.IMAGE_ARCHIVE, max_entries=10))
    forbid_reading(monkeypatch)
    with pytest.raises(DataError, match=r"many\.zip: the archive lists \d+ files and folders; ConvLab reads at most 10 "
                                        r"in a zip of class folders\."):
        describe_folder(data, name="many.zip")


def with_zip64_end(data: bytes) -> bytes:
    """The same zip with a zip64 end record, its plain end record saying 'see zip64' (0xFFFF...)."""
    at = data.rfind(b"PK\x05\x06")
    sig, disk, cdisk, on_disk, total, size, offset, _ = struct.unpack_from("<4s4H2LH", data, at)
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, disk, cdisk, on_disk, total, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, at, 1)
    end = struct.pack("<4s4H2LH", sig, disk, cdisk, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:at] + record + locator + end


@pytest.mark.parametrize("zip64", [False, True])
def test_zip_directory_too_large_is_refused_before_parsing(monkeypatch, shapes, zip64):
    data = zip_folder(shapes)
    data = with_zip64_end(data) if zip64 else data
    assert describe_folder(data).class_names == ("circle", "square", "triangle")
    monkeypatch.setattr(limits, "IMAGE_ARCHIVE", dataclasses.replace(limits.IMAGE_ARCHIVE, max_directory_bytes=1000))
    forbid_reading(monkeypatch)
    monkeypatch.setattr(zipfile, "ZipFile", lambda *args, **kwargs: pytest.fail("the directory was parsed"))
    with pytest.raises(DataError, match=r"big\.zip: its zip directory takes \d+\.\d kB; ConvLab reads at most "
                                        r"1\.0 kB for a zip of class folders \(about 50,000 files\)\."):
        describe_folder(data, name="big.zip")
