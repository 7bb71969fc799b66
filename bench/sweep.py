"""Sweeps: the overhead between trials, what pruning saves, and whether a pruned random search finds a good setting.

    python bench/sweep.py [--trials 12] [--rates 9] [--epochs 6] [--no-grid]

Real MNIST (../shared/data/mnist-10k.npz: 9,000 images fitted, 1,000 held out for validation), the lab model
and recipe (SGD, momentum 0.9) for 6 epochs a trial rather than the recipe's 10 (the three sweeps train 60 runs: about
20 minutes on a shared 2-core machine instead of about 35), varying the learning rate (1e-3 to 0.3, log scale) and
the batch size (16, 32, 64, 128), through the engine a server or the CLI uses: a job manager with one training slot and its
worker processes, driven by a `SweepDriver` (one trial queued ahead, a warm worker).

1. The same 12-trial random search (the same seed, so the same 12 settings) without pruning, then with Optuna's
   median pruner: wall time from start to the sweep's end, and the ratio (target: at most 0.6); also the CPU time
   its worker process spent, which other work on a shared machine moves less than the wall time.
2. Per-trial overhead, from every trial of both: from the end of a trial (its run's end in its status, after its
   test-set scoring) to the end of the next trial's first batch: its first batch row in its log (polled every 20 ms)
   less the rest of that first chunk of batches at the rate between the first two rows; the time to that first
   row is printed beside it, and the hand-over (the end of a run to the start of the next in the same worker:
   the last model's Keras session cleared, the job manager's dispatch). Target: at most 1 s with a warm worker.
3. A 36-point grid (9 learning rates log-spaced from 1e-3 to 0.3, x 4 batch sizes), without pruning: its best
   validation accuracy against the pruned random search's best (target: within 0.3 points).
Figures go to bench/RESULTS.md by hand, with the machine lines printed here (the load average at the start and the end).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine  # noqa: E402
from core.data.dataset import DatasetRef  # noqa: E402
from core.errors import RunError  # noqa: E402
from core.model.architecture import PRESETS, layer_table  # noqa: E402
from core.runs.details import run_details  # noqa: E402
from core.runs.store import RunStore  # noqa: E402
from core.sweeps.results import read_sweep  # noqa: E402
from core.sweeps.space import Setting  # noqa: E402
from core.sweeps.spec import SweepSpec  # noqa: E402
from core.sweeps.store import SweepStore  # noqa: E402
from core.training.config import TRAINING_PRESETS, override  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "mnist-10k.npz"
BATCHES = Setting("batch_size", values=(16, 32, 64, 128))


class FirstBatches:
    """Watches a store: when each run's first two batch rows appear (wall clock, polled every 20 ms)."""

    def __init__(self, store: RunStore) -> None:
        self.store, self.rows, self._stop = store, {}, threading.Event()
        self._readers = {}
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for run_id in self.store.run_ids():
                seen = self.rows.setdefault(run_id, [])
                if len(seen) >= 2:
                    continue
                try:
                    reader = self._readers.setdefault(run_id, self.store.reader(run_id))
                    batches = reader.snapshot().batches
                except RunError:
                    continue  # (being created)
                for row in batches[len(seen):2]:
                    seen.append((time.time(), int(row["step"])))
            time.sleep(0.02)

    def first_batch(self, run_id: str) -> tuple[float, float] | None:
        """(when its first chunk of batches was reported, when its first batch ended: the first report less the
        chunk's other batches at the rate between the first two reports), or None."""
        seen = self.rows.get(run_id) or []
        if len(seen) < 2:
            return None
        (t1, s1), (t2, s2) = seen
        per_batch = (t2 - t1) / max(s2 - s1, 1)
        return t1, t1 - (s1 - 1) * per_batch

    def close(self) -> None:
        self._stop.set()


def cpu_seconds(pid: int) -> float:
    """A live process's CPU time (user + system), from /proc."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_sweep(spec: SweepSpec, details: dict, what: str) -> tuple[float, list[tuple[float, float, float]], object,
                                                                   float]:
    """Run one sweep to its end on a warm worker: (seconds, the overheads between its trials (to the next one's first
    batch, to its first report, to its start: the hand-over), its view, the CPU seconds its worker spent on it)."""
    from core.engine.jobs import JobManager
    from core.sweeps.driver import SweepDriver
    from tests.conftest import wait_for

    store = RunStore(Path(tempfile.mkdtemp(prefix="convlab-sweep-")))
    manager = JobManager(max_concurrent=1, idle_retire_s=0)
    manager.warm_up()
    wait_for(lambda: manager.spare_pids(), timeout=300, what="a warm worker")
    (warm,) = manager.spare_pids()
    cpu_before = cpu_seconds(warm)
    driver = SweepDriver(manager)
    watcher = FirstBatches(store)
    try:
        started = time.perf_counter()
        sweep_id = driver.start(store, spec, details,
                                listener=lambda end: print(f"    {what} #{end.number + 1}: {end.outcome}, "
                                                           f"{end.values}, {end.value}", flush=True))
        driver.wait(sweep_id)
        seconds = time.perf_counter() - started
        manager.wait_idle(timeout=60)  # (the sweep ends once its last run has: its worker has nothing left to do)
        workers = {store.raw_status(run_id).owner.pid for run_id in store.run_ids()}
        cpu = cpu_seconds(warm) - cpu_before if workers == {warm} else float("nan")  # (nan: a worker retired)
    finally:
        watcher.close()
        driver.shutdown()
        manager.shutdown()
    view = read_sweep(SweepStore(store), sweep_id)
    print(f"    ({what}: the run store {store.root}; CONVLAB_RUNS={store.root} shows it on the Sweeps page)", flush=True)
    runs = sorted((t.run_id for t in view.trials if t.run_id), key=lambda r: store.status(r).started or 0)
    overheads = []
    for before, after in zip(runs, runs[1:]):
        ended, first, start = store.status(before).ended, watcher.first_batch(after), store.status(after).started
        if ended is not None and first is not None and start is not None:
            overheads.append((first[1] - ended, first[0] - ended, start - ended))
    return seconds, overheads, view, cpu


def describe(view) -> str:
    best = view.best
    counts = view.counts()
    return (f"{', '.join(f'{n} {s}' for s, n in counts.items())}; best #{best.number + 1} "
            f"{best.values} val_accuracy {best.value:.4f}, test accuracy {best.test_accuracy:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--rates", type=int, default=9, help="learning rates of the grid (x 4 batch sizes)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs a trial (the lab recipe trains 10)")
    parser.add_argument("--no-grid", action="store_true")
    args = parser.parse_args()
    from core.data.registry import load_file

    print(describe_machine(), flush=True)
    dataset = load_file(SHARED)
    arch, config = PRESETS["lab"], override(TRAINING_PRESETS["lab"], epochs=args.epochs)
    details = run_details(dataset, layer_table(arch, dataset.input_shape, dataset.num_classes).total_params)
    ref = DatasetRef.of("file", str(SHARED))
    rates = Setting("learning_rate", 1e-3, 0.3, log=True, points=args.rates)
    random = SweepSpec(ref, arch, config, (rates, BATCHES), trials=args.trials, strategy="random", seed=0,
                       origin="cli", label="bench random").validated()

    results = {}
    for name, spec in (("no pruning", replace(random, prune=False)), ("pruning", random)):
        seconds, overheads, view, cpu = run_sweep(spec, details, name)
        results[name] = (seconds, overheads, view, cpu)
        print(f"  random search, {name}: {seconds:.1f} s, its worker's CPU {cpu:.1f} s; {describe(view)}", flush=True)
        print(f"    overheads to the first batch (to the first report; the hand-over to the next run's start), s: "
              f"{', '.join(f'{o:.2f} ({r:.2f}; {h:.2f})' for o, r, h in overheads)}", flush=True)
        print(f"    {describe_machine()}", flush=True)
    ratio = results["pruning"][0] / results["no pruning"][0]
    overheads = results["pruning"][1] + results["no pruning"][1]
    cpu_ratio = results["pruning"][3] / results["no pruning"][3]
    print(f"pruning / no pruning: {results['pruning'][0]:.1f} s / {results['no pruning'][0]:.1f} s = {ratio:.2f} "
          f"(target <= 0.6); the worker's CPU time: {cpu_ratio:.2f} (less moved by other work on the machine)")
    firsts, reports, handovers = zip(*overheads)
    print(f"per-trial overhead to the next first batch: median {statistics.median(firsts):.2f} s, min "
          f"{min(firsts):.2f} s, max {max(firsts):.2f} s over {len(firsts)} gaps (target <= 1 s); to its first report: "
          f"median {statistics.median(reports):.2f} s, max {max(reports):.2f} s; of which the hand-over (the end of a "
          f"run to the start of the next in the same worker): median {statistics.median(handovers):.2f} s, min "
          f"{min(handovers):.2f} s")
    if args.no_grid:
        return
    grid = SweepSpec(ref, arch, config, (rates, BATCHES), trials=args.rates * 4, strategy="grid", prune=False,
                     origin="cli", label="bench grid").validated()
    seconds, grid_overheads, view, _ = run_sweep(grid, details, "grid")
    print(f"  grid of {args.rates * 4}: {seconds:.1f} s; {describe(view)}")
    firsts = [o for o, _, _ in grid_overheads]
    print(f"    overheads to the first batch, s: median {statistics.median(firsts):.2f}, max {max(firsts):.2f} "
          "(a worker retires after 25 runs: the next trial waits for a fresh one's TensorFlow import)")
    found, best = results["pruning"][2].best.value, view.best.value
    print(f"pruned random best {found:.4f} vs grid best {best:.4f}: {100 * (best - found):+.2f} points "
          "(target: within 0.3)")
    print(describe_machine(), flush=True)


if __name__ == "__main__":
    main()
