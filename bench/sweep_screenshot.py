"""A sweep's parallel-coordinates plot as the Sweeps page draws it, in headless Chromium (for the eye, not a timing).

    python bench/sweep_screenshot.py --runs /tmp/convlab-sweep-XXXX [--out bench/out] [--name sweep]

Serves `streamlit run app.py` on the run store that `bench/sweep.py` printed for a sweep (CONVLAB_RUNS), opens the
Sweeps page, waits for the plot of settings against the metric and saves it (`NAME-parallel.png`) and the page as
the browser shows it (`NAME-page.png`) under `--out`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from dashboard_training import CHROMIUM, IDLE, LAUNCH_ARGS, go, main_area, start_server  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help="a run store holding at least one sweep")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--name", default="sweep", help="the screenshots' names start with it")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from core.runs.store import RunStore
    from core.sweeps.store import SweepStore

    if not SweepStore(RunStore(args.runs)).ids():
        print(f"error: no sweep in {args.runs}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    server, url = start_server(args.runs)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(180_000)
            page.goto(url)
            page.get_by_role("heading", name="ConvLab").wait_for()
            go(page, "Sweeps", "Sweeps")
            plot = main_area(page).locator(".js-plotly-plot").filter(has=page.locator(".parcoords")).first
            plot.wait_for()
            page.wait_for_function(IDLE)
            plot.scroll_into_view_if_needed()
            plot.screenshot(path=str(args.out / f"{args.name}-parallel.png"))
            page.screenshot(path=str(args.out / f"{args.name}-page.png"), full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"saved {args.out / f'{args.name}-parallel.png'} and {args.out / f'{args.name}-page.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
