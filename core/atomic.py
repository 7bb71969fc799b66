"""Crash-safe file writes: a reader sees the old file or the new one, never half of one.

Whole files are written to a temporary file in the same folder, flushed to
disk and moved over the target with `os.replace` (atomic on POSIX). Logs that
grow line by line (a run's metrics) are appended one complete line per
`os.write`, and their readers ignore a last line that has no newline yet.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np


def write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically."""
    write_with(path, lambda handle: handle.write(data))


def write_json(path: Path, value: Any) -> None:
    """Replace `path` with `value` as indented JSON, atomically."""
    write_bytes(path, (json.dumps(value, indent=1, allow_nan=False) + "\n").encode())


def write_npy(path: Path, array: np.ndarray) -> None:
    """Replace `path` with `array` in .npy format (never pickled), atomically."""
    write_with(path, lambda handle: np.save(handle, np.ascontiguousarray(array), allow_pickle=False))


def write_with(path: Path, write: Callable[[Any], object], suffix: str = ".tmp") -> None:
    """Call `write(handle)` on a temporary file beside `path`, then move it over `path`."""
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def replace_from(path: Path, make: Callable[[Path], None], suffix: str) -> None:
    """Let `make(temporary_path)` write a file (e.g. Keras' `model.save`), then move it over `path`.

    For writers that want a file name rather than a handle; `suffix` keeps
    the extension they insist on (Keras refuses a name not ending in `.keras`).
    """
    path = Path(path)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix, dir=path.parent)
    os.close(descriptor)
    try:
        make(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def append_line(path: Path, line: str) -> None:
    """Append one complete line with a single write, so a reader never sees half of it."""
    data = (line.rstrip("\n") + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, data)
    finally:
        os.close(descriptor)


def read_json(path: Path) -> Any:
    """Parse a JSON file (raises OSError or ValueError as they come)."""
    return json.loads(Path(path).read_text())
