"""Benchmark: the server's cost of one poll of the live training curves, however long the run (issue 10.7).

A poll of the Training page reads the run's record (`RunReader.snapshot`: status.json and the new lines
of the CSV logs), builds the figure (`core.figures.training_curves`) and serialises it as
`st.plotly_chart` does (`figure.to_dict()` then `plotly.io.to_json(..., validate=False)`). This times
those steps on runs written by the real `RunWriter` at several lengths (the writer thins the per-batch
log to about 2,000 lines, the figure to 600 points), polling while the log grows as during training.
Prints the median and 90th percentile per length (target: at most 10 ms per poll).

    python3 bench/live_chart_cost.py [--polls 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine  # noqa: E402

TARGET_MS = 10.0
STEPS_PER_EPOCH = 282  # the lab recipe on 9,000 training digits, batch 32


def write_run(store, epochs: int):
    """A run of `epochs` epochs written by the real writer, as the training process writes it."""
    from core.data.dataset import DatasetRef
    from core.model.architecture import PRESETS
    from core.runs.spec import RunSpec
    from core.runs.writer import RunWriter
    from core.training.config import TRAINING_PRESETS
    from core.training.progress import Progress

    run_id = store.create(RunSpec(DatasetRef.of("builtin", "mnist-10k"), PRESETS["lab"], TRAINING_PRESETS["lab"]))
    total = epochs * STEPS_PER_EPOCH
    writer = RunWriter(store, run_id, total_steps=total)
    writer.begin()
    for step in range(1, total + 1, 16):  # one report per chunk of 16 batches
        epoch, batch = (step - 1) // STEPS_PER_EPOCH + 1, (step - 1) % STEPS_PER_EPOCH + 1
        writer.on_batch({"step": step, "epoch": epoch, "batch": batch, "loss": 1.0 / step, "accuracy": 0.9,
                         "elapsed_s": step / 100}, Progress(epoch, epochs, batch, STEPS_PER_EPOCH))
        if batch + 16 > STEPS_PER_EPOCH:
            writer.on_epoch({"epoch": epoch, "step": epoch * STEPS_PER_EPOCH, "loss": 0.1, "accuracy": 0.97,
                             "val_loss": 0.12, "val_accuracy": 0.96, "epoch_s": 4.0, "elapsed_s": 4.0 * epoch,
                             "partial": False})
    return run_id


def poll_cost(store, run_id: str, polls: int) -> list[float]:
    """Milliseconds per poll: an incremental snapshot, the figure, and its JSON as st.plotly_chart makes it."""
    import plotly.io

    from core.figures.training import training_curves

    reader = store.reader(run_id)
    costs = []
    for _ in range(polls):
        started = time.perf_counter()
        snap = reader.snapshot()
        figure = training_curves(snap.batches, snap.epochs, snap.status.progress.batches_per_epoch)
        plotly.io.to_json(figure.to_dict(), validate=False)
        costs.append((time.perf_counter() - started) * 1000)
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=200)
    args = parser.parse_args(argv)
    from core.runs.store import RunStore

    store = RunStore(tempfile.mkdtemp(prefix="convlab-chart-"))
    print(describe_machine())
    for epochs in (1, 10, 50, 200):
        run_id = write_run(store, epochs)
        costs = poll_cost(store, run_id, args.polls)
        batches = len(store.reader(run_id).snapshot().batches)
        costs.sort()
        print(f"{epochs:4} epochs ({batches:5} batch lines): median {statistics.median(costs):5.2f} ms, "
              f"p90 {costs[int(0.9 * len(costs))]:5.2f} ms per poll (target <= {TARGET_MS:g} ms)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
