"""Control a training: what checkpoints cost, how fast Pause frees the slot, how fast Resume trains again.

    python bench/control.py [--pairs 3] [--epochs 3] [--rounds 4] [--no-browser]

1. Checkpoints: the lab recipe (lab CNN, SGD 0.01 momentum 0.9, batch 32) on real MNIST (../shared/data/
   mnist-10k.npz, 9,000 fitted images), trained in this process into a run store through the engine's own
   writer, with a checkpoint after every epoch and without, alternated in pairs; prints each pair's ratio.
2. The engine: the job manager with its worker processes (one slot, a warm worker). A lab run trains, a
   second waits in the queue; Pause is asked: how long until the first run's slot is free and the second
   run is training (its status says so). Then Resume (the worker warm again): how long until the resumed
   run's status shows a batch beyond the one it paused at.
3. The dashboard, in headless Chromium against a real server: from the click on Pause to "Paused" on
   screen, and from the click on Resume to a progress line past the batch it paused at.
Figures go to bench/RESULTS.md by hand, with the machine line printed here.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import describe_machine  # noqa: E402
from core.data.dataset import DatasetRef  # noqa: E402
from core.model.architecture import PRESETS  # noqa: E402
from core.runs.spec import RunSpec  # noqa: E402
from core.runs.status import RunState  # noqa: E402
from core.runs.store import RunStore  # noqa: E402
from core.training.config import TRAINING_PRESETS, override  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "mnist-10k.npz"


def checkpoint_cost(pairs: int, epochs: int) -> list[tuple[float, float]]:
    """(seconds with a checkpoint after every epoch, seconds without), pair by pair, alternating who goes first."""
    import keras

    from core.data.registry import load_file
    from core.runs.writer import RunWriter
    from core.training.loop import train

    dataset = load_file(SHARED)
    config = override(TRAINING_PRESETS["lab"], epochs=epochs)
    store = RunStore(Path(tempfile.mkdtemp(prefix="convlab-control-")))
    spec = RunSpec(DatasetRef.of("file", str(SHARED)), PRESETS["lab"], config)

    def timed(with_checkpoints: bool) -> float:
        keras.backend.clear_session()
        run_id = store.create(spec)
        writer = RunWriter(store, run_id)
        started = time.perf_counter()
        train(PRESETS["lab"], dataset, config, sink=writer, epoch_checkpoints=with_checkpoints)
        elapsed = time.perf_counter() - started
        assert store.has_checkpoint(run_id, "last")  # the final one, either way
        return elapsed

    timed(True)  # warm-up: TensorFlow's first graph builds
    one_checkpoint(store, dataset, config)
    results = []
    for pair in range(pairs):
        order = (True, False) if pair % 2 == 0 else (False, True)
        seconds = {side: timed(side) for side in order}
        results.append((seconds[True], seconds[False]))
        print(f"  pair {pair + 1}: with {seconds[True]:.2f} s, without {seconds[False]:.2f} s, "
              f"ratio {seconds[True] / seconds[False]:.3f}", flush=True)
    return results


def one_checkpoint(store: RunStore, dataset, config) -> None:
    """What one checkpoint of the lab model costs by itself: capture, to bytes, an atomic write (fsync)."""
    import keras

    from core.model.build import build_model
    from core.training.checkpoint import Position, capture

    model = build_model(PRESETS["lab"], dataset.input_shape, dataset.num_classes)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.optimizer.build(model.trainable_variables)
    run_id = store.create(RunSpec(DatasetRef.of("file", str(SHARED)), PRESETS["lab"], config))
    times, size = [], 0
    for _ in range(10):
        started = time.perf_counter()
        data = capture(model, Position(1, 0, 282), 10, 282, 1.0, {}, None, with_metrics=False).to_bytes()
        store.write_checkpoint(run_id, "last", data)
        times.append(time.perf_counter() - started)
        size = len(data)
    print(f"  one checkpoint of the lab model ({size / 1e6:.1f} MB): median {1000 * statistics.median(times):.1f} ms",
          flush=True)


def engine_latencies(rounds: int) -> tuple[list[float], list[float]]:
    """(seconds from Pause to the queued run training, seconds from Resume to a batch beyond the pause)."""
    from core.engine.jobs import JobManager
    from tests.conftest import wait_for

    store = RunStore(Path(tempfile.mkdtemp(prefix="convlab-control-")))
    spec = RunSpec(DatasetRef.of("file", str(SHARED)), PRESETS["lab"], override(TRAINING_PRESETS["lab"], epochs=3))
    jobs = JobManager(max_concurrent=1)
    pauses, resumes = [], []
    try:
        for _ in range(rounds):
            first = jobs.submit(store, spec)
            wait_for(lambda: store.status(first).progress.step_done >= 64, what="the run to train")
            second = jobs.submit(store, spec)
            asked = time.perf_counter()
            jobs.pause(first)
            wait_for(lambda: store.status(second).state is RunState.RUNNING, timeout=60, what="the slot")
            pauses.append(time.perf_counter() - asked)
            jobs.stop(second)
            wait_for(lambda: not jobs.is_running(second) and store.status(first).state is RunState.PAUSED,
                     timeout=60, what="the second run to stop")
            paused_at = store.status(first).progress.step_done
            asked = time.perf_counter()
            jobs.resume(store, first)
            wait_for(lambda: store.status(first).progress.step_done > paused_at, timeout=60, what="a batch")
            resumes.append(time.perf_counter() - asked)
            jobs.stop(first)
            jobs.wait_idle(timeout=120)
            print(f"  pause to the next run training {pauses[-1]:.2f} s; resume to a batch past the pause "
                  f"{resumes[-1]:.2f} s", flush=True)
    finally:
        jobs.shutdown()
    return pauses, resumes


def browser_latencies(rounds: int) -> tuple[list[float], list[float]]:
    """In Chromium: (click Pause -> "Paused" shown, click Resume -> a progress line past the paused batch)."""
    from playwright.sync_api import sync_playwright

    from bench.classroom import CHROMIUM, IDLE_JS, LAUNCH_ARGS, start_server

    folder = Path(tempfile.mkdtemp(prefix="convlab-control-"))
    server, url = start_server(folder, "shared", folder / "server.log")
    pauses, resumes = [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
            page.set_default_timeout(180_000)
            page.goto(url)
            main = page.get_by_test_id("stMainBlockContainer")

            def go(title: str) -> None:
                page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
                page.wait_for_function(IDLE_JS)

            go("Data")
            main.get_by_text("Training images").wait_for()
            go("Architecture")
            main.get_by_role("button", name="lab", exact=True).click()
            page.wait_for_function(IDLE_JS)
            main.get_by_role("button", name="Build").click()
            main.get_by_text("parameters, checked layer by layer").wait_for()
            go("Training")
            main.get_by_role("button", name="lab", exact=True).click()
            page.wait_for_function(IDLE_JS)
            main.get_by_role("button", name="Start training").click()
            progress = main.get_by_text(re.compile(r"Epoch \d+/\d+ · batch \d+/"))
            progress.wait_for()
            for _ in range(rounds):
                page.wait_for_function(IDLE_JS)
                clicked = time.perf_counter()
                main.get_by_role("button", name="Pause").click()
                paused = main.get_by_text(re.compile(r"Paused in epoch \d+/\d+, after batch (\d+)/"))
                paused.wait_for()
                pauses.append(time.perf_counter() - clicked)
                epoch, batch = map(int, re.search(r"epoch (\d+)/\d+, after batch (\d+)/", paused.inner_text()).groups())
                page.wait_for_function(IDLE_JS)
                clicked = time.perf_counter()
                main.get_by_role("button", name="Resume").click()
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    texts = [t.inner_text() for t in main.get_by_text(re.compile(r"Epoch \d+/\d+ · batch \d+/")).all()]
                    found = [tuple(map(int, re.search(r"Epoch (\d+)/\d+ · batch (\d+)/", t).groups())) for t in texts]
                    if any((e, b) > (epoch, batch) for e, b in found):
                        break
                    page.wait_for_timeout(50)
                resumes.append(time.perf_counter() - clicked)
                print(f"  click Pause -> 'Paused' {pauses[-1]:.2f} s; click Resume -> a batch past it "
                      f"{resumes[-1]:.2f} s", flush=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    return pauses, resumes


def summary(name: str, values: list[float]) -> str:
    return f"{name}: median {statistics.median(values):.2f} s, max {max(values):.2f} s ({len(values)} rounds)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    if not SHARED.is_file():
        print(f"needs {SHARED} (real MNIST; see ../shared/data/README.md)", file=sys.stderr)
        return 2
    print(describe_machine(), flush=True)
    print(f"1. checkpoints: lab recipe, {args.epochs} epochs on mnist-10k, with and without, alternated", flush=True)
    pairs = checkpoint_cost(args.pairs, args.epochs)
    ratios = [with_ / without for with_, without in pairs]
    print(f"   checkpoint cost: median {100 * (statistics.median(ratios) - 1):+.2f} % of training time "
          f"(pairs: {', '.join(f'{100 * (r - 1):+.2f} %' for r in ratios)})", flush=True)
    print("2. the engine: pause and resume with a warm worker", flush=True)
    pauses, resumes = engine_latencies(args.rounds)
    print("   " + summary("pause to the queued run training", pauses))
    print("   " + summary("resume to a batch past the pause", resumes))
    if not args.no_browser:
        print("3. the dashboard in Chromium", flush=True)
        pauses, resumes = browser_latencies(args.rounds)
        print("   " + summary("click Pause to 'Paused' on screen", pauses))
        print("   " + summary("click Resume to a batch past the pause on screen", resumes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
