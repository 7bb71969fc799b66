"""`python -m core notebook|report|export|classify RUN ...`: take a run away from the command line.

    python -m core notebook RUN [-o FOLDER]              the lab notebook (and the data file it reads)
    python -m core report RUN [-o FILE.html]             the run report, one HTML file that works offline
    python -m core export RUN [--format onnx ...] [-o FOLDER]   the model for use elsewhere, each file checked
    python -m core classify RUN picture.png [more ...]   the top classes of each picture

RUN is a run id in the run store (`--runs`, else $CONVLAB_RUNS or ./runs) or a run's folder. A bad argument,
run or file ends with one `error:` line and exit code 1; `classify` says `error:` for each picture it cannot
read and classifies the others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

from core.errors import ConvLabError, RunError
from core.runs.store import RunStore, default_root

COMMANDS = ("notebook", "report", "export", "classify")
TOP_CLASSES = 3


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core", description="Take a run away: its lab notebook, its "
                                     "report, its model in other formats, or classify pictures with it.",
                                     epilog="--verbose (anywhere): also print TensorFlow's own start-up log lines.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("run", help="a run id in the run store, or a run's folder (runs/<id>)")
        sub.add_argument("--runs", type=Path, default=None,
                         help=f"the run store (default: $CONVLAB_RUNS or ./runs; now {default_root()})")
        return sub

    notebook = command("notebook", "Write the run's lab notebook (.ipynb): its data, model, training and "
                       "evaluation in plain Keras, giving the run's test accuracy when run from a fresh kernel.")
    notebook.add_argument("-o", "--output", type=Path, default=Path("."), help="folder to write into (default: .)")
    report = command("report", "Write the run's report: one HTML file (charts inline) that opens offline.")
    report.add_argument("-o", "--output", type=Path, default=None, help="file to write (default: <run>.html)")
    export = command("export", "Export the run's model (taking raw 0..255 pixels), each format checked against "
                     "Keras on 100 test images in its own runtime.")
    from core.export.formats import FORMATS

    export.add_argument("--format", dest="formats", action="append", choices=[*FORMATS, "all"],
                        help="a format (repeatable; default: all)")
    export.add_argument("-o", "--output", type=Path, default=Path("."), help="folder to write into (default: .)")
    classify = command("classify", "Classify pictures with the run's model, preprocessed as the Draw & classify "
                       "page does it.")
    classify.add_argument("pictures", nargs="+", type=Path, help="image files (PNG, JPEG, ...)")
    classify.add_argument("--top", type=int, default=TOP_CLASSES, help=f"classes shown (default {TOP_CLASSES})")
    return parser.parse_args(argv)


def locate(run: str, runs: Path | None) -> tuple[RunStore, str]:
    """The store and id of RUN: a run folder (runs/<id>) or an id in `runs` (or the default store)."""
    folder = Path(run)
    if runs is None and folder.is_dir() and (folder / "spec.json").is_file():
        folder = folder.resolve()
        return RunStore(folder.parent), folder.name
    store = RunStore(runs) if runs is not None else RunStore()
    run_id = folder.name if runs is None and folder.is_dir() else run
    if not store.exists(run_id):
        raise RunError(f"no run '{run[:80]}' in the run store {store.root} (give a run id or a run's folder).")
    return store, run_id


def notebook(args: argparse.Namespace, store: RunStore, run_id: str) -> int:
    from core.export.notebook import write_notebook

    for path in write_notebook(store, run_id, args.output):
        print(f"wrote {path}")
    return 0


def report(args: argparse.Namespace, store: RunStore, run_id: str) -> int:
    from core.export.report import run_report

    path = args.output or Path(f"{run_id}.html")
    path.write_text(run_report(store, run_id), encoding="utf-8")
    print(f"wrote {path} (opens offline in any browser; print it from there)")
    return 0


def export(args: argparse.Namespace, store: RunStore, run_id: str) -> int:
    from core.data.registry import load_ref
    from core.export.formats import FORMATS, export_run
    from core.model.files import load_model_file

    keys = list(FORMATS) if not args.formats or "all" in args.formats else list(dict.fromkeys(args.formats))
    if not store.has_model(run_id):
        raise RunError(f"run {run_id} has no model to export (yet).")
    dataset = load_ref(store.spec(run_id).dataset, store.stored_dataset_path)
    model = load_model_file(store.model_path(run_id))
    args.output.mkdir(parents=True, exist_ok=True)
    failed = 0
    for key in keys:
        try:
            kept, check = export_run(store, run_id, key, dataset=dataset, model=model)
        except ConvLabError as error:
            print(f"error: {FORMATS[key].title}: {error}", file=sys.stderr)
            failed += 1
            continue
        target = args.output / check.file_name
        target.write_bytes(kept.read_bytes())
        print(f"wrote {target} ({check.size:,} bytes). {check.describe()}")
    return 1 if failed else 0


def classify(args: argparse.Namespace, store: RunStore, run_id: str) -> int:
    import numpy as np

    from core.data.drawing import picture_input
    from core.data.registry import load_ref
    from core.evaluation.inference import Predictor
    from core.model.files import load_model_file

    if not store.has_model(run_id):
        raise RunError(f"run {run_id} has no model to classify with (yet).")
    dataset = load_ref(store.spec(run_id).dataset, store.stored_dataset_path)
    predict = Predictor(load_model_file(store.model_path(run_id)))
    failed = 0
    for path in args.pictures:
        try:
            given = picture_input(_read(path), dataset, name=path.name)
        except ConvLabError as error:
            print(f"error: {error}", file=sys.stderr)
            failed += 1
            continue
        if given is None:
            print(f"error: {path.name}: no digit found (it looks like a plain background).", file=sys.stderr)
            failed += 1
            continue
        probabilities = predict(given.model_input)[0]
        top = np.argsort(-probabilities, kind="stable")[:max(1, args.top)]
        ranked = ", ".join(f"{dataset.class_names[i]} {probabilities[i]:.1%}" for i in top)
        print(f"{path.name}: {ranked}")
    return 1 if failed else 0


def _read(path: Path) -> bytes:
    from core.errors import DrawingError
    from core.limits import MAX_IMAGE_FILE_BYTES, format_bytes

    try:
        if path.stat().st_size > MAX_IMAGE_FILE_BYTES:
            raise DrawingError(f"{path.name}: {format_bytes(path.stat().st_size)}, over the "
                               f"{format_bytes(MAX_IMAGE_FILE_BYTES)} a picture may have.")
        return path.read_bytes()
    except OSError as error:
        raise DrawingError(f"{path.name}: cannot be read ({error.strerror or error}).") from None


HANDLERS: dict[str, Callable[[argparse.Namespace, RunStore, str], int]] = {
    "notebook": notebook, "report": report, "export": export, "classify": classify}


def main(argv: list[str]) -> int:
    """Run one subcommand; ConvLab's errors and OS errors end as one `error:` line and exit code 1."""
    args = parse_args(argv)
    try:
        store, run_id = locate(args.run, args.runs)
        return HANDLERS[args.command](args, store, run_id)
    except (ConvLabError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
