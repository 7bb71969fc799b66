"""The Keras callbacks a training reports through: metrics per chunk of batches, the confusion matrix per epoch."""

from __future__ import annotations

import numpy as np


def test_a_short_last_chunk_of_batches_is_reported_as_the_epochs_last_batch():
    """With steps per execution, Keras reports the last chunk's index rounded up past the epoch's end."""
    from core.training.callbacks import MetricsCallback, Place

    seen = []

    class Sink:
        def on_batch(self, record, progress):
            seen.append((record["batch"], record["step"], progress.batch, progress.fraction))

    place = Place(epoch=0, first_batch=0, batches_per_epoch=1125, epochs=2, batch_size=8)
    callback = MetricsCallback(Sink(), place)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    callback.on_train_batch_end(1151, {"loss": 0.5, "accuracy": 0.9})
    assert seen == [(1125, 1125, 1125, 0.5)]


def test_per_epoch_confusion_matrices_sum_to_the_subset_size(trained, bars):
    _, _, matrices, subset = trained
    assert len(matrices) == 2 and len(subset) == 60
    for matrix in matrices:
        assert matrix.shape == (4, 4) and matrix.dtype == np.int64
        assert int(matrix.sum()) == 60
        np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(bars.y_test[subset], minlength=4))
