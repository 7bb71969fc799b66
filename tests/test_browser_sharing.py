"""Two students on one server, in headless Chromium: the second sees the first's run, and cannot delete it while
the first watches it; even its maker cannot delete it from another tab while one shows it.

Skipped like tests/test_browser.py when Debian's chromium is absent (CONVLAB_REQUIRE_BROWSER=1 fails instead);
CONVLAB_SCREENSHOTS=DIR keeps screenshots.
"""

from __future__ import annotations

import pytest

from core.data.dataset import DatasetRef
from core.engine.execute import execute
from core.model.architecture import Architecture, ConvBlock, DenseLayer
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import RunStore
from core.training.config import TrainingConfig
from tests import browser_required
from tests.test_browser import (  # noqa: F401 - `browser` is a fixture
    browser,
    expect,
    main_area,
    select_table_rows,
    serving_app,
    shot,
    wait_until_idle,
)

pytestmark = browser_required.pytestmark()

ALICE, BOB = "00000000000000aa", "00000000000000bb"
SMALL = Architecture(conv_blocks=(ConvBlock(filters=4),), dense_layers=(DenseLayer(units=8),), name="small_cnn")


@pytest.fixture(scope="module")
def alices_run(tmp_path_factory) -> tuple[RunStore, str]:
    store = RunStore(tmp_path_factory.mktemp("sharing") / "runs")
    spec = RunSpec(DatasetRef.of("builtin", "digits-8x8"), SMALL, TrainingConfig(optimizer="adam", epochs=1),
                   label="alice's run")
    run_id = store.create(spec, {"dataset_name": "digits-8x8"}, made_by=ALICE)
    assert execute(store, run_id, allow_download=False) is RunState.FINISHED
    return store, run_id


@pytest.fixture(scope="module")
def server(alices_run, tmp_path_factory):
    store, _ = alices_run
    with serving_app(store.root, tmp_path_factory.mktemp("keras")) as url:
        yield url


def open_tab(browser, url: str):  # noqa: F811 - the imported fixture's value
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    return context, page


def runs_page_with_the_run_selected(page, everyone: bool) -> None:
    expect(main_area(page).get_by_role("heading", name="Runs")).to_be_visible()
    wait_until_idle(page)
    if everyone:
        main_area(page).get_by_text("Everyone's (1)").click()
        wait_until_idle(page)
    table = main_area(page).get_by_test_id("stDataFrame").first
    expect(table).to_be_visible()
    select_table_rows(page, table, [0])
    expect(main_area(page).get_by_role("heading", name="alice's run")).to_be_visible()
    wait_until_idle(page)


def test_a_watched_run_cannot_be_deleted_by_another_student_nor_from_another_tab(browser, server, alices_run):  # noqa: F811
    store, run_id = alices_run
    watching, watcher = open_tab(browser, f"{server}/evaluation?ws={ALICE}&run={run_id}")
    other, bob = open_tab(browser, f"{server}/runs?ws={BOB}")
    second, alice = open_tab(browser, f"{server}/runs?ws={ALICE}")
    try:
        expect(main_area(watcher).get_by_text("Test accuracy")).to_be_visible()  # Alice watches her run
        shot(watcher, "sharing-1-alice-watches")

        runs_page_with_the_run_selected(bob, everyone=True)  # Bob finds it among everyone's runs
        delete = main_area(bob).get_by_role("button", name="Delete…")
        expect(delete).to_be_disabled()
        expect(main_area(bob).get_by_text("made in another browser (only its maker may delete it)")).to_be_visible()
        expect(main_area(bob).get_by_label("Label", exact=True)).to_be_disabled()
        shot(bob, "sharing-2-bob-cannot-delete")

        runs_page_with_the_run_selected(alice, everyone=False)  # Alice, in a second tab, while the first shows it
        expect(main_area(alice).get_by_role("button", name="Delete…")).to_be_disabled()
        expect(main_area(alice).get_by_text("another browser tab shows it")).to_be_visible()
        shot(alice, "sharing-3-not-while-watched")
        assert store.exists(run_id)

        watching.close()  # the watching tab goes: its session ends, and the run is free to delete
        alice.reload()
        runs_page_with_the_run_selected(alice, everyone=False)
        delete = main_area(alice).get_by_role("button", name="Delete…")
        expect(delete).to_be_enabled(timeout=60_000)
    finally:
        for context in (other, second):
            context.close()
