"""What a training reports: its progress, the sink that keeps the records, the history it leaves."""

from __future__ import annotations

from core.training.progress import MemorySink, Progress, history


def test_progress_fraction_counts_batches():
    assert Progress().fraction == 0.0
    assert Progress(epoch=1, epochs=2, batch=5, batches_per_epoch=10).fraction == 0.25
    assert Progress(epoch=2, epochs=2, batch=10, batches_per_epoch=10).fraction == 1.0


def test_progress_past_the_end_or_before_the_start():
    assert Progress(epoch=0, epochs=3, batch=0, batches_per_epoch=10).fraction == 0.0
    assert Progress(epoch=3, epochs=2, batch=10, batches_per_epoch=10).fraction == 1.0  # never more than all


def test_a_memory_sink_keeps_copies_of_every_record_and_passes_them_on():
    then = MemorySink()
    sink = MemorySink(then=then)
    record = {"step": 1, "epoch": 1, "batch": 1, "loss": 0.7, "accuracy": 0.5}
    progress = Progress(epoch=1, epochs=2, batch=1, batches_per_epoch=4)
    sink.on_batch(record, progress)
    record["loss"] = 99.0  # the caller reuses its dict: what was kept does not change
    sink.on_epoch({"epoch": 1, "loss": 0.6})
    assert sink.batches == [{"step": 1, "epoch": 1, "batch": 1, "loss": 0.7, "accuracy": 0.5}]
    assert sink.epochs == [{"epoch": 1, "loss": 0.6}] and sink.progress is progress
    assert then.batches == sink.batches and then.epochs == sink.epochs and then.progress is progress


def test_the_history_is_shaped_as_keras_history():
    epochs = [{"epoch": 1, "loss": 1, "accuracy": 0.5, "epoch_s": 3.0},
              {"epoch": 2, "loss": 0.5, "accuracy": 0.75, "epoch_s": 2.0}]
    assert history(epochs) == {"loss": [1.0, 0.5], "accuracy": [0.5, 0.75]}  # metrics only, in Keras' order
    assert all(isinstance(value, float) for values in history(epochs).values() for value in values)
    with_validation = [{"val_accuracy": 0.7, "loss": 0.4, "val_loss": 0.6, "accuracy": 0.8}]
    assert list(history(with_validation)) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert history([]) == {}
