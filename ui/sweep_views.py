"""The Sweeps page's view of one sweep: its trials live (a table, each one's curve), then settings against the
metric, what mattered, the best trial to use or apply, and every trial as CSV.

`sweep_view` is a fragment: while the sweep runs it polls every POLL_SECONDS,
reading the sweep from the run store, and reruns the page once when it ends.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core.figures.sweeps import importance_bars, parallel_coordinates, trial_curves
from core.runs.status import RunState
from core.sweeps.results import SweepView
from core.sweeps.spec import METRIC_NAMES
from core.sweeps.store import SweepSummary
from ui import runs, state, sweeps
from ui.errors import guarded
from ui.state import SweepsPage as KEYS
from ui.widgets import code, md

POLL_SECONDS = 2.0  # a running sweep's view is read again this often
ICONS = {"success": ":material/check_circle:", "info": ":material/info:", "warning": ":material/warning:",
         "error": ":material/error:"}


def pick(summaries: list[SweepSummary]) -> str:
    """The sweep to show: a select box of every sweep, newest first (a sweep just started is picked)."""
    ids = [summary.sweep_id for summary in summaries]
    if st.session_state.get(KEYS.PICK) not in ids:
        own = [summary.sweep_id for summary in summaries if summary.made_by and sweeps.mine(summary)]
        st.session_state[KEYS.PICK] = (own or ids)[0]

    labels = {}  # (words that never change: a select box keeps its choice by its words)
    for summary in summaries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(summary.created)) if summary.created else "?"
        labels[summary.sweep_id] = (f"{summary.label or 'sweep'} · {when} · {summary.sweep_id}"
                                    + ("" if sweeps.mine(summary) else " · another browser's"))
    return st.selectbox("Sweep", ids, key=KEYS.PICK, format_func=labels.__getitem__)


def said() -> None:
    """What the last button said (once)."""
    message = st.session_state.pop(KEYS.SAID, None)
    if message:
        kind, text = message
        getattr(st, kind)(md(text) if kind == "error" else text, icon=ICONS[kind])


@guarded
def sweep_view(sweep_id: str) -> None:
    """One sweep, live while it runs."""
    current = sweeps.view(sweep_id)
    header(current)
    if current.trials:
        trials_table(current)
        st.plotly_chart(trial_curves(current), key=KEYS.CURVES)
    figures(current)
    best_trial(current)
    if current.trials:
        st.download_button("All trials (.csv)", data=current.csv(), file_name=f"{sweep_id}-trials.csv",
                           mime="text/csv", icon=":material/download:", key=KEYS.CSV)
    rerun_once_it_ends(current)


def header(current: SweepView) -> None:
    status, spec = current.status, current.spec
    st.caption(f"`{current.sweep_id}` · {md(spec.describe())}")
    now = status.state
    if now.is_active:
        words = "Stopping" if now is RunState.STOPPING else "Running"
        st.info(f"**{words}:** {md(current.progress())}", icon=":material/autorenew:")
    elif now is RunState.FINISHED:
        st.success(md(status.message), icon=":material/check_circle:")
    elif now is RunState.FAILED:
        st.error(md(status.message), icon=":material/error:")
    else:
        st.warning(md(status.message), icon=":material/stop_circle:")
    said()
    if not sweeps.mine(current):
        st.caption("Started in another browser: only its maker can stop or resume it.")
        return
    driven = sweeps.sweep_driver().is_driving(current.sweep_id)
    if now.is_active and not driven:
        st.caption("Another process drives it (`python -m core sweep`): stop it there, with Ctrl-C.")
    stop, cancel, resume, _ = st.columns([1, 1, 1, 2])
    stop.button("Stop", icon=":material/stop:", key=KEYS.STOP, disabled=not driven, on_click=sweeps.stop,
                args=(current.sweep_id, False), width="stretch",
                help="No more trials: the queued ones are cancelled, the training ones finish.")
    cancel.button("Cancel", icon=":material/cancel:", key=KEYS.CANCEL, disabled=not driven, on_click=sweeps.stop,
                  args=(current.sweep_id, True), width="stretch",
                  help="No more trials, and the training ones stop now (they keep their weights).")
    if resume.button("Resume", icon=":material/resume:", key=KEYS.RESUME, width="stretch",
                     disabled=driven or now.is_active or now in (RunState.FINISHED, RunState.DAMAGED),
                     help="Go on to its budget of trials (a trial cut short by a stopped server goes on from its "
                          "checkpoint)."):
        sweeps.resume(current.sweep_id)
        st.rerun()  # (the whole page: it polls again, now that the sweep runs)


def trials_table(current: SweepView) -> None:
    metric = METRIC_NAMES[current.spec.metric]
    columns = {metric: st.column_config.NumberColumn(format="%.4f"),
               "test accuracy": st.column_config.NumberColumn(format="percent"),
               "trial": st.column_config.NumberColumn(width="small"),
               "message": st.column_config.TextColumn(width="medium")}
    st.dataframe(pd.DataFrame(current.table()), hide_index=True, column_config=columns, key=KEYS.TABLE,
                 width="stretch")


def figures(current: SweepView) -> None:
    """Settings against the metric and the importance of each setting, once there are trials to draw them from."""
    parallel = parallel_coordinates(current)
    if parallel is None:
        st.caption("Settings against the metric (parallel coordinates) appear once a trial has finished.")
        return
    st.plotly_chart(parallel, key=KEYS.PARALLEL)
    st.caption("Each line is a trial: follow it through the value of each setting to its "
               f"{METRIC_NAMES[current.spec.metric]} on the right. A pruned trial is drawn at the best it reached "
               "before it was stopped (the epochs axis shows how far it got). The colour spans the better half of the "
               "trials, from the median to the best; those below the median share its darkest end. A trial far behind "
               "the rest (one that diverged) is drawn at the far end of the metric's axis, marked ≤ (≥ for a loss), "
               "so that it does not squash the others together. Drag along an axis to pick out the trials in that "
               "range.")
    found, why = sweeps.importances_of(current)
    if found is None:
        st.caption(f"What mattered: {md(why)}")
    elif len(found) > 1:
        st.plotly_chart(importance_bars(found, current.spec.metric), key=KEYS.IMPORTANCE)
        st.caption("How much of the variation between the completed trials each setting explains (Optuna's fANOVA "
                   "importance). With few trials it is a hint, not a verdict.")


def best_trial(current: SweepView) -> None:
    best = current.best
    if best is None:
        return
    st.subheader(f"Best trial: #{best.number + 1}")
    metric = METRIC_NAMES[current.spec.metric]
    value = f"{best.value:.2%}" if current.spec.metric == "val_accuracy" else f"{best.value:.4f}"
    test = f", test accuracy {best.test_accuracy:.2%}" if best.test_accuracy is not None else ""
    values = ", ".join(f"{code(name)} = {code(_text(best.values.get(name)))}" for name in current.spec.names())
    st.markdown(f"{metric.capitalize()} **{value}**{test}, with {values} · run {code(best.run_id)}")
    use, apply_, evaluate, _ = st.columns([1, 1, 1, 1])
    # (a click reruns the whole app, not only this fragment: the sidebar shows the new current run)
    if use.button("Use this run", icon=":material/check:", key=KEYS.USE, width="stretch",
                  help="Make it the session's model: Evaluation and Draw & classify then work on it."):
        sweeps.use_best(best.run_id)
        st.rerun()
    if apply_.button("Apply its settings", icon=":material/tune:", key=KEYS.APPLY, width="stretch",
                     help="Put its architecture and training settings into the sliders, to train it again or go on."):
        sweeps.apply_best(best.run_id)
        st.rerun()
    if state.current_run_id() == best.run_id:
        evaluate.page_link("pages/evaluation.py", label="Evaluate it", icon=":material/arrow_forward:")


def rerun_once_it_ends(current: SweepView) -> None:
    """The page polls while the sweep runs; once it ends, one more full run of the page stops the polling."""
    before = st.session_state.get(KEYS.ACTIVE)
    now = (current.sweep_id, current.active)
    st.session_state[KEYS.ACTIVE] = now
    runs.hold_session()  # (a fragment's rerun does not run app.py, which holds it)
    if before is not None and before[0] == now[0] and before[1] and not now[1]:
        st.rerun()


def _text(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
