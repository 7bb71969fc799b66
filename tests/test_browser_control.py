"""Pause and resume in headless Chromium: one training slot, two students; the first pauses, the queued run of the
second takes the slot, the first resumes and both finish, the first's curves marked where it paused.

Skipped like tests/test_browser.py when Debian's chromium is absent (CONVLAB_REQUIRE_BROWSER=1 fails instead);
CONVLAB_SCREENSHOTS=DIR keeps screenshots.
"""

from __future__ import annotations

import re

import pytest

from core.runs.status import RunState
from core.runs.store import RunStore
from tests import browser_required
from tests.test_browser import (  # noqa: F401 - `browser` is a fixture
    browser,
    expect,
    load_data_and_build_lab,
    main_area,
    serving_app,
    set_recipe,
    shot,
    start_training,
    wait_until_idle,
)

pytestmark = browser_required.pytestmark()

ALICE, BOB = "00000000000000aa", "00000000000000bb"
TRAINING = re.compile(r"Epoch \d+/\d+ · batch \d+/")


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory):
    root = tmp_path_factory.mktemp("control") / "runs"
    with serving_app(root, tmp_path_factory.mktemp("keras"), CONVLAB_MAX_TRAININGS="1") as url:
        yield url, RunStore(root)


def open_tab(browser, url: str):  # noqa: F811 - the imported fixture's value
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    expect(page.get_by_role("heading", name="ConvLab")).to_be_visible()
    return context, page


def test_pause_gives_the_slot_to_the_queue_and_resume_finishes(browser, one_slot):  # noqa: F811
    url, store = one_slot
    first, alice = open_tab(browser, f"{url}/?ws={ALICE}")
    second, bob = open_tab(browser, f"{url}/?ws={BOB}")
    try:
        for page, epochs in ((alice, 2), (bob, 1)):
            load_data_and_build_lab(page)
            set_recipe(page, epochs=epochs)
        start_training(alice)
        expect(main_area(alice).get_by_text(TRAINING)).to_be_visible()
        start_training(bob)
        expect(main_area(bob).get_by_text(re.compile(r"Queued, 1st in line"))).to_be_visible()
        shot(bob, "control-1-bob-queued")

        wait_until_idle(alice)
        main_area(alice).get_by_role("button", name="Pause").click()
        # (an epoch is a second or so here: the pause can land in either epoch, or at the end of the first)
        paused = r"Paused in epoch [12]/2, after batch \d+/282|Paused at the end of epoch 1/2"
        expect(main_area(alice).get_by_text(re.compile(paused))).to_be_visible()
        expect(main_area(bob).get_by_text(TRAINING)).to_be_visible()  # the slot went to the queue
        shot(alice, "control-2-alice-paused")
        (alices_run,) = [s.run_id for s in store.list() if s.made_by == ALICE]
        assert store.status(alices_run).state is RunState.PAUSED

        wait_until_idle(alice)
        main_area(alice).get_by_role("button", name="Resume").click()
        expect(main_area(alice).get_by_text(re.compile(r"Queued, 1st in line|Starting"))).to_be_visible()
        expect(main_area(bob).get_by_text(re.compile(r"Training finished in"))).to_be_visible(timeout=300_000)
        expect(main_area(alice).get_by_text(re.compile(r"Training finished in"))).to_be_visible(timeout=300_000)
        wait_until_idle(alice)
        curves = main_area(alice).locator(".js-plotly-plot").first
        expect(curves.get_by_text("paused · resumed").first).to_be_visible()  # a marker where it paused
        shot(alice, "control-3-alice-finished")
        assert [e["kind"] for e in store.events(alices_run)] == ["paused", "resumed"]
        assert [row["epoch"] for row in store.epochs(alices_run)] == [1, 2]
    finally:
        first.close()
        second.close()


def test_two_first_visits_to_a_fresh_server_both_get_the_apps_navigation(browser, tmp_path):  # noqa: F811
    """Streamlit routes the first requests of a fresh server by the pages/ folder until app.py's st.navigation
    runs; two sessions arriving together used to leave the second with the folder's file names as its menu
    (no "Runs" in it) for good. Both now rerun through app.py."""
    with serving_app(tmp_path / "runs", tmp_path / "keras") as url:
        tabs = []
        for _ in range(2):
            context = browser.new_context(viewport={"width": 1400, "height": 1200})
            page = context.new_page()
            page.set_default_timeout(120_000)
            tabs.append((context, page))
        for _, page in tabs:  # both ask before either has run
            page.goto(f"{url}/data", wait_until="commit")
        try:
            for _, page in tabs:
                nav = page.get_by_test_id("stSidebarNav")
                expect(nav.get_by_text("Runs", exact=True)).to_be_visible()
                expect(nav.get_by_text("app", exact=True)).to_have_count(0)
                expect(main_area(page).get_by_role("heading", name="1 · Data")).to_be_visible()
        finally:
            for context, _ in tabs:
                context.close()
