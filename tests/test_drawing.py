"""Canvas and picture preprocessing (core.data.drawing) and single-image inference (core.evaluation.inference)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy import ndimage

from core.data.drawing import (
    FIELD,
    DrawingSteps,
    ink_from_rgba,
    preprocess_drawing,
    preprocess_ink,
    read_digit_picture,
    scale_drawing_to,
)
from core.data.pictures import read_picture
from core.errors import DrawingError

CANVAS = 280
PEN = 19  # about 1/15 of the canvas width, the app's default pen


def ink_image(strokes: list[list[tuple[int, int]]], width: int = PEN, size: int = CANVAS) -> np.ndarray:
    """Ink strength (uint8, 255 = full) of polylines drawn with a round pen."""
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    for points in strokes:
        draw.line(points, fill=255, width=width, joint="curve")
        r = width // 2
        for x, y in (points[0], points[-1]):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(image)


def transparent_canvas(ink: np.ndarray, colour: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """What streamlit-drawable-canvas returns: strokes in `colour`, the ink in alpha, RGBA uint8."""
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., :3] = np.where(ink[..., np.newaxis] > 0, np.array(colour, dtype=np.uint8), 0)
    rgba[..., 3] = ink
    return rgba


def opaque_canvas(ink: np.ndarray, light_background: bool) -> np.ndarray:
    """An opaque canvas (alpha all 255): dark strokes on white, or white strokes on black."""
    grey = 255 - ink if light_background else ink
    rgba = np.full((*ink.shape, 4), 255, dtype=np.uint8)
    rgba[..., :3] = grey[..., np.newaxis]
    return rgba


# A large '7' in the top-right of the canvas: about 120 px wide, 230 px tall.
SEVEN = [[(140, 25), (265, 25), (185, 255)]]
ONE_SMALL = [[(40, 40), (40, 110)]]


def ink_box(image: np.ndarray, threshold: float = 0.1) -> tuple[int, int]:
    """Height and width of the bounding box of the pixels at or above `threshold`."""
    rows = np.flatnonzero((image >= threshold).any(axis=1))
    cols = np.flatnonzero((image >= threshold).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def assert_mnist_like(steps: DrawingSteps | None) -> None:
    """28x28 in [0, 1], longer side of the ink about 20 px, centre of mass within 1 px of (14, 14)."""
    assert steps is not None
    image = steps.centered
    assert image.shape == (FIELD, FIELD)
    assert np.isfinite(image).all()
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert 19 <= max(ink_box(image)) <= 21
    cy, cx = ndimage.center_of_mass(image)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0
    assert steps.model_input.shape == (1, FIELD, FIELD, 1)
    assert steps.model_input.dtype == np.float32


# --- the canvas --------------------------------------------------------------------

def test_large_off_centre_digit_is_sized_and_centred_like_mnist():
    ink = ink_image(SEVEN)
    steps = preprocess_drawing(transparent_canvas(ink))
    assert_mnist_like(steps)
    assert max(steps.resized.shape) == 20
    assert steps.padded.shape == (FIELD, FIELD)
    assert steps.coverage == pytest.approx((ink >= 0.1 * 255).mean())
    assert steps.named_steps()[0][0] == "1. ink"


def test_a_small_digit_in_a_corner_is_scaled_up_to_the_same_box():
    steps = preprocess_drawing(transparent_canvas(ink_image(ONE_SMALL, width=9)))
    assert_mnist_like(steps)
    height, width = ink_box(steps.centered)
    assert height >= 19 and width < 10  # a '1' keeps its aspect ratio: tall and thin


def test_where_the_digit_is_drawn_does_not_matter():
    ink = ink_image(SEVEN)
    moved = np.zeros_like(ink)
    moved[:-10, :-130] = ink[10:, 130:]  # the same strokes, up and to the left
    assert moved.sum() == ink.sum()  # nothing cut off
    a = preprocess_drawing(transparent_canvas(ink))
    b = preprocess_drawing(transparent_canvas(moved))
    np.testing.assert_allclose(a.centered, b.centered)


def test_the_pen_colour_does_not_matter_on_a_transparent_canvas():
    ink = ink_image(SEVEN)
    black = preprocess_drawing(transparent_canvas(ink))
    blue = preprocess_drawing(transparent_canvas(ink, colour=(30, 60, 220)))
    np.testing.assert_allclose(black.centered, blue.centered)


@pytest.mark.parametrize("rgba", [None, np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8)], ids=["none", "transparent"])
def test_nothing_drawn_gives_none(rgba):
    assert preprocess_drawing(rgba) is None


def test_faint_haze_alone_is_not_ink():
    rgba = np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8)
    rgba[100:120, 100:120, 3] = 10  # below the ink threshold
    assert preprocess_drawing(rgba) is None


def test_a_blank_opaque_white_canvas_gives_none():
    assert preprocess_drawing(opaque_canvas(np.zeros((CANVAS, CANVAS), dtype=np.uint8), light_background=True)) is None


@pytest.mark.parametrize("size", [1, 4], ids=["one-pixel", "four-pixels"])
def test_a_single_dot_is_handled(size):
    rgba = np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8)
    rgba[200: 200 + size, 30: 30 + size, 3] = 255
    steps = preprocess_drawing(rgba)
    assert steps is not None
    assert np.isfinite(steps.centered).all()
    assert steps.centered.max() > 0.5
    cy, cx = ndimage.center_of_mass(steps.centered)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0


def test_an_all_ink_canvas_is_handled():
    rgba = np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8)
    rgba[..., 3] = 255  # black pen over every pixel
    steps = preprocess_drawing(rgba)
    assert steps is not None
    assert steps.coverage == pytest.approx(1.0)
    assert np.isfinite(steps.centered).all()
    assert ink_box(steps.centered) == (20, 20)
    cy, cx = ndimage.center_of_mass(steps.centered)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0


@pytest.mark.parametrize("light_background", [True, False], ids=["dark-on-white", "white-on-black"])
def test_an_opaque_canvas_is_read_by_contrast(light_background):
    ink = ink_image(SEVEN)
    from_alpha = preprocess_drawing(transparent_canvas(ink))
    from_contrast = preprocess_drawing(opaque_canvas(ink, light_background))
    assert_mnist_like(from_contrast)
    np.testing.assert_allclose(from_contrast.centered, from_alpha.centered, atol=0.02)
    np.testing.assert_allclose(ink_from_rgba(opaque_canvas(ink, light_background)), ink / 255.0, atol=0.01)


def test_an_opaque_rgb_image_is_read_by_contrast():
    ink = ink_image(SEVEN)
    rgb = opaque_canvas(ink, light_background=True)[..., :3]
    np.testing.assert_allclose(preprocess_drawing(rgb).centered, preprocess_drawing(transparent_canvas(ink)).centered,
                               atol=0.02)


@pytest.mark.parametrize(
    "shape",
    [(CANVAS, CANVAS), (CANVAS, CANVAS, 2), (CANVAS, CANVAS, 5), (CANVAS, CANVAS, 4, 1), (CANVAS,)],
)
def test_wrong_shape_is_refused(shape):
    with pytest.raises(DrawingError, match=r"expected an RGBA image of shape \(H, W, 4\), got"):
        preprocess_drawing(np.zeros(shape, dtype=np.uint8))


def test_preprocess_ink_takes_float_ink_and_clips_it():
    ink = ink_image(SEVEN).astype(np.float32) / 255.0 * 1.5 - 0.2  # out of [0, 1] on both sides
    steps = preprocess_ink(ink)
    assert_mnist_like(steps)
    assert steps.ink.min() >= 0.0 and steps.ink.max() <= 1.0


@pytest.mark.parametrize("input_shape", [(8, 8, 1), (28, 28, 1), (28, 28, 3), (32, 32, 3)])
def test_scale_drawing_to_other_input_shapes(input_shape):
    steps = preprocess_drawing(transparent_canvas(ink_image(SEVEN)))
    x = scale_drawing_to(steps, input_shape)
    assert x.shape == (1, *input_shape) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x.max() > 0.5
    np.testing.assert_array_equal(x[..., 0], x[..., -1])  # grey copied to every channel


# --- uploaded pictures ---------------------------------------------------------------

def encode(array: np.ndarray, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **params)
    return buffer.getvalue()


def paper_digit(dark_on_light: bool = True) -> np.ndarray:
    """A 120x90 grey photo-like picture of a thick bar: dark ink on white paper (or the reverse)."""
    picture = np.full((120, 90), 250, dtype=np.uint8)
    picture[20:100, 35:55] = 15
    return picture if dark_on_light else 255 - picture


def test_dark_object_on_white_is_inverted_for_a_grey_model():
    steps = read_picture(encode(paper_digit()), (28, 28, 1), name="digit.png")
    assert steps.inverted
    assert steps.original.shape == (120, 90, 3)
    assert steps.resized.shape == (28, 28, 1) and steps.resized.dtype == np.float32
    assert steps.model_input.shape == (1, 28, 28, 1)
    assert steps.resized.min() >= 0.0 and steps.resized.max() <= 1.0
    assert steps.resized[14, 14, 0] > 0.9  # the ink is bright, as in MNIST
    assert steps.resized[1, 1, 0] < 0.05  # the paper is black


def test_light_object_on_black_is_not_inverted():
    steps = read_picture(encode(paper_digit(dark_on_light=False)), (28, 28, 1))
    assert not steps.inverted
    assert steps.resized[14, 14, 0] > 0.9 and steps.resized[1, 1, 0] < 0.05


def test_colour_input_shape_keeps_rgb():
    picture = np.zeros((64, 48, 3), dtype=np.uint8)
    picture[...] = (20, 40, 200)  # blue background
    picture[16:48, 12:36] = (230, 30, 20)  # a red square
    steps = read_picture(encode(picture), (32, 32, 3))
    assert not steps.inverted
    assert steps.resized.shape == (32, 32, 3)
    np.testing.assert_allclose(steps.resized[16, 16], np.array([230, 30, 20]) / 255, atol=0.02)
    np.testing.assert_allclose(steps.resized[1, 1], np.array([20, 40, 200]) / 255, atol=0.02)


def test_a_transparent_png_with_black_strokes_is_not_blank():
    """A drawing saved from a transparent canvas: its background must not turn black on black."""
    rgba = transparent_canvas(ink_image(SEVEN))
    steps = read_picture(encode(rgba), (28, 28, 1), name="canvas.png")
    assert steps.inverted
    assert steps.resized.max() > 0.8  # the strokes show
    assert steps.resized[27, 0, 0] < 0.05  # the transparent background reads as background


def test_a_transparent_png_with_white_strokes_is_not_blank():
    rgba = transparent_canvas(ink_image(SEVEN), colour=(255, 255, 255))
    steps = read_picture(encode(rgba), (28, 28, 1))
    assert not steps.inverted
    assert steps.resized.max() > 0.8 and steps.resized[27, 0, 0] < 0.05


def test_exif_orientation_is_applied():
    picture = np.full((20, 40, 3), 255, dtype=np.uint8)  # 40 wide, 20 tall as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    steps = read_picture(encode(picture, "JPEG", exif=exif), (28, 28, 1))
    assert steps.original.shape[:2] == (40, 20)


def _truncated_png() -> bytes:
    data = encode(paper_digit())
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is not an image that can be read"),
        (b"this is not a picture at all", "is not an image that can be read"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "is not an image that can be read"),
        (_truncated_png(), "is damaged or incomplete"),
    ],
    ids=["empty", "text", "png-signature-only", "truncated-png"],
)
def test_corrupt_bytes_raise_a_clear_error(data, message):
    with pytest.raises(DrawingError, match=f"^photo.png {message}") as info:
        read_picture(data, (28, 28, 1), name="photo.png")
    assert "BytesIO" not in str(info.value)  # no object reprs in a message meant for the user


# --- the predictor --------------------------------------------------------------------

@pytest.fixture(scope="module")
def fast_model():
    """An untrained `fast` model: batch normalisation and dropout make training=False matter."""
    from core.model.architecture import PRESETS
    from core.model.build import build_model

    return build_model(PRESETS["fast"], (28, 28, 1), 10, seed=0)


@pytest.fixture(scope="module")
def predictor(fast_model):
    from core.evaluation.inference import Predictor

    return Predictor(fast_model)


def test_predictor_matches_model_predict(fast_model, predictor):
    x = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    probabilities = predictor(x)
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, fast_model.predict(x, verbose=0), atol=1e-5)


def test_predictor_takes_a_preprocessed_drawing(fast_model, predictor):
    steps = preprocess_drawing(transparent_canvas(ink_image(SEVEN)))
    probabilities = predictor(steps.model_input)
    assert probabilities.shape == (1, 10)
    assert np.isfinite(probabilities).all()
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(probabilities, fast_model.predict(steps.model_input, verbose=0), atol=1e-5)


def test_predictor_accepts_other_dtypes(predictor):
    x = np.zeros((2, 28, 28, 1), dtype=np.float64)
    assert predictor(x).dtype == np.float32


@pytest.mark.parametrize("shape", [(28, 28, 1), (1, 28, 28), (1, 28, 28, 3), (1, 32, 32, 1)])
def test_predictor_refuses_a_wrong_shape(predictor, shape):
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 28, 28, 1\), got"):
        predictor(np.zeros(shape, dtype=np.float32))


@pytest.mark.parametrize("dark_on_light", [True, False])
def test_a_photo_of_a_digit_gets_the_drawing_steps(dark_on_light):
    steps = read_digit_picture(encode(paper_digit(dark_on_light)), name="photo.png")
    assert_mnist_like(steps)


def test_a_blank_photo_has_no_digit():
    assert read_digit_picture(encode(np.full((50, 50), 240, np.uint8)), name="blank.png") is None


def test_a_corrupt_digit_photo_is_refused():
    with pytest.raises(DrawingError, match="photo.jpg is not an image that can be read"):
        read_digit_picture(b"nope", name="photo.jpg")
