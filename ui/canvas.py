"""The drawing canvas: one widget (canvas, stroke width, Clear) for Draw & classify and Inside the network.

`draw_canvas` is the one call into streamlit-drawable-canvas, so page tests
can replace it (AppTest does not render custom components).

The component ships its stylesheet as a file, which Streamlit links into the
component's shadow root without waiting for it: when the component's script
is already loaded in the tab (a second canvas, or one drawn again by Clear),
the canvas is built before its stylesheet arrives, and for its first frames
the drawing surface sits 288 px below where it is then shown. A stroke begun
at once lands beside the canvas and is never answered (issue 23).
`styled_before_drawn` registers the component again with the same script and
the stylesheet inline, so it applies from the first frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from ui.state import CanvasKeys

CANVAS_SIZE = 280
DEFAULT_STROKE = CANVAS_SIZE // 15  # thin strokes vanish when shrunk to 28x28
CANVAS_COMPONENT = "streamlit-drawable-canvas.streamlit_drawable_canvas"  # as the package registers it
CANVAS_HTML = '<div class="canvas-root"></div>'  # the package's own root element


def _package_stylesheet() -> str | None:
    """The component's stylesheet, as text (None if the package no longer ships exactly one)."""
    import streamlit_drawable_canvas

    found = sorted((Path(streamlit_drawable_canvas.__file__).parent / "frontend" / "build").glob("index-*.css"))
    return found[0].read_text(encoding="utf-8") if len(found) == 1 else None


def styled_before_drawn() -> str | None:
    """Have this server send the canvas component's stylesheet inline (once per server); returns it.

    None, and the package's own registration kept, if its stylesheet is not where version 0.13 keeps it.
    """
    import streamlit_drawable_canvas  # noqa: F401 - registers the component (stylesheet as a file) first
    from streamlit.runtime import Runtime

    registered = Runtime.instance().bidi_component_registry.get(CANVAS_COMPONENT)
    if registered is not None and registered.css_content and not registered.css_url:
        return registered.css_content
    css = _package_stylesheet()
    if css is None:
        return None
    css = "/* streamlit-drawable-canvas's stylesheet, sent with the component (ui/canvas.py) */\n" + css
    st.components.v2.component(CANVAS_COMPONENT, js="index-*.js", css=css, html=CANVAS_HTML, isolate_styles=True)
    return css


def draw_canvas(key: str, stroke_width: int) -> np.ndarray | None:
    """Show a 280x280 canvas; return what is drawn as RGBA (H, W, 4) uint8, or None before any drawing.

    Black strokes on a transparent background: the ink is the alpha channel.
    """
    from streamlit_drawable_canvas import st_canvas

    styled_before_drawn()
    result = st_canvas(
        stroke_width=stroke_width,
        stroke_color="#000000",
        background_color="",
        height=CANVAS_SIZE,
        width=CANVAS_SIZE,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        key=key,
    )
    return result.image_data


def digit_canvas(keys: CanvasKeys, pad: st.delta_generator.DeltaGenerator,
                 controls: st.delta_generator.DeltaGenerator) -> np.ndarray | None:
    """The canvas in `pad`, its stroke width and Clear button in `controls`; returns the drawing's RGBA or None."""
    st.session_state.setdefault(keys.round, 0)
    with controls:
        stroke = st.slider("Stroke width", 4, 40, DEFAULT_STROKE, key=keys.stroke)
        if st.button("Clear", icon=":material/delete:", key=keys.clear):
            st.session_state[keys.round] += 1  # a new key gives an empty canvas
    with pad:
        st.write("")  # room for the canvas's floating toolbar
        return draw_canvas(keys.canvas.format(st.session_state[keys.round]), stroke)
