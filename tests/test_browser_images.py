"""Your own images end to end in headless Chromium: upload a zip, load it, build, train an epoch, classify a picture.

Like tests/test_browser.py: Debian's /usr/bin/chromium through Playwright, skipped when it is absent (unless
CONVLAB_REQUIRE_BROWSER=1); CONVLAB_SCREENSHOTS=DIR keeps a screenshot of each step.
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from tests import browser_required
from tests.conftest import CLASSES, encode, shape_picture

pytestmark = browser_required.pytestmark()
browser_required.playwright()
from tests.test_browser import (  # noqa: E402
    browser,  # noqa: F401 - a fixture
    expect,
    go,
    main_area,
    serving_app,
    shot,
    slider_input,
    wait_for_end_of_run_rerun,
    wait_until_idle,
)


def shapes_zip(per_class: int = 6) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for kind in CLASSES:
            for i in range(per_class):
                archive.writestr(f"shapes/{kind}/{i}.png", encode(shape_picture(kind, i)))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of its own, with a run store of its own."""
    with serving_app(tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("keras")) as url:
        yield url


@pytest.fixture()
def page(browser, server):  # noqa: F811 - the fixture imported above
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server)
    expect(page.get_by_role("heading", name="ConvLab")).to_be_visible()
    yield page
    context.close()


def test_upload_a_zip_train_it_and_classify_a_picture(page):
    area = main_area(page)
    go(page, "Data")
    expect(area.get_by_text("Using a sample, not the full dataset")).to_be_visible()  # offline MNIST, the default
    wait_until_idle(page)
    area.get_by_test_id("stSelectbox").click()
    page.keyboard.type("zip of class")
    page.keyboard.press("Enter")
    area.locator('input[type="file"]').set_input_files(
        {"name": "shapes.zip", "mimeType": "application/zip", "buffer": shapes_zip()})
    expect(area.get_by_text(re.compile(r"3 classes, 18 image files"))).to_be_visible()
    expect(area.get_by_text("what the network sees")).to_be_visible()  # the preview
    shot(page, "images-1-listed")
    area.get_by_role("button", name="Load these images").click()
    expect(area.get_by_text(re.compile(r"Your images from shapes\.zip: 3 classes, 15 train / 3 test"))).to_be_visible()
    expect(page.get_by_test_id("stSidebarUserContent").get_by_text(re.compile(r"15 train / 3 test"))).to_be_visible()
    shot(page, "images-2-loaded")

    go(page, "Architecture")
    area.get_by_role("button", name="lab", exact=True).click()
    expect(area.get_by_text("Input 28x28x1 from shapes.zip, 3 classes.")).to_be_visible()
    area.get_by_role("button", name="Build").click()
    expect(area.get_by_text(re.compile(r"Built lab_cnn: [\d,]+ parameters"))).to_be_visible()

    go(page, "Training")
    epochs = slider_input(page, "Epochs")
    epochs.focus()
    epochs.press("Home")  # 1 epoch
    recipe = area.get_by_test_id("stCaptionContainer").filter(has_text="Recipe:")
    expect(recipe).to_contain_text(", 1 epoch,")
    area.get_by_role("button", name="Start training").click()
    expect(area.get_by_text(re.compile(r"Training finished in"))).to_be_visible(timeout=180_000)
    wait_for_end_of_run_rerun(page)

    go(page, "Draw & classify")
    expect(area.get_by_text(re.compile(r"trained on shapes\.zip \(circle, square, triangle"))).to_be_visible()
    area.locator('input[type="file"]').set_input_files(
        {"name": "triangle.png", "mimeType": "image/png", "buffer": encode(shape_picture("triangle", 2, (90, 60)))})
    prediction = area.get_by_test_id("stMetric").filter(has_text="Prediction")
    expect(prediction).to_be_visible()
    assert prediction.get_by_test_id("stMetricValue").inner_text() in CLASSES
    expect(area.get_by_text("what the network sees: fitted into 28x28, grayscale")).to_be_visible()
    wait_until_idle(page)
    shot(page, "images-3-classified")
