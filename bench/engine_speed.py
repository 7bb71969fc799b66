"""Benchmark: the lab recipe through ConvLab's training engine against a bare `model.fit` (issue 10.5).

Each round runs, one after the other and in alternating order, two fresh processes on the same data:

(a) engine: `python -m core --dataset mnist-10k --arch lab --train lab` (the CLI runs the engine,
    `core.engine.execute`, in its own process: seeded tf.data batches, several steps per execution,
    the run store's writer, TensorBoard, the live filters and the per-epoch confusion matrix);
(b) bare: the notebook's way: the same model (`core.model.build.build_model`, same seed), the same
    10 % validation split, `model.compile(SGD(0.01, momentum=0.9), ...)` and `model.fit(x, y,
    batch_size=32, epochs=10, validation_data=...)` with NumPy arrays, then `accuracy_score` on the test set.

It prints each process's training time (the engine's own clock for (a); `fit`'s wall time for (b)) and
test accuracy, the medians, and the ratio (a) / (b) (target: at most 0.85). Then it measures Stop: an
engine run in this process is asked to stop at random moments, and the time from the request to the end
of training is printed (target: under a second). A benchmark reports: it exits 0 whatever the figures.

    python3 bench/engine_speed.py [--rounds 3] [--epochs 10] [--stops 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.machine import describe_machine  # noqa: E402

BARE = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import keras
from sklearn.metrics import accuracy_score
from core.architecture import PRESETS, build_model
from core.data.splits import split_validation
from core.datasets import load_mnist_10k

data = load_mnist_10k()
x_fit, y_fit, x_val, y_val = split_validation(data.x_train, data.y_train, 0.1, 0)
keras.utils.set_random_seed(0)
model = build_model(PRESETS["lab"], data.input_shape, data.num_classes, seed=0)
model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
started = time.perf_counter()
model.fit(x_fit, y_fit, batch_size=32, epochs={epochs}, validation_data=(x_val, y_val), verbose=0)
seconds = time.perf_counter() - started
accuracy = accuracy_score(data.y_test, model.predict(data.x_test, verbose=0).argmax(axis=1))
print(json.dumps({{"training_s": seconds, "accuracy": float(accuracy)}}))
"""


def run_engine(epochs: int, runs_root: Path) -> dict:
    output = subprocess.run(
        [sys.executable, "-m", "core", "--dataset", "mnist-10k", "--arch", "lab", "--train", "lab",
         "--epochs", str(epochs), "--runs", str(runs_root), "--no-download"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    found = re.search(r"test accuracy: ([\d.]+)%.*training time ([\d.]+) s", output)
    return {"training_s": float(found.group(2)), "accuracy": float(found.group(1)) / 100}


def run_bare(epochs: int) -> dict:
    code = BARE.format(root=str(ROOT), epochs=epochs)
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def stop_latencies(count: int) -> list[float]:
    """Seconds from a Stop request to the end of training (`train` returning), stopped at random moments."""
    import random

    from core.data.registry import load_mnist_10k
    from core.model.architecture import PRESETS
    from core.training.config import TRAINING_PRESETS
    from core.training.loop import train

    data = load_mnist_10k()
    latencies = []
    for index in range(count):
        stop = threading.Event()
        asked: list[float] = []

        def press_stop(delay: float = random.Random(index).uniform(3.0, 12.0)) -> None:
            time.sleep(delay)  # a user pressing Stop at a random moment, as the worker's control thread hears it
            asked.append(time.perf_counter())
            stop.set()

        threading.Thread(target=press_stop, daemon=True).start()
        train(PRESETS["lab"], data, TRAINING_PRESETS["lab"], should_stop=stop.is_set)
        latencies.append(time.perf_counter() - asked[0] if asked else float("nan"))
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--stops", type=int, default=5, help="Stop requests to time (0: skip)")
    args = parser.parse_args(argv)
    runs_root = Path(tempfile.mkdtemp(prefix="convlab-bench-"))
    print(describe_machine())
    results: dict[str, list[dict]] = {"engine": [], "bare": []}
    for round_index in range(args.rounds):
        order = ("engine", "bare") if round_index % 2 == 0 else ("bare", "engine")
        for side in order:
            result = run_engine(args.epochs, runs_root) if side == "engine" else run_bare(args.epochs)
            results[side].append(result)
            print(f"round {round_index + 1} {side:6}: training {result['training_s']:6.1f} s, "
                  f"test accuracy {result['accuracy']:.2%} (load {os.getloadavg()[0]:.1f})", flush=True)
    medians = {side: statistics.median(r["training_s"] for r in rs) for side, rs in results.items()}
    print(f"median training: engine {medians['engine']:.1f} s, bare model.fit {medians['bare']:.1f} s, "
          f"ratio {medians['engine'] / medians['bare']:.2f} (target <= 0.85)")
    for side, rs in results.items():
        print(f"test accuracies {side}: " + ", ".join(f"{r['accuracy']:.2%}" for r in rs))
    if args.stops:
        latencies = stop_latencies(args.stops)
        print("Stop to end of training: " + ", ".join(f"{s:.2f} s" for s in latencies)
              + f" (max {max(latencies):.2f} s; target < 1 s)")
    return 0




if __name__ == "__main__":
    sys.exit(main())
