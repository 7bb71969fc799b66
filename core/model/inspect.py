"""Sizing a Keras model from its config.json alone: every layer's output shape and parameters, no weights loaded.

An uploaded model must meet the same limits as an architecture built with
the sliders (`core.limits.check_model_size`: parameters, values per image),
and be refused *before* Keras builds it (building allocates every weight:
a 20 kB file can declare gigabytes). So the layer graph is walked here in
plain Python, from the input's declared shape, computing each layer's output
shape and parameter count from its config, for the layers an image
classifier is made of (`SIZED_LAYERS`); a model with any other layer is
refused by name. Shapes the file records (`build_config`) are never trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from core import limits
from core.errors import ConvLabError, ModelFileError

Shape = tuple[int, ...]  # per image: no batch axis

IDENTITY = frozenset({
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "Rescaling", "RandomFlip", "RandomRotation", "RandomZoom",
    "RandomTranslation", "RandomContrast", "RandomBrightness", "ActivityRegularization", "Identity",
})
MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})
CONTAINERS = frozenset({"Sequential", "Functional", "Model"})


@dataclass(frozen=True)
class ModelSummary:
    """What a model file's config says, checked: its input and output per image, and its size."""

    input_shape: Shape
    output_shape: Shape
    size: limits.ModelSize
    layers: int


def inspect_config(config: Any, name: str) -> ModelSummary:
    """Walk a Keras 3 model config (Sequential or Functional); raises ModelFileError saying what is wrong.

    The model must also pass the size limits (ArchitectureError, as for a built architecture).
    """
    if not isinstance(config, dict) or config.get("class_name") not in CONTAINERS:
        raise ModelFileError(f"{name}: its config.json does not describe a Keras Sequential or Functional model.")
    walker = _Walker(name)
    try:
        input_shape, output_shape = walker.model(config, None)
    except ConvLabError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, ZeroDivisionError) as error:
        raise ModelFileError(f"{name}: a layer in its config.json has settings ConvLab cannot read ({error}).") \
            from None
    size = limits.ModelSize(walker.params, input_shape, tuple(walker.shapes))
    limits.check_model_size(size, what="this model")
    return ModelSummary(input_shape, output_shape, size, len(walker.shapes))


class _Walker:
    """Accumulates the parameters and the output shape of every layer it walks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.params = 0
        self.shapes: list[Shape] = []

    def fail(self, problem: str) -> ModelFileError:
        return ModelFileError(f"{self.name}: {problem}")

    def model(self, config: dict, given: Shape | None) -> tuple[Shape, Shape]:
        inner = config.get("config")
        if not isinstance(inner, dict) or not isinstance(inner.get("layers"), list):
            raise self.fail("a model in its config.json has no list of layers.")
        if config.get("class_name") == "Sequential":
            return self._sequential(inner["layers"], given)
        return self._functional(inner, given)

    def _sequential(self, layers: list, given: Shape | None) -> tuple[Shape, Shape]:
        shape = given
        first: Shape | None = given
        for layer in layers:
            if _class(layer) == "InputLayer":
                shape = first = self._input(layer)
                continue
            if shape is None:
                raise self.fail("its first layer has no declared input shape (a Sequential model needs an Input).")
            shape = self.layer(layer, [shape])
        if first is None or shape is None:
            raise self.fail("it has no input layer.")
        return first, shape

    def _functional(self, inner: dict, given: Shape | None) -> tuple[Shape, Shape]:
        shapes: dict[str, list[Shape]] = {}  # layer name -> output shape of each of its nodes
        inputs: list[Shape] = []
        for layer in inner["layers"]:
            layer_name = str(layer.get("name") or (layer.get("config") or {}).get("name"))
            if _class(layer) == "InputLayer":
                shape = given if given is not None and not inputs else self._input(layer)
                inputs.append(shape)
                shapes[layer_name] = [shape]
                continue
            nodes = layer.get("inbound_nodes") or []
            if not isinstance(nodes, list) or not nodes:
                raise self.fail(f"layer {layer_name!r} is connected to nothing.")
            for node in nodes:
                shapes.setdefault(layer_name, []).append(self.layer(layer, self._inbound(node, shapes, layer_name)))
        if len(inputs) != 1:
            raise self.fail(f"it has {len(inputs)} inputs; ConvLab classifies single images (one input).")
        outputs = inner.get("output_layers")
        if not isinstance(outputs, list) or not outputs:
            raise self.fail("its config.json names no output layer.")
        if isinstance(outputs[0], str):  # one output, written flat: [name, node, tensor]
            outputs = [outputs]
        if len(outputs) != 1:
            raise self.fail(f"it has {len(outputs)} outputs; ConvLab expects one (the class probabilities).")
        return inputs[0], self._history(outputs[0], shapes, "its output")

    def _inbound(self, node: Any, shapes: dict[str, list[Shape]], layer_name: str) -> list[Shape]:
        args = node.get("args") if isinstance(node, dict) else node
        found: list[Shape] = []

        def collect(value: Any) -> None:
            if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
                found.append(self._history((value.get("config") or {}).get("keras_history"), shapes, layer_name))
            elif isinstance(value, (list, tuple)):
                for item in value:
                    collect(item)

        collect(args)
        if not found:
            raise self.fail(f"layer {layer_name!r} has an input ConvLab cannot follow.")
        return found

    def _history(self, history: Any, shapes: dict[str, list[Shape]], where: str) -> Shape:
        if not isinstance(history, (list, tuple)) or len(history) < 2 or str(history[0]) not in shapes:
            raise self.fail(f"{where} refers to a layer that comes later or does not exist.")
        nodes = shapes[str(history[0])]
        index = history[1]
        if not isinstance(index, int) or not 0 <= index < len(nodes):
            raise self.fail(f"{where} refers to a node that does not exist.")
        return nodes[index]

    def _input(self, layer: dict) -> Shape:
        config = layer.get("config") or {}
        batch_shape = config.get("batch_shape") or config.get("batch_input_shape")
        if not isinstance(batch_shape, list) or len(batch_shape) < 2:
            raise self.fail("its input layer declares no shape.")
        shape = tuple(batch_shape[1:])
        if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise self.fail(f"its input shape {batch_shape[1:]} is not fixed (every size must be a number).")
        return shape  # type: ignore[return-value]

    def layer(self, layer: Any, inputs: list[Shape]) -> Shape:
        """One layer: its output shape; its parameters and output are counted."""
        kind = _class(layer)
        config = layer.get("config") if isinstance(layer, dict) else None
        if not isinstance(config, dict):
            raise self.fail(f"a {kind} layer has no config.")
        if kind in CONTAINERS:
            if len(inputs) != 1:
                raise self.fail(f"a nested {kind} takes {len(inputs)} inputs; ConvLab follows one.")
            return self.model(layer, inputs[0])[1]
        rule = _RULES.get(kind)
        if rule is None and kind not in IDENTITY and kind not in MERGES:
            raise self.fail(
                f"it has a {kind} layer, which ConvLab cannot size from the file before loading it. Uploaded models "
                f"may use {', '.join(sorted(IDENTITY | MERGES | set(_RULES) | {'InputLayer'}))}.")
        if kind in MERGES:
            if len({tuple(s) for s in inputs}) != 1:
                raise self.fail(f"its {kind} layer merges tensors of different shapes {inputs}.")
            shape = inputs[0]
        elif kind in IDENTITY:
            shape = inputs[0]
        else:
            if config.get("data_format", "channels_last") != "channels_last":
                raise self.fail(f"its {kind} layer is channels_first; ConvLab's images are channels_last.")
            shape, params = rule(config, inputs, self.fail)  # type: ignore[misc]
            self.params += params
        if any(d <= 0 for d in shape):
            raise self.fail(f"its {kind} layer shrinks the feature maps to {'x'.join(map(str, shape))}.")
        self.shapes.append(shape)
        return shape


def _class(layer: Any) -> str:
    return str(layer.get("class_name")) if isinstance(layer, dict) else "?"


def _pair(value: Any, default: int = 1) -> tuple[int, int]:
    if value is None:
        return default, default
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"{value!r} is not a size")


def _spatial(size: int, kernel: int, stride: int, padding: str, dilation: int = 1) -> int:
    if padding == "same":
        return math.ceil(size / stride)
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def _image(inputs: list[Shape], kind: str, fail: Callable[[str], Exception]) -> tuple[int, int, int]:
    shape = inputs[0]
    if len(shape) != 3:
        raise fail(f"its {kind} layer takes images (height, width, channels) but gets {shape}.")
    return shape  # type: ignore[return-value]


def _conv(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    height, width, channels = _image(inputs, "Conv2D", fail)
    (kh, kw), (sh, sw) = _pair(config.get("kernel_size")), _pair(config.get("strides"))
    (dh, dw), filters = _pair(config.get("dilation_rate")), int(config.get("filters", 0))
    groups, padding = int(config.get("groups", 1) or 1), str(config.get("padding", "valid"))
    params = kh * kw * (channels // groups) * filters + (filters if config.get("use_bias", True) else 0)
    return (_spatial(height, kh, sh, padding, dh), _spatial(width, kw, sw, padding, dw), filters), params


def _depthwise(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    height, width, channels = _image(inputs, "DepthwiseConv2D", fail)
    (kh, kw), (sh, sw) = _pair(config.get("kernel_size")), _pair(config.get("strides"))
    multiplier, padding = int(config.get("depth_multiplier", 1)), str(config.get("padding", "valid"))
    out = channels * multiplier
    params = kh * kw * out + (out if config.get("use_bias", True) else 0)
    return (_spatial(height, kh, sh, padding), _spatial(width, kw, sw, padding), out), params


def _separable(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    height, width, channels = _image(inputs, "SeparableConv2D", fail)
    (kh, kw), (sh, sw) = _pair(config.get("kernel_size")), _pair(config.get("strides"))
    multiplier, filters = int(config.get("depth_multiplier", 1)), int(config.get("filters", 0))
    padding = str(config.get("padding", "valid"))
    params = kh * kw * channels * multiplier + channels * multiplier * filters
    params += filters if config.get("use_bias", True) else 0
    return (_spatial(height, kh, sh, padding), _spatial(width, kw, sw, padding), filters), params


def _pool(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    height, width, channels = _image(inputs, "pooling", fail)
    (ph, pw) = _pair(config.get("pool_size"), 2)
    (sh, sw) = _pair(config.get("strides")) if config.get("strides") is not None else (ph, pw)
    padding = str(config.get("padding", "valid"))
    return (_spatial(height, ph, sh, padding), _spatial(width, pw, sw, padding), channels), 0


def _global_pool(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    _, _, channels = _image(inputs, "global pooling", fail)
    return ((1, 1, channels) if config.get("keepdims") else (channels,)), 0


def _dense(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    units = int(config.get("units", 0))
    width = inputs[0][-1]
    return (*inputs[0][:-1], units), width * units + (units if config.get("use_bias", True) else 0)


def _flatten(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    return (math.prod(inputs[0]),), 0


def _reshape(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    target = [int(d) for d in config.get("target_shape") or ()]
    known = math.prod(d for d in target if d != -1)
    if target.count(-1) == 1 and known:
        target[target.index(-1)] = math.prod(inputs[0]) // known
    if math.prod(target) != math.prod(inputs[0]):
        raise fail(f"its Reshape layer turns {inputs[0]} into {tuple(target)}, which do not hold as many values.")
    return tuple(target), 0


def _normalization(scale_and_center: bool) -> Callable[[dict, list[Shape], Callable[[str], Exception]],
                                                       tuple[Shape, int]]:
    def rule(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
        channels = inputs[0][-1]
        if scale_and_center:  # BatchNormalization: gamma, beta, and the moving mean and variance
            count = 2 + int(bool(config.get("center", True))) + int(bool(config.get("scale", True)))
        else:  # LayerNormalization: gamma and beta
            count = int(bool(config.get("center", True))) + int(bool(config.get("scale", True)))
        return inputs[0], count * channels
    return rule


def _padding(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    height, width, channels = _image(inputs, "padding", fail)
    value = config.get("padding", 1)
    (top, bottom), (left, right) = ((_pair(value[0]), _pair(value[1])) if isinstance(value, (list, tuple))
                                    and len(value) == 2 and not all(isinstance(v, int) for v in value)
                                    else (_pair(value), _pair(value)))
    return (height + top + bottom, width + left + right, channels), 0


def _cropping(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    height, width, channels = _image(inputs, "cropping", fail)
    value = config.get("cropping", 0)
    (top, bottom), (left, right) = ((_pair(value[0]), _pair(value[1])) if isinstance(value, (list, tuple))
                                    and len(value) == 2 and not all(isinstance(v, int) for v in value)
                                    else (_pair(value), _pair(value)))
    return (height - top - bottom, width - left - right, channels), 0


def _upsampling(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    height, width, channels = _image(inputs, "UpSampling2D", fail)
    sh, sw = _pair(config.get("size"), 2)
    return (height * sh, width * sw, channels), 0


def _resize(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    _, _, channels = _image(inputs, "resizing", fail)
    return (int(config.get("height", 0)), int(config.get("width", 0)), channels), 0


def _concatenate(config: dict, inputs: list[Shape], fail: Callable[[str], Exception]) -> tuple[Shape, int]:
    if config.get("axis", -1) not in (-1, len(inputs[0])) or len({s[:-1] for s in inputs}) != 1:
        raise fail(f"its Concatenate layer joins {inputs}, which ConvLab can only join along their last axis.")
    return (*inputs[0][:-1], sum(s[-1] for s in inputs)), 0


_RULES: dict[str, Callable[[dict, list[Shape], Callable[[str], Exception]], tuple[Shape, int]]] = {
    "Conv2D": _conv, "DepthwiseConv2D": _depthwise, "SeparableConv2D": _separable,
    "MaxPooling2D": _pool, "AveragePooling2D": _pool,
    "GlobalAveragePooling2D": _global_pool, "GlobalMaxPooling2D": _global_pool,
    "Dense": _dense, "Flatten": _flatten, "Reshape": _reshape,
    "BatchNormalization": _normalization(True), "LayerNormalization": _normalization(False),
    "ZeroPadding2D": _padding, "Cropping2D": _cropping, "UpSampling2D": _upsampling,
    "Resizing": _resize, "CenterCrop": _resize, "Concatenate": _concatenate,
}
