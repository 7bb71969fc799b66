"""The run report in headless Chromium, offline: it opens from a file with the network cut, its charts draw,
and a screenshot of the curves shows them (the training curve's blue, the validation curve's orange)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.export.report import run_report
from core.model.architecture import PRESETS
from core.runs.store import RunStore
from tests import browser_required
from tests.browser_required import CHROMIUM
from tests.core.export.conftest import LAB_RECIPE, trained_run
from tests.test_browser import LAUNCH_ARGS

pytestmark = browser_required.pytestmark()
playwright_api = browser_required.playwright()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    store = RunStore(folder / "runs")
    run_id = trained_run(store, PRESETS["lab"], LAB_RECIPE, "lab on digits")
    path = folder / f"{run_id}.html"
    path.write_text(run_report(store, run_id), encoding="utf-8")
    return path


def share(picture: Image.Image, colour: tuple[int, int, int], tolerance: int = 40) -> float:
    pixels = np.asarray(picture.convert("RGB"), dtype=np.int32)
    return float((np.abs(pixels - np.array(colour)).max(axis=2) < tolerance).mean())


def test_the_report_opens_offline_and_shows_its_charts(report_file, tmp_path):
    outside: list[str] = []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        context = browser.new_context(offline=True, viewport={"width": 1100, "height": 1400})
        context.on("request", lambda request: outside.append(request.url)
                   if not request.url.startswith(("file:", "data:", "blob:")) else None)
        page = context.new_page()
        page.goto(report_file.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 3")
        assert page.locator(".js-plotly-plot").count() == 3
        assert page.locator(".js-plotly-plot").first.locator(".scatterlayer .trace").count() == 4  # 2 panels x 2
        assert page.locator(".mistakes img").count() == 24
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        curves = tmp_path / "curves.png"
        page.locator(".js-plotly-plot").first.screenshot(path=str(curves))
        folder = os.environ.get("CONVLAB_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / "report.png"), full_page=True)
        pdf = tmp_path / "report.pdf"
        page.pdf(path=str(pdf), format="A4")  # printable: Chromium's print to PDF
        browser.close()
    assert outside == []  # nothing was fetched from a network
    picture = Image.open(curves)
    assert picture.width > 600 and picture.height > 200
    assert share(picture, (0x1F, 0x77, 0xB4)) > 0.001  # the training curves are drawn
    assert share(picture, (0xFF, 0x7F, 0x0E)) > 0.001  # and the validation curves
    assert pdf.stat().st_size > 50_000
