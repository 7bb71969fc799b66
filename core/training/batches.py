"""The order a training sees its images in: fixed by (seed, epoch), so a training can restart at any batch.

Epoch e (0-based) visits the training images in the order
`numpy.random.default_rng([seed, e]).permutation(n)`, cut into batches of
`batch_size` (the last one short). Nothing else decides it, so the batches
from (epoch e, batch b) on are the same whether the training got there in one
go, after a pause, or in another process: a checkpoint that records the seed,
the epoch and the batch restores the data order exactly. Images are looked up
by index inside TensorFlow's input pipeline; images kept as 0..255 bytes are
scaled there by the lab's rule (/ 255 in float32), bit for bit as
`ScaledImages` scales them, so the pipeline holds a quarter of the float32 size.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def epoch_order(count: int, seed: int, epoch: int) -> np.ndarray:
    """The order of the `count` training images in epoch `epoch` (0-based) of a training seeded `seed`."""
    return np.random.default_rng([seed, epoch]).permutation(count).astype(np.int32)


class TrainingImages:
    """The training images and labels, once in TensorFlow, and the batches of any epoch from any batch on."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int) -> None:
        import tensorflow as tf

        self.count, self.batch_size, self.seed = len(images), batch_size, seed
        self._bytes = images.dtype == np.uint8
        self._images = tf.convert_to_tensor(images)
        self._labels = tf.convert_to_tensor(labels)

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.count // self.batch_size)

    def batches(self, epoch: int, first_batch: int = 0) -> Any:
        """tf.data batches of epoch `epoch` (0-based), from batch `first_batch` (0-based) to its end."""
        import tensorflow as tf

        order = epoch_order(self.count, self.seed, epoch)[first_batch * self.batch_size:]
        images, labels, scale = self._images, self._labels, self._bytes

        def look_up(indices: Any) -> tuple[Any, Any]:
            batch = tf.gather(images, indices)
            if scale:
                batch = tf.cast(batch, tf.float32) / tf.constant(255.0, tf.float32)
            return batch, tf.gather(labels, indices)

        # No autotuning: nothing here is tuned (a fixed prefetch, one lookup at a time), and its background thread
        # made the end of a fit wait 1.2 s in about one run in five (as the pipeline was let go), between a run's
        # last batch and its test accuracy on screen; without it, none in 14 (bench/RESULTS.md)
        options = tf.data.Options()
        options.autotune.enabled = False
        return (tf.data.Dataset.from_tensor_slices(order).batch(self.batch_size).map(look_up).prefetch(2)
                .with_options(options))
