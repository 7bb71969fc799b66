"""`python -m core`: the four stages headless, from a dataset to a saved, scored model."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from core.architecture import PRESETS, architecture_to_dict
from core.datasets import REGISTRY
from core.errors import ConvLabError
from core.training import TRAINING_PRESETS, override


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Load a dataset, build a CNN preset, train it and score it on the test set.",
    )
    parser.add_argument("--dataset", default="mnist",
                        help=f"one of {', '.join(REGISTRY)}, or a Keras-layout .npz file, or a folder of IDX files")
    parser.add_argument("--arch", default="lab", choices=sorted(PRESETS), help="architecture preset")
    parser.add_argument("--train", default="lab", choices=sorted(TRAINING_PRESETS), help="training preset")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--learning-rate", type=float, help="override the preset's learning rate")
    parser.add_argument("--seed", type=int, help="override the preset's seed")
    parser.add_argument("--out", type=Path, default=Path("runs") / time.strftime("%Y%m%d-%H%M%S"),
                        help="output folder for history.csv, model.keras, config.json, curves.html")
    parser.add_argument("--no-download", action="store_true", help="use only local or cached data")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> float:
    """Run the four stages; returns the test accuracy."""
    from core.architecture import layer_table
    from core.datasets import load_dataset

    config = override(TRAINING_PRESETS[args.train], epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, seed=args.seed)
    arch = PRESETS[args.arch]
    dataset = load_dataset(args.dataset, allow_download=not args.no_download)
    print(f"[1/4] data: {dataset.summary_line()}")
    print(f"      {dataset.source}")
    table = layer_table(arch, dataset.input_shape, dataset.num_classes)
    print(f"[2/4] model: {args.arch} ({len(table.rows)} layers, {table.total_params:,} parameters)")
    print(f"[3/4] training: {args.train} {config.to_dict()}", flush=True)

    def report(kind: str, record: dict) -> None:
        if kind == "epoch":
            val = (f", val_loss {record['val_loss']:.4f}, val_accuracy {record['val_accuracy']:.4f}"
                   if "val_loss" in record else "")
            print(f"      epoch {record['epoch']}/{config.epochs}: loss {record['loss']:.4f}, "
                  f"accuracy {record['accuracy']:.4f}{val} ({record['epoch_s']:.1f} s)", flush=True)

    from core.evaluation import evaluate
    from core.training import JobState, train

    started = time.perf_counter()
    job = train(arch, dataset, config, listeners=[report])
    wall = time.perf_counter() - started
    snapshot = job.snapshot()
    if snapshot.state is JobState.FAILED:
        raise ConvLabError(snapshot.message)
    result = evaluate(job.model, dataset.x_test, dataset.y_test, dataset.class_names)
    print(f"[4/4] test accuracy: {result.accuracy:.2%} (accuracy_score on {len(dataset.y_test):,} test images), "
          f"test loss {result.loss:.4f}, training time {wall:.1f} s")
    save_run(args.out, job, dataset.source, args, result.accuracy, wall)
    print(f"      saved to {args.out}/: history.csv, model.keras, config.json, curves.html")
    return result.accuracy


def save_run(out: Path, job, source: str, args: argparse.Namespace, accuracy: float, wall: float) -> None:
    """Write history.csv, model.keras, config.json and curves.html into `out`."""
    from core.figures import history_curves

    out.mkdir(parents=True, exist_ok=True)
    history = job.history()
    with open(out / "history.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", *history])
        for index, values in enumerate(zip(*history.values()), start=1):
            writer.writerow([index, *values])
    job.model.save(out / "model.keras")
    config = {
        "dataset": args.dataset, "dataset_source": source,
        "architecture_preset": args.arch, "architecture": architecture_to_dict(job.arch),
        "training_preset": args.train, "training": job.config.to_dict(),
        "test_accuracy": accuracy, "training_seconds": round(wall, 2),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    history_curves(history).write_html(out / "curves.html", include_plotlyjs=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except ConvLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
