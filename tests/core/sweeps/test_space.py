"""What a sweep varies: settings parsed from the command line's words, their grids, and their values checked by the
recipe's and the model's own rules."""

from __future__ import annotations

import re

import pytest

from core.errors import RunError
from core.model.architecture import PRESETS
from core.sweeps.space import (
    Setting,
    apply,
    check_setting,
    check_trial,
    kind_of,
    largest,
    parse,
    settings_of,
)
from core.training.config import TRAINING_PRESETS

LAB, FAST = PRESETS["lab"], PRESETS["fast"]


@pytest.mark.parametrize("text, setting, grid", [
    ("learning_rate=1e-3:1e-1:log", Setting("learning_rate", 1e-3, 1e-1, log=True), [0.001, 0.00464, 0.0215, 0.1]),
    ("learning_rate=1e-3:1e-1:log:3", Setting("learning_rate", 1e-3, 1e-1, True, 3), [0.001, 0.01, 0.1]),
    ("batch_size=16,32,64", Setting("batch_size", values=(16, 32, 64)), [16, 32, 64]),
    ("filters=8:64:log", Setting("conv1.filters", 8, 64, log=True), [8, 16, 32, 64]),
    ("units=10:100:3", Setting("dense1.units", 10, 100, points=3), [10, 55, 100]),
    ("conv1.dropout = 0:0.5:3", Setting("conv1.dropout", 0.0, 0.5, points=3), [0.0, 0.25, 0.5]),
    ("optimizer=sgd,adam", Setting("optimizer", values=("sgd", "adam")), ["sgd", "adam"]),
    ("kernel_size=3:5", Setting("conv1.kernel_size", 3, 5), [3, 4, 5]),  # integers: no repeats
])
def test_the_command_lines_words_become_settings_and_grids(text, setting, grid):
    parsed = parse(text, LAB)
    assert parsed == setting and parsed.grid() == grid
    assert Setting.from_dict(parsed.to_dict()) == parsed
    assert parse(parsed.describe(), LAB) == parsed  # as the CLI writes it back


@pytest.mark.parametrize("text, message", [
    ("learning_rate", "--vary 'learning_rate': write name=low:high[:log][:points] or name=a,b,c"),
    ("speed=1,2", "'speed' is not a setting a sweep can vary; it varies learning_rate, momentum, batch_size"),
    ("learning_rate=0:1:log", "learning_rate: a log scale needs a range above 0, not from 0."),
    ("learning_rate=0.1:0.01", "learning_rate: the range 0.1 to 0.01 is empty (the low end comes first)."),
    ("learning_rate=1:2:lag", "'lag' is not 'log' and a number of grid points."),
    ("learning_rate=1:2:1", "learning_rate: a grid needs at least 2 points of a range."),
    ("learning_rate=1:2:50", "learning_rate: grid points == 50, must be an integer from 2 to 20"),
    ("batch_size=16.5,32", "'16.5' is not an integer."),
    ("epochs=5", "epochs: list from 2 to 20 values to try (1 given)."),
    ("epochs=5,5", "epochs: a value is listed twice."),
    ("optimizer=sgd,lion", "optimizer: 'lion' is not one of sgd, adam, rmsprop."),
    ("optimizer=sgd:adam", "optimizer: list the values to try (sgd,adam,rmsprop); it has no range."),
    ("conv1.speed=1,2", "'conv1.speed' is not a setting a sweep can vary"),
])
def test_bad_words_are_refused_with_what_to_write(text, message):
    with pytest.raises(RunError, match=re.escape(message)):
        parse(text, LAB)


def test_short_names_need_a_model_with_one_block_or_layer():
    assert parse("filters=8,16", LAB).name == "conv1.filters"
    with pytest.raises(RunError, match=re.escape("filters: the model has 3 conv blocks; say which (conv1.filters or "
                                                 "conv2.filters or conv3.filters).")):
        parse("filters=8,16", FAST)
    assert parse("conv2.filters=8,16", FAST).name == "conv2.filters"
    assert kind_of("dense1.dropout") is float and kind_of("conv3.kernel_size") is int and kind_of("optimizer") is str
    assert settings_of(FAST)[:3] == ["learning_rate", "batch_size", "epochs"]
    assert "conv2.kernel_size" in settings_of(FAST) and "conv2.filters" not in settings_of(LAB)


def test_values_go_where_the_sliders_would_put_them():
    arch, config = apply(FAST, TRAINING_PRESETS["fast"], {"learning_rate": 0.003, "conv2.filters": 48,
                                                          "dense1.dropout": 0.4, "rotation": 0.05, "batch_size": 16})
    assert config.learning_rate == 0.003 and config.batch_size == 16
    assert [b.filters for b in arch.conv_blocks] == [32, 48, 64] and arch.dense_layers[0].dropout == 0.4
    assert arch.augmentation.rotation == 0.05 and arch.augmentation.shift == FAST.augmentation.shift
    assert FAST.conv_blocks[1].filters == 32  # (the preset itself is untouched)


@pytest.mark.parametrize("setting, message", [
    (Setting("learning_rate", 1e-3, 20.0, log=True), "learning_rate=20: learning rate == 20.0, must be in (0, 10]."),
    (Setting("conv1.kernel_size", values=(3, 31)), "conv1.kernel_size=31: conv block 1: kernel size == 31, must be "
                                                   "between 1 and 15."),
    (Setting("conv2.kernel_size", values=(3, 5)), "conv2.kernel_size: the model has 1 conv block."),
    (Setting("batch_size", values=(32, 100_000)), "batch_size=100000: batch size == 100000, must be an integer from "
                                                  "1 to 8192."),
    (Setting("batch_size", values=(32, 8192)), "batch_size=8192: this architecture has 542,230 parameters and needs "
                                               "about 3.6 GB to train in batches of 8192; ConvLab allows at most"),
])
def test_values_the_model_or_recipe_refuses_are_refused_before_any_trial(setting, message):
    with pytest.raises(RunError, match=re.escape(message)):
        check_setting(setting.checked(), LAB, TRAINING_PRESETS["lab"], (28, 28, 1), 10)


def test_the_largest_trial_is_the_one_with_the_most_filters_units_and_images_a_batch():
    settings = (Setting("conv1.filters", 8, 256), Setting("batch_size", values=(16, 4096)),
                Setting("learning_rate", 0.001, 0.1), Setting("conv1.dropout", 0.0, 0.5))
    assert largest(settings) == {"conv1.filters": 256, "batch_size": 4096}
    with pytest.raises(RunError, match=r"^the largest: this architecture has .* to train in batches of 4096"):
        check_trial(LAB, TRAINING_PRESETS["lab"], largest(settings), (28, 28, 1), 10, what="the largest")
    arch, config, params = check_trial(LAB, TRAINING_PRESETS["lab"], {"conv1.filters": 8}, (28, 28, 1), 10)
    assert arch.conv_blocks[0].filters == 8 and params == 136_390
