"""A drawing (or a photo of a digit) as MNIST-style input: sized and centred like MNIST, whatever was drawn where."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from core.data.drawing import (
    FIELD,
    DrawingSteps,
    ink_from_rgba,
    picture_input,
    preprocess_drawing,
    preprocess_ink,
    read_digit_picture,
    scale_drawing_to,
)
from core.errors import DrawingError
from tests.conftest import CANVAS, SEVEN, encode, ink_image, paper_digit, transparent_canvas


def opaque_canvas(ink: np.ndarray, light_background: bool) -> np.ndarray:
    """An opaque canvas (alpha all 255): dark strokes on white, or white strokes on black."""
    grey = 255 - ink if light_background else ink
    rgba = np.full((*ink.shape, 4), 255, dtype=np.uint8)
    rgba[..., :3] = grey[..., np.newaxis]
    return rgba


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


@pytest.mark.parametrize("dark_on_light", [True, False])
def test_a_photo_of_a_digit_gets_the_drawing_steps(dark_on_light):
    steps = read_digit_picture(encode(paper_digit(dark_on_light)), name="photo.png")
    assert_mnist_like(steps)


def test_a_blank_photo_has_no_digit():
    assert read_digit_picture(encode(np.full((50, 50), 240, np.uint8)), name="blank.png") is None


def test_a_corrupt_digit_photo_is_refused():
    with pytest.raises(DrawingError, match="photo.jpg is not an image that can be read"):
        read_digit_picture(b"nope", name="photo.jpg")


# --- how any picture reaches a model ------------------------------------------------------------


def test_a_picture_reaches_a_model_the_way_its_dataset_was_made(bars, shapes):
    from core.data.folders import load_image_folder, path_ref
    from core.data.pictures import ImageFolderOptions, prepare_picture, read_picture

    photo = encode(paper_digit())  # dark ink on light paper
    digits = replace(bars, handwritten_digits=True)  # a digit photo: cropped and centred as a drawing
    given = picture_input(photo, digits, name="photo.png")
    steps = read_digit_picture(photo, name="photo.png")
    np.testing.assert_array_equal(given.model_input, scale_drawing_to(steps, (12, 12, 1)))
    assert given.caption == "cropped, fitted in 20x20 and centred by mass, as MNIST" and given.steps is not None
    assert picture_input(encode(np.full((50, 50), 240, np.uint8)), digits) is None  # no ink, no digit

    given = picture_input(photo, bars)  # any other picture: resized, inverted as the model expects
    np.testing.assert_array_equal(given.model_input, read_picture(photo, (12, 12, 1)).model_input)
    assert given.caption == "resized to 12x12, inverted" and given.steps is None

    options = ImageFolderOptions(image_size=16, color_mode="rgb", invert="auto")  # your own images: as trained
    folder = load_image_folder(shapes, options).to_dataset("shapes", ref=path_ref(shapes, options))
    given = picture_input(photo, folder)
    np.testing.assert_array_equal(given.model_input, prepare_picture(photo, options).model_input)
    assert given.model_input.shape == (1, 16, 16, 3) and given.caption == "fitted into 16x16, rgb, inverted"
