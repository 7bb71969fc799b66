"""What ConvLab accepts: every size limit, in one table.

Dataset arrays, zip archives (one budget per kind), image folders, pictures,
model files and architectures. A file or a model over a limit is refused
*before* anything is allocated, with a message that states the limit. The
dataset limits are checked on what a file's headers declare (shapes and
dtypes), so a 1.5 MB compressed file that promises 2,000,000 images is refused
without decompressing it. The architecture limits are checked on
`core.model.architecture.layer_table`'s shapes and parameter counts, so no
TensorFlow is needed. The README's limits table is this module in words.

Sizes in messages are decimal (1 GB = 10**9 bytes), as the limits are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from core.errors import ArchitectureError, DataError

# --- dataset arrays (.npz, IDX, CIFAR; and every dataset once loaded) -----------------------------

# Images per array (x_train or x_test; labels alike). Full MNIST has 60,000 training images,
# Fashion-MNIST 60,000, CIFAR-10 50,000: room for three times that.
MAX_IMAGES = 200_000
# One image: at most 512 pixels a side and 512x512x3 values (the built-in datasets are 8x8 to
# 32x32; at 512x512 only a narrow first block fits the training-memory limit below anyway).
MAX_IMAGE_SIDE = 512
MAX_IMAGE_VALUES = 512 * 512 * 3
# Pixel values in x_train and x_test together, whatever the dataset came from (arrays or image files):
# 1 GB once scaled to float32 for training (CIFAR-10's 60,000 32x32x3 images are 184,320,000).
MAX_DATASET_VALUES = 250_000_000
# Bytes the four arrays declare in their stored dtypes (a float64 file is 8 bytes a value).
MAX_DATASET_BYTES = 1_000_000_000
# Classes: labels are 0..K-1 with K at most this (a classifier's output layer has K units).
MAX_CLASSES = 1000
# The .npy header (magic, version, length, dict): numpy itself refuses dicts over 10,000 characters.
MAX_NPY_HEADER_BYTES = 16_384


# --- zip archives: one reader (`core.data.archives`), a budget for each kind ------------------------


@dataclass(frozen=True)
class ArchiveLimits:
    """What ConvLab reads of one kind of zip, checked from its central directory before anything is decompressed.

    zipfile turns the whole central directory into objects before anything can be checked, so its
    declared size and entry count are bounded first; then the members' names, links, total size
    once uncompressed and compression ratio (`max_ratio` None: the members' own headers bound what
    is read, as for a .npz's arrays).
    """

    what: str  # in messages: "a Keras-layout .npz"
    max_entries: int
    max_directory_bytes: int
    max_total_bytes: int  # all members once uncompressed
    max_ratio: int | None = None  # uncompressed to compressed, for members over RATIO_CHECK_BYTES
    ratio_check_bytes: int = 1_000_000  # tiny members may compress absurdly well without harm


# A Keras-layout .npz holds four arrays; a few extra members are tolerated. Its arrays are bounded by
# their headers (above), so the total only guards the extra members.
NPZ_ARCHIVE = ArchiveLimits("a Keras-layout .npz (which holds 4 arrays)", max_entries=64,
                            max_directory_bytes=1_000_000, max_total_bytes=MAX_DATASET_BYTES + 100_000_000)
# A zip of class folders: 50,000 entries with names of about 100 characters and their extra fields
# fit in 10 MB of directory; deflate tops out near 1,032:1 and real images stay far below 500:1.
IMAGE_ARCHIVE = ArchiveLimits("a zip of class folders", max_entries=50_000, max_directory_bytes=10_000_000,
                              max_total_bytes=200_000_000, max_ratio=500)



# --- image folders (a folder or zip of class folders) ----------------------------------------------

# Files and folders listed in a folder tree (as in a zip of class folders; hidden ones included).
MAX_IMAGE_ENTRIES = IMAGE_ARCHIVE.max_entries
# Bytes of all the image files of one dataset (as in a zip of class folders, once uncompressed).
MAX_IMAGE_BYTES = IMAGE_ARCHIVE.max_total_bytes
# Image files decoded for one dataset: each costs Pillow a decode (about 2 ms for a small PNG, far
# more for a photo), so this bounds the CPU of one load, where MAX_IMAGES bounds memory.
MAX_IMAGE_FILES = 20_000
# Bytes of one image file read into memory (larger files are skipped and listed).
MAX_IMAGE_FILE_BYTES = 50_000_000
# A class needs this many readable images to be learned and tested.
MIN_IMAGES_PER_CLASS = 5
# Pixels the images of one dataset may declare in their headers, counted as they will be decoded (a JPEG at
# the reduced scale it is decoded at): decoding is what costs CPU, about 1 s per 100 megapixels here, so tiny
# files that declare huge pictures are refused before any is decoded (a 2 GP budget is about 20 s of decoding).
MAX_DECODE_PIXELS = 2_000_000_000
# A dataset of image files is decoded in a process of its own, which is stopped after this long (or when its
# browser session ends).
MAX_DECODE_SECONDS = 300


# --- pictures (Draw & classify's upload; every image file of a folder) -----------------------------

# Pixels a picture's header may declare: 40 megapixels decode to 120 MB of RGB (phones save 12 MP
# by default). PIL alone would decode up to 179 megapixels, and the float steps take gigabytes.
MAX_PICTURE_PIXELS = 40_000_000
# A decoded picture is shrunk to this many pixels a side before its float steps: a digit ends up
# 20 pixels tall and a model input is at most 512 a side, so nothing is lost.
MAX_PICTURE_SIDE = 2048


# --- a run store's uploads ----------------------------------------------------------------------

# Bytes of uploaded files one run store keeps (datasets and model files), CONVLAB_UPLOAD_QUOTA_MB to change:
# four full-size uploads (Streamlit's upload limit is 100 MB) a student, for a class of five; beyond it an
# upload is refused before anything is written, and the Runs page lets their owners delete unused ones.
MAX_UPLOAD_BYTES = 2_000_000_000


# --- model files (a .keras uploaded on the Runs page) ----------------------------------------------

MAX_MODEL_FILE_BYTES = 200_000_000
# config.json inside a .keras file: a model's layer list is kilobytes; this bounds the JSON parser.
MAX_MODEL_CONFIG_BYTES = 20_000_000
# What Keras unpacks of a .keras file: its three members, the weights at most MAX_PARAMS float32 values. A
# member squeezed over 100:1 is refused (real weights hardly compress), so Keras, which may extract a
# compressed member to disk while it loads, never writes much more than the file's own size.
MODEL_ARCHIVE = ArchiveLimits("a Keras model file", max_entries=8, max_directory_bytes=16_000,
                              max_total_bytes=4 * 100_000_000 + MAX_MODEL_CONFIG_BYTES, max_ratio=100)
MODEL_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")


# --- exports (core.export: a model in other formats, made on the dashboard's server on a click) ---------------

# Parameters of a model the dashboard exports: converting to ONNX or LiteRT holds a few copies of the weights in
# the web server's memory and takes seconds per million parameters on 2 cores (the lab's model, 542,230
# parameters, takes about a second). Larger models are exported from the command line (`python -m core export`).
MAX_EXPORT_PARAMS = 10_000_000
# Exports made at once on one server (the others are told to try again in a moment).
MAX_EXPORTS_AT_ONCE = 1


# --- sweeps (core.sweeps: many runs of one study) -------------------------------------------------------

# Trials of one sweep. Each is an ordinary run, bounded like any other (epochs, model size); the queue takes the
# runs of a student's sweep in turn with everyone else's (`core.engine.queue`), so a large sweep delays only its
# own maker. 100 lab-recipe trials on the 10,000 MNIST digits are about half an hour of one training slot here.
MAX_SWEEP_TRIALS = 100
# Settings one sweep varies at once (a TPE or a random search learns little from 12 trials over more).
MAX_SWEEP_SETTINGS = 8
# Values listed for one setting, and grid points of one range.
MAX_SWEEP_VALUES = 20
# Points of a grid (the product of every setting's values): Optuna's grid sampler lists them all in memory.
MAX_GRID_SIZE = 10_000
# Sweeps running at once on one server (the dashboard); each browser runs one at a time.
MAX_SWEEPS_AT_ONCE = 4
MAX_SWEEPS_PER_BROWSER = 1


# --- architectures ------------------------------------------------------------------------

# Parameters of one model: 100,000,000 float32 weights are 400 MB, 1.6 GB with their gradients
# and optimizer slots. The largest preset has 542,230; on 28x28 and 32x32 inputs the sliders pass
# this only with no pooling at all and a dense layer of 512 or more units after the flatten.
MAX_PARAMS = 100_000_000
# Estimated memory to train one batch (see `estimate_training_memory`), on top of TensorFlow's
# own ~0.7 GB and the dataset. A 2-core machine serving a classroom cannot give one user more.
MAX_TRAINING_BYTES = 2_000_000_000
# Values one image produces in all the layer outputs (inference memory per image, and the
# batch-independent part of training memory): 8,000,000 float32 values are 32 MB.
MAX_ACTIVATIONS_PER_IMAGE = 8_000_000
# The batch size the Architecture page estimates with (the lab's recipe); training checks again
# with the batch size it is given.
ESTIMATE_BATCH_SIZE = 32
# float32 weights + gradients + two optimizer slots (Adam's m and v; SGD with momentum has one).
BYTES_PER_PARAM = 4 * 4
# float32 layer outputs, kept for the backward pass, plus their gradients of the same size.
BYTES_PER_ACTIVATION = 4 * 2


def format_bytes(count: int) -> str:
    """A byte count for people: '1.6 GB', '512.0 kB', '12 bytes'."""
    if count < 1000:
        return f"{count:,} bytes"
    if count >= 10 ** 21:  # too large for a float to print exactly; nobody needs the digits
        return "over 1,000,000 PB"
    for power, unit in enumerate(("kB", "MB", "GB", "TB"), start=1):
        if count / 1000 ** power < 999.95:
            return f"{count / 1000 ** power:.1f} {unit}"
    return f"{count / 1000 ** 5:,.1f} PB"


def _many(count: int, noun: str, item_shape: Sequence[int]) -> str:
    """'2,000,000 images of 28x28', or '70,000 labels' when each is one value."""
    return f"{count:,} {noun}" + (f" of {'x'.join(str(d) for d in item_shape)}" if item_shape else "")


def check_declared_array(what: str, shape: Sequence[int], itemsize: int, noun: str) -> None:
    """Refuse an array whose declared shape is over the limits, before it is allocated.

    `what` names it in the message ("data.npz: x_train.npy"); `noun` is "images" or "labels",
    counted along the first axis. Raises DataError stating the limit.
    """
    count, item_shape = (int(shape[0]), tuple(shape[1:])) if shape else (1, ())
    per_item = math.prod(item_shape)
    size = count * per_item * itemsize
    if count > MAX_IMAGES:
        raise DataError(
            f"{what} declares {_many(count, noun, item_shape)} ({format_bytes(size)}); "
            f"ConvLab accepts at most {MAX_IMAGES:,} {noun} per array."
        )
    too_wide = noun == "images" and len(item_shape) >= 2 and max(item_shape[:2]) > MAX_IMAGE_SIDE
    if per_item > MAX_IMAGE_VALUES or too_wide:
        raise DataError(
            f"{what} declares {noun} of {'x'.join(str(d) for d in item_shape)} ({per_item:,} values each); "
            f"ConvLab accepts images of at most {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} pixels and "
            f"{MAX_IMAGE_VALUES:,} values (512x512x3)."
        )
    if size > MAX_DATASET_BYTES:
        raise DataError(
            f"{what} declares {_many(count, noun, item_shape)} ({format_bytes(size)}); "
            f"ConvLab accepts at most {format_bytes(MAX_DATASET_BYTES)} of data."
        )


def check_declared_dataset(origin: str, arrays: Mapping[str, tuple[Sequence[int], int]]) -> None:
    """Refuse x_train, y_train, x_test, y_test (declared shape and itemsize each) over the totals.

    Call it after `check_declared_array` on each, before reading any data. Raises DataError.
    """
    values = sum(math.prod(shape) for key, (shape, _) in arrays.items() if key.startswith("x"))
    if values > MAX_DATASET_VALUES:
        raise DataError(
            f"{origin}: the images hold {values:,} pixel values ({format_bytes(4 * values)} as float32 for "
            f"training); ConvLab accepts at most {MAX_DATASET_VALUES:,} "
            f"({format_bytes(4 * MAX_DATASET_VALUES)})."
        )
    size = sum(math.prod(shape) * itemsize for shape, itemsize in arrays.values())
    if size > MAX_DATASET_BYTES:
        raise DataError(
            f"{origin}: the arrays declare {format_bytes(size)} in all; ConvLab accepts at most "
            f"{format_bytes(MAX_DATASET_BYTES)} of data."
        )


@dataclass(frozen=True)
class ModelSize:
    """What the size limits need to know of a model: its parameters and every layer's output shape (per image).

    A built architecture's comes from its layer table (`LayerTable.size`), an uploaded model's from its
    layers' shapes, before any weights are loaded.
    """

    params: int
    input_shape: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]

    @property
    def activations_per_image(self) -> int:
        """Values one image produces: the input and every layer's output."""
        return math.prod(self.input_shape) + sum(math.prod(shape) for shape in self.output_shapes)

    def training_memory(self, batch_size: int) -> int:
        """Bytes that training the model needs for itself, estimated.

        Weights, their gradients and two optimizer slots in float32 (`BYTES_PER_PARAM` a parameter),
        plus, for one batch, every layer's float32 output kept for the backward pass and its gradient
        (`BYTES_PER_ACTIVATION` a value). TensorFlow's own memory (about 0.7 GB) and the dataset are
        not counted. Against the peak RSS growth of `model.fit` with Adam at batch 32 on this project's
        machine it was within 25 % for four models (dense-heavy, convolution-heavy, mixed).
        """
        return self.params * BYTES_PER_PARAM + batch_size * self.activations_per_image * BYTES_PER_ACTIVATION


def check_model_size(size: ModelSize, batch_size: int = ESTIMATE_BATCH_SIZE, what: str = "this architecture") -> None:
    """Refuse a model too large to train here, stating its size and the limits (ArchitectureError)."""
    params, values = size.params, size.activations_per_image
    if params <= MAX_PARAMS and values > MAX_ACTIVATIONS_PER_IMAGE:
        raise ArchitectureError(
            f"each image produces {values:,} values in {what}'s layers "
            f"({format_bytes(4 * values)} as float32); ConvLab allows at most "
            f"{MAX_ACTIVATIONS_PER_IMAGE:,} per image: add pooling or use fewer filters."
        )
    need = size.training_memory(batch_size)
    if params > MAX_PARAMS or need > MAX_TRAINING_BYTES:
        raise ArchitectureError(
            f"{what} has {params:,} parameters and needs about {format_bytes(need)} to train "
            f"in batches of {batch_size}; ConvLab allows at most {MAX_PARAMS:,} parameters and "
            f"{format_bytes(MAX_TRAINING_BYTES)} for training: add pooling, use fewer filters or smaller "
            "dense layers."
        )
