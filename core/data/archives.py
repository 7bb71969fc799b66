"""The one zip reader: a .npz's arrays, a zip of class folders and a .keras model are all opened here.

A hostile zip is refused from its central directory before anything is
decompressed, against the budget of its kind (`core.limits.ArchiveLimits`):
first the directory's size and entry count as the end record declares them
(ZIP64 included), before `zipfile` parses it into objects; then every
member's name (nothing may point outside the folder), symbolic links, and,
with `check_expansion`, the total size once uncompressed and the compression
ratio. Members are read into memory with bounded reads, never extracted.
"""

from __future__ import annotations

import io
import lzma
import re
import stat
import struct
import zipfile
import zlib
from typing import BinaryIO, Sequence

from core.errors import DataError
from core.limits import ArchiveLimits, format_bytes

_DRIVE = re.compile(r"^[A-Za-z]:")
_END_RECORD = struct.Struct("<4s4H2LH")  # zip's end-of-central-directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")


def open_zip(stream: BinaryIO, label: str, limits: ArchiveLimits) -> zipfile.ZipFile:
    """A ZipFile on `stream` whose directory passed the structural checks (DataError saying why not).

    The caller closes it (it is a context manager). `label` names the file in messages.
    """
    entries, directory_bytes = declared_directory(stream)
    if entries > limits.max_entries:
        raise DataError(too_many_entries(label, entries, limits))
    if directory_bytes > limits.max_directory_bytes:
        raise DataError(f"{label}: its zip directory takes {format_bytes(directory_bytes)}; ConvLab reads at most "
                        f"{format_bytes(limits.max_directory_bytes)} for {limits.what} (about "
                        f"{limits.max_entries:,} files).")
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"{label}: not a valid .zip file ({exc}); expected {limits.what}.") from None
    try:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:  # the end record undercounted them
            raise DataError(too_many_entries(label, len(infos), limits))
        for info in infos:
            if unsafe_name(info.filename):
                raise DataError(f"{label}: member {info.filename!r} points outside the folder (an absolute path, "
                                "a drive letter or '..'); the zip is refused and nothing was extracted.")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"{label}: member {info.filename!r} is a symbolic link; zips with links are refused.")
    except DataError:
        archive.close()
        raise
    return archive


def check_expansion(infos: Sequence[zipfile.ZipInfo], label: str, limits: ArchiveLimits) -> None:
    """Refuse members that would decompress to more than the kind allows (a zip bomb), from the directory alone."""
    total = sum(info.file_size for info in infos)
    if total > limits.max_total_bytes:
        raise DataError(f"{label}: its files add up to {format_bytes(total)} once uncompressed; ConvLab reads at "
                        f"most {format_bytes(limits.max_total_bytes)} of {limits.what} (a zip bomb?).")
    if limits.max_ratio is None:
        return
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > limits.ratio_check_bytes and ratio > limits.max_ratio:
            raise DataError(f"{label}: member {info.filename!r} is compressed {ratio:,.0f} to 1; "
                            f"at most {limits.max_ratio} to 1 is accepted (a zip bomb?).")


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    """One member's bytes, never more than its declared size (DataError when it does not match)."""
    try:
        with archive.open(info) as handle:
            data = handle.read(info.file_size + 1)
    except NotImplementedError:
        raise  # an unsupported compression method: the caller decides whether that refuses the zip
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{label}: member {info.filename!r} is damaged or does not match its declared size "
                        f"({exc}); the zip is refused.") from None
    if len(data) != info.file_size:
        raise DataError(f"{label}: member {info.filename!r} does not match its declared size "
                        f"({info.file_size:,} bytes); the zip is refused.")
    return data


def too_many_entries(label: str, count: int, limits: ArchiveLimits) -> str:
    return (f"{label}: the archive lists {count:,} files and folders; ConvLab reads at most {limits.max_entries:,} in "
            f"{limits.what}.")


def unsafe_name(name: str) -> bool:
    """A member name that would land outside its folder if extracted (absolute, a drive letter, '..')."""
    normal = name.replace("\\", "/")
    return normal.startswith("/") or bool(_DRIVE.match(normal)) or ".." in normal.split("/")


def declared_directory(stream: BinaryIO) -> tuple[int, int]:
    """(entries, bytes) of the central directory as the end record declares them, before zipfile parses it.

    (0, 0) when there is no end record (zipfile then says what is wrong with the file); ZIP64's
    record is followed where the classic one says 0xFFFF / 0xFFFFFFFF.
    """
    end = stream.seek(0, io.SEEK_END)
    stream.seek(max(0, end - _END_RECORD.size - 0xFFFF))  # the record, then a comment of up to 64 kB
    tail = stream.read()
    at = tail.rfind(b"PK\x05\x06")
    try:
        if at < 0 or len(tail) - at < _END_RECORD.size:
            return 0, 0
        *_, entries, size, _, _ = _END_RECORD.unpack_from(tail, at)
        locator = at - _ZIP64_LOCATOR.size
        if (size != 0xFFFFFFFF and entries != 0xFFFF) or locator < 0 or tail[locator: locator + 4] != b"PK\x06\x07":
            return entries, size
        stream.seek(_ZIP64_LOCATOR.unpack_from(tail, locator)[2])
        record = stream.read(_ZIP64_END_RECORD.size)
        if len(record) < _ZIP64_END_RECORD.size or record[:4] != b"PK\x06\x06":
            return entries, size
        fields = _ZIP64_END_RECORD.unpack(record)
        return fields[7], fields[8]
    finally:
        stream.seek(0)
