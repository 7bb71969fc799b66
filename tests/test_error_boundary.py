"""The error boundary: a page that fails shows a short message with an incident id, never a traceback.

Each page is made to fail by replacing a function it calls with one that raises; the page must show the
boundary's sentence (the exception's type and an incident id, nothing of its message or the code), the
log must hold the traceback under that id, and a ConvLabError must show its own message instead.
"""

from __future__ import annotations

import re
import tomllib

import pytest
from streamlit.testing.v1 import AppTest

import core.model.architecture
import ui.bootstrap
import ui.loading
import ui.runs
from core.errors import RunError
from core.runs.store import RunStore
from tests.conftest import ROOT
from ui import state

SECRET = "boom at /srv/convlab/secret_module.py line 42"  # the exception's own text: for the log only
INCIDENT = re.compile(r"Something went wrong on this page \(RuntimeError\)\. Your data, models and runs are safe; "
                      r"try again, or reload\. If it keeps happening, quote incident `([0-9a-f]{8})` to whoever runs "
                      r"this server: the details are in its log\.")
PAGES = re.findall(r'st\.Page\("(pages/\w+\.py)"', (ROOT / "app.py").read_text())  # every page of the app

TEXT_ELEMENTS = ("title", "header", "subheader", "markdown", "caption", "code", "text", "error", "warning", "info",
                 "success", "exception", "toast")

# a function each page calls, and where it lives (replaced there: pages import it on every run)
PAGE_FAULTS = {
    "pages/home.py": (ui.bootstrap, "page_setup"),
    "pages/data.py": (ui.loading, "stats_for"),
    "pages/architecture.py": (core.model.architecture, "layer_table"),
    "pages/training.py": (ui.runs, "snapshot"),
    "pages/evaluation.py": (ui.runs, "usable_run"),
    "pages/draw.py": (ui.runs, "usable_run"),
    "pages/runs.py": (RunStore, "list"),
}


@pytest.fixture(autouse=True)
def run_store(tmp_path, monkeypatch) -> RunStore:
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "runs"))
    return RunStore(tmp_path / "runs")


def fail_with(error: Exception):
    def raiser(*args, **kwargs):
        raise error
    return raiser


def app_on(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.DATASET_CHOICE] = "digits-8x8"  # the Data page loads it offline in milliseconds
    return at.run().switch_page(page).run()


def assert_short_message_only(at: AppTest, caplog) -> str:
    """One boundary message, nothing of the exception or the code on the page; the traceback in the log."""
    assert not at.exception, at.exception
    messages = [error.value for error in at.error]
    assert len(messages) == 1, messages
    match = INCIDENT.fullmatch(messages[0])
    assert match, messages[0]
    shown = " ".join(str(element.value) for kind in TEXT_ELEMENTS for element in getattr(at, kind))
    for leak in ("Traceback", 'File "', ".py", "/srv/", "boom"):
        assert leak not in messages[0] and leak not in shown, leak
    incident = match.group(1)
    logged = [record for record in caplog.records if incident in record.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert SECRET in caplog.text and "Traceback" in caplog.text  # the details are in the server's log
    return incident


@pytest.mark.parametrize("page", sorted(PAGE_FAULTS))
def test_a_page_that_fails_shows_a_short_message_with_an_incident_id(page, monkeypatch, caplog):
    assert page in PAGES
    where, name = PAGE_FAULTS[page]
    monkeypatch.setattr(where, name, fail_with(RuntimeError(SECRET)))
    assert_short_message_only(app_on(page), caplog)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_of_the_navigation_is_inside_the_boundary(page, monkeypatch, caplog):
    monkeypatch.setattr(ui.bootstrap, "page_setup", fail_with(RuntimeError(SECRET)))
    assert_short_message_only(app_on(page), caplog)


def test_two_failures_get_two_incident_ids(monkeypatch, caplog):
    monkeypatch.setattr(ui.bootstrap, "page_setup", fail_with(RuntimeError(SECRET)))
    first = assert_short_message_only(app_on("pages/home.py"), caplog)
    caplog.clear()
    second = assert_short_message_only(app_on("pages/home.py"), caplog)
    assert first != second


def test_a_failing_sidebar_status_leaves_the_page_working(monkeypatch, caplog):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state[state.CURRENT_RUN] = "20990101-000000-abcdef"  # the sidebar reads the current run
    monkeypatch.setattr(ui.runs, "snapshot", fail_with(RuntimeError(SECRET)))
    at.run()
    assert [title.value for title in at.title] == ["ConvLab"]  # the page itself is there
    assert len(at.sidebar.error) == 1 and INCIDENT.fullmatch(at.sidebar.error[0].value)
    assert_short_message_only(at, caplog)


@pytest.mark.parametrize("page", ["pages/training.py", "pages/evaluation.py", "pages/runs.py"])
def test_a_convlab_error_shows_its_own_message(page, monkeypatch):
    message = "The run store cannot be read: its disk is full."
    where, name = PAGE_FAULTS[page]
    monkeypatch.setattr(where, name, fail_with(RunError(message)))
    at = app_on(page)
    assert not at.exception
    assert [error.value for error in at.error] == [message]


def test_the_server_hides_exception_details_from_browsers():
    with open(ROOT / ".streamlit" / "config.toml", "rb") as handle:
        config = tomllib.load(handle)
    assert config["client"]["showErrorDetails"] == "none"  # an exception past the boundary shows no traceback
    assert config["server"]["maxUploadSize"] == 100
