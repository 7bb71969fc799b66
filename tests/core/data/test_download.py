"""Files from the internet: hash-checked downloads, Keras' cache, knowing when there is no network (never using it)."""

from __future__ import annotations

import pytest

from core.data.download import fetch, file_sha256
from core.errors import DataError


def test_fetch_downloads_checks_hash_and_caches(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"digits" * 100)
    digest = file_sha256(source)
    dest = tmp_path / "cache" / "copy.bin"
    assert fetch(source.as_uri(), dest, digest) == dest
    assert dest.read_bytes() == source.read_bytes()
    source.unlink()  # cached now: no second download
    assert fetch(source.as_uri(), dest, digest) == dest


def test_fetch_refuses_a_bad_hash_and_leaves_nothing(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"tampered")
    dest = tmp_path / "cache" / "copy.bin"
    with pytest.raises(DataError, match="SHA-256 does not match"):
        fetch(source.as_uri(), dest, "0" * 64)
    assert not dest.exists() and not list(dest.parent.iterdir())


def test_fetch_reports_an_unreachable_url(tmp_path):
    with pytest.raises(DataError, match=r"could not download file://"):
        fetch((tmp_path / "absent.bin").as_uri(), tmp_path / "x.bin")
