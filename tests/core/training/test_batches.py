"""The order a training sees its images in: fixed by (seed, epoch), the same from any batch on."""

from __future__ import annotations

import numpy as np

from core.data.dataset import ScaledImages
from core.training.batches import TrainingImages, epoch_order


def test_each_epoch_has_its_own_order_fixed_by_the_seed_and_the_epoch():
    first, second = epoch_order(100, 7, 0), epoch_order(100, 7, 1)
    assert sorted(first) == list(range(100)) and not np.array_equal(first, second)
    np.testing.assert_array_equal(first, epoch_order(100, 7, 0))  # the same, asked again
    assert not np.array_equal(first, epoch_order(100, 8, 0))  # another seed, another order
    np.testing.assert_array_equal(first, np.random.default_rng([7, 0]).permutation(100))  # the stated rule


def test_batches_from_any_batch_on_are_the_tail_of_that_epochs_batches():
    images = np.arange(10 * 2 * 2, dtype=np.float32).reshape(10, 2, 2, 1)
    labels = np.arange(10)
    data = TrainingImages(images, labels, batch_size=3, seed=4)
    assert data.batches_per_epoch == 4
    whole = [(x.numpy(), y.numpy()) for x, y in data.batches(epoch=2)]
    tail = [(x.numpy(), y.numpy()) for x, y in data.batches(epoch=2, first_batch=2)]
    assert [len(y) for _, y in whole] == [3, 3, 3, 1]  # the last one short
    assert len(tail) == 2
    for (x_whole, y_whole), (x_tail, y_tail) in zip(whole[2:], tail):
        np.testing.assert_array_equal(x_whole, x_tail)
        np.testing.assert_array_equal(y_whole, y_tail)
    order = epoch_order(10, 4, 2)
    np.testing.assert_array_equal(np.concatenate([y for _, y in whole]), labels[order])


def test_bytes_are_scaled_in_the_pipeline_bit_for_bit_as_scaled_images_scales_them():
    raw = np.random.default_rng(0).integers(0, 256, size=(50, 4, 4, 1), dtype=np.uint8)
    data = TrainingImages(raw, np.zeros(50, np.int64), batch_size=50, seed=0)
    (batch, _), = list(data.batches(epoch=0))
    order = epoch_order(50, 0, 0)
    assert batch.dtype.name == "float32"
    np.testing.assert_array_equal(batch.numpy(), ScaledImages(raw)[order])
