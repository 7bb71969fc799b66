"""The server's shared datasets: one copy per server process, whatever the workspace."""

from __future__ import annotations

import pytest

from core.data.dataset import DatasetRef
from core.errors import DataError
from ui.loading import dataset_for_ref


@pytest.mark.parametrize("name", ["digits-8x8", "mnist-10k"])
def test_a_built_in_dataset_is_one_copy_for_every_workspace(name, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLAB_OFFLINE", "1")
    ref = DatasetRef.of("builtin", name)
    first = dataset_for_ref(ref, str(tmp_path / "workspaces" / "a"))
    assert dataset_for_ref(ref, str(tmp_path / "workspaces" / "b")) is first


def test_a_built_in_reference_to_an_unknown_name_is_refused_not_read_as_a_path(tmp_path):
    with pytest.raises(DataError, match="unknown built-in dataset"):
        dataset_for_ref(DatasetRef.of("builtin", str(tmp_path)), str(tmp_path))
