"""Keep TensorFlow's compiled kernels between script runs.

After every script run, fragment runs included, Streamlit calls `keras.backend.clear_session()` when Keras
is imported (`streamlit.runtime.scriptrunner.script_runner._clean_problem_modules`), for apps that build
models inside their scripts. That also empties TensorFlow's kernel cache and runs a full garbage
collection, so the next prediction recompiles its kernels: on this project's 2-core machine a stroke on the
canvas cost 60-90 ms of server time instead of 2-3 ms. ConvLab does not build models on every rerun:
training runs in worker processes, and the server builds a few models once each (a run's saved model and
its explainer per session, an augmentation preview per setting), so it keeps the session and lets
Streamlit do the rest of that clean-up (matplotlib figures).
"""

from __future__ import annotations

import sys
from typing import Any, cast

from streamlit.runtime.scriptrunner import script_runner

STREAMLIT_CLEAN_UP = script_runner._clean_problem_modules  # noqa: SLF001 - Streamlit's own, kept for the tests


def _clean_problem_modules_except_keras() -> None:
    if "matplotlib.pyplot" in sys.modules:
        try:
            cast(Any, sys.modules["matplotlib.pyplot"]).close("all")
        except Exception:  # noqa: BLE001, S110 - as Streamlit's own: never fail a script run over it
            pass


def keep_keras_session() -> None:
    """Stop Streamlit from clearing Keras' session after each script run (idempotent)."""
    script_runner._clean_problem_modules = _clean_problem_modules_except_keras  # noqa: SLF001
