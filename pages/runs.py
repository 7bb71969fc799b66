"""Runs: every training kept in the store. Compare them, reload one, bring your own model."""

import streamlit as st

from ui import runs, state
from ui.bootstrap import page_setup
from ui.run_actions import compare, one_run, upload_model
from ui.run_list import COLUMNS, table
from ui.state import RunsPage as KEYS

page_setup()

st.title("Runs")
st.caption("Every training made here or with `python -m core` is kept in the run store "
           f"(`{runs.store().root}`). Select one run to use it, label it, download or delete it; "
           "select several to compare them.")
summaries = runs.store().list()
upload_model()
if not summaries:
    st.info("No runs yet: train a model on **Training** (or run `python -m core`), or upload one above.",
            icon=":material/info:")
else:
    datasets = sorted({s.dataset for s in summaries})
    current_data = state.dataset().name if state.dataset() is not None else None
    shown = st.multiselect("Datasets", datasets, key=KEYS.DATASETS,
                           default=[current_data] if current_data in datasets else datasets)
    visible = [s for s in summaries if s.dataset in shown] if shown else summaries
    event = st.dataframe(table(visible), hide_index=True, column_config=COLUMNS, on_select="rerun",
                         selection_mode="multi-row", key=KEYS.TABLE, width="stretch")
    picked = [visible[i] for i in event.selection.rows if i < len(visible)]
    if len(picked) == 1:
        one_run(picked[0])
    elif len(picked) > 1:
        compare(picked)
    else:
        st.caption("Select a row (click its left edge) to act on a run; select several to compare them.")
