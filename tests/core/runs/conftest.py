"""What the tests of a run share: the lab's run spec, a run store in a temporary folder, an owner that has ended."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.data.dataset import DatasetRef
from core.model.architecture import PRESETS
from core.runs.spec import RunSpec
from core.runs.status import Owner
from core.runs.store import RunStore
from core.training.config import TRAINING_PRESETS

LAB = RunSpec(DatasetRef.of("builtin", "mnist-10k"), PRESETS["lab"], TRAINING_PRESETS["lab"], label="lab run")


@pytest.fixture()
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


def dead_owner() -> Owner:
    """A process that has ended: a child we started and waited for."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return Owner(child.pid, Owner.this_process().host, 12345)
