"""The error boundary: a page that fails shows a short message, never a traceback; details go to the log."""

from __future__ import annotations

import contextlib
import functools
import logging
import secrets
from typing import Callable, Iterator, TypeVar

import streamlit as st

from core.errors import ConvLabError

LOG = logging.getLogger("convlab")
if not LOG.handlers:  # Streamlit configures only its own loggers: give incidents a line with a time in the server's log
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    LOG.addHandler(_handler)
F = TypeVar("F", bound=Callable[..., object])


def report_incident(error: Exception, where: str) -> None:
    """Show `error` to the user in a sentence; log the traceback under an id the user can quote."""
    if isinstance(error, ConvLabError):
        st.error(str(error), icon=":material/error:")
        return
    incident = secrets.token_hex(4)
    LOG.error("incident %s on %s", incident, where, exc_info=error)
    st.error(f"Something went wrong on this page ({type(error).__name__}). Your data, models and runs are safe; "
             f"try again, or reload. If it keeps happening, quote incident `{incident}` to whoever runs this "
             "server: the details are in its log.", icon=":material/error:")


@contextlib.contextmanager
def error_boundary(where: str) -> Iterator[None]:
    """Run a page (or a part of it) so that any exception ends as a message, not a traceback."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - the boundary: Streamlit's own control flow is BaseException
        report_incident(error, where)


def guarded(function: F) -> F:
    """The same boundary around a fragment, which reruns on its own, outside the page's boundary."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with error_boundary(function.__name__):
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
