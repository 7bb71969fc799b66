"""Display helpers for inside the network (NumPy only): heat colours, overlays, normalised maps, mosaics, filters."""

from __future__ import annotations

import numpy as np


def kernel_images(weights: np.ndarray) -> tuple[np.ndarray, float]:
    """Kernels as images on one shared symmetric scale: (0.5 + 0.5 * w / max|w|, max|w|); 0.5 is a zero weight.

    The one rule for showing filters (here and on the Training page): a shared
    scale lets filters be compared (a weak filter looks faint), and the
    symmetric one keeps 0 in the middle, so the sign of every weight shows.
    """
    weights = np.asarray(weights, dtype=np.float32)
    scale = float(np.abs(weights).max()) if weights.size else 0.0
    images = 0.5 + 0.5 * weights / scale if scale > 0 else np.full_like(weights, 0.5)
    return np.clip(images, 0.0, 1.0).astype(np.float32), scale


# ---------------------------------------------------------------------------------------------
# Display helpers (numpy only)
# ---------------------------------------------------------------------------------------------

# anchor colours of a black -> red -> yellow -> white heat scale
_HEAT = np.array([[0.0, 0.0, 0.0], [0.85, 0.1, 0.05], [1.0, 0.85, 0.0], [1.0, 1.0, 1.0]], dtype=np.float32)


def heat_colours(values: np.ndarray) -> np.ndarray:
    """(..., 3) RGB in [0, 1] for values in [0, 1] on a black-red-yellow-white scale."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0) * (len(_HEAT) - 1)
    low = np.minimum(v.astype(np.int64), len(_HEAT) - 2)
    frac = (v - low)[..., None]
    return _HEAT[low] * (1 - frac) + _HEAT[low + 1] * frac


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """An (H, W, 3) RGB image in [0, 1]: the heat colours blended over the image where the map is high.

    Each pixel mixes in the heat colour by alpha * heatmap, so unimportant
    pixels show the image unchanged. A grey (H, W) or (H, W, 1) image becomes
    grey RGB; the heatmap must have the image's height and width.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha == {alpha}, must be in [0, 1].")
    rgb = np.asarray(image, dtype=np.float32)
    if rgb.ndim == 3 and rgb.shape[2] == 1:
        rgb = rgb[:, :, 0]
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    heat = np.asarray(heatmap, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or heat.shape != rgb.shape[:2]:
        raise ValueError(f"image {np.shape(image)} and heatmap {np.shape(heatmap)} must share height and width.")
    weight = (alpha * np.clip(heat, 0.0, 1.0))[..., None]
    return np.clip((1 - weight) * np.clip(rgb, 0.0, 1.0) + weight * heat_colours(heat), 0.0, 1.0)


def normalise_maps(maps: np.ndarray) -> np.ndarray:
    """(H, W, C) maps each scaled to [0, 1] by its own min and max (a flat map becomes 0)."""
    maps = np.asarray(maps, dtype=np.float32)
    low = maps.min(axis=(0, 1), keepdims=True)
    span = maps.max(axis=(0, 1), keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0)


def mosaic(maps: np.ndarray, columns: int, gap: int = 1, fill: float = np.nan) -> np.ndarray:
    """Tile (H, W, C) maps into one (rows*(H+gap)-gap, columns*(W+gap)-gap) array, channel 0 top left."""
    height, width, count = maps.shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    out = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), fill, dtype=np.float32)
    for c in range(count):
        r, k = divmod(c, columns)
        out[r * (height + gap):r * (height + gap) + height, k * (width + gap):k * (width + gap) + width] = maps[:, :, c]
    return out
