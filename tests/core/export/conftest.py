"""What the tests of core/export share: runs trained through the engine on scikit-learn's 8x8 digits.

`lab_run`: the lab's model and recipe for 2 epochs. `rich_run`: a model with every kind of layer ConvLab builds
(augmentation, batch norm, dropout, 'same' padding, average pooling) under Adam with warm-up and cosine decay
and seed 3: what the notebook must reproduce bit for bit.
"""

from __future__ import annotations

import pytest

from core.data.registry import load_dataset
from core.engine.execute import execute
from core.model.architecture import PRESETS, Architecture, ConvBlock, DenseLayer, layer_table
from core.model.augment import Augmentation
from core.runs.details import run_details
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TrainingConfig

RICH = Architecture(
    conv_blocks=(ConvBlock(filters=8, kernel_size=3, padding="same", batch_norm=True, dropout=0.1),
                 ConvBlock(filters=16, kernel_size=3, padding="same", pooling="average")),
    dense_layers=(DenseLayer(units=32, dropout=0.2),),
    name="rich_cnn",
    augmentation=Augmentation(rotation=0.03, zoom=0.05, shift=0.1),
)
RICH_RECIPE = TrainingConfig(optimizer="adam", learning_rate=0.01, momentum=0.0, batch_size=64, epochs=3,
                             schedule="warmup-cosine", seed=3)
LAB_RECIPE = TrainingConfig(optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=32, epochs=2, seed=0)


def trained_run(store: RunStore, arch: Architecture, config: TrainingConfig, label: str) -> str:
    """A run of `arch` on the 8x8 digits, made as the CLI makes one (spec and details), trained by the engine."""
    digits = load_dataset("digits-8x8")
    params = layer_table(arch, digits.input_shape, digits.num_classes).total_params
    run_id = store.create(RunSpec(digits.ref, arch, config, label=label, origin="cli"), run_details(digits, params))
    assert execute(store, run_id) is RunState.FINISHED
    return run_id


@pytest.fixture(scope="session")
def export_store(tmp_path_factory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("export") / "runs")


@pytest.fixture(scope="session")
def lab_run(export_store) -> tuple[RunStore, str]:
    return export_store, trained_run(export_store, PRESETS["lab"], LAB_RECIPE, "lab on digits")


@pytest.fixture(scope="session")
def rich_run(export_store) -> tuple[RunStore, str]:
    return export_store, trained_run(export_store, RICH, RICH_RECIPE, "rich <b>label</b> *with* [markup](x)")
