"""Small rendering helpers shared by pages."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import streamlit as st
from PIL import Image

from core.errors import ConvLabError


def upscale(image: np.ndarray, size: int = 84) -> np.ndarray:
    """Fit an image in a size x size square: nearest-neighbour, so small pixels show as crisp blocks."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    height, width = image.shape[:2]
    side = max(height, width)
    square = np.zeros((side, side, *image.shape[2:]), dtype=np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    square[top: top + height, left: left + width] = image
    picture = Image.fromarray(np.rint(square * 255).astype(np.uint8))
    return np.asarray(picture.resize((size, size), Image.Resampling.NEAREST), dtype=np.float32) / 255.0


def image_grid(images: Sequence[np.ndarray], captions: Sequence[str], size: int = 84, per_row: int = 10) -> None:
    """Rows of equally sized small images with captions."""
    if len(images) == 0:
        st.caption("No images to show.")
        return
    for start in range(0, len(images), per_row):
        for column, image, caption in zip(st.columns(per_row), images[start:start + per_row],
                                          captions[start:start + per_row]):
            column.image(upscale(image, size), caption=caption, width=size, clamp=True)


def show_error(error: ConvLabError | Exception, prefix: str = "") -> None:
    """A user-facing error: the message, never a traceback."""
    st.error(f"{prefix}{error}", icon=":material/error:")
