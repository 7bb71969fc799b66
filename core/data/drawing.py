"""Turn a drawing (or a photo of a digit) into what a digit network sees, and choose a picture's path.

MNIST digits were size-normalised into a 20x20 box keeping their aspect
ratio, then centred in 28x28 by their centre of mass. Doing the same to a
drawing is what makes canvas predictions match test-set accuracy: ink ->
crop to its bounding box -> longer side 20 px -> pad to 28x28 -> shift the
centre of mass to the centre -> scale to [0, 1] as in training.

`picture_input` is the one choice of how an uploaded picture reaches a
model (the Draw & classify page and `python -m core classify` both ask it):
a dataset of image files preprocesses it as its training images were, a
digit dataset as a drawing, any other dataset by resizing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from core.data.dataset import Dataset
from core.data.folders import image_folder_options
from core.data.pictures import (
    ImageFolderOptions,
    background_level,
    decode_picture,
    luminance,
    prepare_picture,
    read_picture,
)
from core.errors import DrawingError

INK_THRESHOLD = 0.1  # ink below this (of full strength) is ignored: antialiasing haze, stray specks
BOX = 20
FIELD = 28


@dataclass(frozen=True)
class DrawingSteps:
    """Each step of the preprocessing as a float image in [0, 1] (ink is 1)."""

    ink: np.ndarray
    cropped: np.ndarray
    resized: np.ndarray
    padded: np.ndarray
    centered: np.ndarray
    coverage: float  # share of the canvas covered by ink

    @property
    def model_input(self) -> np.ndarray:
        """(1, 28, 28, 1) float32, as the model was trained on."""
        return self.centered.astype(np.float32)[np.newaxis, :, :, np.newaxis]

    def named_steps(self) -> list[tuple[str, np.ndarray]]:
        return [
            ("1. ink", self.ink),
            ("2. cropped to the ink", self.cropped),
            ("3. longer side 20 px", self.resized),
            ("4. padded to 28x28", self.padded),
            ("5. centred by mass", self.centered),
        ]


def ink_from_rgba(rgba: np.ndarray) -> np.ndarray:
    """Ink strength in [0, 1] from an RGBA canvas image.

    Strokes on a transparent canvas carry their ink in the alpha channel; an
    opaque canvas (alpha all 255) is read by its contrast with its border,
    which is taken to be background. An opaque RGBA canvas with no contrast
    at all is read as covered in ink when it is dark (the canvas's black pen
    over every pixel) and as blank when it is light.
    """
    rgba = np.asarray(rgba)
    if rgba.ndim != 3 or rgba.shape[2] not in (3, 4):
        raise DrawingError(f"expected an RGBA image of shape (H, W, 4), got {rgba.shape}.")
    if rgba.shape[2] == 4 and (rgba[..., 3] < 255).any():
        return rgba[..., 3].astype(np.float32) / 255.0
    grey = luminance(rgba[..., :3])
    ink = _contrast_with_border(grey)
    if rgba.shape[2] == 4 and ink.max() < INK_THRESHOLD and grey.mean() < 0.5:
        # Opaque, uniform and dark: the canvas's black pen has covered every pixel
        # (a blank canvas is transparent). A uniform light image is blank paper.
        return np.ones(grey.shape, dtype=np.float32)
    return ink


def _contrast_with_border(grey: np.ndarray) -> np.ndarray:
    background = background_level(grey)
    return np.clip(np.abs(grey - background) / max(background, 1.0 - background, 1e-6), 0.0, 1.0)


def preprocess_ink(ink: np.ndarray) -> DrawingSteps | None:
    """MNIST-style preprocessing of an ink image; None when there is no ink to read."""
    ink = np.clip(np.asarray(ink, dtype=np.float32), 0.0, 1.0)
    mask = ink >= INK_THRESHOLD
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    cropped = ink[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    height, width = cropped.shape
    scale = BOX / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    image = Image.fromarray(np.rint(cropped * 255).astype(np.uint8))
    resized = np.asarray(image.resize((new_w, new_h), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    resized = np.clip(resized, 0.0, 1.0)
    padded = np.zeros((FIELD, FIELD), dtype=np.float32)
    top, left = (FIELD - new_h) // 2, (FIELD - new_w) // 2
    padded[top: top + new_h, left: left + new_w] = resized
    centered = _center_by_mass(padded)
    return DrawingSteps(ink, cropped, resized, padded, centered, coverage=float(mask.mean()))


def _center_by_mass(image: np.ndarray) -> np.ndarray:
    if image.sum() <= 0:
        return image
    cy, cx = ndimage.center_of_mass(image)
    shift = (np.round(FIELD / 2 - cy), np.round(FIELD / 2 - cx))
    return np.clip(ndimage.shift(image, shift, order=0, mode="constant", cval=0.0), 0.0, 1.0)


def preprocess_drawing(rgba: np.ndarray | None) -> DrawingSteps | None:
    """A canvas's RGBA image to model input; None when nothing (or no ink) is drawn."""
    if rgba is None:
        return None
    return preprocess_ink(ink_from_rgba(rgba))


def read_digit_picture(data: bytes, name: str = "the file") -> DrawingSteps | None:
    """A photo or scan of a handwritten digit through the same steps as a drawing; None if it holds no ink.

    The ink is whatever contrasts with the picture's border (dark on light or light on dark).
    """
    rgb = np.asarray(decode_picture(data, name))
    return preprocess_ink(_contrast_with_border(luminance(rgb)))


def scale_drawing_to(steps: DrawingSteps, input_shape: tuple[int, int, int]) -> np.ndarray:
    """Model input for a digit model whose images are not 28x28 (for example the 8x8 digits)."""
    height, width, channels = input_shape
    if (height, width) == (FIELD, FIELD):
        image = steps.centered
    else:
        pil = Image.fromarray(np.rint(steps.centered * 255).astype(np.uint8))
        image = np.asarray(pil.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    return np.repeat(image[np.newaxis, :, :, np.newaxis], channels, axis=3)


@dataclass(frozen=True)
class PictureInput:
    """An uploaded picture ready for a model: its input, and what to show of the way there."""

    model_input: np.ndarray  # (1, H, W, C) float32 in [0, 1]
    original: np.ndarray | None = None  # the picture as decoded (upright RGB), to show beside
    seen: np.ndarray | None = None  # what the network sees, (H, W) or (H, W, C) float in [0, 1]
    caption: str = ""  # how it was preprocessed, in words
    steps: DrawingSteps | None = None  # a digit picture: each step, as for a drawing


@dataclass(frozen=True)
class PictureTarget:
    """What decides how a picture reaches a model (plain data, so another process can do it): the image-file
    options of a dataset made of image files, whether it holds handwritten digits, and its input shape."""

    options: ImageFolderOptions | None
    handwritten_digits: bool
    input_shape: tuple[int, int, int]

    @classmethod
    def of(cls, dataset: Dataset) -> "PictureTarget":
        return cls(image_folder_options(dataset), dataset.handwritten_digits, dataset.input_shape)

    def to_dict(self) -> dict:
        return {"options": None if self.options is None else self.options.to_dict(),
                "handwritten_digits": self.handwritten_digits, "input_shape": list(self.input_shape)}

    @classmethod
    def from_dict(cls, data: dict) -> "PictureTarget":
        options = data.get("options")
        return cls(None if options is None else ImageFolderOptions.from_dict(options),
                   bool(data.get("handwritten_digits")), tuple(int(d) for d in data["input_shape"]))  # type: ignore[arg-type]


def picture_input(data: bytes, dataset: "Dataset | PictureTarget", name: str = "the picture") -> PictureInput | None:
    """`data` (an image file) as input for a model trained on `dataset`; None for a digit picture with no ink.

    Raises DrawingError (`core.data.pictures.Unreadable`) when the file cannot be read.
    """
    target = dataset if isinstance(dataset, PictureTarget) else PictureTarget.of(dataset)
    options = target.options
    if options is not None:  # your own images: exactly the preprocessing the training images had
        prepared = prepare_picture(data, options, name=name)
        caption = (f"fitted into {options.image_size}x{options.image_size}, {options.color_mode}"
                   + (", inverted" if prepared.inverted else ""))
        return PictureInput(prepared.model_input, prepared.original, prepared.model_input[0], caption)
    if target.handwritten_digits:  # a photo of a digit gets the same crop-and-centre as a drawing
        steps = read_digit_picture(data, name=name)
        if steps is None:
            return None
        return PictureInput(scale_drawing_to(steps, target.input_shape), None, steps.centered,
                            "cropped, fitted in 20x20 and centred by mass, as MNIST", steps)
    seen = read_picture(data, target.input_shape, name=name)
    h, w, _ = target.input_shape
    return PictureInput(seen.model_input, seen.original, seen.resized,
                        f"resized to {h}x{w}" + (", inverted" if seen.inverted else ""))
