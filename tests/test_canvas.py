"""The drawing canvas's component: its stylesheet travels inline, so the drawing surface is where it is drawn from
its very first frame (issue 23's unanswered first strokes); seen in Chromium by tests/test_browser_inside.py."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def registered_canvas() -> None:
    import streamlit as st
    from streamlit.runtime import Runtime

    from ui.canvas import CANVAS_COMPONENT, styled_before_drawn

    css = styled_before_drawn()
    definition = Runtime.instance().bidi_component_registry.get(CANVAS_COMPONENT)
    st.session_state["seen"] = (css, definition.css_content, definition.css_url, definition.js_url, definition.html)


def test_the_canvas_component_carries_its_stylesheet_inline():
    at = AppTest.from_function(registered_canvas, default_timeout=60).run()
    assert not at.exception, at.exception
    css, content, css_url, js_url, html = at.session_state["seen"]
    assert ".dc-background-canvas{z-index:0;position:absolute" in css  # what stacks the canvases, left undone late
    assert content == css and not css_url  # inline, not a file the browser loads after the canvas is built
    assert js_url.endswith(".js")  # the package's own script, still served as a file
    assert html == '<div class="canvas-root"></div>'
