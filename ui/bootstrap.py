"""Every page starts with `page_setup()`: a page reached before app.py has run is rerun through app.py.

ConvLab routes with st.navigation in app.py, and its pages live in the `pages/` folder. Until the first
st.navigation call of a server process, Streamlit takes that folder for its older page routing: the very
first request of a freshly started server straight to a page's URL (a reload or a shared link, say
/training?run=...) would run that page file alone, without app.py's session set-up and navigation. Then
the page switches Streamlit to st.navigation routing (what app.py's st.navigation call would do) and
reruns, so app.py runs and shows the page the URL asked for.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def page_setup() -> None:
    """Call first in every page file."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
