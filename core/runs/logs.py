"""A run's logs: CSV metrics and JSON-lines events that grow one complete line per write (as Keras' CSVLogger).

`csv_line` writes a record in a log's column order; `CsvLog` and `JsonLog`
read a growing log incrementally, each call parsing only the complete lines
added since. A log rewritten shorter (a run resumed from a checkpoint drops
what came after it) is a new file: the readers see that and read it afresh.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping

EPOCH_FIELDS = ("epoch", "step", "loss", "accuracy", "val_loss", "val_accuracy", "epoch_s", "elapsed_s", "partial")
BATCH_FIELDS = ("step", "epoch", "batch", "loss", "accuracy", "elapsed_s")


def _parse_value(text: str) -> Any:
    if text in ("True", "False"):
        return text == "True"
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


class _GrowingFile:
    """The complete lines added to a file since the last read; starts again when the file was replaced."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._identity: tuple[int, int] | None = None

    def new_lines(self) -> tuple[list[str], bool]:
        """(the new complete lines, whether the file was replaced since the last read)."""
        try:
            with open(self.path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                identity = (stat.st_dev, stat.st_ino)
                replaced = self._identity is not None and (identity != self._identity or stat.st_size < self._offset)
                if replaced:
                    self._offset = 0
                self._identity = identity
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:  # not written yet, or damaged (a folder, unreadable): what was read so far stands
            return [], False
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self._offset += len(complete)
        return complete.decode(errors="replace").splitlines(), replaced


class CsvLog:
    """Reads a growing CSV log incrementally: each call parses only the complete lines added since.

    Every cell of a metrics log is a number or True/False: a line with anything else is damaged and skipped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self._file = _GrowingFile(path)
        self._header: list[str] | None = None

    def read(self) -> list[dict[str, Any]]:
        lines, replaced = self._file.new_lines()
        if replaced:
            self.rows, self._header = [], None
        for line in lines:
            cells = next(csv.reader([line]), [])
            if self._header is None:
                self._header = cells
            elif len(cells) == len(self._header):
                row = {key: _parse_value(value) for key, value in zip(self._header, cells) if value != ""}
                if not any(isinstance(value, str) for value in row.values()):
                    self.rows.append(row)
        return self.rows


class JsonLog:
    """Reads a growing JSON-lines log incrementally; a line that is not a JSON object is skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self._file = _GrowingFile(path)

    def read(self) -> list[dict[str, Any]]:
        lines, replaced = self._file.new_lines()
        if replaced:
            self.rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                self.rows.append(row)
        return self.rows


def csv_text(fields: tuple[str, ...], records: list[Mapping[str, Any]]) -> str:
    """A whole log: its header and `records`."""
    return ",".join(fields) + "\n" + "".join(csv_line(fields, record) for record in records)


def json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(dict(record), allow_nan=False, default=str)


def csv_line(fields: tuple[str, ...], record: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        ["" if record.get(key) is None else record.get(key) for key in fields])
    return buffer.getvalue()
