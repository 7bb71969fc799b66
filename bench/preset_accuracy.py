"""Benchmark: the presets' test accuracy and training time, through the CLI (issue 10.6).

For each seed, the presets run one after the other (alternating their order from seed to seed), each as
`python -m core --dataset D --arch P --train P --seed S` in a fresh process writing into a temporary run
store: the same engine the dashboard trains with. It prints, per run, the test accuracy (scikit-learn's
`accuracy_score`), the training time (the engine's own clock), seconds per epoch, the CPU time of the whole
process (loading and scoring included) and the load average, then the median accuracy and time of each preset.
On a machine shared with other work the training time grows while the CPU time barely does.

Targets (issue 23): `fast` on the 10,000 real MNIST digits (`mnist-10k`, identical to
`../shared/data/mnist-10k.npz`), median of three seeds at least 99.0 % within 60 s of training; `photos` on
full Fashion-MNIST, median of three seeds at least 93.0 % within 10 minutes.

    python3 bench/preset_accuracy.py [--dataset mnist-10k] [--presets fast lab] [--seeds 0 1 2] [--epochs N]
    python3 bench/preset_accuracy.py --dataset fashion-mnist --presets photos

`--dataset fashion-mnist` reads Debian's dataset-fashion-mnist (60,000 + 10,000 images). Exits 0 whatever
the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine  # noqa: E402

RESULT = re.compile(r"test accuracy: ([\d.]+)%.*training time ([\d.]+) s")


def train_once(dataset: str, preset: str, seed: int, epochs: int | None, runs_root: Path) -> dict:
    command = [sys.executable, "-m", "core", "--dataset", dataset, "--arch", preset, "--train", preset,
               "--seed", str(seed), "--runs", str(runs_root), "--no-download"]
    if epochs:
        command += ["--epochs", str(epochs)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    found = RESULT.search(done.stdout)
    if done.returncode or not found:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    ran = int(re.findall(r"epoch (\d+)/\d+", done.stdout)[-1]) if re.search(r"epoch \d+/\d+", done.stdout) else 0
    return {"accuracy": float(found.group(1)), "training_s": float(found.group(2)), "epochs": ran, "cpu_s": cpu_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mnist-10k")
    parser.add_argument("--presets", nargs="+", default=["fast", "lab"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the presets' epochs")
    args = parser.parse_args(argv)

    print(describe_machine())
    print(f"dataset {args.dataset}")
    results: dict[str, list[dict]] = {preset: [] for preset in args.presets}
    with tempfile.TemporaryDirectory(prefix="convlab-presets-") as folder:
        for index, seed in enumerate(args.seeds):
            order = args.presets if index % 2 == 0 else list(reversed(args.presets))
            for preset in order:
                result = train_once(args.dataset, preset, seed, args.epochs, Path(folder))
                results[preset].append(result)
                per_epoch = result["training_s"] / max(1, result["epochs"])
                print(f"{preset:>6} seed {seed}: {result['accuracy']:.2f} % in {result['training_s']:.1f} s "
                      f"({result['epochs']} epochs, {per_epoch:.1f} s/epoch; process CPU {result['cpu_s']:.0f} s); "
                      f"load {os.getloadavg()[0]:.2f}",
                      flush=True)
    for preset, rows in results.items():
        accuracies = ", ".join(f"{row['accuracy']:.2f}" for row in rows)
        print(f"{preset}: accuracy {accuracies} % (median {statistics.median(r['accuracy'] for r in rows):.2f} %), "
              f"training median {statistics.median(r['training_s'] for r in rows):.1f} s "
              f"({min(r['training_s'] for r in rows):.1f}-{max(r['training_s'] for r in rows):.1f}), "
              f"s/epoch {statistics.median(r['training_s'] / max(1, r['epochs']) for r in rows):.1f} median")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
