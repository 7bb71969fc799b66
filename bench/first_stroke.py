"""Benchmark: the first digit drawn after opening Draw & classify, on fresh arrivals (issue 23), before and after.

Two `streamlit run app.py` servers on one run store: "after" serves this checkout, "before" a copy of another
commit (--before, `git archive`), so the two sides alternate in one run on one machine. Headless Chromium
(Debian's /usr/bin/chromium); one run of the `fast` model is trained before the servers start.

- Fresh arrivals (--arrivals on each side, alternating): each in a new browser context (a new Streamlit session),
  arriving in turn by Draw & classify's link, by its sidebar entry from Home, from Inside the network with its
  canvas open (the canvas component's script already in the tab), or clearing the canvas first (Clear makes a new
  canvas). Every other arrival draws the moment the canvas shows, as an eager user (or a scripted walk) does; the
  others after a pause of up to 1.2 s; a seven drawn with real mouse moves where the canvas is at that moment. The
  prediction and the preprocessing steps must then be on screen within 15 s, else the stroke was not answered.
- The first drawing on a freshly loaded model (--servers fresh servers on each side, alternating): the first
  arrival's stroke, from the mouse button's release to the answer on screen, then a second stroke in the same tab.

    python3 bench/first_stroke.py [--arrivals 50] [--servers 3] [--before fd6f60e~1]
Exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dashboard_training import CHROMIUM, IDLE, LAUNCH_ARGS, main_area, start_server  # noqa: E402
from ui_latency import trained_run  # noqa: E402

from bench.machine import describe_machine  # noqa: E402

ANSWER_S = 15.0
BEFORE = "fd6f60e~1"  # the commit before the canvas's stylesheet travelled with it and Draw warmed its model
KINDS = ("link", "sidebar", "from Inside's canvas", "after Clear")
PREDICTION = "Array.from(document.querySelectorAll('[data-testid=stMetric]')).some(m => m.innerText.includes('Prediction'))"
STEPS_SHOWN = ("(() => { const i = Array.from(document.querySelectorAll('[data-testid=stMainBlockContainer] figure img'));"
               " return i.length >= 5 && i.every(x => x.complete && x.naturalWidth > 0); })()")


def checkout(rev: str) -> Path:
    """This repository at `rev`, unpacked into a temporary folder (the app's files only)."""
    folder = Path(tempfile.mkdtemp(prefix="convlab-before-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def canvas_of(page):
    return main_area(page).get_by_test_id("stBidiComponentIsolated").locator("canvas").last


def draw_one(page, canvas, shift: int = 0) -> float:
    """A seven drawn with the mouse (the top bar, then the diagonal); returns when the button was released."""
    box = canvas.bounding_box()
    points = [(70 + shift, 60), (210 + shift // 2, 60), (130 + shift // 2, 240)]
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()
    return time.perf_counter()


def answered(page, since_s: float) -> float | None:
    """Seconds from `since_s` to the prediction and the preprocessing steps on screen, or None after ANSWER_S."""
    try:
        page.wait_for_function(f"{PREDICTION} && {STEPS_SHOWN}", timeout=ANSWER_S * 1000, polling="raf")
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: the stroke was not answered
        return None
    return time.perf_counter() - since_s


def arrive(browser, url: str, run_id: str, kind: str):
    """A new session opening Draw & classify the `kind` way; returns (context, page) once its canvas shows."""
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(120_000)
    nav = page.get_by_test_id("stSidebarNav")
    if kind in ("link", "after Clear"):
        page.goto(f"{url}/draw?run={run_id}")
    elif kind == "sidebar":
        page.goto(f"{url}/?run={run_id}")
        page.get_by_role("heading", name="ConvLab").wait_for()
        page.wait_for_function(IDLE)
        nav.get_by_text("Draw & classify", exact=True).click()
    else:
        page.goto(f"{url}/inside?run={run_id}")
        main_area(page).get_by_text("Draw a digit", exact=True).click()
        canvas_of(page).wait_for(state="visible")
        page.wait_for_function(IDLE)
        nav.get_by_text("Draw & classify", exact=True).click()
        main_area(page).get_by_role("heading", name="Draw & classify").wait_for()
    canvas_of(page).wait_for(state="visible")
    if kind == "after Clear":
        page.wait_for_function(IDLE)
        old = canvas_of(page).element_handle()
        main_area(page).get_by_role("button", name="Clear").click()
        page.wait_for_function("(old) => !old.isConnected", arg=old)  # the new canvas replaces it
        canvas_of(page).wait_for(state="visible")
    return context, page


def first_drawings(browser, url: str, run_id: str) -> tuple[float | None, float | None]:
    """On a fresh server: the first arrival's stroke (the model freshly loaded), then a second stroke."""
    context, page = arrive(browser, url, run_id, "link")
    main_area(page).get_by_text("Draw a digit on the canvas to classify it.").wait_for()
    page.wait_for_function(IDLE)
    first = answered(page, draw_one(page, canvas_of(page)))
    page.wait_for_function(IDLE)
    main_area(page).get_by_role("button", name="Clear").click()
    main_area(page).get_by_text("Draw a digit on the canvas to classify it.").wait_for()
    page.wait_for_function(IDLE)
    second = answered(page, draw_one(page, canvas_of(page), shift=10))
    context.close()
    return first, second


def seconds(values: list[float | None]) -> str:
    return ", ".join("-" if v is None else f"{v:.2f}" for v in values)


def median(values: list[float | None]) -> float:
    done = [v for v in values if v is not None]
    return statistics.median(done) if done else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arrivals", type=int, default=50, help="fresh arrivals on each side")
    parser.add_argument("--servers", type=int, default=3, help="fresh servers on each side, for the first drawing")
    parser.add_argument("--before", default=BEFORE, help="the commit the 'before' side serves")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from core.runs.store import RunStore

    roots = {"before": checkout(args.before), "after": ROOT}
    runs_root = Path(tempfile.mkdtemp(prefix="convlab-first-stroke-"))
    run_id = trained_run(RunStore(runs_root))
    print(describe_machine(), f"; before = {args.before}, after = this checkout", flush=True)
    rng = random.Random(args.seed)
    firsts: dict[str, list] = {"before": [], "after": []}
    nexts: dict[str, list] = {"before": [], "after": []}
    missed: dict[str, list[str]] = {"before": [], "after": []}
    answers: dict[str, list[float]] = {"before": [], "after": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        for index in range(args.servers):
            for side in ("before", "after") if index % 2 == 0 else ("after", "before"):
                server, url = start_server(runs_root, roots[side])
                try:
                    first, second = first_drawings(browser, url, run_id)
                finally:
                    server.terminate()
                    server.wait(timeout=60)
                firsts[side].append(first)
                nexts[side].append(second)
                print(f"fresh server {index + 1} {side:6}: first drawing {seconds([first])} s, the next "
                      f"{seconds([second])} s", flush=True)
        servers = {side: start_server(runs_root, root) for side, root in roots.items()}
        try:
            for arrival in range(2 * args.arrivals):
                pair = arrival // 2  # the two sides arrive the same way: before, after, after, before, ...
                side = ("before", "after")[(arrival + pair) % 2]
                kind = KINDS[pair % len(KINDS)]
                if arrival % 2 == 0:  # each way at once and after a pause, in turn
                    pause = 0.0 if (pair // len(KINDS)) % 2 == 0 else rng.uniform(0.0, 1.2)
                context, page = arrive(browser, servers[side][1], run_id, kind)
                page.wait_for_timeout(int(pause * 1000))
                took = answered(page, draw_one(page, canvas_of(page), shift=rng.randint(-20, 20)))
                context.close()
                if took is None:
                    missed[side].append(f"{pair + 1} ({kind}, drawn {pause:.2f} s after)")
                else:
                    answers[side].append(took)
                print(f"arrival {pair + 1:3} {side:6} ({kind}, drawn {pause:.2f} s after the canvas showed): "
                      f"{'NOT ANSWERED in 15 s' if took is None else f'answered in {took:.2f} s'}", flush=True)
        finally:
            for server, _ in servers.values():
                server.terminate()
                server.wait(timeout=60)
        browser.close()
    for side in ("before", "after"):
        print(f"{side}: first drawing on a freshly loaded model {seconds(firsts[side])} s (median "
              f"{median(firsts[side]):.2f}), the next {seconds(nexts[side])} s (median {median(nexts[side]):.2f})")
    for side in ("before", "after"):
        if args.arrivals:
            times = sorted(answers[side])
            print(f"{side}: {args.arrivals - len(missed[side])} of {args.arrivals} fresh arrivals' first strokes "
                  f"answered within {ANSWER_S:.0f} s"
                  + (f" (median {statistics.median(times):.2f} s, p90 {times[int(0.9 * len(times))]:.2f} s)"
                     if times else "")
                  + (f"; not answered: {', '.join(missed[side])}" if missed[side] else ""))
    if args.servers:
        ratio = median(firsts["after"]) / median(nexts["after"])
        print(f"after: first drawing / the next = {ratio:.2f} (before: "
              f"{median(firsts['before']) / median(nexts['before']):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
