"""A server a class can share (AppTest): other people's runs respected, nothing from a URL or a file rendered as
Markdown, uploads checked before they are kept and held to a quota, datasets one copy per server."""

from __future__ import annotations

import gc
import io
import re
import weakref

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ui.runs
from core.data.dataset import make_dataset
from core.engine.execute import execute
from core.engine.jobs import JobManager
from core.errors import DataError
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TrainingConfig
from tests.conftest import ROOT, bars_arrays, session_dataset, wait_for
from ui import state
from ui.widgets import code, md

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny_cnn")
ONE_EPOCH = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=1)

# what an attacker puts where a page echoes it: a link, an image the browser would fetch, HTML, LaTeX, an e-mail
PAYLOADS = [
    "[click me](https://evil.example/steal)",
    "![tracker](https://evil.example/pixel.png)",
    "<img src=https://evil.example/x.png onerror=alert(1)>",
    "$\\href{https://evil.example}{x}$",
    "www.evil.example",
    "mail@evil.example",
]
ACTIVE = re.compile(r"(?<!\\)(\]\(|!\[|<img|<script|\$\\href|https?(?<!\\)://|(?<!\\)www\.|(?<!\\)@evil)")


def inert(text: str) -> bool:
    """No link, image, HTML, LaTeX or bare address left active (each escaped with a backslash)."""
    return ACTIVE.search(text) is None


def everything_shown(at: AppTest) -> list[str]:
    """The Markdown of every element that renders it: messages, captions, toasts, titles, markdown, metric labels."""
    shown = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "toast", "title", "header",
                 "subheader"):
        shown += [element.value for element in getattr(at, kind)]
    shown += [metric.label for metric in at.metric]
    return shown


@pytest.mark.parametrize("payload", PAYLOADS)
def test_md_and_code_make_every_payload_inert(payload):
    assert inert(md(payload)), md(payload)
    assert md("plain words, a file.npz and x_train") == "plain words, a file.npz and x_train"  # readable as it was
    fenced = code("a `tick` and " + payload)
    assert fenced.startswith("``") and fenced.endswith("``") and "```" not in fenced


@pytest.fixture()
def store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("CONVLAB_WORKSPACES", "shared")
    return RunStore(tmp_path / "runs")


@pytest.fixture()
def jobs(tmp_path, monkeypatch):
    """The server's job manager, its worker never ready: nothing trains (no TensorFlow)."""
    worker = tmp_path / "worker-that-never-gets-ready"
    worker.write_text("#!/bin/sh\nexec sleep 600\n")
    worker.chmod(0o755)
    manager = JobManager(max_concurrent=1, keep_spare=False, python=str(worker))
    monkeypatch.setattr(ui.runs, "job_manager", lambda: manager)
    yield manager
    for run_id in manager.running() + manager.queued():
        manager.stop(run_id)
    manager.wait_idle(timeout=30)
    manager.shutdown()


def browser(page: str = "pages/runs.py", **query: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at.switch_page(page).run()


def select(at: AppTest, row: int = 0) -> AppTest:
    at.session_state["runs_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


@pytest.fixture()
def finished_run(store, bars_data) -> str:
    """A finished run made by the browser with the key 00000000000000aa."""
    run_id = store.create(RunSpec(bars_data.ref, TINY, ONE_EPOCH, label="alice's run"), {"dataset_name": "bars"},
                          made_by="00000000000000aa")
    assert execute(store, run_id) is RunState.FINISHED
    return run_id


def test_another_browsers_run_can_be_used_but_not_relabelled_or_deleted(store, finished_run, jobs):
    bob = browser(ws="00000000000000bb")
    assert list(bob.dataframe[0].value["run"]) == [] if bob.dataframe else True  # "mine": nothing yet
    bob.segmented_control(key="runs_whose").set_value("everyone's").run()
    assert list(bob.dataframe[0].value["run"]) == [finished_run]
    select(bob)
    assert bob.text_input(key=f"runs_label_{finished_run}").disabled
    assert bob.button(key="runs_delete").disabled
    assert any("made in another browser" in c.value for c in bob.caption)
    bob.button(key="runs_use").click().run()
    assert bob.session_state[state.CURRENT_RUN] == finished_run  # using it is fine
    assert store.exists(finished_run)


def test_a_run_another_tab_shows_cannot_be_deleted_by_its_maker(store, finished_run, jobs):
    watcher = browser(page="pages/evaluation.py", ws="00000000000000cc", run=finished_run)
    assert watcher.session_state[state.CURRENT_RUN] == finished_run
    alice = select(browser(ws="00000000000000aa"))
    assert alice.button(key="runs_delete").disabled
    assert any("another browser tab shows it" in c.value for c in alice.caption)
    watcher.switch_page("pages/runs.py").run()  # the watcher moves on to another run: none here
    watcher.session_state[state.CURRENT_RUN] = None
    ui.runs.job_manager().claim(None, watcher.session_state[state.OWNER])
    alice = select(alice.run())
    assert not alice.button(key="runs_delete").disabled
    alice.button(key="runs_delete").click().run()
    alice.button(key="runs_delete_yes").click().run()
    assert not store.exists(finished_run)


def test_a_run_deleted_on_disk_is_said_plainly_on_every_page_and_the_pages_fall_back(store, finished_run, jobs):
    at = browser(page="pages/training.py", run=finished_run)
    assert at.session_state[state.CURRENT_RUN] == finished_run
    store.delete(finished_run)  # by hand, under the page
    for page in ("pages/training.py", "pages/evaluation.py", "pages/draw.py", "pages/inside.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert any(f"Run `{finished_run}` no longer exists" in w.value for w in at.warning), page
        assert not any("status.json" in text for text in everything_shown(at)), page
    assert at.session_state[state.CURRENT_RUN] is None


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_crafted_run_in_the_url_is_shown_inert(payload, store, jobs):
    at = browser(page="pages/training.py", run=payload)
    assert at.toast and all(inert(text) for text in everything_shown(at)), everything_shown(at)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_crafted_label_file_name_and_class_name_are_shown_inert(payload, store, bars_data, jobs):
    x_train, y_train, x_test, y_test = bars_arrays(n_train=40, n_test=12)
    data = make_dataset(f"{payload}.npz", x_train, y_train, x_test, y_test, source=f"Uploaded file {payload}.",
                        origin=payload, class_names=(payload, "b", "c", "d"), ref=bars_data.ref)
    run_id = store.create(RunSpec(bars_data.ref, TINY, ONE_EPOCH, label=payload), {"dataset_name": payload},
                          made_by="00000000000000aa")
    assert execute(store, run_id) is RunState.FINISHED
    at = browser(ws="00000000000000aa")
    at.session_state[state.DATASET] = data
    select(at.run())
    shown = everything_shown(at)
    assert any(payload.replace("\\", "")[:5] in text.replace("\\", "") for text in shown)  # it is shown, as text
    assert all(inert(text) for text in shown), shown
    for page in ("pages/data.py", "pages/training.py", "pages/evaluation.py"):
        at.switch_page(page).run()
        assert all(inert(text) for text in everything_shown(at)), (page, everything_shown(at))


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_refused_upload_is_not_kept_and_an_upload_past_the_quota_is_refused(store, jobs, monkeypatch):
    x = np.zeros((20, 8, 8), np.uint8)
    stray = npz_bytes(x_train=x, y_train=np.r_[np.arange(19) % 10, 999], x_test=x, y_test=np.arange(20) % 10)
    at = browser(page="pages/data.py")
    at.selectbox(key=state.DATASET_CHOICE).set_value(state.CHOICE_NPZ).run()
    at.file_uploader(key=state.DataPage.upload_key("npz", at.session_state)).upload("stray.npz", stray, "application/octet-stream").run()
    errors = " ".join(e.value for e in at.error)
    assert "classes 10..998 have no training image" in errors and "label 999 appears once" in errors
    assert not (store.root / "datasets").exists()  # refused: nothing kept
    assert session_dataset(at).name == "digits-8x8"  # the previous dataset stays

    good = npz_bytes(x_train=x, y_train=np.arange(20) % 10, x_test=x, y_test=np.arange(20) % 10)
    monkeypatch.setenv("CONVLAB_UPLOAD_QUOTA_MB", "1")
    big = npz_bytes(x_train=np.random.default_rng(0).integers(0, 255, (2000, 28, 28), dtype=np.uint8),
                    y_train=np.arange(2000) % 10, x_test=x, y_test=np.arange(20) % 10)
    at.file_uploader(key=state.DataPage.upload_key("npz", at.session_state)).upload("big.npz", big, "application/octet-stream").run()
    assert "would pass their quota" in " ".join(e.value for e in at.error)
    assert not (store.root / "datasets").exists()
    at.file_uploader(key=state.DataPage.upload_key("npz", at.session_state)).upload("good.npz", good, "application/octet-stream").run()
    assert session_dataset(at).name == "good.npz" and len(list((store.root / "datasets").glob("*.npz"))) == 1


def test_labels_must_be_0_to_k_minus_1_with_every_class_present():
    x = np.zeros((6, 4, 4), np.uint8)
    with pytest.raises(DataError, match=r"^gap\.npz: 'y_train' has labels up to 3, so 4 classes, but class 1 has no "
                                        r"training image \(label 3 appears twice\)\."):
        make_dataset("gap", x, np.array([0, 0, 2, 2, 3, 3]), x, np.array([0, 2, 3, 0, 2, 3]), source="s",
                     origin="gap.npz")


def _a_session_holding_pixels():
    from streamlit.runtime.state import SafeSessionState, SessionState

    kept_by_streamlit = SafeSessionState(SessionState(), lambda: None)
    pixels = np.zeros((1000, 28, 28), np.uint8)
    kept_by_streamlit[state.WORKSPACE] = "0123456789abcdef"
    kept_by_streamlit["some_dataset"] = {"x_train": pixels}
    return kept_by_streamlit, weakref.ref(pixels)


def test_a_session_that_ends_lets_its_dataset_go_though_streamlit_keeps_its_state(jobs, monkeypatch):
    """Streamlit keeps a closed session's state object until another session disconnects: once the session
    has not come back for FORGET_AFTER_S, its state is emptied and the arrays it referred to are freed."""
    monkeypatch.setattr(ui.runs, "FORGET_AFTER_S", 0.2)
    kept_by_streamlit, pixels = _a_session_holding_pixels()
    ui.runs._release(ui.runs.SessionLease("0123456789abcdef", jobs, kept_by_streamlit, "session-1"))
    assert "some_dataset" in kept_by_streamlit  # (a connection that drops for a moment loses nothing)
    wait_for(lambda: gc.collect() is not None and pixels() is None, timeout=30, what="the pixels to be freed")
    assert "some_dataset" not in kept_by_streamlit


def test_a_session_whose_connection_comes_back_keeps_its_state(jobs, monkeypatch):
    monkeypatch.setattr(ui.runs, "FORGET_AFTER_S", 0.2)
    kept_by_streamlit, pixels = _a_session_holding_pixels()
    ui.runs._release(ui.runs.SessionLease("0123456789abcdef", jobs, kept_by_streamlit, "session-2"))
    ui.runs._came_back("session-2")
    ui.runs._forget("session-2", kept_by_streamlit)  # the timer's call, had it not been cancelled in time
    assert kept_by_streamlit["some_dataset"]["x_train"] is pixels()
