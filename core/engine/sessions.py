"""Which browser sessions are open on this server, and since when none has been.

Plain bookkeeping with no lock of its own (the job manager holds one). The
local pool keeps a training process ready while anyone has the app open, and
lets it go once nobody has for a while.
"""

from __future__ import annotations

import time


class Sessions:
    """The owners (browser sessions) that are open now."""

    def __init__(self) -> None:
        self._open: set[str] = set()
        self._last_left = time.monotonic()

    def hold(self, owner: str) -> None:
        self._open.add(owner)

    def release(self, owner: str) -> None:
        self._open.discard(owner)
        if not self._open:
            self._last_left = time.monotonic()

    @property
    def any_open(self) -> bool:
        return bool(self._open)

    def none_open_for(self, now: float) -> float:
        """Seconds since the last session left; 0 while one is open."""
        return 0.0 if self._open else now - self._last_left
