"""The private Streamlit hooks ConvLab relies on still exist: a Streamlit that renames one fails here, loudly.

`ui.runs` empties a session's state (`ScriptRunContext.session_state`) when the session ends;
`ui.keras_session` replaces `script_runner._clean_problem_modules` (so a stroke on the canvas does not
recompile TensorFlow's kernels), and `ui.bootstrap` resets `PagesManager.uses_pages_directory` (so a first
request straight to a page's URL runs through app.py). Both are private: pinned versions keep them, and
this test says which one moved when the pin changes.
"""

from __future__ import annotations

from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import script_runner


def test_the_clean_up_hook_keras_session_replaces_exists():
    assert callable(getattr(script_runner, "_clean_problem_modules", None)), (
        "streamlit.runtime.scriptrunner.script_runner._clean_problem_modules is gone: ui/keras_session.py must "
        "find where Streamlit now clears Keras' session after each script run")


def test_the_page_routing_flag_bootstrap_resets_exists():
    assert "uses_pages_directory" in vars(PagesManager), (  # None until a script run sets it
        "PagesManager.uses_pages_directory is gone: ui/bootstrap.py must find how Streamlit now decides between "
        "the pages/ folder and st.navigation")


def test_the_session_state_a_lease_empties_is_reachable_from_the_script_run_context():
    from streamlit.runtime.scriptrunner import ScriptRunContext
    from streamlit.runtime.state import SafeSessionState

    assert "session_state" in ScriptRunContext.__dataclass_fields__, (
        "ScriptRunContext.session_state is gone: ui/runs.py's session lease must find another way to reach a "
        "session's state and empty it when the session ends")
    assert all(hasattr(SafeSessionState, name) for name in ("filtered_state", "__delitem__"))
    from streamlit.runtime import Runtime
    from streamlit.runtime.uploaded_file_manager import UploadedFileManager

    assert isinstance(Runtime.uploaded_file_mgr, property) and callable(UploadedFileManager.remove_session_files), (
        "Runtime.uploaded_file_mgr.remove_session_files is gone: ui/runs.py must find how to drop a closed "
        "session's uploads")
