"""The drawing canvas: one widget (canvas, stroke width, Clear) for Draw & classify and Inside the network.

`draw_canvas` is the one call into streamlit-drawable-canvas, so page tests
can replace it (AppTest does not render custom components).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui.state import CanvasKeys

CANVAS_SIZE = 280
DEFAULT_STROKE = CANVAS_SIZE // 15  # thin strokes vanish when shrunk to 28x28


def draw_canvas(key: str, stroke_width: int) -> np.ndarray | None:
    """Show a 280x280 canvas; return what is drawn as RGBA (H, W, 4) uint8, or None before any drawing.

    Black strokes on a transparent background: the ink is the alpha channel.
    """
    from streamlit_drawable_canvas import st_canvas

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
