"""Crash-safe writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json

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
