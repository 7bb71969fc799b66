"""Numbers an operator sets in the environment (CONVLAB_MAX_TRAININGS, CONVLAB_WORKER_RUNS, ...)."""

from __future__ import annotations

import os


def int_setting(name: str, default: int, lowest: int, highest: int) -> int:
    """The whole number in environment variable `name`, or `default` when it is unset, not a whole number,
    or outside [lowest, highest]."""
    configured = os.environ.get(name, "").strip()
    if configured.isdigit() and lowest <= int(configured) <= highest:
        return int(configured)
    return default
