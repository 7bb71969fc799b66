"""`python -m core`: the four stages headless, from a dataset to a saved, scored run in the run store.

    python -m core --dataset digits-8x8 --arch fast --train fast
    python -m core --dataset my_photos.zip --image-size 64 --color-mode rgb --arch fast --train fast

The CLI trains through the same engine as the dashboard (`core.engine.execute.execute`)
and into the same store, so its runs appear on the dashboard's Runs page.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

from core.data.dataset import DatasetRef
from core.data.pictures import COLOR_MODES, INVERT_MODES, ImageFolderOptions
from core.data.registry import REGISTRY
from core.errors import ConvLabError, DataError, RunError
from core.model.architecture import PRESETS, layer_table
from core.runs.details import run_details
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore, default_root
from core.training.config import TRAINING_PRESETS, override


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Load a dataset, build a CNN preset, train it and score it on the test set; "
        "the run is kept in the run store (the dashboard's Runs page lists it).",
    )
    parser.add_argument("--dataset", default="mnist",
                        help=f"one of {', '.join(REGISTRY)}, or a Keras-layout .npz file, a folder of IDX files, "
                        "or a folder or .zip of class folders of images (one folder per class, or train/ and test/)")
    images = parser.add_argument_group("a folder or .zip of images", "defaults: 28 px, grayscale, never inverted, "
                                       "20% of each class held out for testing when there is no test/ folder")
    images.add_argument("--image-size", type=int, help="fit each image into this many pixels square (8 to 128)")
    images.add_argument("--color-mode", choices=COLOR_MODES, help="grayscale or rgb")
    images.add_argument("--invert", choices=INVERT_MODES,
                        help="turn dark-on-light images into light-on-dark (auto: judged by each image's border)")
    images.add_argument("--test-fraction", type=float, help="share of each class held out when there is no test/")
    parser.add_argument("--arch", default="lab", choices=sorted(PRESETS), help="architecture preset")
    parser.add_argument("--train", default="lab", choices=sorted(TRAINING_PRESETS), help="training preset")
    parser.add_argument("--epochs", type=int, help="override the preset's epochs")
    parser.add_argument("--batch-size", type=int, help="override the preset's batch size")
    parser.add_argument("--learning-rate", type=float, help="override the preset's learning rate")
    parser.add_argument("--seed", type=int, help="override the preset's seed")
    parser.add_argument("--label", help="a label for the run (default: preset names and settings)")
    parser.add_argument("--from-run", type=Path, metavar="RUN_FOLDER",
                        help="repeat a run from its folder (runs/<id>): the same spec and seed; other settings ignored")
    parser.add_argument("--runs", type=Path, default=None,
                        help=f"the run store (default: $CONVLAB_RUNS or ./runs; now {default_root()})")
    parser.add_argument("--no-download", action="store_true", help="use only local or cached data")
    return parser.parse_args(argv)


def spec_from_args(args: argparse.Namespace) -> tuple[RunSpec, RunStore | None]:
    """The spec to train: the presets with overrides, or a copy of an earlier run's (and that run's store)."""
    if args.from_run is not None:
        folder = args.from_run.resolve()
        source = RunStore(folder.parent)
        if not (folder / "spec.json").is_file():
            raise RunError(f"{args.from_run}: not a run folder (it has no spec.json).")
        spec = source.spec(folder.name)
        if spec.architecture is None or spec.training is None:
            raise RunError(f"{args.from_run} is an uploaded model: it has no training to repeat.")
        return RunSpec(spec.dataset, spec.architecture, spec.training,
                       label=args.label or f"repeat of {folder.name}", origin="cli"), source
    config = override(TRAINING_PRESETS[args.train], epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, seed=args.seed)
    label = args.label or f"{args.arch} / {args.train} (cli)"
    return RunSpec(dataset_ref(args), PRESETS[args.arch], config, label=label, origin="cli"), None


def dataset_ref(args: argparse.Namespace) -> DatasetRef:
    """What --dataset names: a local path is referred to without loading it (run() loads it once)."""
    from core.data.registry import load_dataset, local_ref

    chosen = {key: getattr(args, key) for key in ("image_size", "color_mode", "invert", "test_fraction")
              if getattr(args, key) is not None}
    image_options = ImageFolderOptions(**chosen) if chosen else None
    if args.dataset not in REGISTRY and Path(args.dataset).exists():
        return local_ref(args.dataset, image_options)
    if image_options is not None:
        raise DataError(f"--{next(iter(chosen)).replace('_', '-')} applies only to a folder or .zip of images, "
                        f"not to {args.dataset}.")
    dataset = load_dataset(args.dataset, allow_download=not args.no_download)
    if dataset.ref is None:
        raise ConvLabError(f"{args.dataset}: this dataset cannot be referred to by a run.")
    return dataset.ref


def run(args: argparse.Namespace) -> float:
    """Run the four stages into the store; returns the test accuracy."""
    from core.data.registry import load_ref
    from core.engine.execute import StopFlag, execute

    spec, source = spec_from_args(args)
    store = RunStore(args.runs) if args.runs is not None else (source or RunStore())
    dataset = load_ref(spec.dataset, store.stored_dataset_path, allow_download=not args.no_download)
    print(f"[1/4] data: {dataset.summary_line()}")
    print(f"      {dataset.source}")
    if spec.dataset.kind == "images":
        for line in dataset.notes:  # files skipped, and why
            print(f"      {line}")
        print(f"      classes: {', '.join(dataset.class_names)}")
    table = layer_table(spec.architecture, dataset.input_shape, dataset.num_classes)
    print(f"[2/4] model: {spec.architecture.name} ({len(table.rows)} layers, {table.total_params:,} parameters)")
    print(f"[3/4] training: {spec.training.describe()}", flush=True)
    run_id = store.create(spec, run_details(dataset, table.total_params))
    epochs = spec.training.epochs

    def print_epoch(record: dict) -> None:
        val = (f", val_loss {record['val_loss']:.4f}, val_accuracy {record['val_accuracy']:.4f}"
               if "val_loss" in record else "")
        print(f"      epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}, accuracy {record['accuracy']:.4f}"
              f"{val} ({record['epoch_s']:.1f} s)", flush=True)

    stop = StopFlag()
    started = time.perf_counter()
    with first_ctrl_c_stops(stop):
        state = execute(store, run_id, stop, allow_download=not args.no_download, on_epoch=print_epoch)
    wall = time.perf_counter() - started
    status = store.status(run_id)
    if state is RunState.FAILED:
        raise ConvLabError(f"{status.message} (run {run_id} in {store.root})")
    if state is RunState.INTERRUPTED:
        raise KeyboardInterrupt
    test = store.test_metrics(run_id) or {}
    print(f"[4/4] test accuracy: {test.get('accuracy', float('nan')):.2%} (accuracy_score on "
          f"{len(dataset.y_test):,} test images), test loss {test.get('loss', float('nan')):.4f}, "
          f"training time {status.progress.elapsed_s:.1f} s ({wall:.1f} s in all)")
    write_curves(store, run_id)
    print(f"      saved run {run_id} in {store.path(run_id)}/: spec.json, epochs.csv, model.keras, curves.html, "
          f"tensorboard/ (repeat it with --from-run {store.path(run_id)})")
    return float(test.get("accuracy", float("nan")))


@contextlib.contextmanager
def first_ctrl_c_stops(stop) -> Iterator[None]:
    """The first Ctrl-C stops training gracefully (the weights are saved); a second one aborts."""
    from core.engine.execute import StopReason

    def handle(signum, frame) -> None:
        if stop():
            raise KeyboardInterrupt
        print("\n      stopping after the current batches (Ctrl-C again to abort)…", file=sys.stderr, flush=True)
        stop.set(StopReason.KEYBOARD)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def write_curves(store: RunStore, run_id: str) -> None:
    """curves.html (plotly, working offline) beside the run's metrics."""
    from core.figures.training import history_curves

    history = store.reader(run_id).snapshot().history()
    store.write_curves_html(run_id, history_curves(history).to_html(include_plotlyjs=True))


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
        print("interrupted: the run is kept as interrupted, with the weights reached so far", file=sys.stderr)
        return 130
    return 0
