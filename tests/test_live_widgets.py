"""The live view's cheap parts: an HTML progress bar, and values made again only every few seconds."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest


def bar_app() -> None:
    from ui.widgets import progress_bar

    progress_bar(0.25, "Epoch 3/10 · batch <5>/282")
    progress_bar(7.0, "past the end")


def test_the_progress_bar_says_how_far_with_its_text_escaped():
    at = AppTest.from_function(bar_app).run()
    assert not at.exception
    first, second = (element.proto.body for element in at.get("html"))
    assert 'aria-valuenow="25"' in first and "width:25.0%" in first
    assert "Epoch 3/10 · batch &lt;5&gt;/282" in first
    assert 'aria-valuenow="100"' in second  # clamped


def refreshing_app() -> None:
    import streamlit as st

    from ui import state

    st.session_state.setdefault(state.PER_RUN, {})
    st.session_state.setdefault("made", 0)
    every = st.session_state.get("every", 60.0)

    def make() -> int:
        st.session_state["made"] += 1
        return st.session_state["made"]

    st.write(f"value {state.refreshed_every('curves', st.session_state.get('run', 'a'), every, make)}")


def test_a_value_is_made_again_only_after_its_interval_or_for_another_run():
    at = AppTest.from_function(refreshing_app).run()
    assert at.markdown[0].value == "value 1"
    at.run()
    assert at.markdown[0].value == "value 1"  # within the interval: the same value, not made again
    at.session_state["run"] = "b"
    at.run()
    assert at.markdown[0].value == "value 2"  # another run
    at.session_state["every"] = 0.0
    at.run()
    assert at.markdown[0].value == "value 3"  # an interval of 0: every time


def test_the_progress_line_says_the_pace_is_being_measured_until_it_is_known():
    from types import SimpleNamespace

    from core.training.progress import Progress
    from ui.live import progress_text

    def line(progress: Progress) -> str:
        return progress_text(SimpleNamespace(status=SimpleNamespace(progress=progress, message="")))

    first_chunk = Progress(epoch=1, epochs=20, batch=15, batches_per_epoch=282, elapsed_s=3.2)
    assert line(first_chunk) == "Epoch 1/20 · batch 15/282 · 3s elapsed · measuring the pace…"
    later = Progress(epoch=3, epochs=20, batch=15, batches_per_epoch=282, images_per_second=4980.4, elapsed_s=5.0,
                     eta_s=31.2)
    assert line(later) == "Epoch 3/20 · batch 15/282 · 4,980 images/s · 5s elapsed · about 31s left"


@pytest.mark.parametrize("value, said", [(None, "?"), (0.04, "0.0 s"), (1.44, "1.4 s"), (9.96, "10 s"), (42.4, "42 s"),
                                         (59.6, "1m 00s"), (185.0, "3m 05s")])
def test_short_waits_are_said_to_a_tenth_of_a_second(value, said):
    from ui.widgets import seconds

    assert seconds(value) == said
