"""Comparing runs: the settings that differ between them, and their curves side by side as a table or CSV."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any, Iterable

from core.runs.spec import RunSpec

if TYPE_CHECKING:
    from core.runs.store import RunStore


def spec_differences(specs: Iterable[RunSpec]) -> dict[str, list[Any]]:
    """Only the settings that differ between `specs`, each with one value per spec (None where absent)."""
    flats = [spec.settings() for spec in specs]
    keys: list[str] = []
    for flat in flats:
        keys.extend(key for key in flat if key not in keys)
    return {key: [flat.get(key) for flat in flats] for key in keys
            if len({repr(flat.get(key)) for flat in flats}) > 1}


def comparison_rows(store: "RunStore", run_ids: list[str]) -> list[dict[str, Any]]:
    """The runs' per-epoch curves side by side (one row per run and epoch), with the settings that differ."""
    specs = [store.spec(run_id) for run_id in run_ids]
    differing = spec_differences(specs)
    rows = []
    for index, run_id in enumerate(run_ids):
        test = store.test_metrics(run_id)
        settings = {key: values[index] for key, values in differing.items()}
        base = {"run": run_id, "label": store.label(run_id), "test_accuracy": None if test is None else test["accuracy"]}
        for epoch in store.epochs(run_id) or [{}]:
            rows.append(base | {key: epoch.get(key) for key in ("epoch", "loss", "accuracy", "val_loss",
                                                                 "val_accuracy", "partial")} | settings)
    return rows


def comparison_csv(store: "RunStore", run_ids: list[str]) -> str:
    """`comparison_rows` as CSV text (one row per run and epoch), for a spreadsheet."""
    rows = comparison_rows(store, run_ids)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
