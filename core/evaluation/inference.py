"""Classify single images quickly, for the drawing canvas and uploaded pictures.

`model.predict` sets up a whole data pipeline per call (about 100 ms for one
image on 2 cores); a traced function with a fixed input signature runs the
same forward pass in a few milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

class Predictor:
    """Probabilities for a small batch of images from a Keras model, without `predict`'s overhead."""

    def __init__(self, model: "keras.Model") -> None:
        import tensorflow as tf

        self.model = model
        self.input_shape = tuple(int(d) for d in model.input_shape[1:])
        signature = tf.TensorSpec(shape=(None, *self.input_shape), dtype=tf.float32)
        self._forward = tf.function(lambda x: model(x, training=False), input_signature=[signature])

    def warmed(self) -> "Predictor":
        """Itself, after one forward pass of a blank image: the first call traces the function (a tenth of a second
        or more), so that the first drawing is answered as fast as the next ones."""
        self(np.zeros((1, *self.input_shape), dtype=np.float32))
        return self

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if images.shape[1:] != self.input_shape:
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, self.input_shape))}), got {images.shape}.")
        return np.asarray(self._forward(images))
