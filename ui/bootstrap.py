"""Every page starts with `page_setup()`: a page reached before app.py has run is rerun through app.py.

ConvLab routes with st.navigation in app.py, and its pages live in the `pages/` folder. Until the first
st.navigation call of a server process, Streamlit takes that folder for its older page routing: the very
first request of a freshly started server straight to a page's URL (a reload or a shared link, say
/training?run=...) would run that page file alone, without app.py's session set-up and navigation, and
show the folder's file names in the sidebar. Then the page switches Streamlit to st.navigation routing
(what app.py's st.navigation call would do) and reruns, so app.py runs and shows the page the URL asked
for. The switch is global but the run is the session's own: a second session that started in the older
routing before the first one switched is recognised by its pages (the older routing lists app.py itself
as a page) and reruns too.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx


def page_setup() -> None:
    """Call first in every page file."""
    if PagesManager.uses_pages_directory or routed_by_pages_folder():
        PagesManager.uses_pages_directory = False
        st.rerun()


def routed_by_pages_folder() -> bool:
    """Is this script run Streamlit's older folder routing (app.py itself among the pages), not app.py's?"""
    ctx = get_script_run_ctx()
    if ctx is None:
        return False
    main = Path(ctx.main_script_path).resolve()
    return any(Path(str(page.get("script_path") or "")).resolve() == main
               for page in ctx.pages_manager.get_pages().values())
