"""The drawing canvas, wrapped in one function so page tests can replace it."""

from __future__ import annotations

import numpy as np

CANVAS_SIZE = 280


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
