"""What the engine's tests share: a tiny architecture and recipe, the bars as a file a worker can load, a job manager."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.data.dataset import DatasetRef
from core.engine.jobs import JobManager
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.runs.spec import RunSpec
from core.training.config import TrainingConfig
from tests.conftest import bars_arrays

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2, validation_fraction=0.1)
LONG = replace(QUICK, batch_size=1, epochs=200)  # minutes if nobody stops it


@pytest.fixture(scope="module")
def bars_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "bars.npz"
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def spec(bars_file, config: TrainingConfig = QUICK) -> RunSpec:
    return RunSpec(DatasetRef.of("file", str(bars_file)), TINY, config, label="bars")


# --- worker processes and the queue ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manager():
    jobs = JobManager(max_concurrent=1, orphan_grace_s=0.5)
    yield jobs
    jobs.shutdown()
