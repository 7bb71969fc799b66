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
