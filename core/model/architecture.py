"""Stage 2: describe a CNN (with optional data augmentation), check it and tabulate its layers.

An `Architecture` is plain data (frozen dataclasses), so the dashboard's
sliders can describe a model, and `layer_table` can show shapes and
parameter counts without importing TensorFlow. `core.model.build.build_model`
turns the description into a named `keras.Model`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from core import limits
from core.checks import check_choice, check_scalar, from_mapping, type_error_of
from core.errors import ArchitectureError
from core.model.augment import Augmentation, augmentation_table_rows

ACTIVATIONS = ("relu", "elu", "gelu", "tanh", "sigmoid")
POOLINGS = ("max", "average", "none")
PADDINGS = ("valid", "same")


@dataclass(frozen=True)
class ConvBlock:
    """Conv2D -> [BatchNorm] -> activation -> [pooling] -> [dropout]."""

    filters: int = 32
    kernel_size: int = 3
    activation: str = "relu"
    pooling: str = "max"
    pool_size: int = 2
    batch_norm: bool = False
    dropout: float = 0.0
    padding: str = "valid"


@dataclass(frozen=True)
class DenseLayer:
    """Dense -> activation -> [dropout], between flatten and the softmax output."""

    units: int = 100
    activation: str = "relu"
    dropout: float = 0.0


@dataclass(frozen=True)
class Architecture:
    """A CNN: [augmentation], conv blocks, flatten, dense layers, softmax over the classes.

    Augmentation (off by default) is a stack of random Keras layers right after
    the input: active while training only, so predictions are deterministic.
    """

    conv_blocks: tuple[ConvBlock, ...] = (ConvBlock(),)
    dense_layers: tuple[DenseLayer, ...] = (DenseLayer(),)
    name: str = "convlab_cnn"
    augmentation: Augmentation = Augmentation()

    def with_blocks(self, conv_blocks: list[ConvBlock], dense_layers: list[DenseLayer]) -> "Architecture":
        return replace(self, conv_blocks=tuple(conv_blocks), dense_layers=tuple(dense_layers))


PRESETS: dict[str, Architecture] = {
    # The lab's model: Conv2D 32 3x3 ReLU, max-pool 2x2, flatten, dense 100 ReLU, softmax.
    "lab": Architecture(
        conv_blocks=(ConvBlock(filters=32, kernel_size=3),),
        dense_layers=(DenseLayer(units=100),),
        name="lab_cnn",
    ),
    # keras-io mnist_convnet; its Dropout(0.5) after Flatten equals dropout after the last pooling.
    "keras-example": Architecture(
        conv_blocks=(ConvBlock(filters=32, kernel_size=3), ConvBlock(filters=64, kernel_size=3, dropout=0.5)),
        dense_layers=(),
        name="keras_mnist_convnet",
    ),
    # Three blocks for handwritten digits (issue 23: at least 99.0 % on 10,000 digits within a minute here).
    # Batch normalisation only where the maps are small: on the first block's 24x24 maps it would add about
    # half to each epoch. The third block ('same' padding, no pooling) looks again at the 5x5 map with twice the
    # filters; the wide dense layer with dropout 0.5 keeps it from learning the 9,000 training digits by heart.
    # Shifting each training image by up to 5 % (about a pixel and a half) still helps on digits.
    "fast": Architecture(
        conv_blocks=(
            ConvBlock(filters=32, kernel_size=5),
            ConvBlock(filters=32, kernel_size=3, batch_norm=True),
            ConvBlock(filters=64, kernel_size=3, batch_norm=True, padding="same", pooling="none"),
        ),
        dense_layers=(DenseLayer(units=256, dropout=0.5),),
        name="fast_cnn",
        augmentation=Augmentation(shift=0.05),
    ),
    # Three blocks for photos of objects and clothing (issue 23: at least 93.0 % on Fashion-MNIST within ten
    # minutes here). 'same' padding keeps the edges of a garment in the first two blocks; the third looks at the
    # 7x7 map without pooling and hands 5x5x128 features to a wide dense layer. Dropout after the last block and
    # the dense layer, and mirroring left to right (a mirrored shirt is still a shirt; shifts, which help
    # digits, cost accuracy on centred photos).
    "photos": Architecture(
        conv_blocks=(
            ConvBlock(filters=32, kernel_size=3, padding="same"),
            ConvBlock(filters=64, kernel_size=3, padding="same", batch_norm=True),
            ConvBlock(filters=128, kernel_size=3, batch_norm=True, pooling="none", dropout=0.25),
        ),
        dense_layers=(DenseLayer(units=256, dropout=0.5),),
        name="photos_cnn",
        augmentation=Augmentation(horizontal_flip=True),
    ),
}

PRESET_DESCRIPTIONS = {
    "lab": "The lab's model: one 32-filter 3x3 convolution, max-pooling, dense 100, softmax.",
    "keras-example": "The keras-io MNIST convnet: 32 and 64 filters, max-pooling, dropout 0.5.",
    "fast": "For handwritten digits: three blocks (32, 32, 64 filters; the last two batch-normalised), dense 256 "
    "with dropout 0.5, training images shifted by up to 5 %. With the fast recipe: over 99 % on 10,000 "
    "digits in under a minute on a 2-core CPU.",
    "photos": "For photos of objects and clothing: three blocks (32, 64, 128 filters; 'same' padding in the first "
    "two, the last two batch-normalised), dense 256 with dropout 0.5, training images mirrored left to right. With "
    "the photos recipe: over 93 % on Fashion-MNIST in under ten minutes on a 2-core CPU.",
}


def _check_int(value: object, name: str, lo: int, hi: int) -> None:
    check_scalar(value, name, ArchitectureError, integer=True, lo=lo, hi=hi, what=f"between {lo} and {hi}",
                 kind_message="an integer")


def _check_dropout(value: object, name: str) -> None:
    check_scalar(value, name, ArchitectureError, integer=False, lo=0, hi=1, hi_open=True, what="in [0, 1)")


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> None:
    check_choice(value, name, choices, ArchitectureError)


def validate(arch: Architecture, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """Raise ArchitectureError with an exact reason if `arch` cannot be built for this input.

    That includes a model too large to train here (`core.limits.check_model_size`).
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ArchitectureError(f"input shape {input_shape} must be (height, width, channels).")
    if num_classes < 2:
        raise ArchitectureError(f"num_classes == {num_classes}, must be >= 2.")
    if not isinstance(arch.augmentation, Augmentation):
        raise ArchitectureError(f"augmentation == {arch.augmentation!r:.80}, must be an Augmentation.")
    if not arch.conv_blocks:
        raise ArchitectureError("a CNN needs at least one conv block.")
    height, width = input_shape[0], input_shape[1]
    for number, block in enumerate(arch.conv_blocks, start=1):
        height, width = _check_block(block, f"conv block {number}", height, width)
    for number, layer in enumerate(arch.dense_layers, start=1):
        _check_dense(layer, f"dense layer {number}")
    limits.check_model_size(_layer_rows(arch, input_shape, num_classes).size(input_shape))


def _check_block(block: ConvBlock, where: str, height: int, width: int) -> tuple[int, int]:
    """Check one conv block's settings and that it fits the map; return the map size after it."""
    _check_int(block.filters, f"{where}: filters", 1, 1024)
    _check_int(block.kernel_size, f"{where}: kernel size", 1, 15)
    _check_choice(block.activation, f"{where}: activation", ACTIVATIONS)
    _check_choice(block.pooling, f"{where}: pooling", POOLINGS)
    _check_choice(block.padding, f"{where}: padding", PADDINGS)
    _check_int(block.pool_size, f"{where}: pool size", 1, 8)
    _check_dropout(block.dropout, f"{where}: dropout")
    if block.padding == "valid":
        k = block.kernel_size
        if k > height or k > width:
            raise ArchitectureError(
                f"{where}: a {k}x{k} kernel does not fit the {height}x{width} feature map; "
                "use a smaller kernel, 'same' padding, or fewer blocks."
            )
        height, width = height - k + 1, width - k + 1
    if block.pooling != "none":
        p = block.pool_size
        new_h, new_w = height // p, width // p
        if new_h < 1 or new_w < 1:
            raise ArchitectureError(
                f"{where}: {p}x{p} pooling would shrink the {height}x{width} feature map to "
                f"{new_h}x{new_w}; remove a block or its pooling."
            )
        height, width = new_h, new_w
    return height, width


def _check_dense(layer: DenseLayer, where: str) -> None:
    _check_int(layer.units, f"{where}: units", 1, 8192)
    _check_choice(layer.activation, f"{where}: activation", ACTIVATIONS)
    _check_dropout(layer.dropout, f"{where}: dropout")


@dataclass(frozen=True)
class LayerRow:
    """One row of the layer table."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int


@dataclass(frozen=True)
class LayerTable:
    rows: tuple[LayerRow, ...] = field(default_factory=tuple)

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.rows)

    def size(self, input_shape: tuple[int, ...]) -> limits.ModelSize:
        """What the size limits check of this model, on images of `input_shape`."""
        return limits.ModelSize(self.total_params, tuple(input_shape), tuple(row.output_shape for row in self.rows))

    def as_records(self) -> list[dict[str, object]]:
        """Rows as dicts, ready for a dataframe or CSV."""
        return [
            {"layer": r.name, "type": r.kind,
             "output shape": "(" + ", ".join(str(d) for d in r.output_shape) + ")",
             "parameters": r.params}
            for r in self.rows
        ]


def layer_table(arch: Architecture, input_shape: tuple[int, int, int], num_classes: int) -> LayerTable:
    """Layer names, types, output shapes and parameter counts, computed without Keras.

    The names and numbers match what `build_model` creates (checked by the tests).
    """
    validate(arch, input_shape, num_classes)
    return _layer_rows(arch, input_shape, num_classes)


def _layer_rows(arch: Architecture, input_shape: tuple[int, int, int], num_classes: int) -> LayerTable:
    """`layer_table` without the checks (for `validate`, which needs the sizes)."""
    rows = [LayerRow(*row) for row in augmentation_table_rows(arch.augmentation, input_shape)]
    height, width, channels = input_shape
    for number, block in enumerate(arch.conv_blocks, start=1):
        k = block.kernel_size
        if block.padding == "valid":
            height, width = height - k + 1, width - k + 1
        rows.append(LayerRow(f"conv{number}", "Conv2D", (height, width, block.filters),
                             k * k * channels * block.filters + block.filters))
        channels = block.filters
        if block.batch_norm:
            rows.append(LayerRow(f"conv{number}_bn", "BatchNormalization", (height, width, channels), 4 * channels))
        rows.append(LayerRow(f"conv{number}_{block.activation}", "Activation", (height, width, channels), 0))
        if block.pooling != "none":
            height, width = height // block.pool_size, width // block.pool_size
            kind = "MaxPooling2D" if block.pooling == "max" else "AveragePooling2D"
            rows.append(LayerRow(f"pool{number}", kind, (height, width, channels), 0))
        if block.dropout > 0:
            rows.append(LayerRow(f"conv{number}_dropout", "Dropout", (height, width, channels), 0))
    features = height * width * channels
    rows.append(LayerRow("flatten", "Flatten", (features,), 0))
    for number, layer in enumerate(arch.dense_layers, start=1):
        rows.append(LayerRow(f"dense{number}", f"Dense ({layer.activation})", (layer.units,),
                             features * layer.units + layer.units))
        features = layer.units
        if layer.dropout > 0:
            rows.append(LayerRow(f"dense{number}_dropout", "Dropout", (features,), 0))
    rows.append(LayerRow("output", "Dense (softmax)", (num_classes,), features * num_classes + num_classes))
    return LayerTable(tuple(rows))


def architecture_summary(arch: Architecture | None) -> str:
    """A few words: 'conv 16-32 (BN) · dense 64'."""
    if arch is None:
        return "uploaded model"
    filters = "-".join(str(block.filters) for block in arch.conv_blocks)
    extras = " (BN)" if any(block.batch_norm for block in arch.conv_blocks) else ""
    dense = " · dense " + "-".join(str(layer.units) for layer in arch.dense_layers) if arch.dense_layers else ""
    return f"conv {filters}{extras}{dense}"


def architecture_to_dict(arch: Architecture) -> dict:
    """A JSON-ready description (for the saved config)."""
    return asdict(arch)


def architecture_from_dict(data: object) -> Architecture:
    """Inverse of `architecture_to_dict`; a description written before augmentation existed has none."""
    fields = dict(from_mapping(_ArchitectureFields, data, "architecture description", ArchitectureError).__dict__)
    blocks, dense = fields["conv_blocks"], fields["dense_layers"]
    for name, value in (("conv_blocks", blocks), ("dense_layers", dense)):
        if not isinstance(value, (list, tuple)):
            raise type_error_of(ArchitectureError)(f"architecture description: {name} must be a list, "
                                                   f"not {type(value).__name__}.")
    augmentation = fields["augmentation"]
    return Architecture(
        conv_blocks=tuple(from_mapping(ConvBlock, block, f"conv block {number}", ArchitectureError)
                          for number, block in enumerate(blocks, start=1)),
        dense_layers=tuple(from_mapping(DenseLayer, layer, f"dense layer {number}", ArchitectureError)
                           for number, layer in enumerate(dense, start=1)),
        name=str(fields["name"]),
        augmentation=Augmentation() if augmentation is None else Augmentation.from_dict(augmentation),
    )


@dataclass(frozen=True)
class _ArchitectureFields:
    """An architecture description as JSON holds it, before its parts are read."""

    conv_blocks: object = ()
    dense_layers: object = ()
    name: object = "convlab_cnn"
    augmentation: object = None
