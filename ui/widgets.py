"""Small rendering helpers shared by pages."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import streamlit as st

from core.errors import ConvLabError


def upscale(image: np.ndarray, size: int = 84) -> np.ndarray:
    """Nearest-neighbour upscaling, so 28x28 pixels show as crisp blocks rather than blur."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    factor = max(1, size // max(image.shape[:2]))
    return np.clip(np.repeat(np.repeat(image, factor, axis=0), factor, axis=1), 0.0, 1.0)


def image_grid(images: Sequence[np.ndarray], captions: Sequence[str], size: int = 84) -> None:
    """A flowing grid of small images with captions."""
    if len(images) == 0:
        st.caption("No images to show.")
        return
    st.image([upscale(image, size) for image in images], caption=list(captions), width=size, clamp=True)


def show_error(error: ConvLabError | Exception, prefix: str = "") -> None:
    """A user-facing error: the message, never a traceback."""
    st.error(f"{prefix}{error}", icon=":material/error:")
