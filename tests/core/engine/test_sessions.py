"""Which browser sessions are open, and for how long none has been."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.engine import sessions as sessions_module
from core.engine.sessions import Sessions


@pytest.fixture()
def clock(monkeypatch) -> list[float]:
    """The sessions' monotonic clock, set by the test."""
    now = [100.0]
    monkeypatch.setattr(sessions_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


def test_time_since_the_last_session_left(clock):
    sessions = Sessions()  # a server that has just started: nobody since its start
    assert not sessions.any_open and sessions.none_open_for(130.0) == 30.0
    sessions.hold("a")
    sessions.hold("b")
    assert sessions.any_open and sessions.none_open_for(500.0) == 0.0
    clock[0] = 200.0
    sessions.release("a")
    assert sessions.any_open and sessions.none_open_for(500.0) == 0.0  # b is still there
    clock[0] = 300.0
    sessions.release("b")
    assert not sessions.any_open and sessions.none_open_for(360.0) == 60.0  # counted from b's leaving


def test_a_session_is_open_once_however_often_it_is_held(clock):
    sessions = Sessions()
    sessions.hold("a")
    sessions.hold("a")  # a rerun of the same session
    sessions.release("a")
    assert not sessions.any_open and sessions.none_open_for(100.0) == 0.0
    sessions.hold("a")  # back after a disconnect
    assert sessions.any_open
