"""Keras model files: load a run's model, and check a model file a user uploads.

Models are only ever loaded with Keras' safe mode: nothing in a file is
executed. A `Lambda` layer (arbitrary Python in the file) is refused with a
message saying why, before Keras is even asked.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from core import limits
from core.errors import ModelFileError

if TYPE_CHECKING:
    import keras

_UNSAFE_CLASSES = ("Lambda", "TFOpLambda")


def load_model_file(path: str | Path) -> "keras.Model":
    """A `.keras` file written by ConvLab (or checked by `check_model_file`), in safe mode, not compiled."""
    import keras

    return keras.models.load_model(path, safe_mode=True, compile=False)


def _layer_classes(config: object) -> list[str]:
    """Every `class_name` in a Keras config tree."""
    found: list[str] = []
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            found.append(config["class_name"])
        for value in config.values():
            found.extend(_layer_classes(value))
    elif isinstance(config, list):
        for value in config:
            found.extend(_layer_classes(value))
    return found


def check_model_file(data: bytes, name: str, input_shape: tuple[int, ...], num_classes: int) -> "keras.Model":
    """Load an uploaded `.keras` file safely and check it fits the dataset; raises ModelFileError saying why not."""
    if len(data) > limits.MAX_MODEL_FILE_BYTES:
        raise ModelFileError(f"{name} is {limits.format_bytes(len(data))}; model files of at most "
                             f"{limits.format_bytes(limits.MAX_MODEL_FILE_BYTES)} are accepted.")
    if not data.startswith(b"PK\x03\x04"):
        raise ModelFileError(f"{name} is not a Keras model file: a .keras file is a zip archive "
                             "(saved by model.save('name.keras')); legacy .h5 and SavedModel folders are not accepted.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            missing = [part for part in ("config.json", "model.weights.h5") if part not in names]
            if missing:
                raise ModelFileError(f"{name} is a zip archive but not a Keras model: it lacks "
                                     f"{' and '.join(missing)}.")
            info = archive.getinfo("config.json")
            if info.file_size > limits.MAX_MODEL_CONFIG_BYTES:
                raise ModelFileError(f"{name}: its config.json is implausibly large ({info.file_size:,} bytes).")
            config = json.loads(archive.read("config.json"))
    except ModelFileError:
        raise
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{name} is not a readable zip archive ({exc}).") from None
    except ValueError as exc:
        raise ModelFileError(f"{name}: its config.json is not valid JSON ({exc}).") from None
    unsafe = sorted(set(_layer_classes(config)) & set(_UNSAFE_CLASSES))
    if unsafe:
        raise ModelFileError(f"{name} contains a {unsafe[0]} layer, which holds Python code that would run when "
                             "the model is loaded; ConvLab loads models in Keras' safe mode and refuses it. "
                             "Rebuild the model with standard layers only.")
    model = _load_bytes(data, name)
    _check_fits(model, name, input_shape, num_classes)
    return model


def _load_bytes(data: bytes, name: str) -> "keras.Model":
    with tempfile.TemporaryDirectory(prefix="convlab-upload-") as folder:
        path = Path(folder) / "uploaded.keras"  # never the uploaded name: it is not a path we trust
        path.write_bytes(data)
        try:
            return load_model_file(path)
        except Exception as exc:  # noqa: BLE001 - Keras raises many kinds; each becomes one message
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "safe_mode" in text or "Lambda" in text:
                raise ModelFileError(f"{name} needs unsafe deserialisation (it holds code), which ConvLab "
                                     "refuses.") from None
            raise ModelFileError(f"{name} could not be loaded as a Keras model: {text[:300]}") from None


def _check_fits(model: "keras.Model", name: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ModelFileError(f"{name} has {len(inputs)} inputs; ConvLab needs a model with one image input.")
    model_input = tuple(model.inputs[0].shape[1:])
    if len(model_input) != 3 or any(d is not None and d != want for d, want in zip(model_input, input_shape)):
        shown = "x".join("?" if d is None else str(d) for d in model_input)
        raise ModelFileError(f"{name} takes inputs of shape {shown}, but the current dataset's images are "
                             f"{'x'.join(map(str, input_shape))}.")
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or len(outputs[0].shape) != 2:
        raise ModelFileError(f"{name} must have one output of class scores, shape (batch, classes).")
    if outputs[0].shape[-1] != num_classes:
        raise ModelFileError(f"{name} predicts {outputs[0].shape[-1]} classes, but the current dataset has "
                             f"{num_classes}.")
