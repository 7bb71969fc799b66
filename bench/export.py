"""Benchmark: taking a run away (issue 22): the lab notebook against its run, and each export format.

For each preset (default `lab` and `fast`) on the shipped offline MNIST (`mnist-10k`: 10,000 real training
digits and the official 10,000 test digits, the same file as `../shared/data/mnist-10k.npz`):

1. trains the run with the CLI (`python -m core --dataset mnist-10k --arch P --train P --seed S`) into a fresh
   run store;
2. writes its lab notebook (`python -m core notebook RUN`, with `mnist-10k.npz` beside it), executes it from a
   clean kernel with nbclient, and compares the test images it gets right with the run's (`test.json`);
3. exports the run's model in every format (`core.export.formats.export_model`, fresh each time, not the kept
   copy): the time to write the file, the time to load it back and predict 100 test images in its own runtime,
   the largest difference from Keras, the file's size.

It prints Markdown tables for bench/RESULTS.md, and exits 0 whatever the figures.

    python3 bench/export.py [--presets lab fast] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.machine import describe_machine  # noqa: E402

SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist-10k.npz"


def train(preset: str, seed: int, runs: Path) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "core", "--dataset", "mnist-10k", "--arch", preset, "--train", preset,
                           "--seed", str(seed), "--runs", str(runs), "--no-download"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if done.returncode:
        raise SystemExit(f"training failed: {done.stderr[-2000:]}")
    (run_id,) = [p.name for p in runs.iterdir() if re.match(r"\d{8}-\d{6}-", p.name)]
    return run_id, time.perf_counter() - started


def run_notebook(runs: Path, run_id: str, folder: Path) -> tuple[int, int, float, list[float]]:
    """(right, total, seconds, validation accuracy per epoch) of the notebook executed from a clean kernel."""
    import nbformat
    from nbclient import NotebookClient

    done = subprocess.run([sys.executable, "-m", "core", "notebook", run_id, "--runs", str(runs), "-o", str(folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"notebook failed: {done.stderr[-2000:]}")
    notebook = nbformat.read(folder / f"{run_id}.ipynb", as_version=4)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    seconds = time.perf_counter() - started
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream" and o.name == "stdout")
    right, total = map(int, re.search(r"\((\d+) of (\d+) test images right\)", text).groups())
    return right, total, seconds, [float(v) for v in re.findall(r"val_accuracy: ([\d.]+)", text)]


def exports(runs: Path, run_id: str) -> list[dict]:
    from core.data.registry import load_dataset
    from core.export.formats import FORMATS, export_model
    from core.model.files import load_model_file
    from core.runs.store import RunStore

    store = RunStore(runs)
    dataset = load_dataset("mnist-10k")
    model = load_model_file(store.model_path(run_id))
    rows = []
    for key, fmt in FORMATS.items():
        started = time.perf_counter()
        data, check = export_model(model, dataset, key, name=run_id)
        rows.append({"format": fmt.label, "runtime": check.runtime, "difference": check.max_difference,
                     "export_s": check.export_s, "check_s": check.check_s, "all_s": time.perf_counter() - started,
                     "size": len(data)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["lab", "fast"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(describe_machine())
    from core.data.registry import SHIPPED_MNIST

    if SHARED_MNIST.exists():
        same = hashlib.sha256(SHARED_MNIST.read_bytes()).digest() == hashlib.sha256(SHIPPED_MNIST.read_bytes()).digest()
        print(f"data: core/data/assets/mnist-10k.npz, {'identical to' if same else 'NOT the same file as'} "
              f"{SHARED_MNIST}")
    notebook_rows, export_rows = [], []
    for preset in args.presets:
        with tempfile.TemporaryDirectory(prefix="convlab-bench-export-") as folder:
            runs = Path(folder) / "runs"
            run_id, train_s = train(preset, args.seed, runs)
            test = json.loads((runs / run_id / "test.json").read_text())
            run_right = round(test["accuracy"] * test["images"])
            epochs = [line.split(",") for line in (runs / run_id / "epochs.csv").read_text().splitlines()[1:]]
            run_val = [round(float(row[5]), 4) for row in epochs]
            right, total, notebook_s, notebook_val = run_notebook(runs, run_id, Path(folder))
            notebook_rows.append((preset, run_right, right, total, run_val == notebook_val, train_s, notebook_s))
            print(f"{preset}: run {run_right}/{total}, notebook {right}/{total}, per-epoch validation accuracy "
                  f"{'identical' if run_val == notebook_val else f'run {run_val} notebook {notebook_val}'}; "
                  f"CLI {train_s:.1f} s, notebook {notebook_s:.1f} s", flush=True)
            for row in exports(runs, run_id):
                export_rows.append((preset, row))
                print(f"{preset} {row['format']}: largest difference {row['difference']:.1e}, written in "
                      f"{row['export_s']:.2f} s, checked in {row['check_s']:.2f} s, {row['size']:,} bytes", flush=True)
    print("\n| preset | run's test accuracy | notebook's | images right (run / notebook) | per-epoch val. accuracy | "
          "CLI (train + score) | notebook, clean kernel |")
    print("|---|---|---|---|---|---|---|")
    for preset, run_right, right, total, same, train_s, notebook_s in notebook_rows:
        print(f"| `{preset}` | {run_right / total:.2%} | {right / total:.2%} | {run_right:,} / {right:,} of {total:,} | "
              f"{'identical' if same else 'differs'} | {train_s:.1f} s | {notebook_s:.1f} s |")
    print("\n| preset | format | checked with | largest difference from Keras (100 test images) | written in | "
          "loaded and checked in | size |")
    print("|---|---|---|---|---|---|---|")
    for preset, row in export_rows:
        print(f"| `{preset}` | {row['format']} | {row['runtime']} | {row['difference']:.1e} | {row['export_s']:.2f} s | "
              f"{row['check_s']:.2f} s | {row['size'] / 1e6:.2f} MB |")


if __name__ == "__main__":
    main()
