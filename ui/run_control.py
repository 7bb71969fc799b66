"""Controlling a run from the dashboard: pause, resume, change its course while it trains, continue it.

Each action goes to the server's job manager (`core.engine.jobs`) and says
what it did (or why not) under the buttons, on the next rerun. Only the
browser that made a run (or anyone, for a CLI run) may pause, resume or
change it; anyone may continue a run into a new run of their own.
"""

from __future__ import annotations

import streamlit as st

from core.errors import ConvLabError
from core.runs.lineage import ancestry
from core.runs.status import RunState
from core.runs.store import RunSnapshot, RunSummary
from core.training.controls import ChangeKind
from ui import runs, state
from ui.state import RunControl
from ui.widgets import code, md

NOT_YOURS = "it was made in another browser (only its maker may pause, resume or change it)"


def refused(run_id: str) -> str:
    """Why this browser may not pause, resume or change `run_id` ("" when it may)."""
    try:
        made_by = str(runs.store().spec_file(run_id).get("made_by") or "")
    except ConvLabError as error:
        return str(error)
    return "" if not made_by or made_by == runs.workspace() else NOT_YOURS


def _say(kind: str, text: str) -> None:
    st.session_state[state.CONTROL_SAID] = (kind, text)


def said() -> None:
    """What the last action said, once."""
    message = st.session_state[state.CONTROL_SAID]
    if message:
        kind, text = message
        (st.success if kind == "ok" else st.error)(md(text), icon=":material/check:" if kind == "ok" else
                                                   ":material/error:")
        st.session_state[state.CONTROL_SAID] = None


# --- the actions (button callbacks) --------------------------------------------------------------------


def stop(run_id: str) -> None:
    """Stop (it keeps its weights and is scored) or, while queued, cancel."""
    why = refused(run_id)
    if why:
        _say("error", f"Not stopped: {why}.")
    else:
        runs.job_manager().stop(run_id)


def pause(run_id: str) -> None:
    """Pause: the run checkpoints at its next chunk of batches and frees its training slot."""
    why = refused(run_id)
    if why:
        _say("error", f"Not paused: {why}.")
    elif not runs.job_manager().pause(run_id):
        _say("error", "Not paused: it is not training (yet, or any more).")


def resume(run_id: str) -> None:
    """Resume: the run goes back in the queue and trains on from its last checkpoint."""
    why = refused(run_id)
    if why:
        _say("error", f"Not resumed: {why}.")
        return
    try:
        runs.job_manager().resume(runs.store(), run_id, owner=state.owner())
    except ConvLabError as error:
        _say("error", f"Not resumed: {error}")
        return
    runs.set_current_run(run_id)
    st.session_state[state.RUN_PHASE] = runs.queued_phase(run_id)


def change(run_id: str, kind: ChangeKind, value: float | int | None) -> None:
    """A change of course, made at the run's next chunk of batches and recorded in it."""
    why = refused(run_id)
    if why:
        _say("error", f"Not changed: {why}.")
        return
    try:
        sent = runs.job_manager().change(run_id, kind, value)
    except ConvLabError as error:
        _say("error", f"Not changed: {error}")
        return
    if not sent:
        _say("error", "Not changed: it is not training (yet, or any more).")
    elif kind is ChangeKind.LEARNING_RATE:
        _say("ok", f"The learning rate becomes {value:g} at the next chunk of batches (a marker on the curves).")
    else:
        _say("ok", f"It now trains {value} epoch{'s' if value != 1 else ''} in all (a marker on the curves).")


def continue_(run_id: str, page: str) -> None:
    """Continue: a new run of this browser's, training `run_id`'s final state further; it becomes current."""
    keys = {name: getattr(RunControl, name).format(page) for name in ("MORE_EPOCHS", "CONTINUE_RATE")}
    try:
        child = runs.job_manager().continue_run(runs.store(), run_id, int(st.session_state[keys["MORE_EPOCHS"]]),
                                                float(st.session_state[keys["CONTINUE_RATE"]]),
                                                owner=state.owner(), made_by=runs.workspace())
    except ConvLabError as error:
        _say("error", f"Not continued: {error}")
        return
    runs.set_current_run(child)
    st.session_state[state.RUN_PHASE] = runs.queued_phase(child)
    _say("ok", f"Run {child} continues it: it is now the current run (watch it on **Training**).")


# --- what a page shows ----------------------------------------------------------------------------------


def change_course(current: RunSnapshot, page: str) -> None:
    """While the run trains: set a new learning rate or number of epochs, or finish after this epoch."""
    if not current.state.is_training or current.spec.training is None:
        return
    why = refused(current.run_id)
    p = current.status.progress
    keys = {name: getattr(RunControl, name).format(page) for name in
            ("LEARNING_RATE", "SET_LEARNING_RATE", "EPOCHS", "SET_EPOCHS", "FINISH")}
    with st.expander("Change course while it trains", icon=":material/alt_route:"):
        if why:
            st.caption(f"Not here: {why}.")
            return
        st.caption("Each change is made at the next chunk of batches, drawn on the curves as a marker and kept in "
                   "the run, so that `python -m core --from-run` repeats it at the same batch. A new learning rate "
                   "scales the schedule from there on; new epochs stretch or shrink what is left of it.")
        rate, epochs, finish = st.columns(3)
        keys_rate = keys["LEARNING_RATE"]
        if keys_rate not in st.session_state:
            st.session_state[keys_rate] = float(current.spec.training.learning_rate)
        value = rate.number_input("Learning rate", min_value=1e-6, max_value=10.0, format="%.5f", step=0.001,
                                  key=keys_rate)
        rate.button("Set the learning rate", key=keys["SET_LEARNING_RATE"], on_click=change,
                    args=(current.run_id, ChangeKind.LEARNING_RATE, float(value)), icon=":material/tune:")
        if keys["EPOCHS"] not in st.session_state:
            st.session_state[keys["EPOCHS"]] = int(p.epochs or current.spec.training.epochs)
        count = epochs.number_input("Epochs in all", min_value=max(1, p.epoch), max_value=500, step=1,
                                    key=keys["EPOCHS"])
        epochs.button("Set the epochs", key=keys["SET_EPOCHS"], on_click=change,
                      args=(current.run_id, ChangeKind.EPOCHS, int(count)), icon=":material/event_repeat:")
        finish.button(f"Finish after epoch {max(1, p.epoch)}", key=keys["FINISH"], on_click=change,
                      args=(current.run_id, ChangeKind.EPOCHS, max(1, p.epoch)), icon=":material/sports_score:",
                      help="Ends the run (finished, and scored on the test set) once the epoch under way ends.")


def resume_or_continue(current_id: str, state_now: RunState, page: str, resume_here: bool = True) -> None:
    """A paused or interrupted run: Resume (unless the page has its own button). A finished or stopped one with
    its final state: Continue N epochs."""
    keys = {name: getattr(RunControl, name).format(page) for name in
            ("RESUME", "MORE_EPOCHS", "CONTINUE_RATE", "CONTINUE")}
    store = runs.store()
    if state_now.is_resumable:
        if not resume_here:
            return
        why = refused(current_id)
        where = "from its last checkpoint" if store.has_checkpoint(current_id, "last") else \
            "from its start (it had no checkpoint yet)"
        st.button("Resume", key=keys["RESUME"], type="primary", icon=":material/play_arrow:", on_click=resume,
                  args=(current_id,), disabled=bool(why),
                  help=f"Not now: {why}." if why else f"Back in the queue; it trains on {where}, on the same "
                                                       "curves.")
    elif state_now.is_continuable and store.has_checkpoint(current_id, "last"):
        spec = store.spec(current_id)
        if spec.training is None:
            return
        with st.expander("Continue it for more epochs", icon=":material/fast_forward:"):
            st.caption("A new run of yours, linked to this one: it starts from this run's final weights and "
                       "optimizer state, its curves joined to this run's, with its own learning-rate schedule over "
                       "the epochs it adds.")
            more, rate, go = st.columns([1, 1, 1])
            if keys["CONTINUE_RATE"] not in st.session_state:
                st.session_state[keys["CONTINUE_RATE"]] = float(spec.training.learning_rate)
            more.number_input("More epochs", min_value=1, max_value=500, value=5, step=1, key=keys["MORE_EPOCHS"])
            rate.number_input("Learning rate", min_value=1e-6, max_value=10.0, format="%.5f", step=0.001,
                              key=keys["CONTINUE_RATE"])
            go.button("Continue", key=keys["CONTINUE"], icon=":material/fast_forward:", on_click=continue_,
                      args=(current_id, page))


def lineage(run_id: str, summaries: list[RunSummary] | None = None) -> None:
    """Which runs this one continues, and (among `summaries`) which continue it."""
    parents = ancestry(runs.store(), run_id)
    kids = [summary.run_id for summary in summaries or () if summary.parent == run_id]
    parts = []
    if parents:
        parts.append("continues " + " ← ".join(code(parent) for parent in parents))
    if kids:
        parts.append("continued by " + ", ".join(code(kid) for kid in kids))
    if parts:
        st.caption(f"**Lineage:** {code(run_id)} " + "; ".join(parts) + ".")
