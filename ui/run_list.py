"""The Runs page's table: one row per run, the current run marked, the columns a user compares by.

The table holds every column; the page shows those a user compares runs by (`COMPARED`) and the others
(`MORE`) when asked, so that it fits the page.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core.runs.store import RunSummary
from ui import state
from ui.state import RunsPage as KEYS
from ui.widgets import code, duration


def percent(fraction: float | None) -> float | None:
    """0..1 as 0..100, for a column whose every value shows two decimals ("97.00%" beside "96.57%")."""
    return None if fraction is None else 100.0 * fraction


def table(summaries: list[RunSummary]) -> pd.DataFrame:
    current = state.current_run_id()
    return pd.DataFrame([{
        "": "▶" if summary.run_id == current else "",
        "when": time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.created)),
        "label": summary.label,
        "dataset": summary.dataset,
        "architecture": summary.architecture,
        "parameters": summary.params,
        "epochs": f"{summary.epochs_done}/{summary.epochs_total}" if summary.epochs_total else "",
        "best val accuracy": percent(summary.best_val_accuracy),
        "test accuracy": percent(summary.test_accuracy),
        "training time": duration(summary.training_s) if summary.training_s is not None else "",
        "state": summary.state_words,
        "run": summary.run_id,
        "continues": summary.parent,
        "sweep": summary.sweep,
    } for summary in summaries])


COMPARED = ("", "label", "dataset", "architecture", "epochs", "best val accuracy", "test accuracy", "state")
MORE = ("when", "training time", "parameters", "continues", "run")

COLUMNS = {
    "": st.column_config.TextColumn(width=32, help="the session's current run"),
    "label": st.column_config.TextColumn(width="medium"),
    "continues": st.column_config.TextColumn(help="the run it was continued from (Continue, on a finished run)"),
    "sweep": st.column_config.TextColumn(help="the sweep it is a trial of, and which trial (see Sweeps); a pruned "
                                              "trial was stopped early by its sweep"),
    "parameters": st.column_config.NumberColumn(format="localized"),
    "best val accuracy": st.column_config.NumberColumn("best val acc.", format="%.2f%%",
                                                       help="the best epoch's validation accuracy"),
    "test accuracy": st.column_config.NumberColumn("test acc.", format="%.2f%%",
                                                   help="accuracy_score on the test set"),
}


def details_line(summary: RunSummary) -> str:
    """What the table's hidden columns hold, for the selected run's panel."""
    made = time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.created))
    parts = [f"made {made}", f"{summary.params:,} parameters" if summary.params else ""]
    if summary.training_s is not None:
        parts.append(f"trained for {duration(summary.training_s)}")
    if summary.parent:
        parts.append(f"continues run {code(summary.parent)}")
    return " · ".join(part for part in parts if part)


def shown_columns(where: st.delta_generator.DeltaGenerator) -> list[str]:
    """The columns to show: those runs are compared by, and the others the user asks for in `where`."""
    more = where.multiselect("More columns", MORE, key=KEYS.MORE_COLUMNS, placeholder="when, training time, …",
                             help="Columns left out so that the table fits the page; the selected run's panel "
                                  "below says the rest.")
    return [*COMPARED, *(column for column in MORE if column in more)]
