"""What every benchmark shares: the machine it ran on, and timing several calls interleaved."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Callable


def cpu_model() -> str:
    """The processor's name as /proc/cpuinfo gives it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float:
    """The machine's memory in GiB (MemTotal), 0 when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def describe_machine() -> str:
    """One line for a benchmark's output: processor, cores, memory, load average now."""
    load = os.getloadavg()
    return (f"machine: {cpu_model()}, {os.cpu_count()} cores, {memory_gib():.0f} GiB, no GPU used; "
            f"Python {platform.python_version()}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def time_interleaved(methods: dict[str, Callable[[], object]], runs: int, warmup: int,
                     runs_of: dict[str, int] | None = None) -> dict[str, list[float]]:
    """Seconds per call of each method, run after run, the order rotated each run so that no method always
    follows the same one (these machines are noisy: interleaving spreads the noise over every method).
    `runs_of` caps the runs of slow methods."""
    for _ in range(warmup):
        for call in methods.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for run in range(runs):
        shift = run % len(names)
        for name in names[shift:] + names[:shift]:
            if runs_of and run >= runs_of.get(name, runs):
                continue
            started = time.perf_counter()
            methods[name]()
            samples[name].append(time.perf_counter() - started)
    return samples


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot (Linux's /proc/stat; idle and iowait are not busy)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def cpu_busy_fraction(interval_s: float = 1.0) -> float:
    """How busy the machine's processors were over the next `interval_s` (0 to 1)."""
    busy_before, total_before = machine_ticks()
    time.sleep(interval_s)
    busy_after, total_after = machine_ticks()
    return (busy_after - busy_before) / max(1, total_after - total_before)


def wait_quiet(busy_below: float = 0.15, timeout_s: float = 60.0) -> float:
    """Wait until the machine is quiet (a second with its processors less than `busy_below` busy), so that one
    side of a comparison does not pay for the aftermath of the other (a process still exiting, a page still
    drawing); returns the seconds waited. Gives up after `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s and cpu_busy_fraction() >= busy_below:
        pass
    return time.monotonic() - started
