"""A run's metrics logs: CSV files that grow one complete line per write."""

from __future__ import annotations

from core import atomic
from core.runs.logs import CsvLog
from core.runs.store import EPOCHS


def test_csv_log_reads_only_complete_lines_and_continues_where_it_stopped(tmp_path):
    path = tmp_path / EPOCHS
    log = CsvLog(path)
    assert log.read() == []
    atomic.append_line(path, "epoch,loss,partial")
    atomic.append_line(path, "1,0.5,False")
    with open(path, "a") as handle:
        handle.write("2,0.4")  # a line still being written
    assert log.read() == [{"epoch": 1, "loss": 0.5, "partial": False}]
    with open(path, "a") as handle:
        handle.write(",True\n")
    assert log.read() == [{"epoch": 1, "loss": 0.5, "partial": False}, {"epoch": 2, "loss": 0.4, "partial": True}]
