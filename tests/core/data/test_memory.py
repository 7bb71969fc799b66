"""The server's memory for datasets and models: one copy per key, held by sessions, dropped when nobody holds it,
and a budget that refuses a load before it allocates anything."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from core.data.memory import MemoryBudgetError, ServerMemory, default_budget_bytes, nbytes

MB = 10**6


def array_of(megabytes: int) -> np.ndarray:
    return np.zeros(megabytes * MB, dtype=np.uint8)


def test_one_copy_per_key_whoever_asks():
    memory, loads = ServerMemory(budget=100 * MB), []
    first = memory.get("mnist", "alice", lambda: loads.append(1) or array_of(10))
    again = memory.get("mnist", "bob", lambda: loads.append(1) or array_of(10))
    assert first is again and loads == [1]
    assert memory.holders("mnist") == {"alice", "bob"} and memory.used() == 10 * MB


def test_what_nobody_holds_is_dropped_when_its_last_session_ends():
    memory = ServerMemory(budget=100 * MB)
    memory.get("shared", "alice", lambda: array_of(10))
    memory.get("shared", "bob", lambda: array_of(10))
    memory.get("alices-upload", "alice", lambda: array_of(20))
    assert memory.release("alice") == 20 * MB  # bob still holds the shared one
    assert memory.keys() == ["shared"] and memory.used() == 10 * MB
    assert memory.release("bob") == 10 * MB and memory.used() == 0


def test_a_load_past_the_budget_is_refused_before_it_runs_after_dropping_what_nobody_holds():
    memory, loads = ServerMemory(budget=50 * MB), []
    memory.get("held", "alice", lambda: array_of(30))
    with pytest.raises(MemoryBudgetError, match=r"^The server's memory for datasets and models is full: 30\.0 MB of "
                                                r"its 50\.0 MB are held by 1 session, and big\.npz needs 40\.0 MB\."):
        memory.get("big", "bob", lambda: loads.append(1) or array_of(40), estimate=40 * MB, what="big.npz")
    assert loads == []  # refused from the estimate: nothing was allocated
    memory.release("alice")  # now nobody holds the first: it makes room
    assert memory.get("big", "bob", lambda: array_of(40), estimate=40 * MB).nbytes == 40 * MB


def test_a_load_larger_than_its_estimate_is_measured_and_refused_if_it_does_not_fit():
    memory = ServerMemory(budget=50 * MB)
    with pytest.raises(MemoryBudgetError, match="needs 60.0 MB"):
        memory.get("liar", "alice", lambda: array_of(60), estimate=1)
    assert memory.used() == 0 and memory.keys() == []


def test_two_sessions_asking_at_once_share_one_load():
    memory, loads, started = ServerMemory(budget=100 * MB), [], threading.Event()

    def slow_load() -> np.ndarray:
        loads.append(1)
        started.set()
        threading.Event().wait(0.2)  # (the second asker arrives while the first loads)
        return array_of(5)

    results = []
    threads = [threading.Thread(target=lambda who=who: results.append(memory.get("k", who, slow_load)))
               for who in ("alice", "bob")]
    threads[0].start()
    started.wait(5)
    threads[1].start()
    for thread in threads:
        thread.join(10)
    assert loads == [1] and results[0] is results[1] and memory.holders("k") == {"alice", "bob"}


def test_a_datasets_size_is_its_arrays(bars):
    assert nbytes(bars) == sum(a.nbytes for a in (bars.x_train, bars.y_train, bars.x_test, bars.y_test))


def test_the_budget_is_a_quarter_of_the_machine_unless_set(monkeypatch):
    monkeypatch.setenv("CONVLAB_MEMORY_BUDGET_MB", "1234")
    assert default_budget_bytes() == 1234 * MB
    monkeypatch.delenv("CONVLAB_MEMORY_BUDGET_MB")
    assert 0 < default_budget_bytes() < 10**13
