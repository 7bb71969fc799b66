"""A training's whole state as a file: written and read back, and refused for another architecture."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import RunError
from core.model.build import build_model
from core.training.checkpoint import Checkpoint, Position, restore
from tests.core.training.test_loop import QUICK, TINY


def checkpoint() -> Checkpoint:
    rng = np.random.default_rng(0)
    return Checkpoint(position=Position(epoch=2, batch=5, step=25), epochs=4, batches_per_epoch=10, elapsed_s=3.5,
                      model=[rng.random((3, 3)).astype(np.float32), np.arange(2, dtype=np.int64)],
                      optimizer=[np.array(25, dtype=np.int64)], metrics=[np.array([1.5, 3.0], np.float32)],
                      schedule={"multiplier": 0.5, "base_steps": 40}, watcher={"best": 0.3, "best_epoch": 2})


def test_a_checkpoint_reads_back_as_written():
    again = Checkpoint.from_bytes(checkpoint().to_bytes())
    original = checkpoint()
    assert again.position == original.position and again.epochs == 4 and again.batches_per_epoch == 10
    assert again.schedule == original.schedule and again.watcher == original.watcher and again.elapsed_s == 3.5
    for group in ("model", "optimizer", "metrics"):
        for mine, theirs in zip(getattr(again, group), getattr(original, group), strict=True):
            np.testing.assert_array_equal(mine, theirs)
            assert mine.dtype == theirs.dtype


def test_a_damaged_or_foreign_file_is_refused_with_a_message():
    for data in (b"", b"PK\x03\x04 not a zip", checkpoint().to_bytes()[:200]):
        with pytest.raises(RunError, match="checkpoint cannot be read"):
            Checkpoint.from_bytes(data)
    with pytest.raises(RunError, match="checkpoint cannot be read"):  # a pickled array is never loaded
        import io
        buffer = io.BytesIO()
        np.savez(buffer, state=np.array([{"a": 1}], dtype=object))
        Checkpoint.from_bytes(buffer.getvalue())


def test_a_checkpoint_of_another_architecture_is_refused(bars):
    import keras

    model = build_model(TINY, bars.input_shape, bars.num_classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)
    with pytest.raises(RunError, match="made for another architecture"):
        restore(checkpoint(), model)
    assert QUICK.epochs == 2  # (the tiny recipe these tests share)


def test_positions_say_where_they_are():
    assert Position(0, 0, 0).describe(54) == "the start"
    assert Position(2, 0, 108).describe(54) == "the end of epoch 2"
    assert Position(1, 32, 86).describe(54) == "epoch 2, after batch 32/54" and Position(1, 32, 86).mid_epoch
