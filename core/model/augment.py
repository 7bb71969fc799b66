"""Data augmentation: random flips, rotations, zooms and shifts, as Keras layers at the model's front.

Keras' preprocessing layers transform images only when called with
`training=True` (what `fit` does) and pass them through unchanged with
`training=False` (what `predict`, `evaluate` and ConvLab's direct calls
use), so a saved model stands alone and predicts deterministically. Call a
model directly with `training=False`: these layers default to training mode.

`Augmentation` is plain data (JSON-ready); TensorFlow is imported only to
build layers or show samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from core.checks import check_flag, check_scalar, from_mapping
from core.errors import ArchitectureError

if TYPE_CHECKING:
    import keras

ROTATION_MAX = 0.25  # a quarter turn either way
ZOOM_MAX = 0.5
SHIFT_MAX = 0.5
# "nearest" extends the edge pixels: black around MNIST-like digits, the picture's own edge colour
# elsewhere; Keras' default "reflect" mirrors strokes into the empty border of a shifted digit.
FILL_MODE = "nearest"
DIGIT_ROTATION_MAX = 0.05  # 18 degrees: beyond it, 6 and 9 (or 1 and 7) start to look alike

FLIP_LAYER = "augment_flip"
ROTATION_LAYER = "augment_rotation"
ZOOM_LAYER = "augment_zoom"
SHIFT_LAYER = "augment_shift"


@dataclass(frozen=True)
class Augmentation:
    """Random transformations applied to each training batch (all off by default)."""

    horizontal_flip: bool = False
    vertical_flip: bool = False
    rotation: float = 0.0  # fraction of a full turn, either way: 0.05 is up to 18 degrees
    zoom: float = 0.0  # fraction in or out: 0.1 is 90% to 110%
    shift: float = 0.0  # fraction of the height and of the width, either way

    def __post_init__(self) -> None:
        check_flag(self.horizontal_flip, "horizontal_flip", ArchitectureError)
        check_flag(self.vertical_flip, "vertical_flip", ArchitectureError)
        for name, highest in (("rotation", ROTATION_MAX), ("zoom", ZOOM_MAX), ("shift", SHIFT_MAX)):
            check_scalar(getattr(self, name), name, ArchitectureError, integer=False, lo=0, hi=highest,
                         what=f"in [0, {highest}]", kind_message="a number")

    @property
    def enabled(self) -> bool:
        return self.horizontal_flip or self.vertical_flip or self.rotation > 0 or self.zoom > 0 or self.shift > 0

    def describe(self) -> str:
        """One line: 'flip left-right, rotate up to 18°, zoom ±10%, shift ±10%' or 'none'."""
        parts = []
        if self.horizontal_flip or self.vertical_flip:
            parts.append(f"flip {_flip_words(self)}")
        if self.rotation:
            parts.append(f"rotate up to {self.rotation * 360:g}°")
        if self.zoom:
            parts.append(f"zoom ±{self.zoom:.0%}")
        if self.shift:
            parts.append(f"shift ±{self.shift:.0%}")
        return ", ".join(parts) or "none"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> "Augmentation":
        return from_mapping(cls, data, "augmentation", ArchitectureError)


def _flip_mode(aug: Augmentation) -> str:
    if aug.horizontal_flip and aug.vertical_flip:
        return "horizontal_and_vertical"
    return "horizontal" if aug.horizontal_flip else "vertical"


def _flip_words(aug: Augmentation) -> str:
    return {"horizontal_and_vertical": "left-right and up-down", "horizontal": "left-right",
            "vertical": "up-down"}[_flip_mode(aug)]


def digit_warning(aug: Augmentation) -> str | None:
    """Why `aug` is wrong for handwritten digits (MNIST-like), or None when it suits them."""
    problems = []
    if aug.horizontal_flip or aug.vertical_flip:
        problems.append("a flipped digit is not a digit (a mirrored 2 or 7 is not a 2 or 7)")
    if aug.rotation > DIGIT_ROTATION_MAX:
        problems.append(f"rotating by more than {DIGIT_ROTATION_MAX * 360:g}° makes 6 and 9, or 1 and 7, look alike")
    if not problems:
        return None
    return "For handwritten digits: " + "; ".join(problems) + "."


def suitable_for_digits(aug: Augmentation) -> bool:
    return digit_warning(aug) is None


def augmentation_table_rows(
    aug: Augmentation, input_shape: tuple[int, int, int]
) -> list[tuple[str, str, tuple[int, ...], int]]:
    """(name, kind, output shape, parameters) for each augmentation layer, as `augmentation_layers` names them."""
    shape = tuple(int(d) for d in input_shape)
    rows = []
    if aug.horizontal_flip or aug.vertical_flip:
        rows.append((FLIP_LAYER, f"RandomFlip ({_flip_words(aug)})", shape, 0))
    if aug.rotation:
        rows.append((ROTATION_LAYER, f"RandomRotation (±{aug.rotation * 360:g}°)", shape, 0))
    if aug.zoom:
        rows.append((ZOOM_LAYER, f"RandomZoom (±{aug.zoom:.0%})", shape, 0))
    if aug.shift:
        rows.append((SHIFT_LAYER, f"RandomTranslation (±{aug.shift:.0%})", shape, 0))
    return rows


def augmentation_layers(aug: Augmentation, seed: int = 0) -> list["keras.layers.Layer"]:
    """Keras preprocessing layers for `aug`, in order; empty when nothing is enabled.

    Each layer has its own seed derived from `seed`, so a run repeats its augmentations.
    """
    from keras import layers

    built: list[keras.layers.Layer] = []
    seeds = iter(range(seed * 10 + 1, seed * 10 + 10))
    if aug.horizontal_flip or aug.vertical_flip:
        built.append(layers.RandomFlip(_flip_mode(aug), seed=next(seeds), name=FLIP_LAYER))
    if aug.rotation:
        built.append(layers.RandomRotation(aug.rotation, fill_mode=FILL_MODE, seed=next(seeds), name=ROTATION_LAYER))
    if aug.zoom:
        built.append(layers.RandomZoom(aug.zoom, fill_mode=FILL_MODE, seed=next(seeds), name=ZOOM_LAYER))
    if aug.shift:
        built.append(layers.RandomTranslation(aug.shift, aug.shift, fill_mode=FILL_MODE, seed=next(seeds),
                                              name=SHIFT_LAYER))
    return built


def augment_samples(images: np.ndarray, aug: Augmentation, seed: int = 0, copies: int = 4) -> np.ndarray:
    """`copies` augmented versions of each image: (N, copies, *image shape), float32 in [0, 1].

    Images are (N, H, W) or (N, H, W, C), uint8 0..255 or float in [0, 1]. The
    same seed gives the same samples; with nothing enabled, the copies equal the input.
    """
    from core.data.dataset import preprocess_images

    if copies < 1:
        raise ArchitectureError(f"copies == {copies}, must be >= 1.")
    images = np.asarray(images)
    batch = preprocess_images(images, what="sample images")  # (N, H, W, C) float32 in [0, 1]
    outputs = []
    chain = augmentation_layers(aug, seed)
    for _ in range(copies):
        x = batch
        for layer in chain:
            x = layer(x, training=True)
        outputs.append(np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0))
    stacked = np.stack(outputs, axis=1)
    return stacked.reshape(len(images), copies, *images.shape[1:])
