"""What a server holds in memory for its sessions (datasets, models), one copy each, within one budget.

Every session that shows MNIST shares one copy of it; an uploaded file is
one copy however many sessions load it (its key is its content hash). Each
entry knows which sessions hold it: when a session ends, its holds are
released, and an entry nobody holds is dropped at once, so a closed tab's
memory comes back when its session ends rather than when the web server
gets round to forgetting the session. A load that would take the server past
its budget is refused with a message that says so, after dropping what
nobody holds; the estimate comes before the load, so nothing is allocated
for a load that is refused.

Thread-safe: every method may be called from any session's script thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from core.errors import ConvLabError
from core.limits import format_bytes
from core.settings import int_setting

BUDGET_ENV = "CONVLAB_MEMORY_BUDGET_MB"
DEFAULT_SHARE = 0.25  # of the machine's memory: the rest is for the training processes, the browsers, the system


class MemoryBudgetError(ConvLabError, MemoryError):
    """A load would take the server past its memory budget."""


def machine_memory_bytes() -> int:
    """The machine's physical memory (Linux sysconf; 8 GB when it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 10**9


def default_budget_bytes() -> int:
    """CONVLAB_MEMORY_BUDGET_MB, else a quarter of the machine's memory."""
    default_mb = int(machine_memory_bytes() * DEFAULT_SHARE / 10**6)
    return int_setting(BUDGET_ENV, default_mb, 1, 10**9) * 10**6


def nbytes(value: Any) -> int:
    """Bytes held by a dataset (its arrays) or anything with `nbytes`; 0 when unknown."""
    total = getattr(value, "nbytes", None)
    if isinstance(total, int):
        return total
    return sum(getattr(getattr(value, name, None), "nbytes", 0) or 0
               for name in ("x_train", "y_train", "x_test", "y_test"))


@dataclass
class _Entry:
    value: Any
    size: int
    holders: set[str] = field(default_factory=set)


class ServerMemory:
    """Keyed values shared by sessions, each loaded once, all within `budget` bytes."""

    def __init__(self, budget: int | None = None) -> None:
        self.budget = default_budget_bytes() if budget is None else budget
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}
        self._loading: dict[Hashable, threading.Lock] = {}  # one load per key at a time

    def get(self, key: Hashable, holder: str, load: Callable[[], Any], estimate: int = 0,
            what: str = "this dataset", size: Callable[[Any], int] = nbytes) -> Any:
        """The value under `key`, loaded with `load()` the first time; `holder` (a session) holds it.

        `estimate` is what the load will take (bytes), checked against the budget before loading;
        `size(value)` what it takes once loaded. Raises MemoryBudgetError when it does not fit.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.holders.add(holder)
                return entry.value
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # a second session asking for the same key waits for the first load
            try:
                with self._lock:
                    entry = self._entries.get(key)
                    if entry is not None:
                        entry.holders.add(holder)
                        return entry.value
                    self._make_room(estimate, what)
                value = load()
                taken = size(value)
                with self._lock:
                    self._make_room(taken, what)
                    self._entries[key] = _Entry(value, taken, {holder})
                return value
            finally:
                with self._lock:
                    self._loading.pop(key, None)

    def release(self, holder: str) -> int:
        """`holder` (a session that ended) lets go of everything; what nobody holds is dropped. Returns bytes freed."""
        with self._lock:
            for entry in self._entries.values():
                entry.holders.discard(holder)
            return self._drop_unheld()

    def forget(self, key: Hashable) -> None:
        """Drop `key` whoever holds it (its file changed or was deleted)."""
        with self._lock:
            self._entries.pop(key, None)

    def used(self) -> int:
        with self._lock:
            return sum(entry.size for entry in self._entries.values())

    def holders(self, key: Hashable) -> set[str]:
        with self._lock:
            entry = self._entries.get(key)
            return set(entry.holders) if entry is not None else set()

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._entries)

    def _drop_unheld(self) -> int:
        unheld = [key for key, entry in self._entries.items() if not entry.holders]
        freed = sum(self._entries[key].size for key in unheld)
        for key in unheld:
            del self._entries[key]
        return freed

    def _make_room(self, needed: int, what: str) -> None:
        """(Under the lock.) Drop what nobody holds; refuse when `needed` still does not fit."""
        used = sum(entry.size for entry in self._entries.values())
        if used + needed <= self.budget:
            return
        self._drop_unheld()
        used = sum(entry.size for entry in self._entries.values())
        if used + needed > self.budget:
            sessions = len(set().union(*(entry.holders for entry in self._entries.values()))) if self._entries else 0
            raise MemoryBudgetError(
                f"The server's memory for datasets and models is full: {format_bytes(used)} of its "
                f"{format_bytes(self.budget)} are held by {sessions} session{'s' if sessions != 1 else ''}, and "
                f"{what} needs {format_bytes(needed)}. Try again when others have closed their tabs, or choose a "
                f"smaller dataset; whoever runs the server can raise {BUDGET_ENV}.")
