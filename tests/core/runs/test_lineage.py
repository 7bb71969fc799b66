"""Runs made from runs: continued runs (their lineage, their starting state) and replays of hand-made changes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.engine.execute import execute
from core.errors import RunError
from core.runs.lineage import ancestry, children, continue_run, replay_run, replay_spec
from core.runs.status import RunState
from core.training.controls import Change, ChangeKind, Controls
from tests.core.engine.conftest import QUICK, spec


@pytest.fixture()
def finished(store, bars_file):
    run_id = store.create(spec(bars_file))
    assert execute(store, run_id) is RunState.FINISHED
    return run_id


def test_a_continued_run_trains_its_parents_final_state_further(store, finished):
    child = continue_run(store, finished, 3, learning_rate=0.002)
    child_spec = store.spec(child)
    assert child_spec.parent == finished and child_spec.training == replace(QUICK, epochs=5, learning_rate=0.002)
    assert store.status(child).state is RunState.QUEUED and store.label(child) == "bars +3"
    assert [row["epoch"] for row in store.epochs(child)] == [1, 2]  # the parent's part, for curves joined
    assert execute(store, child) is RunState.FINISHED
    assert [row["epoch"] for row in store.epochs(child)] == [1, 2, 3, 4, 5]
    assert [e["kind"] for e in store.events(child)] == ["continued"]
    assert ancestry(store, child) == [finished] and children(store, finished) == [child]
    grandchild = continue_run(store, child, 1)
    assert ancestry(store, grandchild) == [child, finished]


def test_only_a_finished_or_stopped_run_with_a_final_state_can_be_continued(store, bars_file, finished):
    queued = store.create(spec(bars_file))
    with pytest.raises(RunError, match="only a finished or stopped run can be continued"):
        continue_run(store, queued, 2)
    with pytest.raises(RunError, match=r"more epochs == 0"):
        continue_run(store, finished, 0)
    old = store.create(spec(bars_file))
    store.write_status(old, replace(store.raw_status(old), state=RunState.FINISHED))
    with pytest.raises(RunError, match="no final checkpoint"):
        continue_run(store, old, 2)


def test_a_replay_carries_the_changes_made_by_hand_at_their_batches(store, bars_file):
    source = store.create(spec(bars_file, replace(QUICK, batch_size=4)))
    controls = Controls()
    controls.change(ChangeKind.LEARNING_RATE, 0.003)  # made at the end of the first chunk of batches
    assert execute(store, source, controls) is RunState.FINISHED
    (made,) = [e for e in store.events(source) if e["kind"] == "learning_rate"]
    assert replay_spec(store, source).changes == (Change(ChangeKind.LEARNING_RATE, 0.003, made["step"]),)
    again = replay_run(store, source, store)
    assert store.spec(again).changes == replay_spec(store, source).changes and store.label(again) == f"repeat of {source}"
    assert execute(store, again) is RunState.FINISHED
    assert store.test_metrics(again)["accuracy"] == store.test_metrics(source)["accuracy"]
    assert [r["loss"] for r in store.epochs(again)] == [r["loss"] for r in store.epochs(source)]
