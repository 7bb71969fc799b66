"""ConvLab: build an image classifier end to end, in four stages.

Run with `streamlit run app.py`. This file only sets up the page, the
session state, the navigation, the sidebar and the link between the URL and
the session's current run; each page lives in pages/.
"""

from pathlib import Path

import streamlit as st

from ui import runs, sweeps
from ui.errors import error_boundary
from ui.keras_session import keep_keras_session
from ui.sidebar import mark_run_phase, render_status
from ui.state import init_state

# the tab's icon ships with the app: a Material icon here would be fetched from Google's font server (none offline)
st.set_page_config(page_title="ConvLab", page_icon=str(Path(__file__).parent / "ui" / "assets" / "favicon.png"),
                   layout="wide")
keep_keras_session()
init_state()
with error_boundary("start of the session"):
    runs.hold_session()
    runs.workspace()  # this browser's key, in its URL from the first page on: the runs it makes are its own
    runs.attach_from_url()  # a reload or a shared link: ?run=<id> brings its run back
    runs.sync_url()  # early, so a reload during a long page run still finds the run
    sweeps.sweep_driver()  # once per server: the sweeps a stopped server left running go on

navigation = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
    st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
    st.Page("pages/evaluation.py", title="Evaluation", icon=":material/analytics:"),
    st.Page("pages/draw.py", title="Draw & classify", icon=":material/draw:"),
    st.Page("pages/inside.py", title="Inside the network", icon=":material/visibility:"),
    st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
    st.Page("pages/sweeps.py", title="Sweeps", icon=":material/tune:"),
])
mark_run_phase()
st.sidebar.markdown("#### Pipeline")  # a write in every full run lets page fragments draw into the sidebar
with error_boundary(navigation.url_path or "home"):
    navigation.run()
runs.sync_url()  # again: the page may have changed the current run (Start, Runs page)
# after the page, so the status shows what the page just did (loaded data, built a model);
# the Training page polls its run itself and draws this status from its own poller
render_status(poll=navigation.url_path != "training")
