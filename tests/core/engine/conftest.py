"""What the engine's tests share: a tiny architecture and recipe, the bars as a file a worker can load, a job manager."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.data.dataset import DatasetRef
from core.engine.jobs import JobManager
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.runs.spec import RunSpec
from core.training.config import TrainingConfig

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2, validation_fraction=0.1)
LONG = replace(QUICK, batch_size=1, epochs=200)  # minutes if nobody stops it
PAUSABLE = replace(QUICK, batch_size=1, epochs=3)  # a few seconds: 216 batches an epoch, in chunks of 32


def same_training(store, run_id: str, reference_store, reference_id: str) -> bool:
    """Two runs ended with the same per-epoch metrics and the same test score (compared exactly)."""
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    mine = [[row[k] for k in keys] for row in store.epochs(run_id)]
    theirs = [[row[k] for k in keys] for row in reference_store.epochs(reference_id)]
    return mine == theirs and store.test_metrics(run_id)["accuracy"] == reference_store.test_metrics(reference_id)[
        "accuracy"]


def spec(bars_file, config: TrainingConfig = QUICK) -> RunSpec:
    return RunSpec(DatasetRef.of("file", str(bars_file)), TINY, config, label="bars")


@pytest.fixture(scope="session")
def never_paused(tmp_path_factory, bars_file):
    """PAUSABLE trained in one go, in this process: what a paused, killed or restarted run must end with."""
    from core.engine.execute import execute
    from core.runs.store import RunStore

    store = RunStore(tmp_path_factory.mktemp("reference"))
    run_id = store.create(spec(bars_file, PAUSABLE))
    assert execute(store, run_id).value == "finished"
    return store, run_id


# --- worker processes and the queue ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manager():
    jobs = JobManager(max_concurrent=1, orphan_grace_s=0.5)
    yield jobs
    jobs.shutdown()
