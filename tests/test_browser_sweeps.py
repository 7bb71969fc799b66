"""A sweep in headless Chromium: set one up from the model built and the recipe set, watch its trials live, see
settings against the metric (parallel coordinates), use the best trial and open it on Evaluation.

Skipped like tests/test_browser.py when Debian's chromium is absent (CONVLAB_REQUIRE_BROWSER=1 fails instead);
CONVLAB_SCREENSHOTS=DIR keeps screenshots.
"""

from __future__ import annotations

import re

import pytest

from core.runs.store import RunStore
from core.sweeps.results import read_sweep
from core.sweeps.store import SweepStore
from tests import browser_required
from tests.test_browser import (  # noqa: F401 - `browser` is a fixture
    browser,
    build,
    expect,
    go,
    load_data,
    main_area,
    serving_app,
    set_recipe,
    shot,
    wait_until_idle,
)

pytestmark = browser_required.pytestmark()


@pytest.fixture(scope="module")
def sweeping(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps") / "runs"
    with serving_app(root, tmp_path_factory.mktemp("keras"), CONVLAB_MAX_TRAININGS="1") as url:
        yield url, RunStore(root)


def test_a_small_sweep_runs_live_and_its_best_trial_opens_on_evaluation(browser, sweeping):  # noqa: F811
    url, store = sweeping
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(url)
        expect(page.get_by_role("heading", name="ConvLab")).to_be_visible()
        load_data(page, "scikit-learn digits (8x8)")
        build(page, "lab", "30,230")
        set_recipe(page, epochs=4)
        go(page, "Sweeps")
        main = main_area(page)
        expect(main.get_by_role("heading", name="Sweeps")).to_be_visible()
        expect(main.get_by_text("Each trial trains")).to_be_visible()
        wait_until_idle(page)
        main.get_by_test_id("stMultiSelect").first.click()  # Settings to vary: learning rate, and now batch size
        page.get_by_role("option", name="batch size").click()
        page.keyboard.press("Escape")
        expect(main.get_by_text("Batch size", exact=True)).to_be_visible()
        trials = main.get_by_role("spinbutton", name="Trials")
        trials.fill("4")
        trials.press("Enter")
        wait_until_idle(page)
        main.get_by_role("button", name="Start sweep").click()
        expect(main.get_by_text(re.compile(r"trials ended"))).to_be_visible()
        expect(main.get_by_text(re.compile(r"\d training"))).to_be_visible()
        shot(page, "sweeps-1-running")
        expect(main.get_by_text(re.compile(r"Finished: 4 of 4 trials ended"))).to_be_visible(timeout=300_000)
        wait_until_idle(page)
        expect(main.locator(".js-plotly-plot .parcoords").first).to_be_visible()  # settings against the metric
        expect(main.get_by_role("heading", name=re.compile(r"Best trial: #\d"))).to_be_visible()
        shot(page, "sweeps-2-finished")

        (sweep_id,) = SweepStore(store).ids()
        best = read_sweep(SweepStore(store), sweep_id).best
        assert len(store.run_ids()) == 4 and all(store.summary(r).sweep.startswith(sweep_id) for r in store.run_ids())
        main.get_by_role("button", name="Use this run").click()
        expect(main.get_by_text("The best trial is now the current run")).to_be_visible()
        go(page, "Evaluation")
        accuracy = main_area(page).get_by_test_id("stMetric").filter(has_text="Test accuracy")
        expect(accuracy.get_by_test_id("stMetricValue")).to_have_text(f"{best.test_accuracy:.2%}")
        assert f"run={best.run_id}" in page.url
        shot(page, "sweeps-3-best-on-evaluation")
    finally:
        context.close()
