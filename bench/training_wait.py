"""Benchmark: what a user waits for around a short training (issue 23), before and after, part by part.

Two `streamlit run app.py` servers on one run store: "after" serves this checkout, "before" a copy of another
commit (--before, `git archive`). In headless Chromium (Debian's /usr/bin/chromium) one tab per server is
prepared as a user does (the shipped MNIST, the `lab` architecture built, the `lab` recipe, 1 epoch) and trains
once to warm its worker (not counted). Then --rounds rounds, the two sides alternating in order. In each, a
click on Start; meanwhile a thread of this script reads the run's files every 10 ms and notes when the run was
created, taken up by the worker (its status says running), wrote its first and its last batch, and ended; the
page is watched for the first "Epoch 1/1 · batch" and for "Training finished" (with its test accuracy, on a
side that shows it). "On screen" is the animation frame in which the page first holds the text, noted by the
page itself (a MutationObserver, then requestAnimationFrame): Playwright's own waiting, which this benchmark
used at first, polls and saw the text 0.02-0.44 s after it was drawn on this machine. Parts:

  click -> created        the Start callback (the server)
  created -> started      the queue's hand-over to the warm worker
  started -> first batch  the worker: data, build and compile, tracing the first step, the first batches
  first batch -> screen   the page's poll and redraw
  last batch -> ended     the worker: validating, saving and scoring the test set
  ended -> screen         the page's poll and redraw

Targets (issue 23, a warm worker): Start to the first batch on screen <= 1.5 s; the last batch to "finished"
with its test accuracy on screen <= 1 s; a 1-epoch lab run <= its training time + 2.5 s from the click.

With --worker-rounds N, the worker's own parts first: each side's `core.engine.execute` in a process of its own
that has trained once already (a warm worker), N runs each, alternating, with timers around its steps.

    python3 bench/training_wait.py [--rounds 6] [--worker-rounds 4] [--before COMMIT]
Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import csv
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
sys.path.insert(0, str(ROOT / "bench"))

from dashboard_training import CHROMIUM, IDLE, LAUNCH_ARGS, main_area, prepare, start_server  # noqa: E402
from first_stroke import checkout  # noqa: E402

from bench.machine import describe_machine  # noqa: E402

BEFORE = "26c69ff"  # the commit before this changes to the wait around a training
SIDES = ("before", "after")
FIRST_BATCH = re.compile(r"Epoch 1/1 · batch \d+")
PARTS = (("click_created", "click -> created"), ("created_started", "created -> started"),
         ("started_first", "started -> first batch"), ("first_screen", "first batch -> screen"),
         ("last_ended", "last batch -> ended"), ("ended_screen", "ended -> screen"))
TOTALS = (("first_on_screen", "Start -> first batch on screen", 1.5),
          ("end_on_screen", "last batch -> finished on screen", 1.0),
          ("overhead", "wait - training time", 2.5), ("wall", "Start -> finished on screen (the wait)", None),
          ("training", "training time (its record)", None))

# --- the worker's own parts, in a process of each side's code ---------------------------------------------------

WORKER = r"""
import functools, json, os, sys, tempfile, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from pathlib import Path
import keras, tensorflow as tf
tf.constant(0.0) + 1.0
import core.engine.execute as ex, core.data.registry as registry, core.training.loop as loop
import core.training.callbacks as callbacks
from core.data.dataset import DatasetRef
from core.model.architecture import PRESETS
from core.runs.spec import RunSpec
from core.runs.store import RunStore
from core.training.config import TRAINING_PRESETS, override
marks = {}
def timed(owner, name, part):
    inner = getattr(owner, name)
    @functools.wraps(inner)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            marks[part] = marks.get(part, 0.0) + time.perf_counter() - started
    setattr(owner, name, wrapper)
timed(registry, "load_ref", "data")
timed(loop._Training, "__init__", "build and compile")
if hasattr(callbacks, "Validation"):  # validation through one traced forward pass
    timed(callbacks.Validation, "on_epoch_end", "validation")
else:  # Keras' own, inside fit
    timed(keras.Model, "evaluate", "validation")
timed(ex, "save_model", "saving")
timed(ex, "evaluate_into", "scoring the test set")
fit_started = {}
inner_fit = loop._Training._fit_epoch
def fit_epoch(self):
    fit_started["at"] = time.perf_counter()
    return inner_fit(self)
loop._Training._fit_epoch = fit_epoch
inner_batch = callbacks.MetricsCallback.on_train_batch_end
def batch_end(self, batch, logs=None):
    if "first step" not in marks:
        marks["first step"] = time.perf_counter() - fit_started["at"]  # the tracing, then the first batches
    return inner_batch(self, batch, logs)
callbacks.MetricsCallback.on_train_batch_end = batch_end
store = RunStore(Path(tempfile.mkdtemp()))
kept = {"data": ex.RecentData()} if hasattr(ex, "RecentData") else {}  # as the worker keeps it, where it does
spec = RunSpec(DatasetRef.of("builtin", "mnist-10k"), PRESETS["lab"], override(TRAINING_PRESETS["lab"], epochs=1))
for line in sys.stdin:  # one run per line; the first warms the process up
    marks.clear()
    run_id = store.create(spec, {})
    started = time.perf_counter()
    ex.execute(store, run_id, **kept)
    marks["in all"] = time.perf_counter() - started
    marks["training time"] = store.status(run_id).training_s
    keras.backend.clear_session()
    print(json.dumps(marks), flush=True)
"""
WORKER_PARTS = ("data", "build and compile", "first step", "validation", "saving", "scoring the test set",
                "in all", "training time")


def worker_parts(roots: dict[str, Path], rounds: int) -> dict[str, list[dict]]:
    processes = {side: subprocess.Popen([sys.executable, "-c", WORKER], cwd=root, text=True, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                 for side, root in roots.items()}
    results: dict[str, list[dict]] = {side: [] for side in SIDES}
    try:
        for index in range(rounds + 1):
            for side in SIDES if index % 2 == 0 else SIDES[::-1]:
                process = processes[side]
                process.stdin.write("run\n")
                process.stdin.flush()
                marks = json.loads(process.stdout.readline())
                if index:  # the first run of each process warms it up
                    results[side].append(marks)
                    print(f"worker round {index} {side:6}: " + ", ".join(
                        f"{part} {marks.get(part, 0.0):.2f}" for part in WORKER_PARTS) + " s", flush=True)
    finally:
        for process in processes.values():
            process.stdin.close()
            process.wait(timeout=120)
    return results


# --- the user's wait, in Chromium ----------------------------------------------------------------------------


class RunWatcher(threading.Thread):
    """Reads a new run's status.json and batches.csv every 10 ms; notes (perf_counter) its first and last
    batch rows as they appear; keeps the status's own times (wall clock)."""

    def __init__(self, runs_root: Path, before: set[str]) -> None:
        super().__init__(daemon=True)
        self.runs_root, self.before = runs_root, before
        self.first_batch = self.last_batch = None
        self.status: dict = {}
        self.done = threading.Event()

    def run(self) -> None:
        folder = None
        while not self.done.is_set():
            if folder is None:
                new = [p for p in self.runs_root.iterdir() if p.is_dir() and p.name not in self.before
                       and (p / "status.json").exists()]
                folder = new[0] if new else None
            if folder is not None:
                self._look(folder)
                if self.status.get("ended"):
                    return
            time.sleep(0.01)  # this thread's polling period: the resolution of its times

    def _look(self, folder: Path) -> None:
        now = time.perf_counter()
        try:
            self.status = json.loads((folder / "status.json").read_text())
            with open(folder / "batches.csv", newline="") as rows:
                steps = [int(row["step"]) for row in csv.DictReader(rows)]
        except (OSError, ValueError, KeyError):
            return
        progress = self.status.get("progress", {})
        total = progress.get("epochs", 0) * progress.get("batches_per_epoch", 0)
        if steps and self.first_batch is None:
            self.first_batch = now
        if steps and total and steps[-1] >= total and self.last_batch is None:
            self.last_batch = now


# In the page: the wall-clock time (ms) of the first animation frame whose main area holds the first batch's line,
# then of the first whose main area holds the finished line (checked once a frame, after the page changed).
WATCH_PAGE = """([first, finished]) => {
  const main = document.querySelector('[data-testid=stMainBlockContainer]');
  const marks = window.__convlabMarks = {first: null, finished: null};
  const firstBatch = new RegExp(first), finishedLine = new RegExp(finished);
  let pending = false;
  const look = () => {
    pending = false;
    const text = main.textContent;
    if (marks.first === null && firstBatch.test(text)) marks.first = Date.now();
    if (marks.first !== null && marks.finished === null && finishedLine.test(text)) marks.finished = Date.now();
  };
  new MutationObserver(() => { if (!pending) { pending = true; requestAnimationFrame(look); } })
    .observe(main, {subtree: true, childList: true, characterData: true});
}"""


def one_wait(page, runs_root: Path, shows_test: bool) -> dict:
    watcher = RunWatcher(runs_root, {p.name for p in runs_root.iterdir()})
    watcher.start()
    main = main_area(page)
    finished = r"Training finished in [\s\S]*Test accuracy" if shows_test else r"Training finished in"
    page.evaluate(WATCH_PAGE, [FIRST_BATCH.pattern, finished])
    clicked, clicked_wall = time.perf_counter(), time.time()
    main.get_by_role("button", name="Start training").click()
    main.get_by_text(FIRST_BATCH).first.wait_for(timeout=120_000)
    main.get_by_text(re.compile(finished)).first.wait_for(timeout=300_000)
    page.wait_for_function("window.__convlabMarks.finished !== null")
    watcher.join(timeout=30)
    watcher.done.set()
    status = watcher.status
    offset = clicked - clicked_wall  # wall clock -> perf_counter
    marks = page.evaluate("window.__convlabMarks")
    first_on_screen, end_on_screen = (marks[key] / 1000 + offset for key in ("first", "finished"))
    created, started, ended = (status[key] + offset for key in ("created", "started", "ended"))
    training = status["progress"]["elapsed_s"]
    wall = end_on_screen - clicked
    result = {"click_created": created - clicked, "created_started": started - created,
              "started_first": watcher.first_batch - started, "first_screen": first_on_screen - watcher.first_batch,
              "last_ended": ended - watcher.last_batch, "ended_screen": end_on_screen - ended,
              "first_on_screen": first_on_screen - clicked, "end_on_screen": end_on_screen - watcher.last_batch,
              "wall": wall, "training": training, "overhead": wall - training}
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE)
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--worker-rounds", type=int, default=4, help="runs of each side's worker parts (0: none)")
    parser.add_argument("--before", default=BEFORE, help="the commit the 'before' side serves")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    roots = {"before": checkout(args.before), "after": ROOT}
    print(describe_machine(), f"; before = {args.before}, after = this checkout", flush=True)
    workers = worker_parts(roots, args.worker_rounds) if args.worker_rounds else {}
    runs_root = Path(tempfile.mkdtemp(prefix="convlab-wait-"))
    servers = {side: start_server(runs_root, root) for side, root in roots.items()}
    results: dict[str, list[dict]] = {side: [] for side in SIDES}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            pages = {}
            for side in SIDES:
                page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
                page.set_default_timeout(180_000)
                prepare(page, servers[side][1], None, "lab", epochs=1)
                one_wait(page, runs_root, shows_test=False)  # its worker is warm from here on
                pages[side] = page
            shows_test = {side: "Test accuracy" in main_area(pages[side]).inner_text() for side in SIDES}
            for index in range(args.rounds):
                for side in SIDES if index % 2 == 0 else SIDES[::-1]:
                    result = one_wait(pages[side], runs_root, shows_test[side])
                    results[side].append(result)
                    print(f"round {index + 1} {side:6}: " + ", ".join(
                        f"{name} {result[key]:.2f}" for key, name, *_ in PARTS + TOTALS)
                        + f" s (load {os.getloadavg()[0]:.1f})", flush=True)
            browser.close()
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(timeout=60)
    print(f"\nmedians over {args.rounds} rounds (seconds), before / after, ratio after / before:")
    for key, name, *target in PARTS + TOTALS:
        before, after = (median([r[key] for r in results[side]]) for side in SIDES)
        goal = f" (target <= {target[0]})" if target and target[0] is not None else ""
        print(f"  {name:40} {before:6.2f} / {after:6.2f}  {after / before if before else float('nan'):5.2f}{goal}")
    print(f"  test accuracy on screen with 'finished': before {shows_test['before']}, after {shows_test['after']}")
    if workers:
        print(f"worker parts, medians over {args.worker_rounds} runs (seconds), before / after:")
        for part in WORKER_PARTS:
            before, after = (median([r.get(part, 0.0) for r in workers[side]]) for side in SIDES)
            print(f"  {part:40} {before:6.2f} / {after:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
