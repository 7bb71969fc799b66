"""Picture files: the one decoder, and how a picture becomes what a network sees.

`decode_picture` is the only place ConvLab opens an image file: only the
formats in PICTURE_FORMATS are ever tried (Pillow can open many more, some
through external programs: EPS runs Ghostscript), the pixels the header
declares are checked before anything is decoded (`core.limits.MAX_PICTURE_PIXELS`),
JPEGs are decoded at a reduced scale when that is enough, anything larger
than MAX_PICTURE_SIDE is shrunk before its transparency is flattened, and
the picture comes back upright (EXIF) as RGB. It raises `Unreadable`, a
`DrawingError` that also carries a short reason for a folder's report.

Two ways on from there:
- `ImageFolderOptions` and `prepare_picture`: the preprocessing of a dataset
  made of image files (`core.data.folders`), fit into a square and padded
  with the border colour; a picture classified with such a model goes the
  same way, so training images and classified pictures cannot differ.
- `read_picture`: any other dataset's input shape, resized as it is.

One rule says whether a picture is dark ink on light paper (`light_background`:
the median of its border is light) wherever ConvLab inverts a picture.
"""

from __future__ import annotations

import functools
import io
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core import limits
from core.checks import check_choice, check_scalar, check_seed, from_mapping
from core.data.dataset import preprocess_images
from core.errors import DataError, DrawingError

# The formats ConvLab reads, as Pillow names them (MPO: a JPEG with several frames, as some cameras write).
PICTURE_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "GIF", "WEBP", "TIFF")
PICTURE_FORMAT_NAMES = "PNG, JPEG, BMP, GIF, WebP or TIFF"
PREVIEW_MAX_SIDE = 256

# reasons a picture cannot be used, as a folder's report lists them
NOT_AN_IMAGE = "not an image"
UNREADABLE = "damaged or unreadable"
TOO_LARGE = "too large"

IMAGE_SIZES = (28, 32, 64, 96)  # what the Data page offers; any size in IMAGE_SIZE_RANGE is valid
IMAGE_SIZE_RANGE = (8, 128)
COLOR_MODES = ("grayscale", "rgb")
INVERT_MODES = ("never", "always", "auto")
TEST_FRACTION_RANGE = (0.05, 0.5)
_GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class Unreadable(DrawingError):
    """A picture cannot be used: `reason` (UNREADABLE, TOO_LARGE) and `detail` for a folder's report."""

    def __init__(self, name: str, reason: str, detail: str, message: str) -> None:
        super().__init__(message)
        self.name, self.reason, self.detail = name, reason, detail


# ---------------------------------------------------------------- decoding


@functools.cache
def _registered_formats() -> tuple[str, ...]:
    """PICTURE_FORMATS that this Pillow registers: Pillow 13 reads MPO through its JPEG plugin, and
    `Image.open` fails with a KeyError on a name it does not know (so the formats tried after it would
    never open)."""
    Image.init()
    return tuple(name for name in PICTURE_FORMATS if name in Image.OPEN)


def decode_picture(data: bytes, name: str = "the picture", target_side: int = limits.MAX_PICTURE_SIDE) -> Image.Image:
    """An image file as upright RGB, its transparency flattened (`Unreadable` saying why not).

    `target_side` is the size the caller will shrink it to: a JPEG is decoded at the smallest scale
    that still covers it. Nothing larger than MAX_PICTURE_SIDE a side comes back.
    """
    try:
        picture = Image.open(io.BytesIO(data), formats=_registered_formats())
        width, height = picture.size
        if width * height > limits.MAX_PICTURE_PIXELS:
            raise Unreadable(name, TOO_LARGE, f"{width:,}x{height:,} pixels; at most "
                             f"{limits.MAX_PICTURE_PIXELS / 1e6:g} MP per image",
                             f"{name} is too large to read: {width:,}x{height:,} pixels; ConvLab reads pictures of "
                             f"at most {limits.MAX_PICTURE_PIXELS:,} pixels.")
        side = min(target_side, limits.MAX_PICTURE_SIDE)
        picture.draft(picture.mode, (side, side))  # JPEG only: decode at a reduced scale, much faster
        if max(picture.size) > limits.MAX_PICTURE_SIDE:  # before any copy of a large picture's pixels
            picture.thumbnail((limits.MAX_PICTURE_SIDE, limits.MAX_PICTURE_SIDE), Image.Resampling.LANCZOS)
        picture.load()
        return flatten_transparency(ImageOps.exif_transpose(picture))
    except Unreadable:
        raise
    except UnidentifiedImageError:
        raise Unreadable(name, UNREADABLE, f"Pillow cannot identify it as {PICTURE_FORMAT_NAMES}",
                         f"{name} is not an image that can be read ({PICTURE_FORMAT_NAMES}).") from None
    except Image.DecompressionBombError:
        raise Unreadable(name, TOO_LARGE, f"at most {limits.MAX_PICTURE_PIXELS / 1e6:g} MP per image",
                         f"{name} is too large to read (at most {limits.MAX_PICTURE_PIXELS:,} pixels).") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError) as exc:
        raise Unreadable(name, UNREADABLE, str(exc),
                         f"{name} is damaged or incomplete and cannot be read: {exc}") from None


def decode_pixels(data: bytes, target_side: int) -> int:
    """Pixels decoding this picture for `target_side` will produce, from its header alone (0 if unreadable).

    A JPEG counts at the reduced scale `decode_picture` decodes it at; anything else at full size.
    """
    try:
        picture = Image.open(io.BytesIO(data), formats=_registered_formats())
        side = min(target_side, limits.MAX_PICTURE_SIDE)
        picture.draft(picture.mode, (side, side))  # changes only the size it says for a JPEG; nothing is decoded
        width, height = picture.size
        return width * height  # (only the first frame of a GIF or TIFF is ever decoded)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError,
            IndexError, KeyError):
        return 0


def flatten_transparency(picture: Image.Image) -> Image.Image:
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
    dark = not visible.any() or float(luminance(pixels[..., :3][visible]).mean()) < 0.5
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if dark else (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


# ---------------------------------------------------------------- light and dark


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Grey in [0, 1] from uint8 RGB values (..., 3)."""
    return (np.asarray(rgb).astype(np.float32) @ _GREY_WEIGHTS) / 255.0


def border(image: np.ndarray) -> np.ndarray:
    """The pixels along the four edges of an (H, W) or (H, W, C) image."""
    return np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])


def background_level(grey: np.ndarray) -> float:
    """The background's grey level of an (H, W) image: the median of its border."""
    return float(np.median(border(grey)))


def light_background(image: np.ndarray) -> bool:
    """Dark ink on light paper? The one inversion rule: the border's median is lighter than mid-grey.

    `image` is uint8 (0..255) or float (0..1), grey (H, W) or colour (H, W, 3).
    """
    image = np.asarray(image)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    grey = image.astype(np.float32) / scale
    if grey.ndim == 3:
        grey = grey @ _GREY_WEIGHTS
    return background_level(grey) > 0.5


# ---------------------------------------------------------------- datasets made of image files


@dataclass(frozen=True)
class ImageFolderOptions:
    """How image files become arrays: size, colour, inversion and the test split (plain JSON data)."""

    image_size: int = 28
    color_mode: str = "grayscale"
    invert: str = "never"  # "always": dark ink on light paper becomes MNIST-like; "auto": per image, by its border
    test_fraction: float = 0.2  # used only when there is no test/ folder
    seed: int = 0

    def __post_init__(self) -> None:
        low, high = IMAGE_SIZE_RANGE
        check_scalar(self.image_size, "image_size", DataError, integer=True, lo=low, hi=high,
                     what=f"an integer from {low} to {high}", kind_message="an integer")
        check_choice(self.color_mode, "color_mode", COLOR_MODES, DataError)
        check_choice(self.invert, "invert", INVERT_MODES, DataError)
        low, high = TEST_FRACTION_RANGE
        check_scalar(self.test_fraction, "test_fraction", DataError, integer=False, lo=low, hi=high,
                     what=f"in [{low}, {high}]", kind_message="a number")
        check_seed(self.seed, "seed", DataError)

    @property
    def channels(self) -> int:
        return 3 if self.color_mode == "rgb" else 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> "ImageFolderOptions":
        return from_mapping(cls, data, "image folder options", DataError)


@dataclass(frozen=True)
class PreparedPicture:
    """One image file as a dataset loaded with the same options holds it, and as its model takes it."""

    original: np.ndarray | None  # upright RGB, transparency flattened, at most PREVIEW_MAX_SIDE px (to show)
    image: np.ndarray  # uint8, (size, size) grey or (size, size, 3) colour: what the dataset holds
    inverted: bool

    @property
    def model_input(self) -> np.ndarray:
        """(1, size, size, channels) float32 in [0, 1], scaled by `preprocess_images` as the dataset is."""
        return preprocess_images(self.image[np.newaxis], what="the picture")


def prepare_picture(data: bytes, options: ImageFolderOptions, name: str = "the picture",
                    keep_original: bool = True) -> PreparedPicture:
    """An image file as a dataset made with `options` holds it (`Unreadable` when it cannot be read).

    The same code path makes a dataset's images and a picture to classify with a model trained on
    them: same size, colour mode, inversion rule, fit-and-pad.
    """
    picture = decode_picture(data, name, options.image_size)
    original = None
    if keep_original:
        before = picture.copy()
        before.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
        original = np.asarray(before)
    image, inverted = preprocess_picture(picture, options)
    return PreparedPicture(original, image, inverted)


def preprocess_picture(picture: Image.Image, options: ImageFolderOptions) -> tuple[np.ndarray, bool]:
    """An upright RGB picture as the dataset holds it (uint8, size x size [x 3]), and whether it was inverted."""
    picture = _fit(picture.convert("L" if options.channels == 1 else "RGB"), options.image_size)
    image = _pad(np.asarray(picture), options.image_size)
    if options.invert == "always" or (options.invert == "auto" and light_background(image)):
        return 255 - image, True
    return image, False


def fit_and_pad(image: np.ndarray, size: int) -> np.ndarray:
    """Scale the longer side to `size` (Lanczos), pad the shorter one with the median border colour."""
    return _pad(np.asarray(_fit(Image.fromarray(image), size)), size)


def _fit(picture: Image.Image, size: int) -> Image.Image:
    width, height = picture.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new_size == picture.size:
        return picture
    return picture.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _pad(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return np.array(image)  # writable, owned
    out = np.empty((size, size, *image.shape[2:]), dtype=np.uint8)
    out[...] = np.median(border(image), axis=0).round().astype(np.uint8)
    top, left = (size - height) // 2, (size - width) // 2
    out[top: top + height, left: left + width] = image
    return out


# ---------------------------------------------------------------- any other dataset's input


@dataclass(frozen=True)
class PictureSteps:
    """An uploaded picture on its way to a model trained on arrays (MNIST, CIFAR-10, an .npz)."""

    original: np.ndarray
    resized: np.ndarray  # (H, W, C) float32 in [0, 1], what the network sees
    inverted: bool

    @property
    def model_input(self) -> np.ndarray:
        return self.resized[np.newaxis].astype(np.float32)


def read_picture(data: bytes, input_shape: tuple[int, int, int], name: str = "the file") -> PictureSteps:
    """Decode an image file and resize it to `input_shape` (grey or colour, light objects on dark).

    Grey datasets (MNIST, Fashion-MNIST) show light objects on black, so a
    picture on a light background is inverted.
    """
    height, width, channels = input_shape
    picture = decode_picture(data, name)
    original = np.asarray(picture)
    resized_rgb = np.asarray(picture.resize((width, height), Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    if channels == 3:
        return PictureSteps(original, resized_rgb, inverted=False)
    grey = resized_rgb @ _GREY_WEIGHTS
    inverted = light_background(grey)
    if inverted:
        grey = 1.0 - grey
    return PictureSteps(original, np.clip(grey, 0, 1)[..., np.newaxis], inverted=inverted)
