"""What a training reports: its progress, the sink that keeps the records, the history it leaves."""

from __future__ import annotations

from core.training.progress import Progress


def test_progress_fraction_counts_batches():
    assert Progress().fraction == 0.0
    assert Progress(epoch=1, epochs=2, batch=5, batches_per_epoch=10).fraction == 0.25
    assert Progress(epoch=2, epochs=2, batch=10, batches_per_epoch=10).fraction == 1.0
