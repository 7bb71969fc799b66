"""What `python -m core` prints: its own lines, not TensorFlow's start-up log (unless `--verbose`).

TensorFlow's C++ code writes lines to stderr while it is imported (oneDNN's
notice, absl's "All log messages before absl::InitializeLog() is called..."
warning, the CPU-feature guard's): they come before its logger reads
TF_CPP_MIN_LOG_LEVEL, so the level alone does not silence them. Unless
`--verbose` is given, `quiet_tensorflow` has the first import of TensorFlow
(whenever something imports it: it stays lazy, so `--help` and a bad
argument answer at once) run with file descriptor 2 captured; afterwards every
captured line that is not known start-up chatter is passed on to stderr, so
real errors stay visible.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from types import ModuleType
from typing import Iterator, Sequence

VERBOSE = "--verbose"

CHATTER = tuple(re.compile(pattern) for pattern in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IW]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] ",  # absl's INFO and WARNING lines (oneDNN, cpu_feature_guard, ...)
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.",
    r"^E\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\] Unable to register (cuDNN|cuFFT|cuBLAS) factory",  # GPU builds on a CPU
    r"computation placer already registered",
))


def is_chatter(line: str) -> bool:
    """Is `line` one of TensorFlow's start-up log lines (not an error of its own)?"""
    return any(pattern.search(line) for pattern in CHATTER)


def quiet_tensorflow(argv: Sequence[str]) -> list[str]:
    """Call first in `python -m core`: unless `--verbose` is among `argv`, TensorFlow's start-up lines are kept out
    of the output. Returns `argv` without `--verbose`."""
    rest = [arg for arg in argv if arg != VERBOSE]
    if len(rest) < len(argv):
        return rest
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # its later INFO and WARNING lines
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())
    return rest


@contextlib.contextmanager
def stderr_filtered() -> Iterator[None]:
    """File descriptor 2 captured for the block (C++ code writes there too); then its lines that are not
    TensorFlow's start-up chatter are written to stderr, in order."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not is_chatter(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as Python would, and has its first import run under `stderr_filtered`."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the other finders find it, and later imports are Python's own
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """`inner`, executing the module under `stderr_filtered` (the module keeps `inner` as its loader)."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.inner
        if module.__spec__ is not None:
            module.__spec__.loader = self.inner
        with stderr_filtered():
            self.inner.exec_module(module)
