"""Faults: each one leaves a consistent run store and a page that says what happened.

Start and Stop pressed twice, tabs closed while their runs train or wait, a training process killed, the
server killed in the middle of a run and started again, damaged run folders. Pages run in AppTest (app.py,
as the server runs it); processes are real: worker processes, and a server process killed with SIGKILL.

The queue scenarios use a job manager whose worker processes never get ready: such a worker stands for
one still importing TensorFlow (10 to 40 s on a busy 2-core machine), the state every queued run is in
just before it trains. They need no training at all; only the scenarios about training processes train,
one process at a time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from streamlit.runtime import caching
from streamlit.testing.v1 import AppTest

import core.engine.jobs
import ui.runs
from core.engine.jobs import JobManager
from core.model.architecture import Architecture, ConvBlock, DenseLayer, layer_table
from core.runs.spec import RunSpec
from core.runs.status import RunState, RunStatus, process_start_ticks
from core.runs.store import EPOCHS, SPEC, STATUS, RunStore
from core.training.config import TrainingConfig
from tests.conftest import ROOT, training, wait_for
from ui import state
from ui.runs import WORKSPACE_PARAM

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny_cnn")
LONG = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=1, epochs=200)  # minutes: stopped or killed
MEDIUM = replace(LONG, batch_size=4, epochs=3)  # several seconds of training
APPTEST_SESSION = "test session id"  # the Streamlit session id every AppTest runs under (LocalScriptRunner)


# --- fixtures and helpers --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def run_store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


@pytest.fixture(scope="module")
def workers():
    """A server's job manager with real worker processes: one training at a time, no spare worker waiting
    (so that these tests never run two TensorFlow processes at once)."""
    jobs = JobManager(max_concurrent=1, keep_spare=False, orphan_grace_s=1.0)
    yield jobs
    jobs.shutdown()


@pytest.fixture()
def stalled(tmp_path):
    """A job manager whose worker processes never get ready (they never import anything)."""
    worker = tmp_path / "worker-that-never-gets-ready"
    worker.write_text("#!/bin/sh\nexec sleep 600\n")
    worker.chmod(0o755)
    jobs = JobManager(max_concurrent=1, keep_spare=False, orphan_grace_s=1.0, python=str(worker))
    yield jobs
    for run_id in jobs.running() + jobs.queued():
        jobs.stop(run_id)
    assert jobs.wait_idle(timeout=30)
    jobs.shutdown()
    wait_for(lambda: not [pid for pid in children(os.getpid()) if command_line(pid).startswith("sleep 600")],
             timeout=10, what="the stalled worker processes to be killed")


def serve(monkeypatch, jobs: JobManager) -> None:
    """Sessions started from now on use `jobs` as the server's job manager."""
    monkeypatch.setattr(ui.runs, "job_manager", lambda: jobs)



def session(dataset=None, config: TrainingConfig = LONG, link: str | None = None, current: str | None = None,
            page: str = "pages/training.py", same_browser_as: AppTest | None = None) -> AppTest:
    """A browser session on `page`: with data and a built model, opened on a link (?run=`link`), or
    showing `current` as its run already; a second tab of `same_browser_as`'s browser when given (its
    URL carries that browser's workspace key)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"
    if dataset is not None:
        at.session_state[state.DATASET] = dataset
        at.session_state[state.BUILT] = state.BuiltArchitecture(
            TINY, dataset.input_shape, dataset.num_classes, layer_table(TINY, dataset.input_shape, dataset.num_classes))
        at.session_state[state.TRAIN_CONFIG] = config
    if link is not None:
        at.query_params["run"] = link
    if same_browser_as is not None:
        at.query_params[WORKSPACE_PARAM] = same_browser_as.query_params[WORKSPACE_PARAM]
    if current is not None:
        at.session_state[state.CURRENT_RUN] = at.session_state[state.URL_RUN] = current
    at.run()
    assert not at.exception, at.exception
    return at if page == "pages/home.py" else at.switch_page(page).run()


def start(at: AppTest) -> str:
    at.button(key="train_start").click().run()
    assert not at.exception and not at.session_state[state.START_ERROR], at.session_state[state.START_ERROR]
    return at.session_state[state.CURRENT_RUN]


def owner(at: AppTest) -> str:
    return at.session_state[state.OWNER]


def close_tab(at: AppTest, jobs: JobManager) -> None:
    """Streamlit ends the session: it releases the session's lease (ui.runs._release is its on_release)."""
    ui.runs._release(ui.runs.SessionLease(owner(at), jobs))


def texts(elements) -> str:
    return " | ".join(str(element.value) for element in elements)



def alive(pid: int) -> bool:
    return process_start_ticks(pid) is not None  # a zombie counts as ended


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def assert_consistent(store: RunStore) -> dict[str, RunStatus]:
    """Every run readable and ended for good, with what its end promises; returns the statuses as written."""
    statuses = {}
    for run_id in store.run_ids():
        store.spec(run_id)
        status = store.raw_status(run_id)
        assert not status.state.is_active, f"run {run_id} is left {status.state.value}"
        assert status.ended is not None and status.message, status
        if status.state in (RunState.FINISHED, RunState.STOPPED):
            assert store.has_model(run_id) and store.test_metrics(run_id) is not None, status
        statuses[run_id] = status
    return statuses


# --- Start and Stop pressed twice ---------------------------------------------------------------------------


def test_start_pressed_twice_makes_one_run_and_the_second_start_says_why(bars_data, run_store, stalled, monkeypatch):
    serve(monkeypatch, stalled)
    tab = session(bars_data)
    run_id = start(tab)
    assert run_store.run_ids() == [run_id] and stalled.running() + stalled.queued() == [run_id]
    # (queued, or out of the queue while its training process gets ready)
    assert tab.button(key="train_start").disabled and re.search(r"\*\*(Queued, 1st in line|Starting)\.", texts(tab.info))

    # the second click of a double click, sent before the browser drew the button disabled: Streamlit drops it
    late = tab.button(key="train_start")
    late.proto.disabled = False
    late.click().run()
    assert not tab.exception and run_store.run_ids() == [run_id]

    # or it reaches Start's callback (the rerun that would have disabled the button was cut short by the
    # click itself): a page drawn with Start enabled, in a session whose run is by then active
    again = session(bars_data)
    again.session_state[state.CURRENT_RUN] = run_id
    again.button(key="train_start").click().run()
    assert not again.exception
    assert texts(again.error) == "A run is already going: stop it first (one training at a time)."
    assert run_store.run_ids() == [run_id] and stalled.running() + stalled.queued() == [run_id]

    tab.button(key="train_stop").click().run()
    assert run_store.raw_status(run_id).state is RunState.CANCELLED
    assert "Cancelled before it started." in texts(tab.warning) and not tab.button(key="train_start").disabled


def test_cancel_pressed_twice_cancels_a_queued_run_once(bars_data, run_store, stalled, monkeypatch):
    serve(monkeypatch, stalled)
    first_tab = session(bars_data)
    first = start(first_tab)  # holds the only training slot (its worker is still starting)
    tab = session(bars_data)
    queued = start(tab)
    assert stalled.running() == [first] and stalled.position(queued) == 1
    assert "Queued, 1st in line" in texts(tab.info)

    for run_id, this_tab in ((queued, tab), (first, first_tab)):
        other_tab = session(link=run_id, same_browser_as=this_tab)  # a second tab, its Cancel button enabled too
        assert other_tab.button(key="train_stop").label == "Cancel"
        this_tab.button(key="train_stop").click().run()
        cancelled = run_store.raw_status(run_id)
        other_tab.button(key="train_stop").click().run()  # pressed again, on a page drawn before the first
        assert run_store.raw_status(run_id) == cancelled  # written once
        assert (cancelled.state, cancelled.message) == (RunState.CANCELLED, "Cancelled before it started.")
        for page in (this_tab, other_tab):
            assert not page.exception and not page.error, [e.value for e in page.error]
            assert "Cancelled before it started." in texts(page.warning)
    assert stalled.wait_idle(timeout=30)  # the cancelled run's worker, still starting, is not waited for
    assert_consistent(run_store)


def test_stop_pressed_twice_while_training_and_once_after_the_end(bars_data, run_store, workers, monkeypatch):
    serve(monkeypatch, workers)
    tab = session(bars_data, LONG)
    run_id = start(tab)
    wait_for(lambda: training(run_store, run_id), what="the run to train")
    second_tab, third_tab = (session(link=run_id, same_browser_as=tab) for _ in range(2))  # Stop enabled

    tab.button(key="train_stop").click().run()
    second_tab.button(key="train_stop").click().run()
    assert workers.wait_idle(timeout=120)
    stopped = run_store.raw_status(run_id)
    assert stopped.state is RunState.STOPPED and re.match(r"Stopped by the user (in|at the end of) epoch \d+/200", stopped.message)
    third_tab.button(key="train_stop").click().run()  # Stop on a page drawn before the run ended
    assert run_store.raw_status(run_id) == stopped  # nothing written again

    for page in (tab, second_tab, third_tab):
        page.run()
        assert not page.exception and not page.error
        assert stopped.message in texts(page.warning)
    assert not tab.button(key="train_start").disabled
    assert_consistent(run_store)


# --- tabs closed -----------------------------------------------------------------------------------------------


def test_closed_tabs_give_up_their_queued_runs_after_the_grace_period_unless_they_come_back(
        bars_data, run_store, stalled, monkeypatch):
    serve(monkeypatch, stalled)
    start(session(bars_data))  # training (its worker starting): the rest waits in the queue
    tabs = {name: session(bars_data) for name in ("reconnects", "reloads", "reloaded early", "closed")}
    runs = {name: start(at) for name, at in tabs.items()}
    assert [stalled.position(runs[name]) for name in tabs] == [1, 2, 3, 4]
    assert "Queued, 4th in line" in texts(tabs["closed"].run().info)

    # every tab's connection drops: Streamlit releases every session's resources, the lease with them
    stalled.orphan_grace_s = 600.0  # while the tabs come back (AppTest takes seconds per session here)
    caching.clear_session_resource_cache(APPTEST_SESSION)
    tabs["reconnects"].run()  # the same session comes back (its network was down a moment)
    session(link=runs["reloads"])  # a reload: a new session on the link, after the old one was released
    session(link=runs["reloaded early"])  # a reload whose new session comes first ...
    close_tab(tabs["reloaded early"], stalled)  # ... and the old session's end is noticed after

    stalled.orphan_grace_s = 0.5
    wait_for(lambda: run_store.raw_status(runs["closed"]).state is RunState.CANCELLED, timeout=30,
             what="the closed tab's queued run to be cancelled")
    # the dispatcher cancels every orphan past the grace period in one sweep: the others would have gone
    # with the closed tab's run had they not been claimed again
    assert stalled.queued() == [runs["reconnects"], runs["reloads"], runs["reloaded early"]]
    assert run_store.raw_status(runs["closed"]).message == "Cancelled: its browser session ended before it started."
    assert "Queued, 1st in line" in texts(tabs["reconnects"].run().info)
    reopened = session(link=runs["closed"])
    assert "Cancelled: its browser session ended before it started." in texts(reopened.warning)


def test_a_killed_worker_interrupts_its_run_visibly_and_the_next_run_trains_even_with_its_tab_closed(
        bars_data, run_store, workers, monkeypatch):
    serve(monkeypatch, workers)
    victim_tab = session(bars_data, LONG)
    victim = start(victim_tab)
    next_tab = session(bars_data, MEDIUM)
    following = start(next_tab)
    assert "Queued, 1st in line" in texts(next_tab.info)
    wait_for(lambda: training(run_store, victim), what="the first run to train")

    worker = run_store.raw_status(victim).owner.pid
    os.kill(worker, signal.SIGKILL)
    wait_for(lambda: run_store.raw_status(victim).state is RunState.INTERRUPTED, timeout=60,
             what="the run to be interrupted")
    victim_tab.run()
    assert not victim_tab.exception
    assert re.search(r"The training process ended unexpectedly \(killed by signal SIGKILL\) in epoch \d+/200; "
                     "Resume goes on from its last checkpoint.", texts(victim_tab.warning))
    assert not victim_tab.button(key="train_start").disabled

    wait_for(lambda: training(run_store, following), what="the next run to train")
    close_tab(next_tab, workers)  # its tab closes while it trains
    assert run_store.status(following).state.is_training, "it ended before its tab closed: train it longer"
    assert workers.wait_idle(timeout=180)
    assert run_store.raw_status(following).state is RunState.FINISHED
    assert len(run_store.epochs(following)) == MEDIUM.epochs
    reopened = session(link=following)  # a new session on its link
    assert "Training finished" in texts(reopened.success)
    assert not alive(worker)
    assert_consistent(run_store)


# --- the server killed and started again --------------------------------------------------------------------

SERVER = """
import json, sys, threading
from core.engine.jobs import JobManager
from core.runs.spec import RunSpec
from core.runs.store import RunStore
store = RunStore(sys.argv[1])
jobs = JobManager(max_concurrent=1, keep_spare=False)
ids = [jobs.submit(store, RunSpec.from_dict(spec), owner="a browser") for spec in json.loads(sys.argv[2])]
print(json.dumps(ids), flush=True)
threading.Event().wait()
"""


@pytest.mark.parametrize("killed", ["server", "server and worker"])
def test_a_killed_server_leaves_its_runs_interrupted_and_no_process_behind(
        killed, bars_data, run_store, monkeypatch, tmp_path):
    specs = [RunSpec(bars_data.ref, TINY, LONG, label="training").to_dict(),
             RunSpec(bars_data.ref, TINY, MEDIUM, label="queued").to_dict()]
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(run_store.root), json.dumps(specs)], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        running, queued = json.loads(server.stdout.readline())
        wait_for(lambda: training(run_store, running), what="the run to train")
        processes = children(server.pid)
        worker = run_store.raw_status(running).owner.pid
        assert worker in processes
        server.send_signal(signal.SIGKILL)
        if killed == "server and worker":
            os.kill(worker, signal.SIGKILL)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    wait_for(lambda: not any(alive(pid) for pid in processes), timeout=120, what="the server's workers to end")

    left = run_store.raw_status(running)
    if killed == "server":  # the worker saw its stdin close: it stopped, kept the weights and said why
        assert left.state is RunState.INTERRUPTED and run_store.has_model(running)
        message = r"The server stopped in epoch \d+/200, after batch \d+/\d+; Resume goes on from there\."
    else:  # nobody was left to write its end: its dead owner says it
        assert left.state is RunState.RUNNING
        message = (r"The training process ended without finishing, in epoch \d+/200 \(the server or the machine "
                   r"stopped, or the process was killed\)\.")
    assert re.fullmatch(message, run_store.status(running).message)
    assert run_store.raw_status(queued).state is RunState.QUEUED
    assert run_store.status(queued).message == "The server stopped before this run started."

    # the server starts again: its job manager writes what the old one left as interrupted
    monkeypatch.setattr(core.engine.jobs, "JobManager", lambda: JobManager(max_concurrent=1, keep_spare=False))
    restarted = ui.runs.job_manager.__wrapped__()  # what st.cache_resource calls once per server process
    try:
        statuses = assert_consistent(run_store)
        assert {run_id: status.state for run_id, status in statuses.items()} == {
            running: RunState.INTERRUPTED, queued: RunState.INTERRUPTED}
        assert re.fullmatch(message, statuses[running].message)
        serve(monkeypatch, restarted)
        for run_id in (running, queued):  # a page showing the run (opened on its link) says so
            page = session(link=run_id)
            assert not page.exception and statuses[run_id].message in texts(page.warning)
    finally:
        restarted.shutdown()


# --- damaged run folders --------------------------------------------------------------------------------------

DAMAGES = {  # what is broken: (how, the state the run is listed in)
    "half-written spec": (lambda f: (f / SPEC).write_text('{"schema": 1, "spec": {"dataset": {"ki'), "damaged"),
    "spec of the wrong shape": (lambda f: (f / SPEC).write_text("[]"), "damaged"),
    "garbage status": (lambda f: (f / STATUS).write_bytes(b"\x00\xff{garbage"), "interrupted"),
    "status of the wrong shape": (lambda f: (f / STATUS).write_text("[1, 2]"), "interrupted"),
    "unknown state": (lambda f: (f / STATUS).write_text('{"state": "exploded"}'), "interrupted"),
    "progress that is not numbers": (
        lambda f: (f / STATUS).write_text('{"state": "running", "progress": {"epoch": "seven"}}'), "interrupted"),
    "no status": (lambda f: (f / STATUS).unlink(), "interrupted"),
    "garbage metrics": (lambda f: (f / EPOCHS).write_text(
        "epoch,step,loss,accuracy,val_loss,val_accuracy,epoch_s,elapsed_s,partial\n1,7,x,y,z,0.5,1,1,\n2,14,0.5"),
        "finished"),
    "metrics that are a folder": (lambda f: (f / EPOCHS).mkdir(), "finished"),
}


def test_damaged_run_folders_break_neither_the_runs_page_nor_the_sidebar(bars_data, run_store):
    runs = {}
    for name, (damage, _) in DAMAGES.items():
        runs[name] = run_store.create(RunSpec(bars_data.ref, TINY, MEDIUM, label=name), state=RunState.FINISHED,
                                      message="Training finished.")
        damage(run_store.path(runs[name]))

    at = session(page="pages/runs.py")
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert dict(zip(table["run"], table["state"])) == {runs[name]: listed for name, (_, listed) in DAMAGES.items()}
    for name, run_id in runs.items():
        at.session_state["runs_table"] = {"selection": {"rows": [list(table["run"]).index(run_id)], "columns": [],
                                                        "cells": []}}
        at.run()
        assert not at.exception and not at.error, name
        assert any(run_id in caption.value for caption in at.caption), name

        for page in ("pages/home.py", "pages/training.py"):  # the current run, damaged since (the Training
            # page draws the sidebar's status itself, every other page through app.py)
            shown = session(current=run_id, page=page)
            assert not shown.exception and not shown.error, (name, page)
            assert "Pipeline" in texts(shown.sidebar.markdown), (name, page)

        linked = session(link=run_id)
        assert not linked.exception and not linked.error, name
        if DAMAGES[name][1] == "damaged":
            assert f"Run {run_id} cannot be opened: run {run_id}: spec.json" in texts(linked.toast), name


def test_a_run_whose_process_went_away_while_the_server_takes_it_back_is_still_followed(
        bars_data, run_store, stalled, monkeypatch):
    """A cluster node dies: its run's folder says 'interrupted' (its process is gone) until the server has
    requeued it to resume elsewhere. Meanwhile the page says it is being taken back and keeps polling."""
    serve(monkeypatch, stalled)
    tab = session(bars_data)
    run_id = start(tab)  # the server holds it (its worker still starting)
    gone = subprocess.Popen(["true"])
    gone.wait()
    status = run_store.raw_status(run_id)
    run_store.write_status(run_id, replace(status, state=RunState.RUNNING,
                                           owner=status.owner.__class__(gone.pid, status.owner.host, 1)))
    assert run_store.status(run_id).state is RunState.INTERRUPTED and stalled.is_running(run_id)
    tab.run()
    assert not tab.exception
    assert "Taking it back." in texts(tab.info)
    assert tab.session_state[state.RUN_PHASE] is state.Phase.TRAINING  # (its poller goes on)
