"""The server keeps Keras' session (and TensorFlow's compiled kernels) between script runs."""

from __future__ import annotations

import sys
import types

import pytest
from streamlit.runtime.scriptrunner import script_runner

from ui import keras_session


@pytest.fixture()
def patched(monkeypatch):
    # Streamlit's private hook is what is replaced: a Streamlit that renames it must fail here, not slow down
    assert callable(script_runner._clean_problem_modules)
    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    keras_session.keep_keras_session()
    return script_runner._clean_problem_modules


def test_after_a_script_run_keras_is_left_alone_and_matplotlib_still_closed(patched, monkeypatch):
    cleared, closed = [], []
    fake_keras = types.SimpleNamespace(backend=types.SimpleNamespace(clear_session=lambda: cleared.append(1)))
    fake_pyplot = types.SimpleNamespace(close=lambda which: closed.append(which))
    monkeypatch.setitem(sys.modules, "keras", fake_keras)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", fake_pyplot)
    patched()
    assert cleared == [] and closed == ["all"]


def test_streamlits_own_hook_would_have_cleared_the_session(monkeypatch):
    """What the patch undoes: without it, every script run clears Keras' session."""
    cleared = []
    fake_keras = types.SimpleNamespace(backend=types.SimpleNamespace(clear_session=lambda: cleared.append(1)))
    monkeypatch.setitem(sys.modules, "keras", fake_keras)
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    assert keras_session.STREAMLIT_CLEAN_UP is not keras_session._clean_problem_modules_except_keras
    keras_session.STREAMLIT_CLEAN_UP()
    assert cleared == [1]
