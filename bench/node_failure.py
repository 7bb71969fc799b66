"""What a student sees when the cluster node training their run dies: a walk in Chromium, with screenshots.

    python bench/node_failure.py [--out bench/out/node-failure]

Starts a real two-node Ray cluster here (`tests/ray_cluster.py`), one ConvLab server pointed at it, and two
students in headless Chromium who each train the lab CNN on the 8x8 digits (40 epochs, batch 64): one run
per node. Once the run on the second node has passed a few epochs, that node is killed (its raylet and
every process it started, as a machine switched off). The student's Training page is captured while it
trains, just after the node died, and when the run has finished elsewhere; the script prints what the
page said at each moment, the run's placement (its nodes) and its events. Needs Chromium, Playwright and
Ray; takes two to four minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.classroom import CHROMIUM, LAUNCH_ARGS, RUN_ID, go, idle, main_area, set_slider, start_server  # noqa: E402
from core.runs.store import RunStore  # noqa: E402
from tests.ray_cluster import LocalRayCluster  # noqa: E402

EPOCHS = 40


async def start_a_run(browser, url: str, seed: int):
    from playwright.async_api import expect

    context = await browser.new_context(viewport={"width": 1300, "height": 1500})
    page = await context.new_page()
    page.set_default_timeout(300_000)
    main = main_area(page)
    await page.goto(url)
    await go(page, "Data")
    await main.get_by_test_id("stSelectbox").first.click()
    await page.get_by_role("option", name="scikit-learn digits (8x8)").click()
    await expect(main.get_by_text("Training images")).to_be_visible()
    await idle(page)
    await go(page, "Architecture")
    await main.get_by_role("button", name="lab", exact=True).click()
    await main.get_by_role("button", name="Build").click()
    await expect(main.get_by_text("checked layer by layer")).to_be_visible()
    await go(page, "Training")
    await main.get_by_role("button", name="lab", exact=True).click()
    await idle(page)
    await set_slider(page, "Epochs", EPOCHS)
    await set_slider(page, "Batch size", 64)
    box = main.get_by_role("spinbutton", name="Seed")
    await box.fill(str(seed))
    await box.press("Enter")
    await idle(page)
    await main.get_by_role("button", name="Start training").click()
    await page.wait_for_url(re.compile(rf"[?&]run={RUN_ID}"))
    return context, page, re.search(rf"[?&]run=({RUN_ID})", page.url).group(1)


def first_lines(text: str, pattern: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(pattern, line)][:4]


async def walk(url: str, store: RunStore, cluster: LocalRayCluster, out: Path) -> dict:
    async def said(page) -> list[str]:
        await idle(page)
        return first_lines(await main_area(page).inner_text(),
                           r"Epoch|node|Queued|Starting|Resum|finished|interrupted|lost|went away")

    from playwright.async_api import async_playwright

    report: dict = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        students = [await start_a_run(browser, url, seed) for seed in (1, 2)]
        runs = {run_id: page for _, page, run_id in students}

        def node_of(run_id: str) -> str:
            placed = store.placement(run_id)
            return cluster.node_of(placed[-1]["node"]) if placed else ""

        deadline = time.monotonic() + 600
        while not all(node_of(r) for r in runs) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        victim = next(run_id for run_id in runs if node_of(run_id) == "node2")
        page = runs[victim]
        while store.status(victim).progress.epoch < 4:
            await asyncio.sleep(0.2)
        report["before"] = await said(page)
        await page.screenshot(path=str(out / "1-training-on-node2.png"), full_page=True)
        node = next(n for n in cluster.nodes if n.name == "node2")
        cluster.kill(node)
        killed = time.monotonic()
        while not store.status(victim).message and time.monotonic() - killed < 120:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.5)  # (one poll of the page, as the student sees it)
        report["after_kill"] = await said(page)
        report["status_after_kill"] = (store.status(victim).state.value, store.status(victim).message)
        await page.screenshot(path=str(out / "2-node-lost.png"), full_page=True)
        while store.status(victim).state.is_active and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        report["seconds_from_kill_to_finished_in_the_store"] = round(time.monotonic() - killed, 1)
        shown = time.monotonic()
        while "Training finished in" not in await main_area(page).inner_text() and time.monotonic() - shown < 30:
            await asyncio.sleep(0.5)
        report["seconds_from_store_to_page"] = round(time.monotonic() - shown, 1)
        report["finished"] = await said(page)
        report["page_text"] = (await main_area(page).inner_text())[:1500]
        await page.screenshot(path=str(out / "3-finished-elsewhere.png"), full_page=True)
        report["placement"] = [cluster.node_of(p["node"]) + f" from step {p['from_step']}"
                               for p in store.placement(victim)]
        report["events"] = [e.get("kind") for e in store.events(victim)]
        report["epochs_recorded"] = [row["epoch"] for row in store.epochs(victim)]
        await browser.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "node-failure")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="convlab-node-failure-"))
    cluster = LocalRayCluster(folder / "ray", cpus=1).start()
    server = None
    try:
        server, url = start_server(folder, "shared", folder / "server.log",
                                   {"CONVLAB_RAY_ADDRESS": cluster.address, **cluster.env})
        report = asyncio.run(walk(url, RunStore(folder / "runs"), cluster, args.out))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)
        cluster.stop()
    print(json.dumps(report, indent=1))
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
