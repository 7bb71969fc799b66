"""Keras model files: load a run's model, and check a model file a user uploads before anything loads it.

`inspect_model_file` runs in plain Python (no TensorFlow) where the file
arrives: the zip is read with the one zip reader under the budget of a model
file (`core.limits.MODEL_ARCHIVE`: only a .keras file's three members, their
unpacked size bounded), config.json is parsed within its own bound, a layer
holding code (`Lambda`) or coming from outside Keras is refused by name, and
the model is sized from its config (`core.model.inspect`) against the same
limits as an architecture built with the sliders, and matched with the
dataset's images and classes. Only then is the file kept; Keras loads it in
a training process (`load_checked_model`), in safe mode: nothing in a file
is executed.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import limits
from core.data.archives import check_expansion, open_zip
from core.errors import DataError, ModelFileError
from core.limits import format_bytes
from core.model.inspect import ModelSummary, inspect_config

if TYPE_CHECKING:
    import keras

_UNSAFE_CLASSES = ("Lambda", "TFOpLambda")


def load_model_file(path: str | Path, name: str = "") -> "keras.Model":
    """A `.keras` file written by ConvLab (or checked by `inspect_model_file`), in safe mode, not compiled.

    Raises ModelFileError saying in ConvLab's words what is wrong with the file (`name`: how to call it)
    when Keras cannot load it.
    """
    import keras

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds; each becomes one message in ConvLab's words
        raise keras_failure(exc, name or Path(path).name) from None


_DESERIALIZED = re.compile(r"<class '[\w.]*?(\w+)'> could not be deserialized")
_CAUSE = "Exception encountered:"
_WEIGHT_SHAPES = re.compile(r"variable\.shape=\(([^)]*)\), Received: value\.shape=\(([^)]*)\)")
_WEIGHT_OWNER = re.compile(r"object <(\w+) name=([^,>]+)")
_WEIGHT_COUNT = re.compile(r"Layer '([^']+)' expected (\d+) variables?, but received (\d+)")
_INPUT_MISMATCH = re.compile(r"of layer '([^']+)' is incompatible with the layer: expected axis -?\d+ of input shape "
                             r"to have value (\d+), but received input with shape \(([^)]*)\)")


def keras_failure(exc: BaseException, name: str) -> ModelFileError:
    """What Keras' failure to load `name` means for the file, in ConvLab's words (Keras' own words kept short)."""
    text = str(exc)
    first = (text.strip().splitlines() or [type(exc).__name__])[0][:200]
    if "safe_mode" in text or "Lambda" in text:
        return ModelFileError(f"{name} needs unsafe deserialisation (it holds code), which ConvLab refuses.")
    if "truncated file" in text:
        return ModelFileError(f"{name} is cut short: its weights (model.weights.h5) end early, as when a download or "
                              "a copy did not finish. Save or download the model again.")
    if isinstance(exc, OSError) or "file signature not found" in text:
        return ModelFileError(f"{name}: its weights (model.weights.h5) are not a readable HDF5 file, as Keras writes "
                              "them; the file is damaged. Save the model again with model.save('name.keras').")
    if _CAUSE in text or "could not be deserialized" in text or "Could not locate" in text:
        layers = _DESERIALIZED.findall(text)
        which = f"its {layers[-1]} layer" if layers and layers[-1] not in ("Sequential", "Functional") else "it"
        cause = text[text.rfind(_CAUSE) + len(_CAUSE):].strip().splitlines()[0][:200] if _CAUSE in text else first
        cause = cause.rstrip(".")
        return ModelFileError(f"{name}: Keras cannot rebuild {which} from the settings in the file's config.json "
                              f"(Keras says: {cause}). The file was edited by hand, or saved by a Keras other than "
                              f"ConvLab's {_keras_version()}.")
    shapes, owner, count = _WEIGHT_SHAPES.search(text), _WEIGHT_OWNER.search(text), _WEIGHT_COUNT.search(text)
    if shapes or count or "objects could not be loaded" in text:
        where = f"layer '{owner.group(2)}'" if owner else "a layer"
        if shapes:
            detail = f"{where} needs weights of shape ({shapes.group(1)}), the file holds ({shapes.group(2)})"
        elif count:
            detail = f"layer '{count.group(1)}' needs {count.group(2)} weight arrays, the file holds {count.group(3)}"
        else:
            detail = f"Keras says: {first}"
        return ModelFileError(f"{name}: its weights do not fit its layers ({detail}): the weights were saved from "
                              "another model, or its config.json was changed after they were saved.")
    mismatch = _INPUT_MISMATCH.search(text)
    if mismatch:
        layer, wanted, given = mismatch.groups()
        values = given.split(",")[-1].strip()
        return ModelFileError(f"{name}: its layers do not fit together: layer '{layer}' takes {wanted} values but the "
                              f"layer before it gives {values} (its config.json was changed after the model was "
                              "built?).")
    return ModelFileError(f"Keras could not load {name} (Keras says: {first.rstrip('.')}).")


def _keras_version() -> str:
    import keras

    return keras.__version__


def inspect_model_file(data: bytes, name: str, input_shape: tuple[int, ...], num_classes: int) -> ModelSummary:
    """Check an uploaded `.keras` file without loading it: raises ModelFileError (or ArchitectureError) saying why not."""
    if len(data) > limits.MAX_MODEL_FILE_BYTES:
        raise ModelFileError(f"{name} is {format_bytes(len(data))}; model files of at most "
                             f"{format_bytes(limits.MAX_MODEL_FILE_BYTES)} are accepted.")
    if not data.startswith(b"PK\x03\x04"):
        raise ModelFileError(f"{name} is not a Keras model file: a .keras file is a zip archive "
                             "(saved by model.save('name.keras')); legacy .h5 and SavedModel folders are not accepted.")
    config = _read_config(data, name)
    unsafe = sorted(set(_classes(config)) & set(_UNSAFE_CLASSES))
    if unsafe:
        raise ModelFileError(f"{name} contains a {unsafe[0]} layer, which holds Python code that would run when "
                             "the model is loaded; ConvLab loads models in Keras' safe mode and refuses it. "
                             "Rebuild the model with standard layers only.")
    foreign = sorted({module for module in _modules(config) if module.split(".")[0] != "keras"})
    if foreign:
        raise ModelFileError(f"{name} uses objects from {foreign[0]!r}, outside Keras: ConvLab loads only models made "
                             "of Keras' own layers.")
    summary = inspect_config(config, name)
    if summary.input_shape != tuple(input_shape):
        raise ModelFileError(f"{name} takes inputs of shape {'x'.join(map(str, summary.input_shape))}, but the "
                             f"current dataset's images are {'x'.join(map(str, input_shape))}.")
    if len(summary.output_shape) != 1:
        raise ModelFileError(f"{name} must have one output of class scores, shape (batch, classes).")
    if summary.output_shape[0] != num_classes:
        raise ModelFileError(f"{name} predicts {summary.output_shape[0]} classes, but the current dataset has "
                             f"{num_classes}.")
    return summary


def _read_config(data: bytes, name: str) -> Any:
    try:
        with open_zip(io.BytesIO(data), name, limits.MODEL_ARCHIVE) as archive:
            infos = archive.infolist()
            names = [info.filename for info in infos]
            missing = [part for part in ("config.json", "model.weights.h5") if part not in names]
            if missing:
                raise ModelFileError(f"{name} is a zip archive but not a Keras model: it lacks "
                                     f"{' and '.join(missing)}.")
            extra = [member for member in names if member not in limits.MODEL_MEMBERS]
            if extra:
                raise ModelFileError(f"{name} holds {extra[0]!r}, which is not part of a Keras model file (it holds "
                                     f"only {', '.join(limits.MODEL_MEMBERS)}).")
            check_expansion(infos, name, limits.MODEL_ARCHIVE)
            info = archive.getinfo("config.json")
            if info.file_size > limits.MAX_MODEL_CONFIG_BYTES:
                raise ModelFileError(f"{name}: its config.json is implausibly large ({format_bytes(info.file_size)}; "
                                     f"at most {format_bytes(limits.MAX_MODEL_CONFIG_BYTES)}).")
            with archive.open(info) as member:
                return json.loads(member.read(limits.MAX_MODEL_CONFIG_BYTES + 1))
    except ModelFileError:
        raise
    except DataError as error:  # the zip reader's refusals
        raise ModelFileError(str(error)) from None
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ModelFileError(f"{name} is not a readable zip archive ({exc}).") from None
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{name}: its config.json is not valid JSON ({type(exc).__name__}).") from None


def _walk(config: object):
    stack = [config]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            yield value
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _loaded(config: object) -> object:
    """The part of a model's config that loading builds: not its compile_config (the optimizer, the loss), which
    ConvLab never loads (compile=False); a model ConvLab trained names its learning-rate schedule there."""
    return {k: v for k, v in config.items() if k != "compile_config"} if isinstance(config, dict) else config


def _classes(config: object) -> list[str]:
    """Every `class_name` in the part of a Keras config tree that loading builds."""
    return [node["class_name"] for node in _walk(_loaded(config)) if isinstance(node.get("class_name"), str)]


def _modules(config: object) -> list[str]:
    """Every `module` the part of a Keras config tree that loading builds names (where objects come from)."""
    return [node["module"] for node in _walk(_loaded(config))
            if isinstance(node.get("module"), str) and isinstance(node.get("class_name"), str)]


def load_checked_model(path: str | Path, name: str, input_shape: tuple[int, ...], num_classes: int) -> "keras.Model":
    """Load a model file `inspect_model_file` passed, in safe mode, and check again that it fits the dataset.

    For a training process: Keras builds every layer here. Raises ModelFileError saying why it failed.
    """
    model = load_model_file(path, name)
    inputs, outputs = getattr(model, "inputs", None) or [], getattr(model, "outputs", None) or []
    if (len(inputs) != 1 or tuple(inputs[0].shape[1:]) != tuple(input_shape) or len(outputs) != 1
            or tuple(outputs[0].shape[1:]) != (num_classes,)):
        raise ModelFileError(f"{name} as Keras loads it does not take {'x'.join(map(str, input_shape))} images to "
                             f"{num_classes} class scores.")
    return model
