"""Turn a drawing (or an uploaded picture) into what the network sees.

MNIST digits were size-normalised into a 20x20 box keeping their aspect
ratio, then centred in 28x28 by their centre of mass. Doing the same to a
drawing is what makes canvas predictions match test-set accuracy: ink ->
crop to its bounding box -> longer side 20 px -> pad to 28x28 -> shift the
centre of mass to the centre -> scale to [0, 1] as in training.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from scipy import ndimage

from core import limits
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
    grey = _luminance(rgba[..., :3])
    ink = _contrast_with_border(grey)
    if rgba.shape[2] == 4 and ink.max() < INK_THRESHOLD and grey.mean() < 0.5:
        # Opaque, uniform and dark: the canvas's black pen has covered every pixel
        # (a blank canvas is transparent). A uniform light image is blank paper.
        return np.ones(grey.shape, dtype=np.float32)
    return ink


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)) / 255.0


def _contrast_with_border(grey: np.ndarray) -> np.ndarray:
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
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


@dataclass(frozen=True)
class PictureSteps:
    """An uploaded picture on its way to the model."""

    original: np.ndarray
    resized: np.ndarray  # (H, W, C) float32 in [0, 1], what the network sees
    inverted: bool

    @property
    def model_input(self) -> np.ndarray:
        return self.resized[np.newaxis].astype(np.float32)


def _decode(data: bytes, name: str) -> Image.Image:
    """An uploaded image file as upright RGB, or a DrawingError saying why not."""
    try:
        with Image.open(io.BytesIO(data)) as picture:
            _check_picture_size(picture, name)
            if max(picture.size) > limits.MAX_PICTURE_SIDE:  # before any float copy of a photo's pixels
                picture.thumbnail((limits.MAX_PICTURE_SIDE, limits.MAX_PICTURE_SIDE), Image.Resampling.LANCZOS)
            picture.load()
            picture = _flatten(ImageOps.exif_transpose(picture))
    except DrawingError:
        raise
    except UnidentifiedImageError:
        raise DrawingError(f"{name} is not an image that can be read (PNG, JPEG, BMP, GIF or WebP).") from None
    except Image.DecompressionBombError:
        raise DrawingError(f"{name} is too large to read (its header claims over "
                           f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels).") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DrawingError(f"{name} is damaged or incomplete and cannot be read: {exc}") from None
    return picture


def _check_picture_size(picture: Image.Image, name: str) -> None:
    """Refuse from the header a picture too large to decode (PIL only refuses above 179 megapixels)."""
    width, height = picture.size
    if width * height > limits.MAX_PICTURE_PIXELS:
        raise DrawingError(
            f"{name} is too large to read: {width:,}x{height:,} pixels; ConvLab reads pictures of at most "
            f"{limits.MAX_PICTURE_PIXELS:,} pixels."
        )


def read_picture(data: bytes, input_shape: tuple[int, int, int], name: str = "the file") -> PictureSteps:
    """Decode an image file and fit it to `input_shape` (grey or colour, light objects on dark).

    Grey datasets (MNIST, Fashion-MNIST) show light objects on black, so a
    picture on a light background is inverted.
    """
    picture = _decode(data, name)
    height, width, channels = input_shape
    original = np.asarray(picture)
    resized_rgb = np.asarray(picture.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    if channels == 3:
        return PictureSteps(original, resized_rgb, inverted=False)
    grey = resized_rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    inverted = bool(np.median(border) > 0.5)
    if inverted:
        grey = 1.0 - grey
    return PictureSteps(original, np.clip(grey, 0, 1)[..., np.newaxis], inverted=inverted)


def read_digit_picture(data: bytes, name: str = "the file") -> DrawingSteps | None:
    """A photo or scan of a handwritten digit through the same steps as a drawing; None if it holds no ink.

    The ink is whatever contrasts with the picture's border (dark on light or light on dark).
    """
    rgb = np.asarray(_decode(data, name))
    return preprocess_ink(_contrast_with_border(_luminance(rgb)))


def _flatten(picture: Image.Image) -> Image.Image:
    """RGB; transparency is laid over white for dark content, black for light content.

    `convert("RGB")` alone turns a transparent background black, so a picture
    exported from a transparent canvas (black strokes) would read as blank.
    """
    if picture.mode not in ("RGBA", "LA", "PA", "La", "RGBa") and "transparency" not in picture.info:
        return picture.convert("RGB")
    rgba = picture.convert("RGBA")
    pixels = np.asarray(rgba)
    alpha = pixels[..., 3]
    if alpha.min() == 255:
        return rgba.convert("RGB")
    visible = alpha >= 128
    dark = not visible.any() or float(_luminance(pixels[..., :3][visible]).mean()) < 0.5
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if dark else (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


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
