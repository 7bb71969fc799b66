"""The Runs page's table: one row per run, the current run marked, the columns a user compares by."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from core.runs.store import RunSummary
from ui import state
from ui.widgets import duration


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
        "best val accuracy": summary.best_val_accuracy,
        "test accuracy": summary.test_accuracy,
        "training time": duration(summary.training_s) if summary.training_s is not None else "",
        "state": summary.state_words,
        "run": summary.run_id,
        "continues": summary.parent,
        "sweep": summary.sweep,
    } for summary in summaries])


COLUMNS = {
    "": st.column_config.TextColumn(width="small", help="the session's current run"),
    "continues": st.column_config.TextColumn(help="the run it was continued from (Continue, on a finished run)"),
    "sweep": st.column_config.TextColumn(help="the sweep it is a trial of, and which trial (see Sweeps); a pruned "
                                              "trial was stopped early by its sweep"),
    "parameters": st.column_config.NumberColumn(format="localized"),
    "best val accuracy": st.column_config.NumberColumn(format="percent"),
    "test accuracy": st.column_config.NumberColumn(format="percent"),
}
