"""The sidebar's pipeline status: dataset, model, training, evaluation.

While a run is active the status is a fragment that refreshes itself, so
the progress moves on every page. A page with a poller of its own (Training)
draws the status from that poller instead: two fragments polling at once
interrupt each other's reruns on a busy server.
"""

from __future__ import annotations

import streamlit as st

from ui import state

POLL_SECONDS = 1.0


def rerun_if_job_ended() -> None:
    """From a polling fragment: rerun the whole page once when the active run ends."""
    current = state.job()
    active = current is not None and current.state.is_active
    was_active = st.session_state[state.JOB_WAS_ACTIVE]
    st.session_state[state.JOB_WAS_ACTIVE] = active
    if was_active and not active:
        st.rerun()


def status_body() -> None:
    """The four stages' status, drawn into the current container."""
    dataset = state.dataset()
    st.markdown("**1 · Data**")
    if dataset is None:
        st.caption("No dataset loaded yet: open **Data**.")
    else:
        kind = "offline sample" if dataset.is_sample else "full data"
        st.caption(f"{dataset.name} · {len(dataset.x_train):,} train / {len(dataset.x_test):,} test · {kind}")

    built = state.built()
    st.markdown("**2 · Model**")
    if built is None:
        st.caption("Not built yet: open **Architecture**.")
    else:
        st.caption(f"{built.arch.name} · {built.params:,} parameters · built")

    st.markdown("**3 · Training**")
    current = state.job()
    if current is None:
        st.caption("Not started.")
    else:
        snap = current.snapshot()
        p = snap.progress
        if snap.state.is_active:
            st.progress(p.fraction, text=f"{snap.state.value}: epoch {p.epoch}/{p.epochs}, batch {p.batch}/{p.batches_per_epoch}")
        else:
            last = snap.final_metrics()
            detail = f" · val accuracy {last['val_accuracy']:.1%}" if "val_accuracy" in last else (
                f" · accuracy {last['accuracy']:.1%}" if "accuracy" in last else "")
            st.caption(f"{snap.state.value} · epoch {p.epoch}/{p.epochs}{detail}")

    st.markdown("**4 · Evaluation**")
    cached = st.session_state.get(state.EVALUATION)
    if cached is not None and cached[0] is current:
        st.caption(f"test accuracy {cached[1].accuracy:.2%}")
    elif state.trained_run() is not None:
        st.caption("Ready: open **Evaluation**.")
    else:
        st.caption("Needs a trained model.")


def _polled_status() -> None:
    status_body()
    rerun_if_job_ended()


def mark_job_activity() -> None:
    """At the start of every full run: remember whether a run is active, for `rerun_if_job_ended`."""
    current = state.job()
    st.session_state[state.JOB_WAS_ACTIVE] = current is not None and current.state.is_active


def render_status(poll: bool) -> None:
    """Draw the pipeline status in the sidebar.

    With `poll`, it refreshes itself while a run is active; without, the page
    must draw `status_body` into the sidebar from its own poller.
    """
    if not poll:
        return
    active = st.session_state[state.JOB_WAS_ACTIVE]
    with st.sidebar:
        st.fragment(_polled_status, run_every=POLL_SECONDS if active else None)()
