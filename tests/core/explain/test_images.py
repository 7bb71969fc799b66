"""Display helpers for inside the network: filter images, heat colours, overlays, normalised maps, mosaics."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain.images import heat_colours, kernel_images, mosaic, normalise_maps, overlay


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


def test_kernels_share_one_symmetric_scale_with_zero_in_the_middle():
    weights = np.array([[[-2.0, 1.0], [0.0, 0.5]]], dtype=np.float32)
    images, scale = kernel_images(weights)
    assert scale == 2.0 and images.dtype == np.float32
    np.testing.assert_allclose(images, [[[0.0, 0.75], [0.5, 0.625]]])  # -max is black, 0 is mid-grey
    blank, zero = kernel_images(np.zeros((3, 3, 1, 2)))
    assert zero == 0.0 and np.all(blank == 0.5)  # untrained zeros: grey, no division by zero


def test_the_heat_scale_runs_black_red_yellow_white():
    colours = heat_colours(np.array([0.0, 1 / 3, 2 / 3, 1.0, -5.0, 7.0]))
    np.testing.assert_allclose(colours[:4], [[0, 0, 0], [0.85, 0.1, 0.05], [1.0, 0.85, 0.0], [1, 1, 1]], atol=1e-6)
    np.testing.assert_allclose(colours[4:], [[0, 0, 0], [1, 1, 1]])  # clipped to the scale's ends
    np.testing.assert_allclose(heat_colours(np.array([1 / 6]))[0], [0.425, 0.05, 0.025], atol=1e-6)  # in between


def test_each_map_is_normalised_on_its_own_range():
    maps = np.stack([np.array([[1.0, 3.0], [5.0, 9.0]]), np.full((2, 2), 4.0)], axis=2)
    out = normalise_maps(maps)
    np.testing.assert_allclose(out[:, :, 0], [[0.0, 0.25], [0.5, 1.0]])
    np.testing.assert_array_equal(out[:, :, 1], 0.0)  # a flat map: 0, not NaN


def test_a_mosaic_tiles_the_maps_row_by_row_with_gaps():
    maps = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)  # five 2x3 maps
    tiled = mosaic(maps, columns=2, gap=1)
    assert tiled.shape == (3 * 3 - 1, 2 * 4 - 1)
    np.testing.assert_array_equal(tiled[0:2, 0:3], maps[:, :, 0])
    np.testing.assert_array_equal(tiled[0:2, 4:7], maps[:, :, 1])
    np.testing.assert_array_equal(tiled[6:8, 0:3], maps[:, :, 4])
    assert np.isnan(tiled[2]).all() and np.isnan(tiled[:, 3]).all() and np.isnan(tiled[6:8, 4:7]).all()
    assert mosaic(maps, columns=10).shape == (2, 5 * 4 - 1)  # never more columns than maps
