"""A run store's uploads: kept once by content hash, with who uploaded them, under one quota."""

from __future__ import annotations

import pytest

from core.errors import DataError
from core.runs.store import RunStore
from core.runs.uploads import upload_quota


def test_an_upload_is_kept_once_with_its_name_and_uploaders(tmp_path):
    store = RunStore(tmp_path)
    digest, path = store.store_dataset_file(b"x" * 1000, "digits.npz", ".npz", uploaded_by="aa")
    again, _ = store.store_dataset_file(b"x" * 1000, "renamed.npz", ".npz", uploaded_by="bb")
    assert again == digest and path.read_bytes() == b"x" * 1000
    (upload,) = store.uploads.listing()
    assert (upload.name, upload.size, upload.uploaded_by) == ("digits.npz", 1000, ("aa", "bb"))


def test_an_upload_past_the_quota_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLAB_UPLOAD_QUOTA_MB", "1")
    assert upload_quota() == 10**6
    store = RunStore(tmp_path)
    store.store_dataset_file(b"a" * 600_000, "first.npz", ".npz")
    with pytest.raises(DataError, match=r"the run store's uploads would pass their quota: they hold 600\.0 kB of "
                                        r"1\.0 MB, and this file is 500\.0 kB\."):
        store.store_dataset_file(b"b" * 500_000, "second.npz", ".npz")
    assert [u.name for u in store.uploads.listing()] == ["first.npz"]


def test_usage_says_which_uploads_no_run_uses(tmp_path, bars_data):
    from core.data.dataset import DatasetRef
    from core.model.architecture import PRESETS
    from core.runs.spec import RunSpec
    from core.training.config import TRAINING_PRESETS

    store = RunStore(tmp_path)
    used, _ = store.store_dataset_file(b"used" * 100, "used.npz", ".npz", uploaded_by="aa")
    store.store_dataset_file(b"free" * 100, "free.npz", ".npz", uploaded_by="aa")
    store.store_dataset_file(b"other" * 100, "other.npz", ".npz", uploaded_by="bb")
    ref = DatasetRef.of("stored", used, {"file_name": "used.npz", "suffix": ".npz"})
    run_id = store.create(RunSpec(ref, PRESETS["lab"], TRAINING_PRESETS["lab"]))
    usage = store.usage()
    assert usage.runs == 1 and usage.upload_users == {used: [run_id]}
    assert [u.name for u in usage.unused("aa")] == ["free.npz"]
    assert sorted(u.name for u in usage.unused()) == ["free.npz", "other.npz"]
    assert usage.upload_bytes == 400 + 400 + 500
