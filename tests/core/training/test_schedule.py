"""The learning rate over a training: the recipe's schedule, scaled by a live change, re-timed by new epochs."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from core.training.config import TrainingConfig
from core.training.schedule import live_schedule


def rates(schedule, steps) -> list[float]:
    return [schedule.rate_at(step) for step in steps]


@pytest.mark.parametrize("kind", ["cosine", "warmup-cosine"])
def test_left_unchanged_it_is_the_recipes_schedule_bit_for_bit(kind):
    config = TrainingConfig(learning_rate=0.05, schedule=kind)
    schedule = live_schedule(config, total_steps=100, warmup_steps=10)
    if kind == "cosine":
        recipe = keras.optimizers.schedules.CosineDecay(0.05, decay_steps=100)
    else:
        recipe = keras.optimizers.schedules.CosineDecay(0.0, decay_steps=90, warmup_target=0.05, warmup_steps=10)
    for step in (0, 1, 9, 10, 11, 50, 99, 100, 150):
        assert schedule.rate_at(step) == float(recipe(step))


def test_a_new_rate_replaces_a_constant_one():
    schedule = live_schedule(TrainingConfig(learning_rate=0.01), total_steps=100, warmup_steps=10)
    schedule.set_rate(0.003, step=20)
    assert rates(schedule, (20, 21, 99)) == pytest.approx([0.003] * 3)


def test_a_new_rate_scales_a_decaying_schedule_from_there_on():
    schedule = live_schedule(TrainingConfig(learning_rate=0.1, schedule="cosine"), total_steps=100, warmup_steps=10)
    before = rates(schedule, (40, 60, 80))
    schedule.set_rate(before[0] / 2, step=40)
    assert rates(schedule, (40, 60, 80)) == pytest.approx([value / 2 for value in before], rel=1e-6)


def test_a_new_rate_where_the_schedule_is_at_zero_holds_from_then_on():
    schedule = live_schedule(TrainingConfig(learning_rate=0.1, schedule="cosine"), total_steps=100, warmup_steps=10)
    assert schedule.rate_at(100) == 0.0
    schedule.set_rate(0.02, step=100)
    assert rates(schedule, (100, 140)) == pytest.approx([0.02, 0.02])


def test_more_epochs_spread_what_is_left_of_the_schedule_over_the_new_end():
    schedule = live_schedule(TrainingConfig(learning_rate=0.1, schedule="cosine"), total_steps=100, warmup_steps=10)
    at_50 = schedule.rate_at(50)
    schedule.retime(step=50, total_steps=150)  # 50 steps were left, now 100
    assert schedule.rate_at(50) == pytest.approx(at_50)  # it goes on from where it is
    assert schedule.rate_at(100) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.75)), rel=1e-5)  # halfway left
    assert schedule.rate_at(150) == pytest.approx(0.0, abs=1e-9)  # it reaches its end on the new last batch
    schedule.retime(step=100, total_steps=110)  # then fewer: the rest over 10 steps
    assert schedule.rate_at(110) == pytest.approx(0.0, abs=1e-9)
    assert schedule.rate_at(105) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.875)), rel=1e-5)


def test_a_continued_runs_schedule_starts_at_its_parents_step():
    schedule = live_schedule(TrainingConfig(learning_rate=0.1, schedule="cosine"), total_steps=50, warmup_steps=10,
                             start=300)
    assert schedule.rate_at(300) == pytest.approx(0.1) and schedule.rate_at(350) == pytest.approx(0.0, abs=1e-9)


def test_its_state_goes_into_a_checkpoint_and_back():
    config = TrainingConfig(learning_rate=0.1, schedule="warmup-cosine")
    schedule = live_schedule(config, total_steps=100, warmup_steps=10)
    schedule.set_rate(0.04, step=30)
    schedule.retime(step=30, total_steps=200)
    state = schedule.state()
    again = live_schedule(config, total_steps=state["base_steps"], warmup_steps=10)
    again.restore(state)
    steps = np.arange(0, 220, 7)
    assert rates(again, steps) == rates(schedule, steps)
