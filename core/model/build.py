"""Stage 2 in Keras: an `Architecture` as a named `keras.Model` (imports Keras when called)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.model.architecture import Architecture, validate
from core.model.augment import augmentation_layers

if TYPE_CHECKING:
    import keras

def build_model(
    arch: Architecture, input_shape: tuple[int, int, int], num_classes: int, seed: int = 0
) -> "keras.Model":
    """Build the Keras functional model that `arch` describes (not compiled).

    `seed` fixes the initial weights and dropout masks, without touching global random state.
    """
    validate(arch, input_shape, num_classes)
    import keras
    from keras import layers

    seeds = iter(range(seed * 1000, seed * 1000 + 1000))

    def init() -> keras.initializers.Initializer:
        return keras.initializers.HeUniform(seed=next(seeds))

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for layer in augmentation_layers(arch.augmentation, seed):  # random in fit, identity when predicting
        x = layer(x)
    for number, block in enumerate(arch.conv_blocks, start=1):
        x = layers.Conv2D(block.filters, block.kernel_size, padding=block.padding,
                          kernel_initializer=init(), name=f"conv{number}")(x)
        if block.batch_norm:
            x = layers.BatchNormalization(name=f"conv{number}_bn")(x)
        x = layers.Activation(block.activation, name=f"conv{number}_{block.activation}")(x)
        if block.pooling == "max":
            x = layers.MaxPooling2D(block.pool_size, name=f"pool{number}")(x)
        elif block.pooling == "average":
            x = layers.AveragePooling2D(block.pool_size, name=f"pool{number}")(x)
        if block.dropout > 0:
            x = layers.Dropout(block.dropout, seed=next(seeds), name=f"conv{number}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    for number, layer in enumerate(arch.dense_layers, start=1):
        x = layers.Dense(layer.units, activation=layer.activation,
                         kernel_initializer=init(), name=f"dense{number}")(x)
        if layer.dropout > 0:
            x = layers.Dropout(layer.dropout, seed=next(seeds), name=f"dense{number}_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)), name="output")(x)
    return keras.Model(inputs, outputs, name=arch.name)
