"""Per-browser workspaces (CONVLAB_WORKSPACES=per-browser): each browser its own run store, kept in its URL.

A run made in one browser is neither listed nor opened in another; a reload with the same ?ws= keeps the
workspace; a ws value that is not one of ours never becomes a path.
"""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

import ui.runs
from core.engine.jobs import JobManager
from core.model.architecture import Architecture, ConvBlock, DenseLayer, layer_table
from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TrainingConfig
from tests.conftest import ROOT
from ui import state

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny_cnn")
WORKSPACE_ID = re.compile(r"[0-9a-f]{16}")


@pytest.fixture(autouse=True)
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("CONVLAB_WORKSPACES", "per-browser")
    return tmp_path / "runs"


@pytest.fixture()
def jobs(tmp_path, monkeypatch):
    """The server's job manager, its worker never ready: a Start queues a run, nothing trains (no TensorFlow)."""
    worker = tmp_path / "worker-that-never-gets-ready"
    worker.write_text("#!/bin/sh\nexec sleep 600\n")
    worker.chmod(0o755)
    manager = JobManager(max_concurrent=1, keep_spare=False, python=str(worker))
    monkeypatch.setattr(ui.runs, "job_manager", lambda: manager)
    yield manager
    for run_id in manager.running() + manager.queued():
        manager.stop(run_id)
    assert manager.wait_idle(timeout=30)
    manager.shutdown()


def browser(page: str = "pages/runs.py", **query: str) -> AppTest:
    """A new browser session (a new tab, or a reload) with the given query parameters."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at.switch_page(page).run()


def with_data_and_model(at: AppTest, dataset) -> AppTest:
    at.session_state[state.DATASET] = dataset
    at.session_state[state.BUILT] = state.BuiltArchitecture(
        TINY, dataset.input_shape, dataset.num_classes, layer_table(TINY, dataset.input_shape, dataset.num_classes))
    at.session_state[state.TRAIN_CONFIG] = TrainingConfig(epochs=1)
    return at.run()


def workspace(at: AppTest) -> str:
    return at.query_params["ws"]


def listed_runs(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["run"]) if at.dataframe else []


def test_two_browsers_have_their_own_runs_and_a_reload_keeps_its_workspace(bars_data, runs_root, jobs):
    first, second = browser(), browser()
    assert WORKSPACE_ID.fullmatch(workspace(first)) and WORKSPACE_ID.fullmatch(workspace(second))
    assert workspace(first) != workspace(second)
    first_root, second_root = (runs_root / "workspaces" / workspace(at) for at in (first, second))
    assert str(runs_root) not in " ".join(c.value for c in first.caption)  # the server's paths are not shown

    # a run made in the first browser, with its Start button
    with_data_and_model(first.switch_page("pages/training.py"), bars_data).button(key="train_start").click().run()
    run_id = first.session_state[state.CURRENT_RUN]
    assert run_id and first.query_params["run"] == run_id and workspace(first) == first_root.name
    assert RunStore(first_root).run_ids() == [run_id] and RunStore(runs_root).run_ids() == []

    # not listed in the second browser, and not opened there by its id
    assert listed_runs(second.run()) == [] and any("No runs yet" in i.value for i in second.info)
    opened = browser(page="pages/training.py", ws=workspace(second), run=run_id)
    assert any(f"There is no run {run_id} here" in t.value for t in opened.toast)
    assert opened.session_state[state.CURRENT_RUN] is None and workspace(opened) == workspace(second)
    assert RunStore(second_root).run_ids() == []

    # a reload of the first browser (the same URL) keeps its workspace and its run
    reloaded = browser(page="pages/training.py", ws=workspace(first), run=run_id)
    assert workspace(reloaded) == workspace(first) and reloaded.session_state[state.CURRENT_RUN] == run_id
    assert any("**Queued" in i.value or "**Starting." in i.value for i in reloaded.info)
    assert listed_runs(reloaded.switch_page("pages/runs.py").run()) == [run_id]
    reloaded.switch_page("pages/training.py").run().button(key="train_stop").click().run()
    assert RunStore(first_root).status(run_id).state is RunState.CANCELLED


@pytest.mark.parametrize("given", ["../../etc", "..", "0123456789abcdef\n", "0123456789ABCDEF", "0123456789abcde",
                                   "0123456789abcdef0", "/tmp/elsewhere", "0123456789abcdef/../../x", "%2e%2e"])
def test_a_workspace_id_that_is_not_ours_is_replaced_and_never_becomes_a_path(given, bars_data, runs_root, jobs):
    at = browser(page="pages/training.py", ws=given)
    with_data_and_model(at, bars_data).button(key="train_start").click().run()  # something is written
    run_id = at.session_state[state.CURRENT_RUN]
    assert WORKSPACE_ID.fullmatch(workspace(at)) and workspace(at) != given
    written = sorted(str(path.relative_to(runs_root.parent)) for path in runs_root.parent.rglob("*") if path.is_dir())
    assert written == ["runs", "runs/workspaces", f"runs/workspaces/{workspace(at)}",
                       f"runs/workspaces/{workspace(at)}/{run_id}"]


def test_on_the_shared_store_a_browser_has_a_key_for_its_runs_but_no_store_of_its_own(monkeypatch, runs_root,
                                                                                     bars_data, jobs):
    monkeypatch.setenv("CONVLAB_WORKSPACES", "shared")
    at = browser(page="pages/training.py")
    assert WORKSPACE_ID.fullmatch(workspace(at))
    with_data_and_model(at, bars_data).button(key="train_start").click().run()
    run_id = at.session_state[state.CURRENT_RUN]
    assert RunStore(runs_root).run_ids() == [run_id] and not (runs_root / "workspaces").exists()
    assert RunStore(runs_root).summary(run_id).made_by == workspace(at)
    captions = " ".join(c.value for c in at.switch_page("pages/runs.py").run().caption)
    assert "shared" in captions and str(runs_root) not in captions  # the mode is said; the server's path is not
