"""`python -m core`: the four stages headless, from a dataset to a saved, scored run in the run store.

    python -m core --dataset digits-8x8 --arch fast --train fast
    python -m core --dataset my_photos.zip --image-size 64 --color-mode rgb --arch fast --train fast
    python -m core --resume 20261206-101500-a1b2c3          # a paused or interrupted run, from its checkpoint
    python -m core --continue 20261206-101500-a1b2c3 --epochs 5   # a new run: 5 more epochs of that one

The CLI trains through the same engine as the dashboard (`core.engine.execute.execute`)
and into the same store, so its runs appear on the dashboard's Runs page. Ctrl-C
pauses the run (resume it with --resume); a second Ctrl-C stops it instead.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from core.data.dataset import DatasetRef
from core.data.pictures import COLOR_MODES, INVERT_MODES, ImageFolderOptions
from core.data.registry import REGISTRY
from core.engine.cluster import cluster_address
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
    add_run_arguments(parser)
    parser.add_argument("--label", help="a label for the run (default: preset names and settings)")
    parser.add_argument("--from-run", type=Path, metavar="RUN",
                        help="repeat a run (its id, or its folder runs/<id>): the same spec and seed, and the changes "
                        "made while it trained, at the same batches; other settings ignored")
    parser.add_argument("--resume", metavar="RUN",
                        help="go on with a paused or interrupted run (its id or folder) from its last checkpoint")
    parser.add_argument("--continue", dest="continue_run", metavar="RUN",
                        help="a new run that trains a finished or stopped run further: --epochs more epochs "
                        "(default 5), from its final weights and optimizer state; --learning-rate to change it")
    parser.add_argument("--runs", type=Path, default=None,
                        help=f"the run store (default: $CONVLAB_RUNS or ./runs; now {default_root()})")
    parser.add_argument("--no-download", action="store_true", help="use only local or cached data")
    return parser.parse_args(argv)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """--dataset (with a folder's image options), --arch, --train and the recipe's overrides (also the sweep's)."""
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
    parser.add_argument("--verbose", action="store_true",
                        help="also print TensorFlow's own start-up log lines (kept out by default)")
    parser.add_argument("--ray", metavar="ADDRESS", default=None,
                        help="train on the Ray cluster whose dashboard is at ADDRESS (http://head:8265; default: "
                        "$CONVLAB_RAY_ADDRESS, else this machine); the run store must be a folder every node reaches")


def locate(run: str | Path, runs: Path | None) -> tuple[RunStore, str]:
    """A run named by its folder (runs/<id>) or by its id in the run store: (its store, its id)."""
    folder = Path(run)
    if (folder / "spec.json").is_file():
        folder = folder.resolve()
        return RunStore(folder.parent), folder.name
    if folder.is_dir():
        raise RunError(f"{run}: not a run folder (it has no spec.json).")
    store = RunStore(runs) if runs is not None else RunStore()
    if not store.exists(str(run)):
        raise RunError(f"{run}: no such run (give a run's id in {store.root}, or its folder).")
    return store, str(run)


def prepare_run(args: argparse.Namespace) -> tuple[RunStore, str | None, str, RunSpec]:
    """The run to train: (its store, its id, what it is, its spec), found in the store or made from the
    arguments (a new run is created once its data has loaded: its id is None here)."""
    from core.runs.lineage import continue_run, replay_run

    chosen = [name for name in ("from_run", "resume", "continue_run") if getattr(args, name) is not None]
    if len(chosen) > 1:
        raise RunError("Use one of --from-run, --resume and --continue at a time.")
    if args.resume is not None:
        store, run_id = locate(args.resume, args.runs)
        status = store.status(run_id)
        if not status.state.is_resumable:
            raise RunError(f"run {run_id} is {status.state.value}: only a paused or interrupted run can be resumed"
                           + (" (--continue trains it further)." if status.state.is_continuable else "."))
        return store, run_id, "resumed", store.spec(run_id)
    if args.continue_run is not None:
        store, parent = locate(args.continue_run, args.runs)
        run_id = continue_run(store, parent, args.epochs or 5, args.learning_rate, origin="cli", made_by="")
        return store, run_id, f"continues run {parent}", store.spec(run_id)
    if args.from_run is not None:
        source, source_id = locate(args.from_run, args.runs)
        store = RunStore(args.runs) if args.runs is not None else source
        run_id = replay_run(source, source_id, store, args.label or "", origin="cli")
        return store, run_id, f"repeats run {source_id}", store.spec(run_id)
    config = override(TRAINING_PRESETS[args.train], epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, seed=args.seed)
    spec = RunSpec(dataset_ref(args), PRESETS[args.arch], config, label=args.label or f"{args.arch} / {args.train} "
                   "(cli)", origin="cli")
    return RunStore(args.runs) if args.runs is not None else RunStore(), None, "new", spec


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


class Paused(Exception):
    """The run was paused from the keyboard (its message says how to resume it)."""


def run(args: argparse.Namespace) -> float:
    """Run the four stages into the store; returns the test accuracy."""
    from core.data.registry import load_ref
    from core.engine.execute import execute, starting_point
    from core.training.controls import Controls

    store, run_id, what, spec = prepare_run(args)
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
    epochs = spec.training.epochs
    if run_id is None:
        run_id = store.create(spec, run_details(dataset, table.total_params))
    else:
        start = starting_point(store, run_id)
        epochs = start.checkpoint.epochs if start.checkpoint is not None and not start.continuing else epochs
        where = start.describe()
        print(f"      run {run_id} {what}" + (f": {where[0].lower()}{where[1:]}" if where else ""), flush=True)
    if spec.changes:
        print(f"      with the changes made by hand at the same batches: "
              f"{'; '.join(f'{c.describe()} after batch {c.step}' for c in spec.changes)}", flush=True)

    def print_epoch(record: dict) -> None:
        val = (f", val_loss {record['val_loss']:.4f}, val_accuracy {record['val_accuracy']:.4f}"
               if "val_loss" in record else "")
        print(f"      epoch {record['epoch']}/{epochs}: loss {record['loss']:.4f}, accuracy {record['accuracy']:.4f}"
              f"{val} ({record['epoch_s']:.1f} s)", flush=True)

    controls = Controls()
    started = time.perf_counter()
    address = cluster_address() if args.ray is None else args.ray
    with ctrl_c_pauses(controls):
        if address:
            state = on_cluster(address, store, run_id, controls, print_epoch)
        else:
            state = execute(store, run_id, controls, allow_download=not args.no_download, on_epoch=print_epoch)
    wall = time.perf_counter() - started
    status = store.status(run_id)
    if state is RunState.FAILED:
        raise ConvLabError(f"{status.message} (run {run_id} in {store.root})")
    if state in (RunState.PAUSED, RunState.INTERRUPTED):
        raise Paused(f"{status.message} Resume it with: python -m core --resume {run_id}"
                     + (f" --runs {store.root}" if args.runs is not None else ""))
    test = store.test_metrics(run_id) or {}
    print(f"[4/4] test accuracy: {test.get('accuracy', float('nan')):.2%} (accuracy_score on "
          f"{len(dataset.y_test):,} test images), test loss {test.get('loss', float('nan')):.4f}, "
          f"training time {status.progress.elapsed_s:.1f} s ({wall:.1f} s in all)")
    if state is not RunState.FINISHED or "kept" in status.message:
        print(f"      {status.message}")
    write_curves(store, run_id)
    print(f"      saved run {run_id} in {store.path(run_id)}/: spec.json, epochs.csv, model.keras, curves.html, "
          f"tensorboard/ (repeat it with --from-run {run_id}; train it further with --continue {run_id})")
    return float(test.get("accuracy", float("nan")))


def on_cluster(address: str, store: RunStore, run_id: str, controls, print_epoch) -> RunState:
    """Train the run on the Ray cluster at `address` through a job manager of this process, printing its epochs
    as they come; Ctrl-C's pause (or stop) goes to it through the cluster."""
    from core.engine.jobs import JobManager
    from core.training.controls import Halt

    jobs = JobManager(cluster=address, cluster_home=store, keep_spare=False)
    print(f"      on {jobs.describe()}", flush=True)
    if jobs.max_concurrent == 0:
        jobs.shutdown()
        raise RunError(f"The Ray cluster at {address} cannot take the run: {jobs.describe()}.")
    if store.status(run_id).state.is_resumable:
        jobs.resume(store, run_id)
    else:
        jobs.enqueue(store, run_id)
    reader, printed, asked = store.reader(run_id), 0, None
    try:
        while not jobs.wait_idle(timeout=0.5):
            epochs = reader.snapshot().epochs
            for record in epochs[printed:]:
                print_epoch(dict(record))
            printed = len(epochs)
            if controls.halted is not None and controls.halted is not asked:
                asked = controls.halted
                (jobs.pause if asked is Halt.PAUSE else jobs.stop)(run_id)
        for record in reader.snapshot().epochs[printed:]:
            print_epoch(dict(record))
    finally:
        jobs.shutdown()
    return store.status(run_id).state


@contextlib.contextmanager
def on_ctrl_c(handle: Callable[[int, object], None]) -> Iterator[None]:
    """Inside the block, Ctrl-C calls `handle` (signum, frame) instead of raising KeyboardInterrupt; in the main
    thread only (Python takes signals there), elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def ctrl_c_pauses(controls) -> Iterator[None]:
    """The first Ctrl-C pauses the training at the next chunk of batches (a checkpoint to resume from); a
    second one stops it instead (it keeps its weights and is scored); a third aborts."""
    from core.training.controls import Halt

    def handle(signum, frame) -> None:
        if controls.halted is None:
            print("\n      pausing after the current batches (Ctrl-C again to stop instead)…", file=sys.stderr,
                  flush=True)
            controls.pause()
        elif controls.halted is Halt.PAUSE:
            print("\n      stopping after the current batches (Ctrl-C again to abort)…", file=sys.stderr, flush=True)
            controls.escalate()
        else:
            raise KeyboardInterrupt

    with on_ctrl_c(handle):
        yield


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
    except Paused as paused:
        print(f"paused: {paused}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted: the run is kept as interrupted", file=sys.stderr)
        return 130
    return 0
