"""Stage 3's recipe: training settings, their checks and presets."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from core.errors import TrainingConfigError
from core.training.config import TRAINING_PRESET_DESCRIPTIONS, TRAINING_PRESETS, TrainingConfig, override

BAD_SETTINGS = [
    ({"optimizer": "adamw"}, "optimizer == 'adamw', must be one of 'sgd', 'adam', 'rmsprop'."),
    ({"schedule": "step"}, "schedule == 'step', must be one of 'constant', 'cosine', 'warmup-cosine'."),
    ({"learning_rate": 0.0}, "learning rate == 0.0, must be in (0, 10]."),
    ({"learning_rate": -0.1}, "learning rate == -0.1, must be in (0, 10]."),
    ({"learning_rate": 11.0}, "learning rate == 11.0, must be in (0, 10]."),
    ({"learning_rate": math.nan}, "learning rate == nan, must be a number."),
    ({"learning_rate": "0.1"}, "learning rate == '0.1', must be a number."),
    ({"momentum": "high"}, "momentum == 'high', must be a number."),
    ({"learning_rate": True}, "learning rate == True, must be a number."),
    ({"momentum": 1.0}, "momentum == 1.0, must be in [0, 1)."),
    ({"momentum": -0.5}, "momentum == -0.5, must be in [0, 1)."),
    ({"batch_size": 0}, "batch size == 0, must be an integer from 1 to 8192."),
    ({"batch_size": 8193}, "batch size == 8193, must be an integer from 1 to 8192."),
    ({"batch_size": 32.0}, "batch size == 32.0, must be an integer from 1 to 8192."),
    ({"batch_size": True}, "batch size == True, must be an integer from 1 to 8192."),
    ({"epochs": 0}, "epochs == 0, must be an integer from 1 to 500."),
    ({"epochs": 501}, "epochs == 501, must be an integer from 1 to 500."),
    ({"epochs": 2.5}, "epochs == 2.5, must be an integer from 1 to 500."),
    ({"validation_fraction": 0.6}, "validation fraction == 0.6, must be in [0, 0.5]."),
    ({"validation_fraction": -0.1}, "validation fraction == -0.1, must be in [0, 0.5]."),
    ({"seed": -1}, "seed == -1, must be an integer from 0 to 2147483647."),
    ({"seed": 2**31}, "seed == 2147483648, must be an integer from 0 to 2147483647."),
    ({"seed": 1.5}, "seed == 1.5, must be an integer from 0 to 2147483647."),
    ({"learning_rate": 10**400}, f"learning rate == {10**400!r}, must be a number."),
]


@pytest.mark.parametrize("change, message", BAD_SETTINGS, ids=[str(c) for c, _ in BAD_SETTINGS])
def test_bad_setting_is_refused_with_its_message(change, message):
    with pytest.raises(TrainingConfigError, match=f"^{re.escape(message)}$"):
        TrainingConfig(**change).validated()


@pytest.mark.parametrize("edge", [
    {"learning_rate": 10.0}, {"momentum": 0.0}, {"batch_size": 1}, {"batch_size": 8192}, {"epochs": 500},
    {"validation_fraction": 0.0}, {"validation_fraction": 0.5}, {"seed": 0}, {"seed": 2**31 - 1},
    {"epochs": np.int64(3)}, {"learning_rate": np.float32(0.5)},  # NumPy scalars are numbers too
])
def test_edges_of_the_ranges_are_accepted(edge):
    config = TrainingConfig(**edge)
    assert config.validated() is config


def test_presets_are_valid_and_lab_is_the_lab_recipe():
    lab = TRAINING_PRESETS["lab"]
    assert (lab.optimizer, lab.learning_rate, lab.momentum, lab.batch_size, lab.epochs) == ("sgd", 0.01, 0.9, 32, 10)
    assert lab.schedule == "constant"
    for preset in TRAINING_PRESETS.values():
        assert preset.validated() is preset


def test_fast_recipe_and_every_recipe_pairs_with_an_architecture_of_its_name():
    from core.model.architecture import PRESETS

    fast = TRAINING_PRESETS["fast"]
    assert (fast.optimizer, fast.learning_rate, fast.batch_size, fast.epochs, fast.schedule) == (
        "adam", 0.01, 64, 12, "warmup-cosine")
    assert set(TRAINING_PRESETS) <= set(PRESETS) and set(TRAINING_PRESET_DESCRIPTIONS) == set(TRAINING_PRESETS)
    for name, preset in TRAINING_PRESETS.items():
        assert f"{preset.epochs} epochs" in TRAINING_PRESET_DESCRIPTIONS[name]
        assert f"batch {preset.batch_size}" in TRAINING_PRESET_DESCRIPTIONS[name]


def test_override_replaces_only_given_settings_and_validates():
    config = override(TRAINING_PRESETS["lab"], epochs=2, batch_size=None)
    assert (config.epochs, config.batch_size, config.learning_rate) == (2, 32, 0.01)
    with pytest.raises(TrainingConfigError, match="batch size == 0"):
        override(TRAINING_PRESETS["lab"], batch_size=0)


def test_config_round_trips_through_a_dict_and_refuses_unknown_or_bad_settings():
    config = TRAINING_PRESETS["fast"]
    assert TrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(TrainingConfigError, match=r"^training settings: unknown setting\(s\) 'colour', 'speed'; known: "):
        TrainingConfig.from_dict(config.to_dict() | {"speed": 2, "colour": "red"})
    with pytest.raises(TrainingConfigError, match=r"^epochs == -3"):
        TrainingConfig.from_dict(config.to_dict() | {"epochs": -3})
    with pytest.raises(TrainingConfigError, match=r"^training settings must be a mapping, not list\.$"):
        TrainingConfig.from_dict([1, 2])
