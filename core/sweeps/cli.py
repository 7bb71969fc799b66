"""`python -m core sweep`: try many settings of a preset at once, from the command line.

    python -m core sweep --dataset digits-8x8 --arch lab --train lab \\
        --vary learning_rate=1e-3:1e-1:log --vary filters=8,16,32 --trials 12 [--strategy random|tpe|grid] \\
        [--metric val_accuracy|val_loss] [--no-prune] [--parallel 2 | --ray http://head:8265]
    python -m core sweep --resume s20261206-101500-a1b2c3      # go on with an interrupted or stopped sweep

Each trial is an ordinary run in the run store (the dashboard's Runs and Sweeps
pages list them), trained through the same job manager and worker processes
as the dashboard's: a warm worker takes the next trial as soon as one ends, a
pruned trial is stopped the way the Stop button stops a run, `--parallel`
trains several at once (`--ray`, or CONVLAB_RAY_ADDRESS: on a Ray cluster's
slots), and what a trial's TensorFlow keeps goes with its worker (a worker
retires after 25 runs), where one process training trial after trial would
grow. A line is printed as each trial ends, the best at the
end (repeat it with `python -m core --from-run RUN`). The first Ctrl-C stops
asking trials (the training ones finish), a second stops those too; resume the
sweep with --resume.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Iterator

from core.checks import check_scalar
from core.cli import add_run_arguments, dataset_ref, on_ctrl_c
from core.errors import ConvLabError, RunError
from core.model.architecture import PRESETS, layer_table
from core.runs.details import run_details
from core.runs.status import RunState
from core.runs.store import RunStore, default_root
from core.sweeps.driver import SweepDriver, TrialEnd
from core.sweeps.results import read_sweep
from core.sweeps.space import parse
from core.sweeps.spec import METRIC_NAMES, METRICS, PRUNE_AFTER, STRATEGIES, SweepSpec
from core.sweeps.store import SweepStore
from core.training.config import TRAINING_PRESETS, override


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m core sweep",
        description="Train many runs of a preset, each with other values of the settings you vary, chosen by a "
        "grid, a random search or Optuna's TPE; stop the hopeless ones early; print the best.")
    add_run_arguments(parser)
    parser.add_argument("--vary", action="append", default=[], metavar="NAME=RANGE",
                        help="a setting and what to try: learning_rate=1e-3:1e-1:log (a range, on a log scale; "
                        "a grid takes 4 points of it, :6 for 6), batch_size=16,32,64 (a list), optimizer=sgd,adam. "
                        "Settings: learning_rate, momentum, batch_size, epochs, optimizer, schedule, conv<N>.filters, "
                        "conv<N>.kernel_size, conv<N>.dropout, dense<N>.units, dense<N>.dropout, rotation, zoom, "
                        "shift (filters, kernel_size, units: the model's only block or dense layer). Repeat it.")
    parser.add_argument("--trials", type=int, default=12, help="how many trials (runs) at most (default 12)")
    parser.add_argument("--strategy", choices=STRATEGIES, default="random",
                        help="random (default), tpe (Optuna's Bayesian search) or grid")
    parser.add_argument("--metric", choices=sorted(METRICS), default="val_accuracy",
                        help="what ranks the trials, on the validation images (default val_accuracy)")
    parser.add_argument("--no-prune", action="store_true",
                        help="never stop a trial early (default: a trial behind the median of the completed ones "
                        "after an epoch is stopped)")
    parser.add_argument("--prune-after", type=int, default=PRUNE_AFTER,
                        help=f"completed trials before pruning starts (default {PRUNE_AFTER})")
    parser.add_argument("--sampler-seed", type=int, default=0, help="seeds the search (default 0)")
    parser.add_argument("--parallel", type=int, help="trials trained at once (default: one per two cores)")
    parser.add_argument("--label", help="a label for the sweep (its trials' labels start with it)")
    parser.add_argument("--runs", type=Path, default=None,
                        help=f"the run store (default: $CONVLAB_RUNS or ./runs; now {default_root()})")
    parser.add_argument("--resume", metavar="SWEEP", help="go on with an interrupted or stopped sweep (its id)")
    parser.add_argument("--no-download", action="store_true", help="use only local or cached data")
    return parser.parse_args(argv)


def make_spec(args: argparse.Namespace) -> tuple[SweepSpec, dict]:
    """The sweep the arguments describe, checked against its dataset's images, and its trials' run details."""
    from core.data.registry import load_ref

    if not args.vary:
        raise RunError("Say what to vary: --vary learning_rate=1e-3:1e-1:log --vary batch_size=16,32,64 (see --help).")
    arch = PRESETS[args.arch]
    config = override(TRAINING_PRESETS[args.train], epochs=args.epochs, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, seed=args.seed)
    settings = tuple(parse(text, arch) for text in args.vary)
    ref = dataset_ref(args)
    spec = SweepSpec(ref, arch, config, settings, trials=args.trials, strategy=args.strategy, metric=args.metric,
                     prune=not args.no_prune, prune_after=args.prune_after, seed=args.sampler_seed,
                     label=args.label or f"{args.arch} / {args.train} sweep (cli)", origin="cli").validated()
    dataset = load_ref(ref, RunStore(args.runs or default_root()).stored_dataset_path,
                       allow_download=not args.no_download)
    spec.check_for(dataset.input_shape, dataset.num_classes)
    print(f"data: {dataset.summary_line()}")
    table = layer_table(arch, dataset.input_shape, dataset.num_classes)
    return spec, run_details(dataset, table.total_params)


class Table:
    """Prints one line per trial as it ends, under a header."""

    def __init__(self, spec: SweepSpec) -> None:
        self.spec = spec
        self.widths = [max(len(name), 9) for name in spec.names()]
        self.headed = False
        self._lock = threading.Lock()

    def say(self, line: str) -> None:
        with self._lock:
            print(line, flush=True)

    def _header(self) -> None:
        names = "  ".join(name.rjust(width) for name, width in zip(self.spec.names(), self.widths))
        print(f"{'trial':>5}  {'outcome':<9}  {names}  {self.spec.metric:>12}  {'epochs':>6}  run", flush=True)
        self.headed = True

    def row(self, end: TrialEnd, store: RunStore) -> None:
        values = "  ".join(_value(end.values.get(name)).rjust(width)
                           for name, width in zip(self.spec.names(), self.widths))
        epochs = str(len([r for r in store.epochs(end.run_id) if not r.get("partial")])) if end.run_id else "-"
        metric = _metric(self.spec.metric, end.value) if end.outcome in ("finished", "pruned") else "-"
        with self._lock:
            if not self.headed:
                self._header()
            print(f"{end.number + 1:>5}  {end.outcome:<9}  {values}  {metric:>12}  {epochs:>6}  {end.run_id}"
                  + ("" if end.outcome in ("finished", "pruned") else f"  ({end.message[:160]})"), flush=True)


def _value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _metric(metric: str, value: float | None) -> str:
    return "?" if value is None else f"{value:.4f}"


def parallel(value: int | None, cluster: str = "") -> int | None:
    """--parallel checked: from 1 to one training per core (None: the job manager's default, one per two cores); on
    a Ray cluster its slots decide."""
    if value is None:
        return None
    if cluster:
        raise RunError(f"--parallel is for this machine's training processes; on the Ray cluster at {cluster} its "
                       "slots decide how many trials train at once (CONVLAB_RAY_CPUS_PER_RUN).")
    cores = os.cpu_count() or 1
    return check_scalar(value, "--parallel", RunError, integer=True, lo=1, hi=cores,
                        what=f"an integer from 1 to {cores} (at most one training per core of this machine)")


def run(args: argparse.Namespace) -> str:
    """Run (or resume) the sweep to its end; returns its id. Raises ConvLabError, or Stopped after a Ctrl-C."""
    from core.engine.cluster import cluster_address
    from core.engine.jobs import JobManager

    cluster = cluster_address() if args.ray is None else args.ray
    slots = parallel(args.parallel, cluster)
    store = RunStore(args.runs) if args.runs is not None else RunStore()
    sweeps = SweepStore(store)
    if args.resume is not None:
        sweeps.path(args.resume)  # (refuses what is not a sweep id)
        if not sweeps.exists(args.resume):
            raise RunError(f"{args.resume}: no such sweep in {store.root} (give its id; --runs for another store).")
        spec = sweeps.spec(args.resume)
    else:
        spec, details = make_spec(args)
    print(f"sweep: {spec.describe()}", flush=True)
    manager = JobManager(max_concurrent=slots, idle_retire_s=0, cluster=cluster, cluster_home=store)
    driver = SweepDriver(manager)
    table = Table(spec)
    try:
        listener = lambda end: table.row(end, store)  # noqa: E731 - (from the driver's thread)
        if args.resume is not None:
            sweep_id = args.resume
            driver.resume(store, sweep_id, listener=listener)
        else:
            sweep_id = driver.start(store, spec, details, listener=listener)
        table.say(f"       sweep {sweep_id} in {sweeps.path(sweep_id)}; trained on {manager.describe()}")
        with ctrl_c_stops(driver, sweep_id):
            while not driver.wait(sweep_id, timeout=1.0):
                pass
    finally:
        driver.shutdown()  # (a sweep still going is left interrupted, for --resume)
        manager.shutdown()
    report(sweeps, sweep_id, args)
    return sweep_id


def report(sweeps: SweepStore, sweep_id: str, args: argparse.Namespace) -> None:
    """The sweep's end in words, its best trial and how to repeat it; the table of trials kept beside it."""
    view = read_sweep(sweeps, sweep_id)
    path = sweeps.write_trials_csv(sweep_id, view.csv())
    print(f"{view.status.message}")
    best = view.best
    if best is not None:
        values = ", ".join(f"{name}={_value(best.values.get(name))}" for name in view.spec.names())
        test = f", test accuracy {best.test_accuracy:.2%}" if best.test_accuracy is not None else ""
        runs = f" --runs {args.runs}" if args.runs is not None else ""
        print(f"best: trial {best.number + 1}, {METRIC_NAMES[view.spec.metric]} {_metric(view.spec.metric, best.value)}"
              f"{test}, with {values}\n      run {best.run_id}; repeat it: python -m core --from-run {best.run_id}"
              f"{runs}")
    print(f"trials: {path}")
    if view.status.state is not RunState.FINISHED:
        raise Stopped(f"sweep {sweep_id} is {view.status.state.value}; go on with it: python -m core sweep --resume "
                      f"{sweep_id}" + (f" --runs {args.runs}" if args.runs is not None else ""))


class Stopped(Exception):
    """The sweep was stopped before its end (its message says how to go on with it)."""


@contextlib.contextmanager
def ctrl_c_stops(driver: SweepDriver, sweep_id: str) -> Iterator[None]:
    """The first Ctrl-C asks no more trials (the training ones finish), a second stops those too, a third aborts
    (the sweep is left interrupted, its training runs too: --resume goes on from there)."""
    presses = []

    def handle(signum, frame) -> None:
        presses.append(signum)
        if len(presses) == 1:
            print("\n      no more trials: the training ones finish (Ctrl-C again to stop them now)…",
                  file=sys.stderr, flush=True)
            driver.stop(sweep_id)
        elif len(presses) == 2:
            print("\n      stopping the training trials (Ctrl-C again to abort)…", file=sys.stderr, flush=True)
            driver.stop(sweep_id, cancel=True)
        else:
            raise KeyboardInterrupt

    with on_ctrl_c(handle):
        yield


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except (ConvLabError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Stopped as stopped:
        print(f"stopped: {stopped}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("interrupted: the sweep is kept as interrupted; go on with it with --resume", file=sys.stderr)
        return 130
    return 0
