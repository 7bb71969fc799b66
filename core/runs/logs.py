"""A run's metrics logs: CSV files that grow one complete line per write (as Keras' CSVLogger).

`csv_line` writes a record in a log's column order; `CsvLog` reads a growing
log incrementally, each call parsing only the complete lines added since.
"""

from __future__ import annotations

import csv
import io
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


class CsvLog:
    """Reads a growing CSV log incrementally: each call parses only the complete lines added since.

    Every cell of a metrics log is a number or True/False: a line with anything else is damaged and skipped.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self._offset = 0
        self._header: list[str] | None = None

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:  # not written yet, or damaged (a folder, unreadable): what was read so far stands
            return self.rows
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self._offset += len(complete)
        for line in complete.decode(errors="replace").splitlines():
            cells = next(csv.reader([line]), [])
            if self._header is None:
                self._header = cells
            elif len(cells) == len(self._header):
                row = {key: _parse_value(value) for key, value in zip(self._header, cells) if value != ""}
                if not any(isinstance(value, str) for value in row.values()):
                    self.rows.append(row)
        return self.rows


def csv_line(fields: tuple[str, ...], record: Mapping[str, Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(
        ["" if record.get(key) is None else record.get(key) for key in fields])
    return buffer.getvalue()
