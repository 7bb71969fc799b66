"""Whether the browser tests run here: skipped without Debian's Chromium or Playwright, unless required.

With CONVLAB_REQUIRE_BROWSER=1 (CI), a missing browser or a missing Playwright is a failure, never a
silent skip: `pytestmark()` and `playwright()` are what every browser test module starts with.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REQUIRED = os.environ.get("CONVLAB_REQUIRE_BROWSER") == "1"


def pytestmark() -> list:
    """The marks of a browser test module: `browser`, and a skip when Chromium is absent and not required."""
    marks = [pytest.mark.browser]
    if not CHROMIUM.exists() and not REQUIRED:
        marks.append(pytest.mark.skip(reason="Debian's chromium is not installed (/usr/bin/chromium)"))
    return marks


def playwright() -> ModuleType:
    """playwright.sync_api; the module is skipped when Playwright is missing, unless the browser is required."""
    try:
        return importlib.import_module("playwright.sync_api")
    except ImportError as error:
        if REQUIRED:
            raise RuntimeError(f"CONVLAB_REQUIRE_BROWSER=1 but Playwright cannot be imported ({error}): "
                               "install requirements-dev.txt") from error
        pytest.skip(f"Playwright is not installed ({error})", allow_module_level=True)
