"""Crash-safe writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import atomic


def test_atomic_writes_leave_the_old_file_when_a_write_fails(tmp_path):
    target = tmp_path / "status.json"
    atomic.write_json(target, {"state": "running"})

    def explode(handle) -> None:
        handle.write(b"{ half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_with(target, explode)
    assert json.loads(target.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left behind
    with pytest.raises(ValueError):
        atomic.write_json(target, {"loss": float("nan")})  # never a file that JSON readers reject
    assert json.loads(target.read_text()) == {"state": "running"}


def test_an_array_is_written_as_npy_and_never_pickled(tmp_path):
    target = tmp_path / "filters.npy"
    kernels = np.arange(24, dtype=np.float32).reshape(2, 3, 4)[:, ::2]  # not contiguous
    atomic.write_npy(target, kernels)
    np.testing.assert_array_equal(np.load(target, allow_pickle=False), kernels)
    with pytest.raises(ValueError):
        atomic.write_npy(target, np.array([object()], dtype=object))
    np.testing.assert_array_equal(np.load(target, allow_pickle=False), kernels)  # the old file stands
    assert [p.name for p in tmp_path.iterdir()] == ["filters.npy"]


def test_a_writer_that_wants_a_file_name_gets_one_with_its_suffix_beside_the_target(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old model")
    given: list[Path] = []

    def save(path: Path) -> None:
        given.append(path)
        path.write_bytes(b"new model")

    atomic.replace_from(target, save, suffix=".keras")
    assert target.read_bytes() == b"new model"
    assert given[0].parent == tmp_path and given[0].name.endswith(".keras") and given[0] != target

    def fail(path: Path) -> None:
        path.write_bytes(b"half a model")
        raise RuntimeError("Keras gave up")

    with pytest.raises(RuntimeError, match="Keras gave up"):
        atomic.replace_from(target, fail, suffix=".keras")
    assert target.read_bytes() == b"new model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_each_appended_line_is_one_complete_line(tmp_path):
    path = tmp_path / "epochs.csv"
    atomic.append_line(path, "epoch,loss")  # the file is created
    atomic.append_line(path, "1,0.5\n")  # a line that already ends is not doubled
    atomic.append_line(path, "2,0.4")
    assert path.read_text() == "epoch,loss\n1,0.5\n2,0.4\n"
    atomic.write_json(tmp_path / "status.json", {"state": "running", "epoch": 2})
    assert atomic.read_json(tmp_path / "status.json") == {"state": "running", "epoch": 2}
