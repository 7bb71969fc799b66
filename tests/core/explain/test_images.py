"""Display helpers for inside the network: filter images, heat colours, overlays, normalised maps, mosaics."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain.images import overlay


def test_overlay_blends_the_heat_colours_where_the_map_is_high():
    grey = np.full((4, 5, 1), 0.25, dtype=np.float32)
    heat = np.zeros((4, 5), dtype=np.float32)
    heat[0, 0] = 1.0
    out = overlay(grey, heat, alpha=1.0)
    assert out.shape == (4, 5, 3) and out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out[1:, :], 0.25)  # no heat: the grey image, unchanged
    np.testing.assert_allclose(out[0, 0], [1.0, 1.0, 1.0])  # full heat, full alpha: the scale's top (white)
    colour = overlay(np.ones((4, 5, 3)) * [0.0, 0.5, 1.0], heat, alpha=0.0)
    np.testing.assert_allclose(colour[2, 2], [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="must share height and width"):
        overlay(grey, np.zeros((5, 4)))
