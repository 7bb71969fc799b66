"""Sweeps: try many settings at once, stop the hopeless ones early, see what mattered.

A sweep is run by the server's sweep driver (`ui.sweeps`): each trial is an
ordinary run through the queue. This page only starts, stops and reads them.
"""

import streamlit as st

from ui import runs, state, sweep_form, sweeps
from ui.bootstrap import page_setup
from ui.state import SweepsPage as KEYS
from ui.sweep_views import POLL_SECONDS, pick, sweep_view
from ui.widgets import md

page_setup()
sweep_form.keep_values()
st.title("Sweeps")
st.caption("Try many values of the sliders' settings at once: each trial is a run of the model you built with the "
           "recipe on Training, changing only what you choose to vary. A grid tries every combination, a random "
           "search draws them, Optuna's TPE tries more where the results were good; hopeless trials are stopped "
           "early (pruned). Then see which settings mattered, and use or apply the best.")
runs.warm_up()  # a training process imports TensorFlow while the user sets the sweep up
summaries = sweeps.listed()
dataset, built = state.dataset(), state.built()
running_mine = any(s.state.is_active and s.made_by == runs.workspace() for s in summaries)

with st.expander("New sweep", icon=":material/add_circle:", expanded=not summaries):
    if dataset is None or built is None:
        st.info("A sweep starts from a model and a recipe: load a dataset on **Data**, **Build** a model on "
                "**Architecture**, and set the recipe on **Training**.", icon=":material/info:")
    else:
        sweep_form.sweep_form(dataset, built.arch, state.training_config())
        st.button("Start sweep", type="primary", icon=":material/play_arrow:", key=KEYS.START,
                  on_click=sweeps.start_sweep, disabled=running_mine,
                  help="One sweep at a time per browser: stop yours first." if running_mine else None)
        if st.session_state.get(KEYS.START_ERROR):
            st.error(md(st.session_state[KEYS.START_ERROR]), icon=":material/error:")

if not summaries:
    st.info("No sweeps yet: set one up above (or run `python -m core sweep --vary learning_rate=1e-3:1e-1:log`).",
            icon=":material/info:")
else:
    shown = pick(summaries)
    active = next(s for s in summaries if s.sweep_id == shown).state.is_active
    st.fragment(sweep_view, run_every=POLL_SECONDS if active else None)(shown)
