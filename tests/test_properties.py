"""Property tests: random or hostile input gives a valid result or a ConvLab error, never another exception.

Canvas and picture preprocessing, the dataset loaders and `make_dataset`, the architecture checks
(every slider combination of the Architecture page), and the training settings.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from core import limits
from core.data.dataset import Dataset, make_dataset
from core.data.drawing import DrawingSteps, preprocess_drawing, read_digit_picture
from core.data.files import NPZ_KEYS, load_npz, read_idx
from core.data.pictures import PictureSteps, read_picture
from core.errors import ArchitectureError, DataError, DrawingError, TrainingConfigError
from core.model.architecture import (
    ACTIVATIONS,
    PADDINGS,
    POOLINGS,
    Architecture,
    ConvBlock,
    DenseLayer,
    layer_table,
    validate,
)
from core.model.build import build_model
from core.training.config import OPTIMIZERS, SCHEDULES, TrainingConfig
from ui.architecture_form import FILTER_CHOICES, KERNEL_CHOICES, MAX_BLOCKS, MAX_DENSE, UNIT_CHOICES

QUICK = settings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
seeds = st.integers(0, 2**32 - 1)

# --- canvas and pictures -----------------------------------------------------------------


@st.composite
def canvases(draw: st.DrawFn) -> np.ndarray:
    """RGBA uint8 images from 1x1 to 400x400: uniform, noisy, or rectangles of any colour and alpha."""
    height, width = draw(st.integers(1, 400)), draw(st.integers(1, 400))
    rng = np.random.default_rng(draw(seeds))
    image = np.empty((height, width, 4), np.uint8)
    image[:] = draw(st.tuples(*[st.integers(0, 255)] * 4))
    if draw(st.booleans()):
        image[..., 3] = 255  # opaque, as a canvas with a background colour
    for _ in range(draw(st.integers(0, 4))):
        top, left = rng.integers(0, height), rng.integers(0, width)
        bottom, right = rng.integers(top, height) + 1, rng.integers(left, width) + 1
        image[top:bottom, left:right] = rng.integers(0, 256, 4)
    if draw(st.booleans()):
        noise = rng.random((height, width)) < draw(st.sampled_from([0.001, 0.05, 1.0]))
        image[noise] = rng.integers(0, 256, (int(noise.sum()), 4))
    return image


def assert_valid_drawing(steps: object) -> None:
    assert steps is None or isinstance(steps, DrawingSteps)
    if steps is not None:
        x = steps.model_input
        assert x.shape == (1, 28, 28, 1) and x.dtype == np.float32
        assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0


@QUICK
@given(canvases())
def test_any_canvas_gives_model_input_or_none(rgba):
    assert_valid_drawing(preprocess_drawing(rgba))


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


@st.composite
def picture_files(draw: st.DrawFn) -> bytes:
    """Random bytes, or a small PNG/JPEG/BMP/GIF/WebP/TIFF truncated or with bytes overwritten."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=2048))
    rng = np.random.default_rng(draw(seeds))
    shape = (draw(st.integers(1, 40)), draw(st.integers(1, 40)), draw(st.sampled_from([3, 4])))
    fmt = draw(st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"]))
    array = rng.integers(0, 256, shape, dtype=np.uint8)
    data = bytearray(_encoded(array if fmt in ("PNG", "WEBP", "TIFF") else array[..., :3], fmt))
    for _ in range(draw(st.integers(0, 4))):
        data[rng.integers(0, len(data))] = rng.integers(0, 256)
    return bytes(data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL warns about the corrupt files it reads
@settings(QUICK, max_examples=40)
@given(picture_files(), st.sampled_from([(28, 28, 1), (8, 8, 1), (32, 32, 3)]))
def test_any_picture_file_is_read_or_refused_with_a_drawing_error(data, input_shape):
    try:
        steps = read_picture(data, input_shape, name="upload.png")
    except DrawingError:
        pass
    else:
        assert isinstance(steps, PictureSteps)
        x = steps.model_input
        assert x.shape == (1, *input_shape) and x.dtype == np.float32
        assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0
    try:
        assert_valid_drawing(read_digit_picture(data, name="upload.png"))
    except DrawingError:
        pass


# --- dataset files -----------------------------------------------------------------------

DTYPES = ["|u1", "|i1", "<i2", ">i4", "<i8", "<u8", "<f2", "<f4", ">f8", "|b1", "<c8", "<U3", "|S2", "<M8[s]"]


@st.composite
def small_arrays(draw: st.DrawFn, ndim: st.SearchStrategy[int] = st.integers(0, 5)) -> np.ndarray:
    """Arrays of any dtype above (object arrays too), 0 to 5 small dimensions, any values."""
    rank = draw(ndim)
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=rank, max_size=rank)))
    rng = np.random.default_rng(draw(seeds))
    kind = draw(st.sampled_from(["pixels", "labels", "wild", "object"]))
    if kind == "object":
        return np.array([None] * math.prod(shape), dtype=object).reshape(shape)
    values = {"pixels": rng.integers(0, 256, shape), "labels": rng.integers(0, 12, shape),
              "wild": rng.normal(0, 1e6, shape) * rng.choice([1, np.nan, np.inf, -1], shape)}[kind]
    with np.errstate(all="ignore"):
        return values.astype(np.dtype(draw(st.sampled_from(DTYPES))))


@st.composite
def array_sets(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """x_train, y_train, x_test, y_test (sometimes one missing, sometimes an extra), plausible or not."""
    labels = st.integers(1, 2)
    arrays = {
        "x_train": draw(small_arrays(st.integers(2, 4) if draw(st.booleans()) else st.integers(0, 5))),
        "y_train": draw(small_arrays(labels)),
        "x_test": draw(small_arrays(st.integers(2, 4))),
        "y_test": draw(small_arrays(labels)),
    }
    if draw(st.integers(0, 9)) == 0:
        del arrays[draw(st.sampled_from(NPZ_KEYS))]
    if draw(st.integers(0, 9)) == 0:
        arrays["extra"] = np.zeros(3)
    return arrays


def _saved(arrays: dict[str, np.ndarray], compressed: bool) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


def assert_loaded_or_refused(load: object, *args: object) -> tuple[np.ndarray, ...] | None:
    """Call the loader: it returns arrays or raises DataError, nothing else."""
    try:
        return load(*args)  # type: ignore[operator]
    except DataError:
        return None


@QUICK
@given(st.one_of(st.binary(max_size=4096), st.binary(max_size=4096).map(lambda b: b"PK\x03\x04" + b)))
def test_random_bytes_are_refused_as_npz(data):
    assert assert_loaded_or_refused(load_npz, data, "random.npz") is None


@QUICK
@given(array_sets(), st.booleans(), st.data())
def test_crafted_truncated_or_damaged_npz_loads_or_raises_data_error(arrays, compressed, data):
    raw = bytearray(_saved(arrays, compressed))
    damage = data.draw(st.sampled_from(["none", "truncate", "overwrite"]))
    if damage == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif damage == "overwrite":
        for at in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
            raw[at] = data.draw(st.integers(0, 255))
    loaded = assert_loaded_or_refused(load_npz, bytes(raw), "crafted.npz")
    if loaded is not None:
        assert len(loaded) == 4 and all(isinstance(a, np.ndarray) for a in loaded)
        if damage == "none":
            for key, array in zip(NPZ_KEYS, loaded):
                np.testing.assert_array_equal(array, arrays[key])
        assert_dataset_or_data_error(*loaded)


def _npy_member(version: tuple[int, int], header: str, data: bytes, pad_to: int | None) -> bytes:
    encoded = header.encode("latin1", "replace")
    length = len(encoded) if pad_to is None else pad_to
    size = struct.pack("<H" if version[0] == 1 else "<I", min(length, 0xFFFF if version[0] == 1 else 2**32 - 1))
    return b"\x93NUMPY" + bytes(version) + size + encoded + data


@st.composite
def crafted_npy(draw: st.DrawFn) -> tuple[bytes, tuple[int, ...] | None]:
    """An .npy member with a hand-written header: any version, declared shape, dtype and data length."""
    shape = tuple(draw(st.lists(st.one_of(st.integers(0, 8), st.integers(-3, 2**70)), max_size=6)))
    descr = draw(st.sampled_from(DTYPES + ["|O", "<V0", "[('a', '<i4')]", "('<f8', (3,))", "'nonsense'", "5"]))
    descr_text = descr if descr.startswith(("[", "(")) or descr in ("'nonsense'", "5") else repr(descr)
    fortran = draw(st.sampled_from(["False", "True", "1"]))
    header = f"{{'descr': {descr_text}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    header = draw(st.sampled_from([header, header + " " * 50 + "\n", header[: len(header) // 2], "{}",
                                   "{'descr': " + "-" * 3000 + "1}", "1+" * 3000 + "1", "(" * 300]))
    version = draw(st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)]))
    declared = math.prod(shape) * 8 if all(0 <= d <= 8 for d in shape) else 64
    data = bytes(draw(st.integers(0, declared + 16)))
    pad_to = draw(st.one_of(st.none(), st.integers(0, 2**32 - 1)))
    return _npy_member(version, header, data, pad_to), shape


@QUICK
@given(st.lists(crafted_npy(), min_size=4, max_size=4), st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
def test_hand_written_npy_headers_load_or_raise_data_error(members, compression):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for key, (member, _) in zip(NPZ_KEYS, members):
            archive.writestr(f"{key}.npy", member)
    loaded = assert_loaded_or_refused(load_npz, buffer.getvalue(), "crafted.npz")
    if loaded is not None:
        for array, (_, shape) in zip(loaded, members):
            assert array.shape == shape


@st.composite
def idx_files(draw: st.DrawFn) -> tuple[bytes, tuple[int, ...]]:
    """IDX bytes: any type code and dimensions (up to 2**32 - 1), data short, exact or long; maybe gzipped."""
    code = draw(st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0x42]))
    dims = tuple(draw(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), max_size=6)))
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code, 1)
    exact = math.prod(dims) * itemsize if math.prod(dims) < 10_000 else 100
    body = bytes(draw(st.sampled_from([exact, max(0, exact - 1), exact + 1, 0])))
    raw = bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body
    raw = raw[: draw(st.integers(0, len(raw)))] if draw(st.integers(0, 4)) == 0 else raw
    return (gzip.compress(raw) if draw(st.booleans()) else raw), dims


@QUICK
@given(st.one_of(idx_files(), st.binary(max_size=512).map(lambda b: (b, None)),
                 st.binary(max_size=512).map(lambda b: (b"\x1f\x8b" + b, None))))
def test_idx_bytes_load_or_raise_data_error(case):
    data, dims = case
    array = assert_loaded_or_refused(read_idx, data, "crafted-idx")
    if array is not None and dims is not None:
        assert array.shape == dims


def assert_dataset_or_data_error(*arrays: np.ndarray) -> None:
    try:
        dataset = make_dataset("crafted", *arrays, source="test", origin="crafted")
    except DataError:
        return
    assert isinstance(dataset, Dataset)
    for x in (dataset.x_train, dataset.x_test):
        assert x.ndim == 4 and x.dtype == np.float32 and np.isfinite(x).all()
        assert x.min() >= 0.0 and x.max() <= 1.0
    for y in (dataset.y_train, dataset.y_test):
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() < dataset.num_classes


@QUICK
@given(array_sets())
def test_make_dataset_gives_a_dataset_or_data_error(arrays):
    assume(all(key in arrays for key in NPZ_KEYS))
    assert_dataset_or_data_error(*(arrays[key] for key in NPZ_KEYS))


# --- architectures: every slider combination -------------------------------------------

DROPOUTS = st.sampled_from([round(0.05 * i, 2) for i in range(15)])  # the form's 0.0..0.7 sliders
SLIDER_BLOCKS = st.builds(
    ConvBlock, filters=st.sampled_from(FILTER_CHOICES), kernel_size=st.sampled_from(KERNEL_CHOICES),
    activation=st.sampled_from(ACTIVATIONS), pooling=st.sampled_from(POOLINGS), padding=st.sampled_from(PADDINGS),
    batch_norm=st.booleans(), dropout=DROPOUTS,
)
SLIDER_DENSE = st.builds(DenseLayer, units=st.sampled_from(UNIT_CHOICES), dropout=DROPOUTS)
SLIDER_ARCHITECTURES = st.builds(
    Architecture,
    conv_blocks=st.lists(SLIDER_BLOCKS, min_size=1, max_size=MAX_BLOCKS).map(tuple),
    dense_layers=st.lists(SLIDER_DENSE, max_size=MAX_DENSE).map(tuple),
)
INPUT_SHAPES = st.sampled_from([(8, 8, 1), (28, 28, 1), (32, 32, 3), (96, 96, 3)])


@settings(max_examples=400, deadline=None)
@given(SLIDER_ARCHITECTURES, INPUT_SHAPES, st.integers(2, 100))
def test_any_slider_combination_gives_a_table_or_an_architecture_error(arch, input_shape, num_classes):
    try:
        validate(arch, input_shape, num_classes)
    except ArchitectureError as error:
        with pytest.raises(ArchitectureError, match=f"^{re.escape(str(error))}$"):
            layer_table(arch, input_shape, num_classes)
        return
    table = layer_table(arch, input_shape, num_classes)
    assert table.rows[-1].output_shape == (num_classes,)
    assert table.total_params <= limits.MAX_PARAMS
    assert table.size(input_shape).training_memory(32) <= limits.MAX_TRAINING_BYTES


@pytest.fixture(scope="module")
def keras_imported() -> None:
    """Import TensorFlow before Hypothesis runs: the import raises the recursion limit, which Hypothesis notes."""
    import keras  # noqa: F401


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(SLIDER_ARCHITECTURES, INPUT_SHAPES, st.integers(2, 100))
def test_keras_builds_what_the_table_accepts_with_the_same_parameter_count(keras_imported, arch, input_shape,
                                                                          num_classes):
    try:
        table = layer_table(arch, input_shape, num_classes)
    except ArchitectureError:
        assume(False)
    assume(table.total_params <= 1_000_000)  # TensorFlow builds bigger ones too, only slower
    model = build_model(arch, input_shape, num_classes)
    assert model.count_params() == table.total_params


# --- training settings -------------------------------------------------------------------

ANYTHING = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.integers(2**1030, 2**1100), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(OPTIMIZERS + SCHEDULES),
    st.floats(width=32).map(np.float32), st.floats().map(np.float64), st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 255).map(np.uint8), st.booleans().map(np.bool_), st.sampled_from(OPTIMIZERS).map(np.str_),
)
PLAUSIBLE = {
    "optimizer": st.sampled_from(OPTIMIZERS), "learning_rate": st.floats(0, 12), "momentum": st.floats(-0.1, 1),
    "batch_size": st.integers(0, 9000), "epochs": st.integers(0, 600), "validation_fraction": st.floats(-0.1, 0.6),
    "seed": st.integers(-5, 2**40), "schedule": st.sampled_from(SCHEDULES),
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({name: st.one_of(valid, ANYTHING) for name, valid in PLAUSIBLE.items()}))
def test_any_training_settings_validate_or_raise_training_config_error(values):
    try:
        config = TrainingConfig(**values).validated()
    except TrainingConfigError:
        return
    assert config.optimizer in OPTIMIZERS and config.schedule in SCHEDULES
    assert 0 < config.learning_rate <= 10 and 0 <= config.momentum < 1 and 0 <= config.validation_fraction <= 0.5
    assert 1 <= config.batch_size <= 8192 and 1 <= config.epochs <= 500 and config.seed >= 0


@pytest.mark.parametrize("name", ["learning_rate", "momentum", "validation_fraction"])
def test_an_integer_too_large_for_a_float_is_a_training_config_error(name):
    with pytest.raises(TrainingConfigError):
        TrainingConfig(**{name: 10**400}).validated()
