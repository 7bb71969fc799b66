"""The server's sweep driver and what the Sweeps page does: start, stop, resume a sweep; use or apply its best trial.

One `SweepDriver` per server process (`st.cache_resource`, like the job
manager it drives), created when the first session starts: it picks up the
sweeps a stopped server left running, and goes on with them. Its thread never
calls Streamlit: the page reads each sweep from the run store (`read_sweep`).
A sweep belongs to the browser that started it (its workspace key): only it
stops or resumes it; it goes on when that browser's tab closes, and its
trials take that browser's turns in the queue.
"""

from __future__ import annotations

import streamlit as st

from core.errors import ConvLabError
from core.runs.details import run_details
from core.runs.store import RunStore, default_root
from core.sweeps.driver import SweepDriver
from core.sweeps.results import SweepView, read_sweep
from core.sweeps.store import SweepStore, SweepSummary
from core.training.loop import check_trainable
from ui import runs, state
from ui.state import SweepsPage as KEYS
from ui.sweep_form import spec_from_widgets


@st.cache_resource(show_spinner=False)
def sweep_driver() -> SweepDriver:
    """The server's sweep driver (created once per server process, shared by every session)."""
    driver = SweepDriver(runs.job_manager())
    driver.adopt(RunStore(default_root()))
    return driver


def sweeps() -> SweepStore:
    """The sweeps of this session's run store (picked up first, if a stopped server left one running)."""
    store = runs.store()
    sweep_driver().adopt(store)
    return SweepStore(store)


def listed() -> list[SweepSummary]:
    return sweeps().list()


def view(sweep_id: str) -> SweepView:
    """The sweep now (the summaries of its trials' ended runs kept in the session: they no longer change)."""
    cache = st.session_state.setdefault(KEYS.ENDED_RUNS, {})
    return read_sweep(sweeps(), sweep_id, cache)


def mine(summary: SweepSummary | SweepView) -> bool:
    made_by = summary.made_by
    return not made_by or made_by == runs.workspace()


def start_sweep() -> None:
    """Start sweep's callback: the form's sweep, from the built model and the Training page's recipe."""
    st.session_state[KEYS.START_ERROR] = None
    dataset, built = state.dataset(), state.built()
    if dataset is None or built is None:
        st.session_state[KEYS.START_ERROR] = "Load a dataset and build a model first."
        return
    if dataset.ref is None:
        st.session_state[KEYS.START_ERROR] = "This dataset cannot be loaded again by a training process; reload it."
        return
    try:
        spec = spec_from_widgets(dataset, built.arch, state.training_config())
        params = check_trainable(built.arch, dataset.input_shape, dataset.num_classes, spec.training)
        sweep_id = sweep_driver().start(runs.store(), spec, run_details(dataset, params), made_by=runs.workspace())
    except (ConvLabError, OSError) as error:
        st.session_state[KEYS.START_ERROR] = str(error)
        return
    st.session_state[KEYS.PICK] = sweep_id
    st.session_state[KEYS.SAID] = ("success", f"Sweep {sweep_id} started: {spec.describe()}")


def stop(sweep_id: str, cancel: bool) -> None:
    """Stop's and Cancel's callback."""
    if sweep_driver().stop(sweep_id, cancel=cancel):
        st.session_state[KEYS.SAID] = ("info", "Cancelling: its queued trials are cancelled and its training ones "
                                       "stop now, keeping their weights." if cancel else
                                       "Stopping: no more trials; its queued ones are cancelled, the training ones "
                                       "finish.")
    else:
        st.session_state[KEYS.SAID] = ("warning", "This server does not run that sweep (it has ended, or another "
                                       "process drives it).")


def resume(sweep_id: str) -> None:
    """Resume's callback: an interrupted or stopped sweep goes on to its budget."""
    try:
        sweep_driver().resume(runs.store(), sweep_id)
    except ConvLabError as error:
        st.session_state[KEYS.SAID] = ("error", str(error))
        return
    st.session_state[KEYS.SAID] = ("success", "It goes on from where it was.")


def use_best(run_id: str) -> None:
    """Use this run's callback: the best trial becomes the session's current run, with its dataset."""
    problem = runs.use_run(run_id)
    st.session_state[KEYS.SAID] = ("error", problem) if problem else (
        "success", "The best trial is now the current run: open **Evaluation** or **Draw & classify**.")


def apply_best(run_id: str) -> None:
    """Apply its settings' callback: the best trial's model and recipe go into the sliders."""
    problem = runs.apply_run_settings(run_id)
    st.session_state[KEYS.SAID] = ("error", problem) if problem else (
        "success", "The sliders on **Architecture** and **Training** now hold the best trial's settings.")


def importances_of(current: SweepView) -> tuple[dict[str, float] | None, str]:
    """Each setting's importance over the completed trials (worked out again only when one more has completed), or
    why there is none yet."""
    from core.sweeps.study import importances

    complete = sum(trial.state == "finished" for trial in current.trials)
    cached = st.session_state.get(KEYS.IMPORTANCES)
    if cached is None or cached[:2] != (current.sweep_id, complete):
        try:
            found, why = importances(sweeps(), current.sweep_id, current.spec), ""
        except ConvLabError as error:
            found, why = None, str(error)
        cached = (current.sweep_id, complete, found, why)
        st.session_state[KEYS.IMPORTANCES] = cached
    return cached[2], cached[3]
