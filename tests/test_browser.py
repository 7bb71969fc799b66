"""End-to-end tests in headless Chromium: a real server, real clicks, a real canvas.

They drive Debian's /usr/bin/chromium through Playwright (never a downloaded
browser) and skip when it is absent, unless CONVLAB_REQUIRE_BROWSER=1 (CI).
Set CONVLAB_SCREENSHOTS=DIR to keep screenshots of each step.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests import browser_required
from tests.browser_required import CHROMIUM
from tests.conftest import ROOT

LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = browser_required.pytestmark()
playwright_api = browser_required.playwright()
expect = playwright_api.expect
expect.set_options(timeout=60_000)  # a loaded 2-core CI machine can take seconds per rerun


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(server: subprocess.Popen, url: str, timeout_s: float = 120.0) -> None:
    """Await Streamlit's "You can now view" line on stdout, then check its health endpoint. From then on the
    server's output is echoed to this process's stdout, which pytest shows with the test that fails."""
    lines: queue.Queue[str | None] = queue.Queue()

    log_path = os.environ.get("CONVLAB_SERVER_LOG")
    log = open(log_path, "a") if log_path else None

    serving = threading.Event()

    def pump() -> None:
        for line in server.stdout:
            if serving.is_set():
                sys.stdout.write(f"[server] {line}")
            lines.put(line)
            if log:
                log.write(line)
                log.flush()
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=timeout_s)
        except queue.Empty:
            raise RuntimeError("the Streamlit server printed nothing for too long:\n" + "".join(seen)) from None
        if line is None:
            raise RuntimeError("the Streamlit server exited:\n" + "".join(seen))
        seen.append(line)
        if "You can now view" in line:
            serving.set()
            break
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as response:
        assert response.status == 200


@contextlib.contextmanager
def serving_app(runs_root: Path, keras_home: Path, **settings: str) -> Iterator[str]:
    """A `streamlit run app.py` server, offline, on a free port, with its own run store (and `settings` in its
    environment); yields its URL."""
    port = free_port()
    env = dict(os.environ, CONVLAB_OFFLINE="1", KERAS_HOME=str(keras_home), CONVLAB_RUNS=str(runs_root),
               TF_CPP_MIN_LOG_LEVEL="2", **settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving_app(tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("keras")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server)
    expect(page.get_by_role("heading", name="ConvLab")).to_be_visible()
    yield page
    context.close()


def wait_until_idle(page) -> None:
    """No script run in progress (Streamlit shows its status widget while one runs) and no placeholders left."""
    page.wait_for_function("!document.querySelector('[data-testid=stStatusWidget]') && "
                           "!document.querySelector('[data-testid=stSkeleton]')")


def shot(page, name: str) -> None:
    folder = os.environ.get("CONVLAB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        wait_until_idle(page)
        page.wait_for_function("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def go(page, title: str) -> None:
    """Click a page in the sidebar navigation (a URL would start a new session)."""
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()


def slider_input(page, label: str):
    """The (visually hidden) range input behind a Streamlit slider; it takes keyboard input."""
    return page.locator(f'input[type="range"][aria-label="{label}"]')


def main_area(page):
    return page.get_by_test_id("stMainBlockContainer")


def progress_batch(page) -> int:
    text = main_area(page).get_by_text(re.compile(r"Epoch \d+/\d+ · batch \d+/")).inner_text()
    return int(re.search(r"batch (\d+)/", text).group(1))


def wait_for_end_of_run_rerun(page) -> None:
    """The poller sees the run end and reruns the whole page; a click before that rerun is overtaken by it."""
    expect(main_area(page).get_by_role("link", name="Evaluate on the test set")).to_be_visible()
    expect(main_area(page).get_by_role("button", name="Start training")).to_be_enabled()
    wait_until_idle(page)


def load_data(page, choice: str | None = None) -> None:
    go(page, "Data")
    if choice is not None:
        main_area(page).get_by_test_id("stSelectbox").first.click()
        page.get_by_role("option", name=choice).click()
    expect(main_area(page).get_by_text("Training images")).to_be_visible()
    wait_until_idle(page)


def build(page, preset: str, params: str) -> None:
    go(page, "Architecture")
    main_area(page).get_by_role("button", name=preset, exact=True).click()
    expect(main_area(page).get_by_text(f"Total parameters: {params}")).to_be_visible()
    main_area(page).get_by_role("button", name="Build").click()
    expect(main_area(page).get_by_text(f"{params} parameters, checked layer by layer")).to_be_visible()


def load_data_and_build_lab(page) -> None:
    load_data(page)
    expect(main_area(page).get_by_text("Using a sample, not the full dataset")).to_be_visible()
    expect(page.get_by_test_id("stSidebarUserContent").get_by_text("10,000 train / 10,000 test")).to_be_visible()
    shot(page, "1-data")
    build(page, "lab", "542,230")
    shot(page, "2-architecture")


def set_recipe(page, epochs: int = 1, batch_steps_left: int = 0) -> None:
    go(page, "Training")
    expect(main_area(page).get_by_role("heading", name="3 · Training")).to_be_visible()
    main_area(page).get_by_role("button", name="lab", exact=True).click()
    recipe = main_area(page).get_by_test_id("stCaptionContainer").filter(has_text="Recipe:")
    expect(recipe).to_contain_text("SGD (learning rate 0.01, constant, momentum 0.9)")
    expect(slider_input(page, "Batch size")).to_have_attribute("aria-valuetext", "32")
    slider = slider_input(page, "Epochs")
    expect(slider).to_have_attribute("aria-valuetext", "10")  # the preset has landed: keys pressed before it are lost
    wait_until_idle(page)
    slider.focus()
    slider.press("Home")
    expect(slider).to_have_attribute("aria-valuetext", "1")
    for _ in range(epochs - 1):
        slider.press("ArrowRight")
    expect(slider).to_have_attribute("aria-valuetext", str(epochs))
    batch = slider_input(page, "Batch size")
    for _ in range(batch_steps_left):
        batch.focus()
        batch.press("ArrowLeft")
    expect(batch).to_have_attribute("aria-valuetext", str(32 >> batch_steps_left))
    # the server has the new values once it re-renders the recipe from them
    epochs_text = "1 epoch," if epochs == 1 else f"{epochs} epochs,"
    expect(recipe).to_contain_text(f"batch {32 >> batch_steps_left}, {epochs_text}")
    expect(recipe).to_contain_text("SGD (learning rate 0.01, constant, momentum 0.9)")


def start_training(page) -> None:
    main_area(page).get_by_role("button", name="Start training").click()


def test_train_live_reload_mid_run_and_evaluate(page):
    load_data_and_build_lab(page)
    set_recipe(page, batch_steps_left=2)  # batch 8: 1,125 batches, long enough to watch and reload
    start_training(page)
    expect(main_area(page).get_by_text(re.compile(r"Epoch 1/1 · batch [1-9]\d*/1125"))).to_be_visible()
    first = progress_batch(page)
    expect(main_area(page).get_by_text(re.compile(r"images/s"))).to_be_visible()
    # the chart and the progress grow while we watch
    expect(main_area(page).get_by_text(re.compile(r"batch (\d+)/1125")).filter(
        has_not_text=f"batch {first}/1125")).to_be_visible()
    assert progress_batch(page) > first
    expect(main_area(page).locator(".js-plotly-plot").first).to_be_visible()
    run_id = re.search(r"run=([0-9a-f-]+)", page.url).group(1)
    shot(page, "3-training-live")
    before_reload = progress_batch(page)

    page.reload()  # a new browser session: the URL brings the same run back, still training
    expect(page.get_by_role("heading", name="3 · Training")).to_be_visible()
    finished = main_area(page).get_by_text(re.compile(r"Training finished in"))
    running = main_area(page).get_by_text(re.compile(r"Epoch 1/1 · batch \d+/1125"))
    expect(finished.or_(running)).to_be_visible()
    if running.is_visible():
        assert progress_batch(page) >= before_reload
    assert run_id in page.url and run_id in main_area(page).inner_text()
    shot(page, "4-training-after-reload")
    go(page, "Data")  # leave the page during training, and come back
    expect(main_area(page).get_by_role("heading", name="1 · Data")).to_be_visible()
    go(page, "Training")
    expect(finished).to_be_visible(timeout=300_000)
    wait_for_end_of_run_rerun(page)
    expect(main_area(page).get_by_text(re.compile(r"validation accuracy \(epoch 1\)"))).to_be_visible()
    shot(page, "5-training-finished")
    expect(page.get_by_test_id("stSidebarUserContent").get_by_text(re.compile(r"finished · epoch 1/1"))).to_be_visible()

    go(page, "Evaluation")
    expect(main_area(page).get_by_text("Test accuracy")).to_be_visible()
    # (by its label: while the page is redrawn, the Training page's metrics can still be the first ones)
    accuracy = main_area(page).get_by_test_id("stMetric").filter(has_text="Test accuracy").get_by_test_id(
        "stMetricValue").inner_text()
    assert re.fullmatch(r"\d+\.\d\d%", accuracy) and float(accuracy[:-1]) > 85, accuracy
    expect(main_area(page).get_by_text("The most confident mistakes")).to_be_visible()
    # click the confusion matrix cell (true 3, predicted 3): its images appear below
    matrix = main_area(page).locator(".js-plotly-plot").nth(1)
    matrix.scroll_into_view_if_needed()
    cells = matrix.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(cells["x"] + cells["width"] * 3.5 / 10, cells["y"] + cells["height"] * 3.5 / 10)
    expect(main_area(page).get_by_text(re.compile(r"^\d+ test image\(s\) of class 3 predicted as 3"))).to_be_visible()
    shot(page, "6-evaluation")


def draw_stroke(page, canvas, points: list[tuple[float, float]]) -> None:
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    page.mouse.up()


def draw_seven(page) -> None:
    canvas = main_area(page).get_by_test_id("stBidiComponentIsolated").locator("canvas").last
    expect(canvas).to_be_visible()
    draw_stroke(page, canvas, [(70, 60), (210, 60), (130, 240)])  # the top bar, then the diagonal


def select_table_rows(page, table, rows: list[int]) -> None:
    """Tick rows of a st.dataframe with row selection: its checkboxes sit at the left edge of each row."""
    box = table.bounding_box()
    for row in rows:
        page.mouse.click(box["x"] + 14, box["y"] + 35 * (row + 1) + 17)


def test_two_runs_compared_then_one_used_to_classify_a_drawing(page):
    load_data(page, "scikit-learn digits (8x8)")
    build(page, "lab", "30,230")
    for epochs in (1, 3):
        set_recipe(page, epochs=epochs)
        start_training(page)
        expect(main_area(page).get_by_text(re.compile(r"Training finished in"))).to_be_visible(timeout=300_000)
        wait_for_end_of_run_rerun(page)
    go(page, "Runs")
    table = main_area(page).get_by_test_id("stDataFrame").first  # the runs table; a comparison adds its own tables below
    expect(table).to_be_visible()
    wait_until_idle(page)
    select_table_rows(page, table, [0, 1])
    expect(main_area(page).get_by_role("heading", name="Comparing 2 runs")).to_be_visible()
    expect(main_area(page).get_by_text("What differs between them")).to_be_visible()
    expect(main_area(page).locator(".js-plotly-plot").first).to_be_visible()
    shot(page, "7-runs-compare")
    select_table_rows(page, table, [0])  # untick the newer run: the older (1 epoch) stays selected
    use = main_area(page).get_by_role("button", name="Use this run")
    expect(main_area(page).get_by_role("heading", name="lab_cnn · SGD 0.01 · 1 ep")).to_be_visible()
    use.click()
    expect(main_area(page).get_by_text("It is now the current run")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebarUserContent")
    expect(sidebar.get_by_text(re.compile(r"lab_cnn · SGD 0.01 · 1 ep \("))).to_be_visible()
    shot(page, "8-runs-use")
    go(page, "Draw & classify")
    expect(main_area(page).get_by_text("Draw a digit on the canvas to classify it.")).to_be_visible()
    draw_seven(page)
    expect(main_area(page).get_by_text("What the network sees")).to_be_visible()
    expect(main_area(page).get_by_text("5. centred by mass")).to_be_visible()
    predicted = main_area(page).get_by_test_id("stMetric").filter(has_text="Prediction") \
        .get_by_test_id("stMetricValue").inner_text()
    assert predicted in [str(d) for d in range(10)]
    shot(page, "9-canvas-prediction")
    main_area(page).get_by_role("button", name="Clear").click()
    expect(main_area(page).get_by_text("Draw a digit on the canvas to classify it.")).to_be_visible()
