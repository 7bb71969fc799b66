"""The sidebar's pipeline status: dataset, model, training, evaluation, and the current run.

While the current run is active the status is a fragment that refreshes
itself, so progress moves on every page. A page with a poller of its own
(Training) draws the status from that poller instead: two fragments polling
at once interrupt each other's reruns on a busy server.
"""

from __future__ import annotations

import streamlit as st

from core.runs.status import RunState
from core.runs.store import RunSnapshot
from ui import runs, state
from ui.errors import LOG, guarded
from ui.state import Phase
from ui.widgets import md, progress_bar

# How often a poller refreshes, by the run's phase (see `runs.phase`). Each refresh costs the browser 20-50 ms
# of CPU (Streamlit's frontend handling the fragment's rerun, whatever it draws): a queued Training page
# refreshed every second cost its tab 0.08-0.12 of a core, all through a wait of minutes. So only the
# Training page, and only while its run trains or is next, refreshes every second; and four times a second
# for the moments a user waits on (its first batch, its end and test accuracy), which last a second or two.
# While its run ends, the Training page's poller also waits in the server for the end (`ui.live`), so the end
# is drawn as soon as it is written; polling faster (eight times a second, tried) only took CPU from the
# worker's end.
TRAINING_PAGE_POLL_SECONDS = {Phase.STARTING: 0.25, Phase.ENDING: 0.25, Phase.TRAINING: 1.0, Phase.NEXT: 1.0,
                              Phase.WAITING: 3.0}
SIDEBAR_POLL_SECONDS = {Phase.STARTING: 2.0, Phase.ENDING: 2.0, Phase.TRAINING: 2.0, Phase.NEXT: 2.0,
                        Phase.WAITING: 3.0}
QUEUED = (Phase.WAITING, Phase.NEXT)


def poll_seconds(phase: Phase, training_page: bool = False) -> float | None:
    """Seconds between a poller's refreshes in this phase; None once the run has ended (no polling)."""
    return (TRAINING_PAGE_POLL_SECONDS if training_page else SIDEBAR_POLL_SECONDS).get(phase)


def rerun_if_run_moved_on(current: RunSnapshot | None, training_page: bool = False) -> None:
    """From a polling fragment: rerun the whole page once when the run leaves the queue or ends, or when this
    poller is to refresh at another pace (`poll_seconds`).

    It also holds the session's lease: a fragment's rerun does not run app.py, and a session that
    reconnects after a network drop (which released its lease) keeps its queued run.
    """
    runs.hold_session()
    before, now = runs.phase_changed(current)
    if before is now or before is Phase.ENDED:
        return
    if (now is Phase.ENDED or (before in QUEUED) != (now in QUEUED)
            or poll_seconds(before, training_page) != poll_seconds(now, training_page)):
        st.rerun()


def training_line(current: RunSnapshot) -> str:
    """One line for the run's state: 'running · epoch 2/10, batch 120/282', 'queued, 2nd in line', ..."""
    p = current.status.progress
    if current.state is RunState.QUEUED:
        position = runs.queue_position(current.run_id)
        return f"queued, {ordinal(position)} in line" if position else "starting"
    if current.state.is_training:
        return f"{current.state.value} · epoch {p.epoch}/{p.epochs}, batch {p.batch}/{p.batches_per_epoch}"
    last = current.final_metrics()
    detail = f" · val accuracy {last['val_accuracy']:.1%}" if "val_accuracy" in last else (
        f" · accuracy {last['accuracy']:.1%}" if "accuracy" in last else "")
    epochs = f" · epoch {p.epoch}/{p.epochs}" if p.epochs else ""
    return f"{current.state.value}{epochs}{detail}"


def ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def status_body(current: RunSnapshot | None) -> None:
    """The four stages' status and the current run, drawn into the current container."""
    dataset = state.dataset()
    st.markdown("**1 · Data**")
    if dataset is None:
        st.caption("No dataset loaded yet: open **Data**.")
    else:
        st.caption(md(dataset.summary_line()))

    built = state.built()
    st.markdown("**2 · Model**")
    if built is None:
        st.caption("Not built yet: open **Architecture**.")
    else:
        st.caption(f"{md(built.arch.name)} · {built.params:,} parameters")

    st.markdown("**3 · Training**")
    st.caption(f":material/memory: on {md(runs.where_runs_train())}")
    if current is None:
        st.caption("Not started.")
    elif current.state.is_training:
        progress_bar(current.status.progress.fraction, training_line(current))
    else:
        st.caption(training_line(current))

    st.markdown("**4 · Evaluation**")
    if current is not None and current.test is not None:
        st.caption(f"test accuracy {current.test['accuracy']:.2%}")
    elif current is not None and current.usable:
        st.caption("Ready: open **Evaluation**.")
    else:
        st.caption("Needs a trained model.")

    if current is not None:
        st.markdown("**Current run**")
        st.caption(f"{md(current.label or current.run_id)} (`{current.run_id}`)")
    st.page_link("pages/runs.py", label="All runs", icon=":material/history:")


@guarded
def _polled_status() -> None:
    current = runs.snapshot()
    status_body(current)
    rerun_if_run_moved_on(current)


def mark_run_phase() -> None:
    """At the start of every full run: remember where the current run is, for `rerun_if_run_moved_on`.

    It runs outside the pages' error boundaries: a run that cannot be read counts as no run here, and
    the page or the sidebar's status, reading it again inside their boundaries, say what went wrong.
    """
    try:
        current = runs.snapshot()
    except Exception:  # noqa: BLE001 - reported by the boundary of whoever reads the run next
        LOG.warning("the current run could not be read for its phase", exc_info=True)
        current = None
    st.session_state[state.RUN_PHASE] = runs.phase(current)


def render_status(poll: bool) -> None:
    """Draw the pipeline status in the sidebar.

    With `poll`, it refreshes itself while a run is active; without, the page
    must draw `status_body` into the sidebar from its own poller.
    """
    if not poll:
        return
    with st.sidebar:
        st.fragment(_polled_status, run_every=poll_seconds(st.session_state[state.RUN_PHASE]))()
