"""Runs: every training kept in the store. Compare them, reload one, bring your own model."""

import streamlit as st

from ui import runs, state
from ui.bootstrap import page_setup
from ui.run_actions import compare, one_run, store_usage, upload_model
from ui.run_list import COLUMNS, shown_columns, table
from ui.state import RunsPage as KEYS

page_setup()

st.title("Runs")
summaries = everyone = runs.store().list()
mine = [s for s in summaries if s.editable_by(runs.workspace())]  # (a CLI run is everyone's own)
if runs.per_browser_workspaces():
    st.caption("Every training made in this browser's workspace is kept here: select one run to use it, label it, "
               "download or delete it; select several to compare them.")
else:
    whose = st.segmented_control("Whose runs", ["mine", "everyone's"], key=KEYS.WHOSE, default="mine",
                                 format_func={"mine": f"Mine ({len(mine)})",
                                              "everyone's": f"Everyone's ({len(summaries)})"}.get)
    st.caption("This server's run store is shared: everyone's runs can be used and compared, but only their maker "
               "can relabel or delete them (runs made with `python -m core` belong to whoever runs the server). "
               "Select one run to act on it; select several to compare them.")
    if whose != "everyone's":
        summaries = mine
upload_model()
if not summaries and everyone:
    st.info(f"None of these runs are yours yet: **Everyone's** shows the {len(everyone)} made in other browsers.",
            icon=":material/info:")
elif not summaries:
    st.info("No runs yet: train a model on **Training** (or run `python -m core`), or upload one above.",
            icon=":material/info:")
else:
    datasets = sorted({s.dataset for s in summaries})
    current_data = state.dataset().name if state.dataset() is not None else None
    which, columns = st.columns(2)
    shown = which.multiselect("Datasets", datasets, key=KEYS.DATASETS,
                              default=[current_data] if current_data in datasets else datasets)
    visible = [s for s in summaries if s.dataset in shown] if shown else summaries
    event = st.dataframe(table(visible), hide_index=True, column_config=COLUMNS, on_select="rerun",
                         column_order=shown_columns(columns), selection_mode="multi-row", key=KEYS.TABLE,
                         width="stretch")
    picked = [visible[i] for i in event.selection.rows if i < len(visible)]
    if len(picked) == 1:
        one_run(picked[0], everyone)
    elif len(picked) > 1:
        compare(picked)
    else:
        st.caption("Select a row (click its left edge) to act on a run; select several to compare them.")
store_usage()
