"""Stage 3 · Training: the lab's recipe (or your own), with live curves.

Training runs in the session's background job; this page only polls it, so
clicks, sliders and page switches never interrupt it.
"""

import streamlit as st

from core.figures import training_curves
from core.training import TRAINING_PRESETS, JobState
from ui import state
from ui.sidebar import POLL_SECONDS, rerun_if_job_ended, status_body
from ui.training_form import START_ERROR, apply_preset, start_training, stop_training, training_form


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def live_view() -> None:
    """Progress and curves of the session's run, and the sidebar status; polled while the run is active."""
    with st.sidebar:
        status_body()
    job = state.job()
    snap = job.snapshot()
    p = snap.progress
    if snap.state.is_active:
        st.progress(p.fraction, text=(
            f"Epoch {p.epoch}/{p.epochs} · batch {p.batch}/{p.batches_per_epoch} · "
            f"{p.images_per_second:,.0f} images/s · {_duration(p.elapsed_s)} elapsed · "
            f"about {_duration(p.eta_s)} left"))
        if snap.state is JobState.STOPPING:
            st.caption(snap.message)
    elif snap.state is JobState.FINISHED:
        st.success(f"Training finished in {_duration(p.elapsed_s)}.", icon=":material/check_circle:")
    elif snap.state is JobState.STOPPED:
        st.warning(snap.message, icon=":material/stop_circle:")
    else:
        st.error(snap.message, icon=":material/error:")
    last = snap.final_metrics()
    if last:
        cols = st.columns(4)
        for column, key, label in zip(cols, ("loss", "accuracy", "val_loss", "val_accuracy"),
                                      ("loss", "accuracy", "validation loss", "validation accuracy")):
            if key in last:
                value = last[key]
                column.metric(f"{label} (epoch {last['epoch']})", f"{value:.2%}" if "acc" in key else f"{value:.4f}")
    st.plotly_chart(training_curves(snap.batch_history, snap.epoch_history, p.batches_per_epoch),
                    key="train_curves")
    if state.trained_run() is not None:
        st.page_link("pages/evaluation.py", label="Evaluate on the test set", icon=":material/arrow_forward:")
    rerun_if_job_ended()


st.title("3 · Training")
dataset, built, job = state.dataset(), state.built(), state.job()
active = job is not None and job.state.is_active

if dataset is None or built is None:
    st.info("Training needs data and a model: load a dataset on **Data**, then **Build** one on **Architecture**.",
            icon=":material/info:")
else:
    st.caption(f"Trains a fresh `{built.arch.name}` on {dataset.summary_line()}; "
               "the seed fixes its initial weights and the validation split.")
    if built.input_shape != dataset.input_shape:
        st.warning(f"`{built.arch.name}` was built for {built.input_shape} images but the dataset now has "
                   f"{dataset.input_shape}: training builds it for the new shape (its parameter count changes). "
                   "Rebuild on **Architecture** to see the new layer table.", icon=":material/warning:")

st.markdown("**Recipe presets**")
for column, name in zip(st.columns(len(TRAINING_PRESETS) + 2), TRAINING_PRESETS):
    column.button(name, key=f"train_preset_{name}", on_click=apply_preset, args=(name,), disabled=active,
                  width="stretch", help="SGD 0.01, momentum 0.9, batch 32, 10 epochs (the lab)" if name == "lab"
                  else "Adam 0.003 with cosine decay, batch 64, 6 epochs (pairs with the fast model)")
config = training_form(disabled=active)
st.caption(f"**Recipe:** {config.describe()}")

start, stop, _ = st.columns([1, 1, 4])
start.button("Start training", type="primary", icon=":material/play_arrow:", on_click=start_training,
             disabled=active or dataset is None or built is None, key="train_start", width="stretch")
stop.button("Stop", icon=":material/stop:", on_click=stop_training, disabled=not active, key="train_stop",
            width="stretch")
if st.session_state.get(START_ERROR):
    st.error(st.session_state[START_ERROR], icon=":material/error:")

if job is None:
    with st.sidebar:
        status_body()
else:
    st.fragment(live_view, run_every=POLL_SECONDS if active else None)()
