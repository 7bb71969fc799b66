"""What the tests of sweeps share: the 8x8 digits (they load offline in milliseconds), a small model and recipe, a
sweep over them, the details its trials' runs record, a dead process."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.data.registry import load_dataset
from core.model.architecture import Architecture, ConvBlock, DenseLayer, layer_table
from core.runs.details import run_details
from core.runs.store import RunStore
from core.sweeps.space import Setting
from core.sweeps.spec import SweepSpec
from core.training.config import TrainingConfig

SMALL = Architecture(conv_blocks=(ConvBlock(filters=8, kernel_size=3, pooling="none"),),
                     dense_layers=(DenseLayer(units=16),), name="small")
QUICK = TrainingConfig(optimizer="sgd", learning_rate=0.05, momentum=0.9, batch_size=32, epochs=3)
RATES = Setting("learning_rate", 1e-3, 1e-1, log=True)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits-8x8")


def sweep_spec(digits, *settings: Setting, **changes) -> SweepSpec:
    """A sweep of the small model and quick recipe on the digits (learning rates by default)."""
    spec = SweepSpec(digits.ref, SMALL, QUICK, settings or (RATES,), trials=4, origin="dashboard")
    return replace(spec, **changes).validated()


def details(digits, arch: Architecture = SMALL) -> dict:
    return run_details(digits, layer_table(arch, digits.input_shape, digits.num_classes).total_params)


@pytest.fixture()
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")
