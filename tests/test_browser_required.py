"""A required browser is never skipped silently: with CONVLAB_REQUIRE_BROWSER=1 a missing Playwright fails."""

from __future__ import annotations

import importlib

import pytest

from tests import browser_required


def refuse_playwright(monkeypatch) -> None:
    real = importlib.import_module

    def import_module(name, *args, **kwargs):
        if name.startswith("playwright"):
            raise ImportError("No module named 'playwright'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(browser_required.importlib, "import_module", import_module)


def test_a_missing_playwright_fails_when_the_browser_is_required(monkeypatch):
    refuse_playwright(monkeypatch)
    monkeypatch.setattr(browser_required, "REQUIRED", True)
    with pytest.raises(RuntimeError, match=r"CONVLAB_REQUIRE_BROWSER=1 but Playwright cannot be imported"):
        browser_required.playwright()


def test_a_missing_playwright_skips_when_the_browser_is_not_required(monkeypatch):
    refuse_playwright(monkeypatch)
    monkeypatch.setattr(browser_required, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception, match="Playwright is not installed"):
        browser_required.playwright()


def test_a_missing_chromium_is_skipped_only_when_not_required(monkeypatch, tmp_path):
    monkeypatch.setattr(browser_required, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setattr(browser_required, "REQUIRED", False)
    assert [mark.name for mark in browser_required.pytestmark()] == ["browser", "skip"]
    monkeypatch.setattr(browser_required, "REQUIRED", True)
    assert [mark.name for mark in browser_required.pytestmark()] == ["browser"]
