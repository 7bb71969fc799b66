"""Processes a benchmark watches: memory, and CPU time by group (the server, its training workers, the browser)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from bench.machine import machine_ticks

TICK = os.sysconf("SC_CLK_TCK")


def proc_table() -> dict[int, tuple[int, int, str]]:
    """{pid: (parent pid, CPU ticks used, command line)} of every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), cmdline)
    return table


def descendants(table: dict[int, tuple[int, int, str]], root: int) -> set[int]:
    found, frontier = set(), [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Sampler(threading.Thread):
    """Twice a second: the server's and its workers' memory; CPU used by the server, its workers, the browser
    and the other processes this script started."""

    def __init__(self, server_pid: int, students_flag: str | None = None) -> None:
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.students_flag = students_flag  # a Chromium started with this switch is counted apart: "students' browser"
        self.samples: list[dict] = []  # time, server_mb, workers_mb, workers, cpu_ticks (so far, per group)
        groups = ["server", "workers", "browser", *(["students' browser"] if students_flag else []), "scripts"]
        self.cpu = dict.fromkeys(groups, 0.0)  # ticks, accumulated per process
        self.marks: dict[str, dict] = {}
        self.worker_pids: set[int] = set()
        self._last: dict[int, int] = {}
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.t0_wall = 0.0  # when the students began (wall clock): the switches are timed from it
        self.sample(first=True)

    def sample(self, first: bool = False) -> None:
        table = proc_table()
        server_tree = descendants(table, self.server_pid)
        workers = {pid for pid in server_tree if "core.engine.worker" in table[pid][2]}
        ours = descendants(table, os.getpid()) - server_tree - {self.server_pid}
        browser = {pid for pid in ours if "chrom" in table[pid][2]}
        students: set[int] = set()
        if self.students_flag:
            for root in [pid for pid in browser if self.students_flag in table[pid][2]]:
                students |= {root} | descendants(table, root)
        groups = {"server": {self.server_pid} | (server_tree - workers), "workers": workers,
                  "browser": browser - students, "scripts": ours - browser}  # (a CLI run, a bare model.fit)
        if self.students_flag:
            groups["students' browser"] = students & browser
        with self._lock:
            for group, pids in groups.items():
                for pid in pids:
                    if pid not in table:
                        continue
                    ticks = table[pid][1]
                    if not first:
                        self.cpu[group] += max(0, ticks - self._last.get(pid, 0 if group != "server" else ticks))
                    self._last[pid] = ticks
            self.worker_pids |= workers
            self.samples.append({"t": time.monotonic(), "server_mb": rss_mb(self.server_pid),
                                 "workers_mb": sum(rss_mb(pid) for pid in workers), "workers": len(workers),
                                 "cpu_ticks": dict(self.cpu)})

    def mark(self, name: str) -> None:
        self.sample()
        with self._lock:
            busy, total = machine_ticks()
            self.marks[name] = {"t": time.monotonic(), "cpu": dict(self.cpu), "busy": busy, "total": total,
                                "load": os.getloadavg()}

    def run(self) -> None:
        while not self._halt.wait(0.5):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def between(self, start: str, end: str) -> dict:
        """CPU used between two marks, in cores: server, workers, browser, the rest of the machine."""
        a, b = self.marks[start], self.marks[end]
        seconds = b["t"] - a["t"]
        cores = {group: (b["cpu"][group] - a["cpu"][group]) / TICK / seconds for group in a["cpu"]}
        machine = (b["busy"] - a["busy"]) / (b["total"] - a["total"]) * os.cpu_count()
        cores["rest of the machine"] = max(0.0, machine - sum(cores.values()))
        cores["machine"] = machine
        return cores

    def memory(self, start: str | None = None, end: str | None = None) -> dict:
        t0 = self.marks[start]["t"] if start else 0.0
        t1 = self.marks[end]["t"] if end else float("inf")
        window = [s for s in self.samples if t0 <= s["t"] <= t1] or self.samples[-1:]
        return {"server_peak": max(s["server_mb"] for s in window),
                "workers_peak": max(s["workers_mb"] for s in window),
                "total_peak": max(s["server_mb"] + s["workers_mb"] for s in window),
                "workers_max": max(s["workers"] for s in window)}

    def cpu_seconds(self, start: str, end: str) -> dict:
        """CPU seconds used between two marks: server, workers, browser."""
        a, b = self.marks[start], self.marks[end]
        return {group: (b["cpu"][group] - a["cpu"][group]) / TICK for group in a["cpu"]}
