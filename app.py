"""ConvLab: build an image classifier end to end, in four stages.

Run with `streamlit run app.py`. This file only sets up the page, the
session state, the navigation and the sidebar; each page lives in pages/.
"""

import streamlit as st

from ui.sidebar import render_status
from ui.state import init_state

st.set_page_config(page_title="ConvLab", page_icon=":material/neurology:", layout="wide")
init_state()

navigation = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
    st.Page("pages/training.py", title="Training", icon=":material/model_training:"),
    st.Page("pages/evaluation.py", title="Evaluation", icon=":material/analytics:"),
    st.Page("pages/draw.py", title="Draw & classify", icon=":material/draw:"),
])
# the Training page polls its run itself and redraws this status from there
render_status(poll=navigation.url_path != "training")
navigation.run()
