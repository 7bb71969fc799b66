"""Models that work outside ConvLab: a run's model as .keras, TensorFlow SavedModel, ONNX and LiteRT, each checked.

The exported model takes raw pixels, as the dataset stores them (uint8 0..255, shaped (N, H, W, C)), and scales
them itself with a `Rescaling(1/255)` layer in front of the run's model: nothing from ConvLab is needed to use it.
Each export is checked when it is made: the file is loaded back in its own runtime (Keras, TensorFlow,
onnxruntime, the LiteRT interpreter) and its predictions on `CHECK_IMAGES` test images are compared with the
run's Keras model on ConvLab's own preprocessing; an export whose largest difference in a probability passes
`MAX_DIFFERENCE` is refused, with that difference. Keras' `model.export` writes SavedModel, ONNX (through tf2onnx)
and LiteRT (TensorFlow's converter). Every package is imported inside the function that needs it.
"""

from __future__ import annotations

import io
import logging
import tempfile
import time
import warnings
import zipfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from core.errors import ConvLabError, ExportError
from core.runs.store import RunStore

if TYPE_CHECKING:
    import keras

    from core.data.dataset import Dataset

CHECK_IMAGES = 100  # test images each export is checked on
MAX_DIFFERENCE = 1e-4  # the largest difference in a probability an export may show against Keras


@dataclass(frozen=True)
class ExportFormat:
    """One format a model can be downloaded in: what it is called, its file, what checks it and what it needs."""

    key: str
    title: str
    suffix: str
    runtime: str  # what loads it back for the check
    packages: tuple[str, ...]  # the distributions it needs, to export and to check
    use: str  # how to load it, in a line of code

    @property
    def label(self) -> str:
        return f"{self.title} ({self.suffix})"


FORMATS: dict[str, ExportFormat] = {f.key: f for f in (
    ExportFormat("keras", "Keras 3", ".keras", "keras", ("keras",),
                 "keras.models.load_model(\"model.keras\")"),
    ExportFormat("saved_model", "TensorFlow SavedModel", ".zip", "tensorflow", ("tensorflow-cpu",),
                 "tf.saved_model.load(\"saved_model\").serve(images)  # after unzipping"),
    ExportFormat("onnx", "ONNX", ".onnx", "onnxruntime", ("tf2onnx", "onnx", "onnxruntime"),
                 "onnxruntime.InferenceSession(\"model.onnx\").run(None, {\"pixels\": images})"),
    ExportFormat("litert", "LiteRT", ".tflite", "ai-edge-litert", ("tensorflow-cpu", "ai-edge-litert"),
                 "ai_edge_litert.interpreter.Interpreter(model_path=\"model.tflite\")"),
)}


@dataclass(frozen=True)
class PixelInput:
    """What the exported model takes: dtype and shape of one image, and the scaling it applies itself."""

    dtype: str  # "uint8", or "float32" for a dataset stored as floats
    shape: tuple[int, int, int]
    scale: float | None  # 1/255 for pixels 0..255; None for floats already in [0, 1]

    def describe(self) -> str:
        h, w, c = self.shape
        values = "0..255" if self.scale else "in [0, 1]"
        return f"{self.dtype} images (N, {h}, {w}, {c}), values {values}, as the dataset stores them"


def pixel_input(dataset: "Dataset") -> PixelInput:
    """The input an exported model takes: the dataset's raw pixels (uint8 unless it was stored as floats)."""
    raw = dataset.raw_train
    floating = raw is not None and raw.dtype.startswith("float")
    if floating and raw.maximum <= 1.0:
        return PixelInput("float32", dataset.input_shape, None)
    return PixelInput("float32" if floating else "uint8", dataset.input_shape, 1.0 / 255.0)


def raw_images(dataset: "Dataset", pixels: PixelInput, count: int = CHECK_IMAGES) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` test images as the exported model takes them, and as ConvLab feeds the Keras model.

    ConvLab's images are u/255 in float32; times 255 and rounded, they are exactly the stored pixels again.
    """
    scaled = np.asarray(dataset.x_test[:count], dtype=np.float32)
    if pixels.scale is None:
        return scaled, scaled
    raw = scaled * np.float32(255.0)
    return (np.rint(raw).astype(np.uint8) if pixels.dtype == "uint8" else raw), scaled


def standalone_model(model: "keras.Model", pixels: PixelInput) -> "keras.Model":
    """`model` behind a layer that scales raw pixels as ConvLab's preprocessing does: it takes the dataset's pixels."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=pixels.shape, dtype=pixels.dtype, name="pixels")
    x = inputs if pixels.scale is None else layers.Rescaling(pixels.scale, name="scale_pixels")(inputs)
    # training=False is kept in the graph: the augmentation layers are left out of every export, not traced
    return keras.Model(inputs, model(x, training=False), name=f"{model.name}_on_pixels")


@dataclass(frozen=True)
class ModelExport:
    """An export and its check: what was made, how big, how long it took, and how closely it agrees with Keras."""

    format: str
    file_name: str
    size: int
    export_s: float
    check_s: float
    images: int
    max_difference: float
    runtime: str  # "onnxruntime 1.32.0"
    pixels: str  # what it takes, in words

    def describe(self) -> str:
        title = FORMATS[self.format].title
        return (f"{title}: checked with {self.runtime} on {self.images} test images, largest difference from Keras "
                f"{self.max_difference:.1e} (at most {MAX_DIFFERENCE:g} allowed); made in {self.export_s:.1f} s.")

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ModelExport":
        return cls(**{key: record[key] for key in cls.__dataclass_fields__})


def export_model(model: "keras.Model", dataset: "Dataset", key: str, name: str = "model") -> tuple[bytes, ModelExport]:
    """`model` exported as `key` (a key of FORMATS) taking raw pixels, checked in its own runtime: the file's bytes
    and the check. Raises ExportError when a package is missing, the conversion fails or the check disagrees."""
    fmt = FORMATS.get(key)
    if fmt is None:
        raise ExportError(f"unknown export format '{key[:20]}': use one of {', '.join(FORMATS)}.")
    pixels = pixel_input(dataset)
    raw, scaled = raw_images(dataset, pixels)
    expected = np.asarray(model.predict(scaled, batch_size=len(scaled), verbose=0), dtype=np.float32)
    standalone = standalone_model(model, pixels)
    standalone(raw[:1], training=False)  # built and called once: ONNX's exporter insists on a model that has run
    with tempfile.TemporaryDirectory(prefix="convlab-export-") as folder:
        target = Path(folder) / ("saved_model" if key == "saved_model" else f"model{fmt.suffix}")
        started = time.perf_counter()
        _run(f"writing the {fmt.title} file", lambda: _EXPORTERS[key](standalone, target))
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        predicted = _run(f"loading the {fmt.title} file back in {fmt.runtime}", lambda: _CHECKERS[key](target, raw))
        check_s = time.perf_counter() - started
        data = _zip_folder(target, f"{name}-saved_model") if key == "saved_model" else target.read_bytes()
    predicted = np.asarray(predicted, dtype=np.float32)
    if predicted.shape != expected.shape:
        raise ExportError(f"the {fmt.title} model answered with shape {predicted.shape}, Keras with "
                          f"{expected.shape}; it was not kept.")
    difference = float(np.max(np.abs(predicted - expected))) if expected.size else 0.0
    if not difference <= MAX_DIFFERENCE:
        raise ExportError(f"the {fmt.title} model disagrees with Keras on the test images: the largest difference in "
                          f"a probability is {difference:.2e}, over the {MAX_DIFFERENCE:g} allowed; it was not kept.")
    return data, ModelExport(key, f"{name}{fmt.suffix}", len(data), round(export_s, 3), round(check_s, 3),
                             len(raw), difference, f"{fmt.runtime} {_version(fmt.runtime)}", pixels.describe())


def export_run(store: RunStore, run_id: str, key: str, dataset: "Dataset | None" = None,
               model: "keras.Model | None" = None) -> tuple[Path, ModelExport]:
    """Run `run_id`'s model exported as `key` and checked, kept in the run (made once per model file)."""
    fmt = FORMATS.get(key)
    if fmt is None:
        raise ExportError(f"unknown export format '{key[:20]}': use one of {', '.join(FORMATS)}.")
    kept = store.kept_export(run_id, fmt.suffix)
    if kept is not None:
        try:
            return kept[0], ModelExport.from_record(kept[1])
        except (KeyError, TypeError):
            pass  # a record of another version: made again
    if not store.has_model(run_id):
        raise ExportError(f"run {run_id} has no model to export (yet).")
    if dataset is None:
        from core.data.registry import load_ref

        dataset = load_ref(store.spec(run_id).dataset, store.stored_dataset_path)
    if model is None:
        from core.model.files import load_model_file

        model = load_model_file(store.model_path(run_id))
    data, check = export_model(model, dataset, key, name=run_id)
    return store.keep_export(run_id, fmt.suffix, data, check.to_record()), check


def _run(what: str, step: Callable[[], Any]) -> Any:
    """`step()`, with any failure of the converters or runtimes said in one line (a missing package by name)."""
    try:
        return step()
    except ConvLabError:
        raise
    except ImportError as error:
        raise ExportError(f"{what} needs a package that is not installed ({error.name or error}): install "
                          "requirements.txt.") from None
    except Exception as error:  # noqa: BLE001 - any converter or runtime failure becomes one clear line
        raise ExportError(f"{what} failed: {type(error).__name__}: {str(error)[:300]}") from None


def _version(runtime: str) -> str:
    for distribution in (f"{runtime}-cpu", runtime):  # tensorflow-cpu, or tensorflow
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "?"


def _zip_folder(folder: Path, root: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{root}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


# --- writing each format, and loading it back in its own runtime ---------------------------------------------


def _write_keras(model: "keras.Model", path: Path) -> None:
    model.save(path)


def _write_with_export(fmt: str) -> Callable[["keras.Model", Path], None]:
    def write(model: "keras.Model", path: Path) -> None:
        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        with warnings.catch_warnings():  # tf2onnx's own FutureWarnings about NumPy 2, not the user's business
            warnings.simplefilter("ignore", FutureWarning)
            model.export(str(path), format=fmt, verbose=False)

    return write


def _check_keras(path: Path, images: np.ndarray) -> np.ndarray:
    import keras

    loaded = keras.models.load_model(path, safe_mode=True, compile=False)
    return loaded.predict(images, batch_size=len(images), verbose=0)


def _check_saved_model(path: Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # held: its functions need its variables alive
    return loaded.serve(tf.constant(images)).numpy()


def _check_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: images})[0]


def _check_litert(path: Path, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    given = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(given["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


_EXPORTERS: dict[str, Callable[["keras.Model", Path], None]] = {
    "keras": _write_keras, "saved_model": _write_with_export("tf_saved_model"),
    "onnx": _write_with_export("onnx"), "litert": _write_with_export("litert")}
_CHECKERS: dict[str, Callable[[Path, np.ndarray], np.ndarray]] = {
    "keras": _check_keras, "saved_model": _check_saved_model, "onnx": _check_onnx, "litert": _check_litert}

