"""A run's spec: plain data that round-trips through JSON, refused with its reason when malformed."""

from __future__ import annotations

import json
import re

import pytest

from core.data.dataset import DatasetRef
from core.errors import ConvLabError, DataError, RunError
from core.model.architecture import PRESETS
from core.runs.spec import RunSpec
from core.training.config import TRAINING_PRESETS, override
from tests.core.runs.conftest import LAB


def test_spec_round_trips_through_json():
    spec = RunSpec(DatasetRef.of("images", "/data/leaves.zip", {"image_size": 64, "color_mode": "rgb"}),
                   PRESETS["fast"], override(TRAINING_PRESETS["fast"], seed=4), label="leaves", origin="cli")
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.seed == 4


@pytest.mark.parametrize("data, message", [
    ([], "a run spec must be a mapping, not list."),
    ({"dataset": LAB.dataset.to_dict(), "seed": 3}, "a run spec: unknown setting(s) 'seed'; known: dataset, "),
    ({"dataset": {"kind": "web", "name": "x", "options": {}}},
     "dataset kind == 'web', must be one of 'builtin', 'file', "),
    ({"dataset": "mnist"}, "a dataset reference needs a kind, a name and options"),
    ({"dataset": LAB.dataset.to_dict(), "architecture": None, "training": {"epochs": 0}},
     "epochs == 0, must be an integer from 1 to 500."),
])
def test_malformed_specs_are_refused_with_their_reason(data, message):
    with pytest.raises((RunError, DataError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        RunSpec.from_dict(data)


def test_a_continued_runs_parent_and_a_replays_changes_survive_json():
    from dataclasses import replace

    from core.training.controls import Change, ChangeKind

    spec = replace(LAB, parent="20261206-101500-a1b2c3",
                   changes=(Change(ChangeKind.LEARNING_RATE, 0.005, 40), Change(ChangeKind.EPOCHS, 12, 300)))
    assert RunSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    data = spec.to_dict()
    data["changes"] = [{"kind": "epochs", "value": 12}]  # no step: a plan must say where
    with pytest.raises(RunError, match="at which batch"):
        RunSpec.from_dict(data)
    data["changes"] = [{"kind": "learning_rate", "value": 99, "step": 3}]
    with pytest.raises(ConvLabError, match="learning rate == 99"):
        RunSpec.from_dict(data)


def test_a_trials_sweep_tag_survives_json_and_is_checked():
    from dataclasses import replace

    from core.runs.spec import SweepTag

    trial = replace(LAB, sweep=SweepTag("s20261206-101500-a1b2c3", 4))
    assert RunSpec.from_dict(json.loads(json.dumps(trial.to_dict()))) == trial
    # a trial asked again after its sweep was stopped and resumed is numbered past the budget of 100
    again = replace(LAB, sweep=SweepTag("s20261206-101500-a1b2c3", 100))
    assert RunSpec.from_dict(json.loads(json.dumps(again.to_dict()))) == again
    assert RunSpec.from_dict({k: v for k, v in LAB.to_dict().items() if k != "sweep"}).sweep is None  # older specs
    for tag, message in (({"sweep_id": "../../etc", "trial": 1}, "'../../etc' is not a sweep id."),
                         ({"sweep_id": "s20261206-101500-a1b2c3", "trial": 2**31},
                          "a sweep tag's trial == 2147483648, must be an integer from 0 to 2,147,483,647."),
                         ({"sweep_id": "s20261206-101500-a1b2c3", "trial": "4"},
                          "a sweep tag's trial == '4', must be an integer from 0 to 2,147,483,647."),
                         ({"sweep_id": "s20261206-101500-a1b2c3"},
                          "a sweep tag's trial == -1, must be an integer from 0 to 2,147,483,647.")):
        with pytest.raises(RunError, match=re.escape(message)):
            RunSpec.from_dict(LAB.to_dict() | {"sweep": tag})
