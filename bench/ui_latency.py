"""Benchmark: what a user waits for in the browser (issue 10): Build, the Data page, a stroke on the canvas.

Against a real `streamlit run app.py` server, in headless Chromium (Debian's /usr/bin/chromium):

- Data, first load: a fresh server (nothing cached), Home opened, then Data clicked: seconds until the
  page shows the dataset and Streamlit is idle (target: at most 2 s offline). Repeated on --servers fresh
  servers. Then later loads: Home and back to Data (target: at most 1 s).
- Build: on the Architecture page, the lab preset, Build clicked: seconds until it says built (target 1 s).
- Drawing: a run of the `fast` model trained before the server starts; on Draw & classify, strokes are
  drawn one after another; from the mouse button's release to the new prediction on screen (the
  preprocessing steps' images replaced and loaded, the bars redrawn) (target: at most 300 ms).

    python3 bench/ui_latency.py [--servers 3] [--strokes 15]
Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dashboard_training import CHROMIUM, IDLE, LAUNCH_ARGS, go, main_area, start_server  # noqa: E402

from bench.machine import describe_machine  # noqa: E402

STEP_IMAGE = "document.querySelectorAll('[data-testid=stMainBlockContainer] figure img')"


def trained_run(store) -> str:
    from core.data.dataset import DatasetRef
    from core.engine.execute import execute
    from core.model.architecture import PRESETS
    from core.runs.spec import RunSpec
    from core.training.config import TRAINING_PRESETS, override

    run_id = store.create(RunSpec(DatasetRef.of("builtin", "mnist-10k"), PRESETS["fast"],
                                  override(TRAINING_PRESETS["fast"], epochs=1), label="fast, 1 epoch"),
                          {"dataset_name": "mnist"})
    execute(store, run_id)
    return run_id


def data_and_build(browser, url: str) -> tuple[float, list[float], float]:
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.set_default_timeout(120_000)
    page.goto(url)
    page.get_by_role("heading", name="ConvLab").wait_for()
    page.wait_for_function(IDLE)
    first = go(page, "Data", "1 · Data")
    main_area(page).get_by_text("Training images").wait_for()
    page.wait_for_function(IDLE)
    later = []
    for _ in range(3):
        go(page, "Home", "ConvLab")
        started = time.perf_counter()
        go(page, "Data", "1 · Data")
        main_area(page).get_by_text("Training images").wait_for()
        page.wait_for_function(IDLE)
        later.append(time.perf_counter() - started)
    go(page, "Architecture", "2 · Architecture")
    main_area(page).get_by_role("button", name="lab", exact=True).click()
    main_area(page).get_by_text("Total parameters: 542,230").wait_for()
    page.wait_for_function(IDLE)
    started = time.perf_counter()
    main_area(page).get_by_role("button", name="Build").click()
    main_area(page).get_by_text("542,230 parameters, checked layer by layer").wait_for()
    build = time.perf_counter() - started
    page.close()
    return first, later, build


def strokes(browser, url: str, run_id: str, count: int) -> list[float]:
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.set_default_timeout(120_000)
    page.goto(f"{url}/draw?run={run_id}")
    main_area(page).get_by_text("Draw a digit on the canvas to classify it.").wait_for()
    page.wait_for_function(IDLE)
    canvas = main_area(page).get_by_test_id("stBidiComponentIsolated").locator("canvas").last
    box = canvas.bounding_box()
    times = []
    for index in range(count + 1):
        before = page.evaluate(f"Array.from({STEP_IMAGE}).map(i => i.src).join(' ')")
        x = 60 + (index * 37) % 160
        page.mouse.move(box["x"] + x, box["y"] + 40)
        page.mouse.down()
        page.mouse.move(box["x"] + x + 20, box["y"] + 240, steps=8)
        page.mouse.up()
        released = time.perf_counter()
        page.wait_for_function(
            f"(before) => {{ const images = Array.from({STEP_IMAGE}); return images.length >= 5 && "
            f"images.map(i => i.src).join(' ') !== before && images.every(i => i.complete && i.naturalWidth > 0); }}",
            arg=before, polling="raf")
        if index:  # the first stroke also loads the model into the page's session
            times.append(time.perf_counter() - released)
        page.wait_for_function(IDLE)
        if index % 4 == 3:
            main_area(page).get_by_role("button", name="Clear").click()
            main_area(page).get_by_text("Draw a digit on the canvas to classify it.").wait_for()
            page.wait_for_function(IDLE)
    page.close()
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=3, help="fresh servers for the first Data load")
    parser.add_argument("--strokes", type=int, default=15)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from core.runs.store import RunStore

    runs_root = Path(tempfile.mkdtemp(prefix="convlab-ui-bench-"))
    run_id = trained_run(RunStore(runs_root))
    print(describe_machine(), flush=True)
    firsts, laters, builds, drawn = [], [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        for index in range(args.servers):
            server, url = start_server(runs_root)
            try:
                first, later, build = data_and_build(browser, url)
                firsts.append(first)
                laters += later
                builds.append(build)
                print(f"server {index + 1}: Data first load {first:.2f} s, later {', '.join(f'{s:.2f}' for s in later)} s, "
                      f"Build {build:.2f} s", flush=True)
                if index == args.servers - 1:
                    drawn = strokes(browser, url, run_id, args.strokes)
            finally:
                server.terminate()
                server.wait(timeout=60)
        browser.close()
    drawn.sort()
    print(f"Data first load: median {statistics.median(firsts):.2f} s (target <= 2 s); later loads: median "
          f"{statistics.median(laters):.2f} s, max {max(laters):.2f} s (target <= 1 s)")
    print(f"Build: median {statistics.median(builds):.2f} s (target <= 1 s)")
    print(f"stroke to prediction on screen: median {statistics.median(drawn) * 1000:.0f} ms, p90 "
          f"{drawn[int(0.9 * len(drawn))] * 1000:.0f} ms over {len(drawn)} strokes (target <= 300 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
