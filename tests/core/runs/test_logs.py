"""A run's metrics logs: CSV files that grow one complete line per write."""

from __future__ import annotations

from core import atomic
from core.runs.logs import EPOCH_FIELDS, CsvLog, JsonLog, csv_line, json_line
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


def test_a_record_is_written_in_the_logs_column_order_and_read_back_with_its_types(tmp_path):
    path = tmp_path / EPOCHS
    record = {"partial": True, "loss": 0.25, "epoch": 3, "step": 282, "val_loss": None, "epoch_s": 1e-05,
              "elapsed_s": 2.0, "not a column": "ignored"}
    line = csv_line(EPOCH_FIELDS, record)
    assert line == "3,282,0.25,,,,1e-05,2.0,True\n"  # None and absent columns are empty; one line
    atomic.append_line(path, ",".join(EPOCH_FIELDS))
    atomic.append_line(path, line)
    (row,) = CsvLog(path).read()
    assert row == {"epoch": 3, "step": 282, "loss": 0.25, "epoch_s": 1e-05, "elapsed_s": 2.0, "partial": True}
    assert [type(row[key]) for key in ("epoch", "loss", "epoch_s", "elapsed_s", "partial")] == [
        int, float, float, float, bool]  # "2.0" stays a float, "1e-05" is no integer


def test_damaged_lines_are_skipped(tmp_path):
    path = tmp_path / "batches.csv"
    for line in ("step,loss", "1,0.5", "2,0.4,extra", "3,lots", "4", "5,0.3"):
        atomic.append_line(path, line)
    assert CsvLog(path).read() == [{"step": 1, "loss": 0.5}, {"step": 5, "loss": 0.3}]
    folder = tmp_path / "a folder"
    folder.mkdir()
    assert CsvLog(folder).read() == []  # unreadable: nothing, and no error


def test_a_log_rewritten_shorter_is_read_afresh(tmp_path):
    """A resumed run drops what it logged after its checkpoint: a reader that was following sees the new file."""
    path = tmp_path / EPOCHS
    log = CsvLog(path)
    for line in ("epoch,loss", "1,0.5", "2,0.4", "3,0.3"):
        atomic.append_line(path, line)
    assert [row["epoch"] for row in log.read()] == [1, 2, 3]
    atomic.write_bytes(path, b"epoch,loss\n1,0.5\n")
    assert [row["epoch"] for row in log.read()] == [1]
    atomic.append_line(path, "2,0.45")
    assert [row["loss"] for row in log.read()] == [0.5, 0.45]


def test_a_json_lines_log_skips_what_is_not_an_object(tmp_path):
    path = tmp_path / "events.jsonl"
    log = JsonLog(path)
    for line in ('{"kind": "paused", "step": 3}', "not json", "[1, 2]", json_line({"kind": "resumed", "step": 3})):
        atomic.append_line(path, line)
    atomic.append_line(path, "")
    assert [row["kind"] for row in log.read()] == ["paused", "resumed"]
