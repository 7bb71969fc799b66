"""Stage 3 · Training: the lab's recipe (or your own), with live curves.

Start queues a run in the server's job manager, which trains it in a process
of its own; this page only polls the run's record in the store (`ui.live`), so
clicks, sliders, page switches and reloads never interrupt it.
"""

import streamlit as st

from core.runs.status import RunState
from core.training.config import TRAINING_PRESET_DESCRIPTIONS, TRAINING_PRESETS
from ui import run_control, runs, state
from ui.architecture_form import show_augmented
from ui.bootstrap import page_setup
from ui.live import live_view
from ui.sidebar import poll_seconds, status_body
from ui.training_form import apply_preset, training_form
from ui.widgets import code, md

page_setup()
KEYS = state.TrainingPage

st.title("3 · Training")
runs.warm_up()  # a training process imports TensorFlow while the user sets things up
current = runs.snapshot()
active = current is not None and current.state.is_active
dataset, built = state.dataset(), state.built()

if dataset is None or built is None:
    st.info("Training needs data and a model: load a dataset on **Data**, then **Build** one on **Architecture**.",
            icon=":material/info:")
else:
    st.caption(f"Trains a fresh {code(built.arch.name)} on {md(dataset.summary_line())}, in a process of its own; "
               "the seed fixes its initial weights, the validation split and the order of the batches.")
    if built.input_shape != dataset.input_shape:
        st.warning(f"{code(built.arch.name)} was built for {built.input_shape} images but the dataset now has "
                   f"{dataset.input_shape}: training builds it for the new shape (its parameter count changes). "
                   "Rebuild on **Architecture** to see the new layer table.", icon=":material/warning:")

st.markdown("**Recipe presets**")
for column, name in zip(st.columns(len(TRAINING_PRESETS) + 2), TRAINING_PRESETS):
    column.button(name, key=KEYS.PRESET.format(name), on_click=apply_preset, args=(name,), disabled=active,
                  width="stretch", help=TRAINING_PRESET_DESCRIPTIONS[name])
config = training_form(disabled=active)
st.caption(f"**Recipe:** {config.describe()}")
if dataset is not None and built is not None and built.arch.augmentation.enabled:
    with st.expander(f"**Augmentation** (set on Architecture): {built.arch.augmentation.describe()}; "
                     "see what the model will train on", icon=":material/auto_awesome_motion:"):
        show_augmented(dataset, built.arch.augmentation)

start, pause, stop, _ = st.columns([1, 1, 1, 3])
start.button("Start training", type="primary", icon=":material/play_arrow:", on_click=runs.start_training,
             disabled=active or dataset is None or built is None, key=KEYS.START, width="stretch")
if current is not None and current.state.is_resumable:
    pause.button("Resume", icon=":material/resume:", on_click=run_control.resume, args=(current.run_id,),
                 key=KEYS.RESUME, width="stretch", help="Back in the queue; it trains on from where it stopped.")
else:
    pause.button("Pause", icon=":material/pause:", key=KEYS.PAUSE, width="stretch",
                 on_click=run_control.pause, args=(current.run_id if current else "",),
                 disabled=current is None or current.state is not RunState.RUNNING,
                 help="Checkpoints the run at its next batches and frees its training slot; Resume goes on from "
                      "that very batch.")
stop.button("Cancel" if current is not None and current.state is RunState.QUEUED else "Stop",
            icon=":material/stop:", on_click=run_control.stop, args=(current.run_id if current else "",),
            disabled=not active, key=KEYS.STOP,
            width="stretch")
if st.session_state[state.START_ERROR]:
    st.error(md(st.session_state[state.START_ERROR]), icon=":material/error:")
run_control.said()

if current is None:
    if runs.vanished():
        runs.say_vanished()
    with st.sidebar:
        status_body(None)
else:
    st.fragment(live_view, run_every=poll_seconds(st.session_state[state.RUN_PHASE], training_page=True))()
