"""Look inside a trained network: feature maps, convolution arithmetic, filters, attributions, embeddings.

Following CNN Explainer's `constructCNN(image, model)`, one forward pass turns
(model, image) into a plain `NetworkTrace` (every conv block's maps after the
convolution, batch norm, activation and pooling, the convolutions' inputs, the
penultimate features and the probabilities); every view renders that record
and never calls the model itself. `Explainer` is built once per model and keeps
its traced functions, so a drawing is explained in milliseconds.

Works for any model `core.model.build.build_model` makes and for uploaded
single-input Keras models whose top-level layers include Conv2D layers
(found by type). Preprocessing and augmentation layers (Rescaling,
RandomFlip, ...) run with `training=False`, so augmentation is inactive.
Channels-last data only; layers inside nested sub-models are not inspected.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Callable, Mapping, NamedTuple

import numpy as np

from core.data.splits import fixed_subset
from core.explain.embedding import Embedding, EmbeddingFeatures, _check_method, project
from core.explain.images import kernel_images

if TYPE_CHECKING:
    import keras

STAGES = ("conv", "batch norm", "activation", "pooling")
SCORE_LOGIT = "logit"  # the pre-softmax score of the class
SCORE_PROBABILITY = "probability"  # the model's output as it is (no softmax found to undo)


# ---------------------------------------------------------------------------------------------
# Plain records that the views render
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerInfo:
    """One inspectable layer: its feature maps are (H, W, C)."""

    name: str
    kind: str  # Keras class name, e.g. "Conv2D", "Activation (relu)", "MaxPooling2D"
    output_shape: tuple[int | None, int | None, int]
    block: int  # 1-based: the number of Conv2D-like layers up to and including this one
    stage: str  # one of STAGES


@dataclass(frozen=True)
class NetworkTrace:
    """Everything one forward pass of one image produced, as float32 numpy arrays."""

    image: np.ndarray  # (H, W, C), as given to the model
    layers: tuple[LayerInfo, ...]
    feature_maps: Mapping[str, np.ndarray]  # layer name -> (H, W, C)
    conv_inputs: Mapping[str, np.ndarray]  # Conv2D name -> (H, W, C_in) the tensor it convolved
    features: np.ndarray | None  # the penultimate vector (the input of the output Dense layer)
    scores: np.ndarray  # per-class logits, or the probabilities where `score_kind` says so
    probabilities: np.ndarray  # (num_classes,)
    score_kind: str  # SCORE_LOGIT or SCORE_PROBABILITY

    @property
    def predicted_class(self) -> int:
        return int(self.probabilities.argmax())

    def blocks(self) -> dict[int, tuple[LayerInfo, ...]]:
        """The inspectable layers grouped by conv block, in order."""
        grouped: dict[int, list[LayerInfo]] = {}
        for info in self.layers:
            grouped.setdefault(info.block, []).append(info)
        return {block: tuple(infos) for block, infos in grouped.items()}

    def strongest(self, layer_name: str, map_index: int) -> tuple[int, int]:
        """(row, col) where map `map_index` of `layer_name` holds its largest value (the first in reading order):
        where that filter answers this input most, never the background, when the input has anything there."""
        values = self.feature_maps[layer_name][:, :, map_index]
        row, col = np.unravel_index(int(np.argmax(values)), values.shape)
        return int(row), int(col)

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers:
            if info.name == name:
                return info
        raise KeyError(f"no inspectable layer named '{name}'; known: {', '.join(i.name for i in self.layers)}.")


@dataclass(frozen=True)
class ConvArithmetic:
    """How one output value of a Conv2D is computed: sum(patch * kernel) + bias, then the activation."""

    layer: str
    row: int
    col: int
    filter_index: int
    patch: np.ndarray  # (k_h, k_w, C_in) input values under the kernel; 'same' padding positions are 0
    padding_mask: np.ndarray  # (k_h, k_w) True where the kernel lies over padding, not the input
    origin: tuple[int, int]  # input (row, col) under the kernel's top-left tap (negative inside padding)
    kernel: np.ndarray  # (k_h, k_w, C_in)
    products: np.ndarray  # patch * kernel
    total: float  # products.sum()
    bias: float
    pre_activation: float  # total + bias
    activation: str  # the Conv2D's own activation ("linear" for build_model's models)
    result: float  # activation(pre_activation): the layer's output at (row, col, filter_index)


@dataclass(frozen=True)
class FilterImages:
    """A conv layer's kernels as small images; 0.5 is a zero weight, 0 and 1 the largest |weight|."""

    layer: str
    weights: np.ndarray  # (n_filters, k_h, k_w, C_in), raw
    images: np.ndarray  # same shape, in [0, 1]
    scale: float  # the largest |weight| of the layer (one shared scale, so filters compare)


@dataclass(frozen=True)
class WeightHistogram:
    layer: str
    kind: str
    counts: np.ndarray  # (bins,)
    edges: np.ndarray  # (bins + 1,)
    size: int  # number of kernel weights


@dataclass(frozen=True)
class Attribution:
    """A map over the input's pixels, (H, W) in [0, 1], for one class."""

    method: str  # "saliency", "gradient x input" or "grad-cam"
    map: np.ndarray
    class_index: int
    probability: float  # the model's probability of `class_index`
    score_kind: str  # what was differentiated: SCORE_LOGIT or SCORE_PROBABILITY
    layer: str | None = None  # Grad-CAM's feature-map layer


# ---------------------------------------------------------------------------------------------
# Finding the layers
# ---------------------------------------------------------------------------------------------


def _layer_classes() -> dict[str, tuple[type, ...]]:
    from keras import layers as L

    return {
        "conv": (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D),
        "batch norm": (L.BatchNormalization,),
        "activation": (L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.PReLU, L.Softmax),
        "pooling": (L.MaxPooling2D, L.AveragePooling2D),
    }


def _stage_of(layer: "keras.layers.Layer", classes: dict[str, tuple[type, ...]]) -> str | None:
    for stage in STAGES:
        if isinstance(layer, classes[stage]):
            return stage
    return None


def _kind(layer: "keras.layers.Layer") -> str:
    name = type(layer).__name__
    activation = getattr(layer, "activation", None)
    if name == "Activation" and activation is not None:
        return f"Activation ({getattr(activation, '__name__', activation)})"
    return name


def _activation_name(layer: "keras.layers.Layer") -> str:
    activation = getattr(layer, "activation", None)
    return "linear" if activation is None else getattr(activation, "__name__", str(activation))


def _single_input(model: "keras.Model") -> "keras.KerasTensor":
    try:
        inputs = model.inputs
    except AttributeError:
        raise ValueError(f"model '{model.name}' is not built: call it on an image batch or load it built.") from None
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ValueError(f"model '{model.name}' must take one (batch, height, width, channels) image input.")
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ValueError(f"model '{model.name}' must have one (batch, classes) output.")
    return inputs[0]


def _inspectable(model: "keras.Model") -> list[tuple["keras.layers.Layer", LayerInfo]]:
    """Layers with (H, W, C) outputs from the first convolution on, each with its stage and block."""
    classes = _layer_classes()
    found: list[tuple[keras.layers.Layer, LayerInfo]] = []
    block = 0
    for layer in model.layers:
        stage = _stage_of(layer, classes)
        if stage is None or getattr(layer, "data_format", "channels_last") != "channels_last":
            continue
        if stage == "conv":
            block += 1
        if block == 0 or len(layer.output.shape) != 4:
            continue  # before the first convolution, or not a (H, W, C) map
        shape = tuple(layer.output.shape[1:])
        found.append((layer, LayerInfo(layer.name, _kind(layer), shape, block, stage)))
    if not found:
        raise ValueError(f"model '{model.name}' has no Conv2D layer at its top level: nothing to look inside.")
    return found


class _Head(NamedTuple):
    """Where the class scores come from."""

    source: "keras.KerasTensor"  # the tensor the scores are computed from
    kind: str  # "dense-softmax", "logits" (source holds logits), "probabilities" (source is the output)
    dense: "keras.layers.Layer | None"  # the output Dense layer when kind == "dense-softmax"
    features: "keras.KerasTensor | None"  # penultimate activations
    feature_layer: str | None


def _find_head(model: "keras.Model") -> _Head:
    import keras

    last = model.layers[-1]
    dense_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    features = dense_layers[-1].input if dense_layers else None
    feature_layer = _producer_name(model, features) if features is not None else None
    softmax = keras.activations.softmax
    if isinstance(last, keras.layers.Dense) and last.activation is softmax:
        return _Head(last.input, "dense-softmax", last, features, feature_layer)
    softmax_layer = isinstance(last, keras.layers.Activation) and last.activation is softmax
    if isinstance(last, keras.layers.Softmax) or softmax_layer:
        return _Head(last.input, "logits", None, features, feature_layer)
    if isinstance(last, keras.layers.Dense) and last.activation is keras.activations.linear:
        return _Head(last.output, "logits", None, features, feature_layer)
    return _Head(model.outputs[0], "probabilities", None, features, feature_layer)


def _producer_name(model: "keras.Model", tensor: "keras.KerasTensor") -> str:
    """The layer that computed `tensor`, looking through Dropout (the identity at inference)."""
    import keras

    for layer in model.layers:
        if layer.output is tensor:
            if isinstance(layer, keras.layers.Dropout):
                return _producer_name(model, layer.input)
            return layer.name
    return "input"


# ---------------------------------------------------------------------------------------------
# The explainer
# ---------------------------------------------------------------------------------------------


class Explainer:
    """Feature maps, arithmetic, filters and attributions for one Keras model.

    Build it once per model (it traces its functions lazily, once each) and
    keep it with the model; it reads the model's current weights on every
    call, so it stays valid while the model trains.
    """

    def __init__(self, model: "keras.Model") -> None:
        import keras
        import tensorflow as tf

        self.model = model
        self._input = _single_input(model)
        self.input_shape: tuple[int | None, ...] = tuple(self._input.shape[1:])
        self.num_classes = int(model.outputs[0].shape[-1])
        self._found = _inspectable(model)
        self._layers = {layer.name: layer for layer, _ in self._found}
        self._head = _find_head(model)
        self.score_kind = SCORE_PROBABILITY if self._head.kind == "probabilities" else SCORE_LOGIT
        self.feature_layer = self._head.feature_layer

        # One multi-output model for the whole trace; tensors are fetched once each.
        wanted = [layer.output for layer, _ in self._found]
        self._conv2d = [layer for layer, _ in self._found if isinstance(layer, keras.layers.Conv2D)]
        wanted += [layer.input for layer in self._conv2d if layer.input is not self._input]
        wanted += [t for t in (self._head.features, self._head.source, model.outputs[0]) if t is not None]
        self._fetch: list = []
        for tensor in wanted:
            if not any(tensor is t for t in self._fetch):
                self._fetch.append(tensor)
        self._trace_model = keras.Model(self._input, self._fetch, name=f"{model.name}_trace")
        self._spec = tf.TensorSpec(shape=(1, *self.input_shape), dtype=tf.float32)
        self._trace_fn = tf.function(lambda x: self._trace_model(x, training=False),
                                     input_signature=[self._spec])
        self._gradient_fn: Callable | None = None
        self._cam_fns: dict[str, Callable] = {}
        self._features_fn: Callable | None = None
        if self._head.features is not None:  # built here: a background thread (embeddings) then only calls it
            features_model = keras.Model(self._input, [self._head.features, model.outputs[0]])
            self._features_fn = tf.function(lambda x: features_model(x, training=False),
                                            input_signature=[tf.TensorSpec((None, *self.input_shape), tf.float32)])

    # -- structure -----------------------------------------------------------------------------

    def layers(self) -> tuple[LayerInfo, ...]:
        """The inspectable layers in order: conv, batch norm, activation and pooling of each block."""
        return tuple(info for _, info in self._found)

    def conv_layers(self) -> tuple[str, ...]:
        """Names of the Conv2D layers `conv_arithmetic` can explain."""
        return tuple(layer.name for layer in self._conv2d)

    def default_cam_layer(self) -> str:
        """Grad-CAM's layer: the last conv block's activation output, else its convolution."""
        last_block = self._found[-1][1].block
        in_block = [info for _, info in self._found if info.block == last_block]
        for info in in_block:
            if info.stage == "activation":
                return info.name
        return in_block[0].name

    # -- one forward pass ----------------------------------------------------------------------

    def activations(self, image: np.ndarray) -> NetworkTrace:
        """Every inspectable layer's feature maps and the probabilities, from one forward pass."""
        batch = self._as_batch(image)
        values = {id(t): np.asarray(v, dtype=np.float32)[0] for t, v in zip(self._fetch, self._trace_fn(batch))}
        values[id(self._input)] = batch[0]
        scores, probabilities = self._scores_numpy(values)
        head = self._head
        return NetworkTrace(
            image=batch[0],
            layers=self.layers(),
            feature_maps=MappingProxyType({info.name: values[id(layer.output)] for layer, info in self._found}),
            conv_inputs=MappingProxyType({layer.name: values[id(layer.input)] for layer in self._conv2d}),
            features=values[id(head.features)] if head.features is not None else None,
            scores=scores,
            probabilities=probabilities,
            score_kind=self.score_kind,
        )

    def _scores_numpy(self, values: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        head = self._head
        source = values[id(head.source)]
        if head.kind == "dense-softmax":
            kernel = np.asarray(head.dense.kernel, dtype=np.float64)
            bias = np.asarray(head.dense.bias, dtype=np.float64) if head.dense.use_bias else 0.0
            logits = (source.astype(np.float64) @ kernel + bias).astype(np.float32)
            return logits, values[id(self.model.outputs[0])]
        if head.kind == "logits":
            return source, _softmax(source)
        return source, source

    # -- convolution arithmetic ----------------------------------------------------------------

    def conv_arithmetic(
        self, trace_or_image: NetworkTrace | np.ndarray, layer_name: str, row: int, col: int, filter_index: int
    ) -> ConvArithmetic:
        """The multiply-adds behind the output of `layer_name` at (row, col, filter_index)."""
        trace = trace_or_image if isinstance(trace_or_image, NetworkTrace) else self.activations(trace_or_image)
        layer = self._conv_layer(layer_name)
        out = trace.feature_maps[layer_name]
        for value, size, what in ((row, out.shape[0], "row"), (col, out.shape[1], "col"),
                                  (filter_index, out.shape[2], "filter_index")):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < size:
                raise ValueError(f"{what} == {value!r}, must be an integer in 0..{size - 1} for layer '{layer_name}'.")
        x = trace.conv_inputs[layer_name]
        kernel_all = np.asarray(layer.kernel, dtype=np.float32)  # (k_h, k_w, C_in / groups, filters)
        (k_h, k_w), (s_h, s_w), (d_h, d_w) = layer.kernel_size, layer.strides, layer.dilation_rate
        top, left = (_same_padding(out.shape[i], x.shape[i], k, s, d)
                     for i, k, s, d in ((0, k_h, s_h, d_h), (1, k_w, s_w, d_w)))
        if layer.padding != "same":
            top = left = 0
        rows = row * s_h - top + np.arange(k_h) * d_h
        cols = col * s_w - left + np.arange(k_w) * d_w
        inside = ((rows >= 0) & (rows < x.shape[0]))[:, None] & ((cols >= 0) & (cols < x.shape[1]))[None, :]
        per_group = kernel_all.shape[2]
        group = filter_index // (kernel_all.shape[3] // layer.groups)
        channels = x[:, :, group * per_group:(group + 1) * per_group]
        patch = np.zeros((k_h, k_w, per_group), dtype=np.float32)
        r_in, c_in = np.nonzero(inside)
        patch[r_in, c_in] = channels[rows[r_in], cols[c_in]]
        kernel = kernel_all[:, :, :, filter_index]
        products = patch * kernel
        total = float(products.astype(np.float64).sum())
        bias = float(np.asarray(layer.bias)[filter_index]) if layer.use_bias else 0.0
        pre = total + bias
        result = float(np.asarray(layer.activation(np.array([pre], dtype=np.float32)))[0])
        return ConvArithmetic(
            layer=layer_name, row=int(row), col=int(col), filter_index=int(filter_index),
            patch=patch, padding_mask=~inside, origin=(int(rows[0]), int(cols[0])), kernel=kernel,
            products=products, total=total, bias=bias, pre_activation=pre,
            activation=_activation_name(layer), result=result,
        )

    def _conv_layer(self, name: str | None) -> "keras.layers.Conv2D":
        if name is None:
            return self._conv2d[0]
        for layer in self._conv2d:
            if layer.name == name:
                return layer
        raise ValueError(f"'{name}' is not a Conv2D layer of this model; "
                         f"Conv2D layers: {', '.join(self.conv_layers())}.")

    # -- weights -------------------------------------------------------------------------------

    def filters(self, layer_name: str | None = None) -> FilterImages:
        """The first Conv2D's kernels (or `layer_name`'s) as (n_filters, k_h, k_w, C_in) images."""
        layer = self._conv_layer(layer_name)
        weights = np.transpose(np.asarray(layer.kernel, dtype=np.float32), (3, 0, 1, 2))
        images, scale = kernel_images(weights)
        return FilterImages(layer.name, weights, images, scale)

    def weight_histograms(self, bins: int = 40) -> list[WeightHistogram]:
        """A histogram of the kernel weights of every layer that has a kernel (conv and dense)."""
        histograms = []
        for layer in self.model.layers:
            if getattr(layer, "built", False) and hasattr(layer, "kernel"):
                weights = np.asarray(layer.kernel, dtype=np.float32).ravel()
                counts, edges = np.histogram(weights, bins=bins)
                histograms.append(WeightHistogram(layer.name, _kind(layer), counts, edges, int(weights.size)))
        return histograms

    # -- attributions --------------------------------------------------------------------------

    def saliency(self, image: np.ndarray, class_index: int | None = None) -> Attribution:
        """Vanilla gradient: |d score / d pixel|, max over channels, scaled to [0, 1].

        The score is the class's pre-softmax logit (computed from the output
        Dense layer's kernel and bias, or taken from the input of a final
        softmax layer); for a model whose head is neither, it is the model's
        output (`score_kind` says which).
        """
        grads, batch, cls, prob = self._gradients(image, class_index)
        return Attribution("saliency", _unit(np.abs(grads).max(axis=-1)), cls, prob, self.score_kind)

    def gradient_x_input(self, image: np.ndarray, class_index: int | None = None) -> Attribution:
        """|sum over channels of gradient * input|, scaled to [0, 1] (score as in `saliency`)."""
        grads, batch, cls, prob = self._gradients(image, class_index)
        return Attribution("gradient x input", _unit(np.abs((grads * batch[0]).sum(axis=-1))), cls, prob,
                           self.score_kind)

    def grad_cam(self, image: np.ndarray, class_index: int | None = None, layer_name: str | None = None) -> Attribution:
        """Grad-CAM on `layer_name` (default: `default_cam_layer()`), bilinearly upsampled to the input, in [0, 1].

        A map that is 0 everywhere means no feature map raised the class score.
        """
        name = layer_name or self.default_cam_layer()
        if name not in self._layers:
            raise ValueError(f"'{name}' has no (H, W, C) feature maps to weigh; choose one of "
                             f"{', '.join(self._layers)}.")
        if name not in self._cam_fns:
            self._cam_fns[name] = self._make_cam_fn(self._layers[name])
        batch = self._as_batch(image)
        cam, cls, prob = self._cam_fns[name](batch, self._class_arg(class_index))
        return Attribution("grad-cam", _unit(np.asarray(cam, dtype=np.float32)), int(cls), float(prob),
                           self.score_kind, name)

    def attributions(self, image: np.ndarray, class_index: int | None = None,
                     cam_layer: str | None = None) -> tuple[Attribution, Attribution, Attribution]:
        """(saliency, gradient x input, Grad-CAM) for one class, from one gradient pass and one Grad-CAM pass."""
        grads, batch, cls, prob = self._gradients(image, class_index)
        saliency = Attribution("saliency", _unit(np.abs(grads).max(axis=-1)), cls, prob, self.score_kind)
        times_input = Attribution("gradient x input", _unit(np.abs((grads * batch[0]).sum(axis=-1))), cls, prob,
                                  self.score_kind)
        return saliency, times_input, self.grad_cam(batch, cls, cam_layer)

    def _class_arg(self, class_index: int | None) -> np.int32:
        if class_index is None:
            return np.int32(-1)
        if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)) \
                or not 0 <= class_index < self.num_classes:
            raise ValueError(f"class_index == {class_index!r}, must be None or an integer in "
                             f"0..{self.num_classes - 1}.")
        return np.int32(class_index)

    def _gradients(self, image: np.ndarray, class_index: int | None) -> tuple[np.ndarray, np.ndarray, int, float]:
        if self._gradient_fn is None:
            self._gradient_fn = self._make_gradient_fn()
        batch = self._as_batch(image)
        grads, cls, prob = self._gradient_fn(batch, self._class_arg(class_index))
        return np.asarray(grads, dtype=np.float32)[0], batch, int(cls), float(prob)

    def _graph_scores(self, outputs: list) -> tuple:
        """(scores, probabilities) inside a traced function, from [head source, model output]."""
        import tensorflow as tf

        # float32 throughout, so a mixed-precision model's float16 tensors do not meet float32 kernels
        source, output = (tf.cast(t, tf.float32) for t in outputs)
        head = self._head
        if head.kind == "dense-softmax":
            scores = tf.matmul(source, tf.cast(head.dense.kernel, tf.float32))
            if head.dense.use_bias:
                scores = scores + tf.cast(head.dense.bias, tf.float32)
            return scores, output
        if head.kind == "logits":
            return source, tf.nn.softmax(source)
        return output, output

    def _pick(self, probabilities, class_index):
        import tensorflow as tf

        predicted = tf.argmax(probabilities[0], output_type=tf.int32)
        cls = tf.where(class_index >= 0, class_index, predicted)
        return cls, tf.gather(probabilities[0], cls)

    def _make_gradient_fn(self) -> Callable:
        import keras
        import tensorflow as tf

        model = keras.Model(self._input, [self._head.source, self.model.outputs[0]])

        @tf.function(input_signature=[self._spec, tf.TensorSpec((), tf.int32)])
        def gradient(x, class_index):
            with tf.GradientTape() as tape:
                tape.watch(x)
                scores, probabilities = self._graph_scores(model(x, training=False))
                cls, prob = self._pick(probabilities, class_index)
                score = tf.gather(scores[0], cls)
            return tape.gradient(score, x), cls, prob

        return gradient

    def _make_cam_fn(self, layer: "keras.layers.Layer") -> Callable:
        import keras
        import tensorflow as tf

        model = keras.Model(self._input, [layer.output, self._head.source, self.model.outputs[0]])

        @tf.function(input_signature=[self._spec, tf.TensorSpec((), tf.int32)])
        def cam(x, class_index):
            with tf.GradientTape() as tape:
                tape.watch(x)  # so the maps are on the tape even if the conv weights are frozen
                maps, *head = model(x, training=False)
                scores, probabilities = self._graph_scores(head)
                cls, prob = self._pick(probabilities, class_index)
                score = tf.gather(scores[0], cls)
            grads = tf.cast(tape.gradient(score, maps), tf.float32)
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
            heat = tf.nn.relu(tf.reduce_sum(weights * tf.cast(maps, tf.float32), axis=-1, keepdims=True))
            heat = tf.image.resize(heat, tf.shape(x)[1:3], method="bilinear")
            return heat[0, :, :, 0], cls, prob

        return cam

    # -- embeddings ----------------------------------------------------------------------------

    def embedding(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        method: str = "pca",
        max_points: int = 3000,
        seed: int = 0,
        batch_size: int = 256,
        tsne_iterations: int = 500,
    ) -> Embedding:
        """Penultimate activations of up to `max_points` images (a seeded subset), projected to 2-D.

        PCA takes well under a second; t-SNE takes seconds to a minute on 2 cores
        for 1,000-3,000 points (run it outside the page's script run, or cache it).
        """
        _check_method(method)
        return project(self.embedding_features(images, labels, max_points, seed, batch_size), method, seed,
                       tsne_iterations)

    def embedding_features(self, images: np.ndarray, labels: np.ndarray, max_points: int = 3000, seed: int = 0,
                           batch_size: int = 256) -> "EmbeddingFeatures":
        """The penultimate activations of up to `max_points` images (a seeded subset), ready for `project`.

        This is the part that runs the model; `project` needs only numpy and
        scikit-learn, so a background thread can run it without touching Keras.
        """
        if self._head.features is None:
            raise ValueError(f"model '{self.model.name}' has no Dense layer whose input could be embedded.")
        images, labels = np.asarray(images), np.asarray(labels).reshape(-1)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels.")
        indices = fixed_subset(len(images), max_points, seed)
        if len(indices) < 3:
            raise ValueError(f"an embedding needs at least 3 images, got {len(indices)}.")
        features, probabilities = self._features(images[indices], batch_size)
        return EmbeddingFeatures(features, indices, labels[indices].astype(np.int64),
                                 probabilities.argmax(axis=1).astype(np.int64), self.feature_layer or "")

    def _features(self, images: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        parts = [self._features_fn(np.asarray(images[i:i + batch_size], dtype=np.float32))
                 for i in range(0, len(images), batch_size)]
        features = np.concatenate([np.asarray(f, dtype=np.float32).reshape(len(f), -1) for f, _ in parts])
        return features, np.concatenate([np.asarray(p, dtype=np.float32) for _, p in parts])

    # -- helpers -------------------------------------------------------------------------------

    def _as_batch(self, image: np.ndarray) -> np.ndarray:
        """(1, H, W, C) float32 from (H, W), (H, W, C) or (1, H, W, C)."""
        x = np.asarray(image, dtype=np.float32)
        if x.ndim == 2:
            x = x[:, :, np.newaxis]
        if x.ndim == 3:
            x = x[np.newaxis]
        expected = self.input_shape
        if x.ndim != 4 or x.shape[0] != 1 or any(e is not None and e != s for e, s in zip(expected, x.shape[1:])):
            shape = "x".join("?" if e is None else str(e) for e in expected)
            raise ValueError(f"expected one {shape} image, got an array of shape {np.shape(image)}.")
        return x


def _same_padding(out_size: int, in_size: int, kernel: int, stride: int, dilation: int) -> int:
    """Zeros TensorFlow's 'same' padding adds before the first row (or column)."""
    effective = (kernel - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - in_size, 0) // 2


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return (e / e.sum()).astype(np.float32)


def _unit(values: np.ndarray) -> np.ndarray:
    """Scale non-negative values to [0, 1] by their maximum (all zeros stay zeros)."""
    values = np.asarray(values, dtype=np.float32)
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)
