"""The one picture decoder: pictures read, inverted as the model expects, fitted; folder options; huge pictures refused."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core import limits
from core.data.drawing import read_digit_picture
from core.data.folders import load_image_folder
from core.data.pictures import ImageFolderOptions, fit_and_pad, preprocess_picture, read_picture
from core.errors import DataError, DrawingError
from tests.conftest import SEVEN, encode, ink_image, paper_digit, shape_picture, transparent_canvas

# --- the one decoder: pictures to classify on the Draw page ---------------------------------------


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


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height grey pixels (its data is a few bytes)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">L", len(body)) + kind + body + struct.pack(">L", zlib.crc32(kind + body))

    header = struct.pack(">2L5B", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + chunk(b"IEND", b""))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("read", [read_digit_picture, lambda data, name: read_picture(data, (28, 28, 1), name)],
                         ids=["digit", "picture"])
def test_a_picture_declaring_too_many_pixels_is_refused_from_its_header(read):
    # PIL itself only refuses above 179 megapixels; this one would take 2.5 GB on the way to 28x28.
    message = (r"^huge\.png is too large to read: 12,000x12,000 pixels; ConvLab reads pictures of at most "
               r"40,000,000 pixels\.$")
    with pytest.raises(DrawingError, match=message):
        read(png_declaring(12_000, 12_000), "huge.png")


def test_a_large_picture_is_shrunk_before_its_float_steps():
    buffer = io.BytesIO()
    Image.new("L", (3000, 1000), 255).save(buffer, "PNG")
    steps = read_picture(buffer.getvalue(), (28, 28, 1), "wide.png")
    assert steps.original.shape[:2] == (683, limits.MAX_PICTURE_SIDE)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"])
def test_every_listed_format_decodes(fmt):
    # Pillow 13 has no "MPO" opener of its own: naming it made every format tried after it fail
    from core.data.pictures import prepare_picture

    picture = prepare_picture(encode(shape_picture("circle", 0), fmt), ImageFolderOptions(image_size=12), name="x")
    assert picture.image.shape == (12, 12) and picture.image.std() > 0


# --- as the images of a folder dataset: inverted, fitted and padded -------------------------------


def test_auto_invert_leaves_light_on_dark_alone():
    picture = Image.new("RGB", (30, 30), (0, 0, 0))
    ImageDraw.Draw(picture).line([(5, 5), (25, 25)], fill=(255, 255, 255), width=3)
    image, inverted = preprocess_picture(picture, ImageFolderOptions(invert="auto"))
    assert not inverted and image[0, 0] == 0 and image.max() > 200


def test_fit_and_pad_keeps_the_aspect_and_pads_with_the_border():
    wide = np.full((10, 40), 50, dtype=np.uint8)
    wide[4:6, 15:25] = 200
    out = fit_and_pad(wide, 28)
    assert out.shape == (28, 28)
    assert (out[:10] == 50).all() and (out[-11:] == 50).all()  # 10x40 scaled to 7x28, padded top and bottom
    assert out[13, 14] > 150


@pytest.mark.parametrize("options", [ImageFolderOptions(image_size=16, color_mode="rgb"),
                                     ImageFolderOptions(image_size=20, invert="auto"),
                                     ImageFolderOptions(image_size=12, invert="always")])
def test_a_picture_to_classify_is_preprocessed_exactly_as_the_training_images(shapes, options):
    from core.data.pictures import prepare_picture

    dataset = load_image_folder(shapes, options).to_dataset("shapes")
    every = np.concatenate([dataset.x_train, dataset.x_test])
    for path in sorted((shapes / "square").glob("square_*")):
        picture = prepare_picture(path.read_bytes(), options, name=path.name)
        assert picture.model_input.shape == (1, *options.input_shape) and picture.model_input.dtype == np.float32
        assert (every == picture.model_input[0]).all(axis=(1, 2, 3)).any(), path.name  # bit for bit one of them
        assert picture.inverted == (options.invert != "never")  # light paper: auto inverts too


def test_a_picture_that_cannot_be_read_says_why():
    from core.data.pictures import prepare_picture
    from core.errors import DrawingError

    with pytest.raises(DrawingError, match=r"^notes\.png is not an image that can be read \(PNG, JPEG, BMP, GIF, WebP "
                                           r"or TIFF\)\.$"):
        prepare_picture(b"not a picture", ImageFolderOptions(), name="notes.png")


# --- options --------------------------------------------------------------------------------------


def test_options_round_trip_as_json():
    options = ImageFolderOptions(image_size=64, color_mode="rgb", invert="auto", test_fraction=0.25, seed=7)
    assert ImageFolderOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options
    assert options.input_shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"image_size": 300}, "image_size == 300, must be an integer from 8 to 128."),
        ({"image_size": 28.0}, "image_size == 28.0, must be an integer."),
        ({"color_mode": "cmyk"}, "color_mode == 'cmyk', must be one of 'grayscale', 'rgb'."),
        ({"invert": True}, "invert == True, must be one of 'never', 'always', 'auto'."),
        ({"test_fraction": 0.9}, "test_fraction == 0.9, must be in [0.05, 0.5]."),
        ({"test_fraction": "0.2"}, "test_fraction == '0.2', must be a number."),
        ({"seed": -1}, "seed == -1, must be an integer from 0 to 2147483647."),
        ({"seed": 2**32 - 1}, "seed == 4294967295, must be an integer from 0 to 2147483647."),
        ({"size": 28}, "image folder options: unknown setting(s) 'size'; known: image_size, color_mode, invert, "
                       "test_fraction, seed."),
    ],
)
def test_bad_options(settings, message):
    with pytest.raises(DataError, match=re.escape(message)):
        ImageFolderOptions.from_dict(settings)
