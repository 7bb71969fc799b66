"""What is asked of a training while it runs: halts, changes of course, and the plan a replay follows."""

from __future__ import annotations

import pytest

from core.errors import TrainingConfigError
from core.training.controls import Change, ChangeKind, Controls, Halt, replayable


def test_the_first_halt_asked_wins_and_its_listeners_hear_it_once():
    heard = []
    controls = Controls()
    controls.on_halt(heard.append)
    controls.pause()
    controls.stop()
    assert controls.halted is Halt.PAUSE and controls() and heard == [Halt.PAUSE]


def test_a_second_ctrl_c_turns_a_pause_not_yet_made_into_a_stop():
    controls = Controls()
    controls.pause()
    assert controls.escalate() is Halt.STOP and controls.halted is Halt.STOP


def test_only_stop_ends_without_a_checkpoint_to_resume_from():
    assert [halt for halt in Halt if not halt.keeps_place] == [Halt.STOP]


def test_changes_are_checked_when_asked_and_handed_over_once():
    controls = Controls()
    with pytest.raises(TrainingConfigError, match=r"^learning rate == 0, must be in \(0, 10\]"):
        controls.change("learning_rate", 0)
    with pytest.raises(TrainingConfigError, match=r"^epochs == 501"):
        controls.change(ChangeKind.EPOCHS, 501)
    with pytest.raises(ValueError):
        controls.change("momentum", 0.5)
    controls.change("learning_rate", 0.05)
    assert [(c.kind, c.value, by) for c, by in controls.due(10)] == [(ChangeKind.LEARNING_RATE, 0.05, "user")]
    assert controls.due(11) == []


def test_a_plan_makes_its_changes_at_their_steps_and_skips_those_before_a_resume():
    plan = [Change(ChangeKind.EPOCHS, 5, step=40), Change(ChangeKind.LEARNING_RATE, 0.1, step=10)]
    controls = Controls(plan)
    assert controls.due(9) == []
    assert [c.step for c, by in controls.due(12)] == [10]
    resumed = Controls(plan)
    resumed.skip_to(40)  # the checkpoint was taken after step 40: both were made already
    assert resumed.due(1000) == []


def test_a_replay_keeps_what_people_changed_not_what_the_recipe_did():
    events = [{"kind": "learning_rate", "value": 0.02, "step": 30, "by": "user"},
              {"kind": "plateau", "value": 0.01, "step": 60, "by": "recipe"},
              {"kind": "paused", "value": None, "step": 70, "by": "user"},
              {"kind": "epochs", "value": 8, "step": 90, "by": "plan"},
              {"kind": "stop", "value": None, "step": 120, "by": "user"}]
    assert replayable(events) == [Change(ChangeKind.LEARNING_RATE, 0.02, 30), Change(ChangeKind.EPOCHS, 8, 90),
                                  Change(ChangeKind.STOP, None, 120)]


def test_changes_read_back_from_a_spec_are_checked():
    assert Change.from_dict({"kind": "epochs", "value": 3, "step": 5}) == Change(ChangeKind.EPOCHS, 3, 5)
    for bad in ({"kind": "epochs", "value": 0, "step": 5}, {"kind": "rm -rf", "step": 1}, ["epochs"],
                {"kind": "epochs", "value": 3, "step": 5, "extra": 1}, {"kind": "learning_rate", "value": "0.1"}):
        with pytest.raises(TrainingConfigError):
            Change.from_dict(bad)
