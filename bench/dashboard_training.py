"""Benchmark: training from the dashboard in a real browser, against the CLI (issue 7's targets).

Starts one `streamlit run app.py` server and drives headless Chromium (Debian's /usr/bin/chromium) on it.

1. Speed (rounds alternate the order of the three): the lab recipe on the shipped MNIST
   - from the CLI (`python -m core ... --runs <the server's store>`),
   - from the dashboard, watching the Training page until it says "Training finished",
   - from the dashboard, with the browser on the Home page meanwhile.
   Every run lands in the same run store; its training time is read from there (the training process's own
   clock, the same for all three), and the wall time from the click (or the command) to the end is kept
   too. Targets: watching at most 1.25 x the CLI, elsewhere at most 1.05 x (medians). Also: Start pressed
   to the first batch on screen (target: at most 3 s). A fourth side is the notebook's bare `model.fit` of the
   same recipe (bench/engine_speed.py's), for issue 10's target: the dashboard, elsewhere, at most 0.85 x it.
   Each side starts on a quiet machine (bench.machine.wait_quiet), and the CPU time of the server, its
   training worker, the browser and the scripts during each run is printed beside it.
2. Memory (--memory N): N short trainings from the dashboard (the 8x8 digits), each evaluated and used on
   Draw & classify; the server's resident memory after the first and after the last (target: at most
   50 MB more).
3. Three at once (--together): three browser sessions start a training at the same moment (the server
   trains one at a time: the others queue), while a fourth switches pages and times each switch (target:
   under 1 s); the three together against three times one alone (target: at most 1.2 x).

    python3 bench/dashboard_training.py [--rounds 3] [--epochs 10] [--memory 20] [--together]
Writes a markdown summary to --out (default bench/out/dashboard_training.md). Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_speed import run_bare  # noqa: E402
from bench.machine import describe_machine, wait_quiet  # noqa: E402
from bench.processes import Sampler, rss_mb  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IDLE = "!document.querySelector('[data-testid=stStatusWidget]')"


# --- the server -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(runs_root: Path, app_root: Path = ROOT) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` from `app_root` (this checkout, or another version of it) on a free port."""
    port = free_port()
    env = dict(os.environ, CONVLAB_OFFLINE="1", CONVLAB_RUNS=str(runs_root), TF_CPP_MIN_LOG_LEVEL="2")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=app_root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


# --- the browser --------------------------------------------------------------------------------------


def go(page, title: str, heading: str | None = None) -> float:
    """Click a page in the sidebar; seconds until its heading shows and Streamlit is idle."""
    started = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    if heading:
        page.get_by_role("heading", name=heading).first.wait_for()
    page.wait_for_timeout(50)
    page.wait_for_function(IDLE)
    return time.perf_counter() - started


def main_area(page):
    return page.get_by_test_id("stMainBlockContainer")


def prepare(page, url: str, dataset: str | None, preset: str, epochs: int, batch_left: int = 0) -> None:
    """Load data, build `preset`, set the lab recipe with `epochs` epochs on the Training page."""
    page.goto(url)
    page.get_by_role("heading", name="ConvLab").wait_for()
    go(page, "Data", "1 · Data")
    if dataset:
        main_area(page).get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name=dataset).click()
    main_area(page).get_by_text("Training images").wait_for()
    page.wait_for_function(IDLE)
    go(page, "Architecture", "2 · Architecture")
    main_area(page).get_by_role("button", name=preset, exact=True).click()
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE)
    main_area(page).get_by_role("button", name="Build").click()
    main_area(page).get_by_text("checked layer by layer").wait_for()
    go(page, "Training", "3 · Training")
    main_area(page).get_by_role("button", name="lab", exact=True).click()
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE)
    slider = page.locator('input[type="range"][aria-label="Epochs"]')
    slider.focus()
    slider.press("Home")
    for _ in range(epochs - 1):
        slider.press("ArrowRight")
    batch = page.locator('input[type="range"][aria-label="Batch size"]')
    for _ in range(batch_left):
        batch.focus()
        batch.press("ArrowLeft")
    words = "1 epoch," if epochs == 1 else f"{epochs} epochs,"
    main_area(page).get_by_text(re.compile(f"Recipe:.*{words}")).wait_for()
    page.wait_for_function(IDLE)


def start(page) -> float:
    main_area(page).get_by_role("button", name="Start training").click()
    return time.perf_counter()


def wait_finished(store, run_id: str, timeout: float = 1800) -> float:
    """Seconds (perf_counter) when the run's record says it ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not store.status(run_id).state.is_active:
            return time.perf_counter()
        time.sleep(0.1)
    raise RuntimeError(f"run {run_id} did not end")


# --- 1. speed -----------------------------------------------------------------------------------------


def cli_run(store, epochs: int) -> dict:
    before = set(store.run_ids())
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "core", "--dataset", "mnist-10k", "--arch", "lab", "--train", "lab",
                    "--epochs", str(epochs), "--runs", str(store.root), "--no-download"],
                   cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    (run_id,) = set(store.run_ids()) - before
    return {"run": run_id, "training_s": store.status(run_id).training_s, "wall_s": wall}


def new_runs(store, before: set[str], count: int = 1, timeout: float = 120) -> list[str]:
    """The ids of the runs that Start has just added to the store (a page's URL may still name its previous
    run for a moment, so it is not read from there)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        added = set(store.run_ids()) - before
        if len(added) >= count:
            return sorted(added)
        time.sleep(0.05)
    raise RuntimeError(f"Start added {len(set(store.run_ids()) - before)} runs to the store, not {count}")


def dashboard_run(page, store, watch: bool) -> dict:
    before = set(store.run_ids())
    clicked = start(page)
    first_batch = None
    if watch:
        main_area(page).get_by_text(re.compile(r"Epoch 1/\d+ · batch \d+")).wait_for(timeout=120_000)
        first_batch = time.perf_counter() - clicked
    (run_id,) = new_runs(store, before)
    if not watch:
        go(page, "Home", "ConvLab")
    if watch:
        main_area(page).get_by_text(re.compile("Training finished in")).wait_for(timeout=1_800_000)
        ended = time.perf_counter()
    else:
        ended = wait_finished(store, run_id)
    result = {"run": run_id, "training_s": store.status(run_id).training_s, "wall_s": ended - clicked,
              "first_batch_s": first_batch}
    page.wait_for_timeout(500)
    page.wait_for_function(IDLE)
    if not watch:
        go(page, "Training", "3 · Training")
    return result


def speed(browser, url: str, store, server_pid: int, rounds: int, epochs: int) -> dict[str, list[dict]]:
    """The four sides in turn, each on a quiet machine, with the CPU time each process group used meanwhile."""
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(120_000)
    prepare(page, url, None, "lab", epochs)
    results: dict[str, list[dict]] = {"cli": [], "watching": [], "elsewhere": [], "bare": []}
    kinds = list(results)
    sampler = Sampler(server_pid)
    sampler.start()
    for index in range(rounds):
        for kind in kinds[index % len(kinds):] + kinds[: index % len(kinds)]:
            wait_quiet()
            sampler.mark("before")
            if kind == "cli":
                result = cli_run(store, epochs)
            elif kind == "bare":
                result = run_bare(epochs)
            else:
                result = dashboard_run(page, store, watch=kind == "watching")
            sampler.mark("after")
            result["cpu_s"] = sampler.cpu_seconds("before", "after")
            results[kind].append(result)
            extra = f", first batch on screen {result['first_batch_s']:.1f} s" if result.get("first_batch_s") else ""
            cpu = ", ".join(f"{group} {seconds:.1f}" for group, seconds in result["cpu_s"].items())
            wall = f", wall {result['wall_s']:6.1f} s" if "wall_s" in result else ""
            print(f"round {index + 1} {kind:9}: training {result['training_s']:6.1f} s{wall}{extra}; "
                  f"CPU s: {cpu} (load {os.getloadavg()[0]:.1f})", flush=True)
    sampler.stop()
    context.close()
    return results


# --- 2. memory ----------------------------------------------------------------------------------------


def memory(browser, url: str, store, server_pid: int, count: int) -> list[float]:
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(180_000)
    prepare(page, url, "scikit-learn digits (8x8)", "lab", epochs=1)
    sizes = []
    for index in range(count):
        start(page)
        main_area(page).get_by_text(re.compile("Training finished in")).wait_for()
        page.wait_for_timeout(500)
        page.wait_for_function(IDLE)
        go(page, "Evaluation", "4 · Evaluation")
        main_area(page).get_by_text("Test accuracy").wait_for()
        go(page, "Draw & classify", "Draw & classify")
        main_area(page).get_by_text("Draw a digit on the canvas to classify it.").wait_for()
        page.wait_for_function(IDLE)
        strokes = 0
        while True:  # a stroke drawn while the canvas component is still being set up can be lost: draw again
            canvas = main_area(page).get_by_test_id("stBidiComponentIsolated").locator("canvas").last
            box = canvas.bounding_box()
            page.mouse.move(box["x"] + 140, box["y"] + 40)
            page.mouse.down()
            page.mouse.move(box["x"] + 140, box["y"] + 240, steps=6)
            page.mouse.up()
            strokes += 1
            try:
                main_area(page).get_by_text("Prediction").first.wait_for(timeout=20_000)
                break
            except Exception:
                page.screenshot(path=str(ROOT / "bench" / "out" / "memory-draw-failed.png"), full_page=True)
                if strokes == 3:
                    raise
        page.wait_for_function(IDLE)
        go(page, "Training", "3 · Training")
        sizes.append(rss_mb(server_pid))
        print(f"training {index + 1}: server RSS {sizes[-1]:.0f} MB"
              + (f" ({strokes} strokes before a prediction)" if strokes > 1 else ""), flush=True)
    context.close()
    return sizes


# --- 3. three at once ---------------------------------------------------------------------------------


def together(browser, url: str, store, epochs: int) -> dict:
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1600}) for _ in range(4)]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.set_default_timeout(300_000)
    trainers, observer = pages[:3], pages[3]
    for page in trainers:
        prepare(page, url, None, "lab", epochs)
    observer.goto(url)
    observer.get_by_role("heading", name="ConvLab").wait_for()
    go(observer, "Data", "1 · Data")
    observer.wait_for_timeout(1000)
    # one alone first, for the baseline; the ends are the runs' own (the store's), the starts the clicks
    before = set(store.run_ids())
    start(trainers[0])
    alone_started = time.time()
    (alone_id,) = new_runs(store, before)
    wait_finished(store, alone_id)
    alone = store.status(alone_id).ended - alone_started
    trainers[0].wait_for_timeout(1500)
    trainers[0].wait_for_function(IDLE)
    print(f"one alone: {alone:.1f} s", flush=True)
    before = set(store.run_ids())
    clicked = []
    for page in trainers:
        start(page)
        clicked.append(time.time())
    ids = new_runs(store, before, count=len(trainers))
    positions = []  # what each page says once it has taken the click in: its place in the queue, or training
    for page in trainers:
        said = main_area(page).get_by_text(re.compile(r"Queued, \d+\w+ in line|Epoch \d+/\d+ · batch")).first
        found = re.search(r"Queued, (\d+)\w+ in line", said.inner_text())
        positions.append(int(found.group(1)) if found else None)
    switches = []
    targets = [("Architecture", "2 · Architecture"), ("Home", "ConvLab"), ("Data", "1 · Data")]
    while any(store.status(run_id).state.is_active for run_id in ids):
        title, heading = targets[len(switches) % 3]
        switches.append(go(observer, title, heading))
        observer.wait_for_timeout(1000)
    ended = max(store.status(run_id).ended for run_id in ids)
    for context in contexts:
        context.close()
    switches.sort()
    return {"alone_s": alone, "together_s": ended - min(clicked), "positions": positions,
            "switch_median_s": statistics.median(switches), "switch_p90_s": switches[int(0.9 * len(switches))],
            "switch_max_s": switches[-1], "switches": len(switches),
            "states": [store.status(run_id).state.value for run_id in ids]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--memory", type=int, default=0, help="short trainings for the memory check (0: skip)")
    parser.add_argument("--together", action="store_true", help="three sessions at once, and page switches")
    parser.add_argument("--together-epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "dashboard_training.md")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from core.runs.store import RunStore

    runs_root = Path(tempfile.mkdtemp(prefix="convlab-dashboard-bench-"))
    store = RunStore(runs_root)
    server, url = start_server(runs_root)
    lines = [describe_machine()]
    print(lines[0], flush=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            if args.rounds:
                results = speed(browser, url, store, server.pid, args.rounds, args.epochs)
                med = {kind: statistics.median(r["training_s"] for r in rs) for kind, rs in results.items()}
                wall = {kind: statistics.median(r["wall_s"] for r in rs) for kind, rs in results.items() if kind != "bare"}
                first = [r["first_batch_s"] for r in results["watching"]]
                cpu = {kind: {group: statistics.median(r["cpu_s"][group] for r in rs) for group in rs[0]["cpu_s"]}
                       for kind, rs in results.items()}
                lines += [
                    f"lab recipe, {args.epochs} epochs, shipped MNIST, {args.rounds} rounds (medians):",
                    f"- training time: CLI {med['cli']:.1f} s, dashboard watching {med['watching']:.1f} s "
                    f"({med['watching'] / med['cli']:.2f} x), dashboard elsewhere {med['elsewhere']:.1f} s "
                    f"({med['elsewhere'] / med['cli']:.2f} x); bare model.fit {med['bare']:.1f} s (CLI / bare "
                    f"{med['cli'] / med['bare']:.2f} x, elsewhere / bare {med['elsewhere'] / med['bare']:.2f} x)",
                    "- CPU seconds meanwhile (medians): " + "; ".join(
                        f"{kind}: " + ", ".join(f"{group} {seconds:.1f}" for group, seconds in groups.items())
                        for kind, groups in cpu.items()),
                    f"- wall time (click or command to end): CLI {wall['cli']:.1f} s, watching {wall['watching']:.1f} s, "
                    f"elsewhere {wall['elsewhere']:.1f} s",
                    f"- Start to first batch on screen: {', '.join(f'{s:.1f} s' for s in first)}",
                ]
            if args.memory:
                sizes = memory(browser, url, store, server.pid, args.memory)
                lines.append(f"- server RSS after training 1: {sizes[0]:.0f} MB; after {len(sizes)}: {sizes[-1]:.0f} MB "
                             f"({sizes[-1] - sizes[0]:+.0f} MB)")
            if args.together:
                found = together(browser, url, store, args.together_epochs)
                lines += [
                    f"three sessions at once ({args.together_epochs} epochs each, one training at a time):",
                    f"- together {found['together_s']:.1f} s against 3 x one alone {3 * found['alone_s']:.1f} s "
                    f"({found['together_s'] / (3 * found['alone_s']):.2f} x); queue positions seen {found['positions']}; "
                    f"final states {found['states']}",
                    f"- another session's page switches: median {found['switch_median_s']:.2f} s, p90 "
                    f"{found['switch_p90_s']:.2f} s, max {found['switch_max_s']:.2f} s ({found['switches']} switches)",
                ]
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
