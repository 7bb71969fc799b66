"""Which browser sessions are open on this server, which run each shows, and since when none has been open.

Plain bookkeeping with no lock of its own (the job manager holds one). The
local pool keeps a training process ready while anyone has the app open, and
lets it go once nobody has for a while; a run that another session shows is
not deleted from under it.
"""

from __future__ import annotations

import time


class Sessions:
    """The owners (browser sessions) that are open now."""

    def __init__(self) -> None:
        self._open: set[str] = set()
        self._showing: dict[str, str] = {}  # session -> the run it shows
        self._last_left = time.monotonic()

    def hold(self, owner: str) -> None:
        self._open.add(owner)

    def release(self, owner: str) -> None:
        self._open.discard(owner)
        self._showing.pop(owner, None)
        if not self._open:
            self._last_left = time.monotonic()

    def show(self, owner: str, run_id: str | None) -> None:
        """Session `owner` now shows `run_id` (None: no run)."""
        if run_id is None:
            self._showing.pop(owner, None)
        else:
            self._showing[owner] = run_id

    def shown_by_others(self, run_id: str, owner: str) -> int:
        """How many sessions other than `owner` show `run_id`."""
        return sum(1 for session, shown in self._showing.items() if shown == run_id and session != owner)

    @property
    def any_open(self) -> bool:
        return bool(self._open)

    def none_open_for(self, now: float) -> float:
        """Seconds since the last session left; 0 while one is open."""
        return 0.0 if self._open else now - self._last_left
