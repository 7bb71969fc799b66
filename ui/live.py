"""The Training page's live view of the current run: its state in words, its metrics, curves and filters.

`live_view` is the page's poller (a fragment run every second or so while
the run is active): it reads the run's record in the store and draws it,
and reruns the page once when the run starts training or ends. While the
run ends, the poller, having drawn it, waits in the server for its end
(`runs.await_end`) and draws it at once, rather than at its next poll.
"""

from __future__ import annotations

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from core.figures.training import filter_mosaic, training_curves
from core.runs.status import RunState
from core.runs.store import RunSnapshot
from core.training.controls import EVENT_RESUMED
from ui import runs, state
from ui.errors import guarded
from ui.run_control import change_course, lineage, resume_or_continue
from ui.sidebar import ordinal, rerun_if_run_moved_on, status_body
from ui.state import Phase, RunControl
from ui.widgets import duration, md, progress_bar, seconds

CHART_SECONDS = 2.0  # while training, the curves and filters move every 2 s; the progress line every second


def progress_text(current: RunSnapshot) -> str:
    p = current.status.progress
    if not p.epoch:
        return current.status.message or "Starting…"
    where = f"Epoch {p.epoch}/{p.epochs} · batch {p.batch}/{p.batches_per_epoch}"
    if p.eta_s is None:  # the first chunk of batches (tracing, start-up) tells nothing of the pace yet
        return f"{where} · {duration(p.elapsed_s)} elapsed · measuring the pace…"
    return (f"{where} · {p.images_per_second:,.0f} images/s · {duration(p.elapsed_s)} elapsed · "
            f"about {duration(p.eta_s)} left")


def finished_line(current: RunSnapshot) -> str:
    """How long it trained, how long the user waited from Start (not for a resumed run), and its test accuracy."""
    status, test = current.status, current.test
    line = f"Training finished in {seconds(status.training_s)}"
    resumed = any(event.get("kind") == EVENT_RESUMED for event in current.events)
    if status.waited_s is not None and not resumed:
        since = "the command" if current.spec.origin == "cli" else "Start"
        line += (f"; you waited {seconds(status.waited_s)} from {since} (getting ready, validating, saving and "
                 "scoring the test set included)")
    if test and "accuracy" in test:
        line += f". **Test accuracy {test['accuracy']:.2%}** on {int(test.get('images', 0)):,} test images"
    return line + "."


def run_outcome(current: RunSnapshot) -> None:
    """The run's state in words: queued with its place, progress, or how it ended."""
    status = current.status
    if current.state is RunState.QUEUED and current.events and current.events[-1].get("kind") == "node_lost":
        st.caption(md(status.message))  # taken back to resume after its node went away: why, first
    if current.state is RunState.INTERRUPTED and runs.taken_back(current.run_id):
        st.info(f"**Taking it back.** {md(status.message)} The server resumes it from its last checkpoint on a "
                "training slot that is there.", icon=":material/autorenew:")
    elif current.state is RunState.QUEUED:
        position = runs.queue_position(current.run_id)
        if position is None:  # out of the queue: its training process is getting ready
            st.info("**Starting.** A training process is getting ready for it (loading TensorFlow takes a few "
                    "seconds when none is ready). **Stop** cancels it.", icon=":material/hourglass_top:")
        else:
            st.info(f"**Queued, {ordinal(position)} in line.** It starts when a training slot is free (this server "
                    f"trains {runs.job_manager().max_concurrent} at a time). **Stop** cancels it.",
                    icon=":material/schedule:")
    elif current.state.is_training:
        progress_bar(status.progress.fraction, progress_text(current))
        if current.state is RunState.STOPPING or not status.progress.epoch:
            st.caption(md(status.message))
    elif current.state is RunState.FINISHED and current.spec.origin == "upload":
        st.success(md(status.message), icon=":material/check_circle:")
    elif current.state is RunState.FINISHED:
        st.success(finished_line(current), icon=":material/check_circle:")
    elif current.state is RunState.PAUSED:
        st.info(f"**Paused.** {md(status.message)} Its training slot went to the next run in the queue.",
                icon=":material/pause_circle:")
    elif current.state in (RunState.STOPPED, RunState.INTERRUPTED, RunState.CANCELLED):
        st.warning(md(status.message), icon=":material/stop_circle:")
    else:
        st.error(md(status.message), icon=":material/error:")


def final_metrics(current: RunSnapshot) -> None:
    """The last epoch's metrics, or, when early stopping kept an earlier epoch's weights, that epoch's."""
    kept = next((int(e["value"]) for e in reversed(current.events) if e.get("kind") == "kept"), None)
    rows = [row for row in current.epochs if row.get("epoch") == kept and not row.get("partial")]
    last = rows[-1] if rows else current.final_metrics()
    if not last:
        return
    which = f"epoch {last['epoch']}, kept" if rows else f"epoch {last['epoch']}"
    cols = st.columns(4)
    for column, key, label in zip(cols, ("loss", "accuracy", "val_loss", "val_accuracy"),
                                  ("loss", "accuracy", "validation loss", "validation accuracy")):
        if key in last:
            value = last[key]
            column.metric(f"{label} ({which})", f"{value:.2%}" if "acc" in key else f"{value:.4f}")


def filters_now(current: RunSnapshot) -> "np.ndarray | None":
    """The first convolution's filters as a mosaic, as the worker last wrote them (every second), or None."""
    kernels = runs.store().filters(current.run_id)
    return None if kernels is None else filter_mosaic(kernels)


def curves_and_filters(current: RunSnapshot) -> None:
    """The live curves and filters. While training they are made again every CHART_SECONDS only: in between,
    the page sends the same figure, which the browser does not redraw (a redraw a second cost a headless
    Chromium here about 0.15 of a core, taken from the training)."""
    every = CHART_SECONDS if current.state.is_training else 0.0
    figure, mosaic = state.refreshed_every(state.TrainingPage.LIVE_CURVES, current.run_id, every, lambda: (
        training_curves(current.batches, current.epochs, current.status.progress.batches_per_epoch, current.events),
        filters_now(current)))
    st.plotly_chart(figure, key=state.TrainingPage.CURVES)
    if mosaic is not None:
        st.image(mosaic, caption="The first convolution's filters, redrawn as training changes them "
                 "(bright: positive weights, dark: negative).", width=min(640, mosaic.shape[1] * 2))


@guarded
def live_view() -> None:
    """The current run: state, metrics, curves, filters; polled while it is active (`poll_seconds`)."""
    current = runs.snapshot()
    with st.sidebar:
        status_body(current)
    if current is None:
        return
    st.markdown(f"**Run** {md(current.label or current.run_id)} · `{current.run_id}`")
    lineage(current.run_id)
    run_outcome(current)
    change_course(current, RunControl.TRAINING)
    final_metrics(current)
    if not current.state.is_active:
        resume_or_continue(current.run_id, current.state, RunControl.TRAINING, resume_here=False)
    if current.batches or current.epochs:
        curves_and_filters(current)
    if current.usable:
        st.page_link("pages/evaluation.py", label="Evaluate on the test set", icon=":material/arrow_forward:")
    rerun_if_run_moved_on(current, training_page=True)
    if runs.phase(current) is Phase.ENDING and runs.await_end(current.run_id):
        rerun_the_poller()  # its end on screen as soon as it is written, not at the next poll


def rerun_the_poller() -> None:
    """Run the poller again now: only it, on its own reruns; the page, when it ran as part of the page (Streamlit
    refuses a fragment's own rerun there)."""
    context = get_script_run_ctx()
    st.rerun(scope="fragment" if context is not None and context.fragment_ids_this_run else "app")
