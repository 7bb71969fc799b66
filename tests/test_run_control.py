"""Pause, resume, change course and continue from the pages (AppTest, with the server's real job manager)."""

from __future__ import annotations

import re

import pytest

from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TrainingConfig
from tests.conftest import training, wait_for
from tests.test_pages import manager, new_app, with_data_and_model
from ui import state

SLOW = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=1, epochs=30)  # a minute if left alone


@pytest.fixture(autouse=True)
def run_store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


def started(bars_data, config: TrainingConfig = SLOW):
    at = with_data_and_model(new_app(), bars_data, config=config).run()
    at.switch_page("pages/training.py").run()
    assert at.button(key="train_pause").disabled  # nothing to pause yet
    at.button(key="train_start").click().run()
    return at, at.session_state[state.CURRENT_RUN]


def test_pause_then_resume_from_the_training_page(bars_data, run_store):
    at, run_id = started(bars_data)
    wait_for(lambda: training(run_store, run_id), what="the run to train")
    at.run()
    assert not at.button(key="train_pause").disabled and not at.button(key="train_stop").disabled
    assert [e.label for e in at.expander if e.label == "Change course while it trains"]
    at.button(key="train_pause").click().run()
    wait_for(lambda: run_store.status(run_id).state is RunState.PAUSED, timeout=60, what="the pause")
    at.run()
    # (mid-epoch, or on an epoch's last batch: the pause lands at the next chunk of batches)
    assert any(re.match(r"\*\*Paused\.\*\* Paused (in epoch \d+/30, after batch|at the end of epoch \d+/30)", i.value)
               for i in at.info), [i.value for i in at.info]
    assert not at.button(key="train_resume").disabled and at.button(key="train_stop").disabled
    assert not at.button(key="train_start").disabled  # another run may start; this one waits, paused
    at.button(key="train_resume").click().run()
    assert run_store.status(run_id).state in (RunState.QUEUED, RunState.RUNNING)
    wait_for(lambda: training(run_store, run_id) and len(run_store.events(run_id)) >= 2, what="it to train again")
    assert [e["kind"] for e in run_store.events(run_id)][:2] == ["paused", "resumed"]
    manager().stop(run_id)
    assert manager().wait_idle(timeout=300)


def test_a_change_of_course_is_sent_and_recorded(bars_data, run_store):
    at, run_id = started(bars_data)
    wait_for(lambda: training(run_store, run_id), what="the run to train")
    at.run()
    at.number_input(key="training_change_epochs").set_value(1).run()
    at.button(key="training_change_epochs_set").click().run()
    assert any("now trains 1 epoch in all" in s.value for s in at.success)
    assert manager().wait_idle(timeout=300)  # one epoch, not thirty
    assert run_store.status(run_id).state is RunState.FINISHED
    ((kind, value, by),) = [(e["kind"], e["value"], e["by"]) for e in run_store.events(run_id)]
    # (asked for 1; an epoch under way when the change lands is finished first)
    assert (kind, by) == ("epochs", "user") and value == len(run_store.epochs(run_id)) <= 2


def test_a_finished_run_continues_into_a_new_linked_run(bars_data, run_store):
    at, run_id = started(bars_data, TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=1))
    assert manager().wait_idle(timeout=300)
    at.run()
    at.number_input(key="training_continue_epochs").set_value(2).run()
    at.button(key="training_continue").click().run()
    child = at.session_state[state.CURRENT_RUN]
    assert child != run_id and run_store.spec(child).parent == run_id
    assert manager().wait_idle(timeout=300)
    at.run()
    assert [row["epoch"] for row in run_store.epochs(child)] == [1, 2, 3]
    assert any(f"continues `{run_id}`" in c.value for c in at.caption)


def test_another_browsers_run_cannot_be_paused_or_resumed_here(bars_data, run_store):
    from core.runs.spec import RunSpec
    from tests.core.engine.conftest import TINY

    run_id = run_store.create(RunSpec(bars_data.ref, TINY, SLOW), made_by="someone-else")
    run_store.write_status(run_id, run_store.raw_status(run_id).__class__(state=RunState.PAUSED, message="Paused."))
    at = new_app()
    at.session_state[state.CURRENT_RUN] = run_id
    at.run().switch_page("pages/training.py").run()
    at.button(key="train_resume").click().run()
    assert any("Not resumed: it was made in another browser" in e.value for e in at.error)
    assert run_store.status(run_id).state is RunState.PAUSED
