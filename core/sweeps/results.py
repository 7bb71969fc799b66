"""What a sweep shows: its trials as rows (settings, state, metric, run), the best, a CSV; read from its files.

`read_sweep` joins what Optuna's journal holds of each trial (its values, its
state, its intermediate values, its run's id) with the run itself (queued,
training or paused, its epochs, its test accuracy), so the Sweeps page, the
CLI and the report of a sweep driven by another process all read the same.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from core.errors import RunError
from core.runs.status import RunState, RunStatus
from core.runs.store import RunSummary
from core.sweeps.spec import METRIC_NAMES, SweepSpec
from core.sweeps.store import SweepStore
from core.sweeps.study import read_trials

WAITING = "waiting"  # asked, its run not yet made (or being made again)
ENDING = "ending"  # its run has ended, and the sweep has not yet recorded how (its driver does, within a moment)
RUN_WORDS = {RunState.QUEUED: "queued", RunState.RUNNING: "training", RunState.STOPPING: "training",
             RunState.PAUSED: "paused", RunState.INTERRUPTED: "interrupted", RunState.FINISHED: ENDING,
             RunState.STOPPED: ENDING, RunState.FAILED: ENDING}
ENDED = ("finished", "pruned", "failed", "stopped", "cancelled", "refused")


@dataclass(frozen=True)
class TrialView:
    """One trial as a row: its number (from 0), state in words, values, metric, curve, run."""

    number: int
    state: str  # waiting, queued, training, paused, interrupted, ending; finished, pruned, failed, stopped, cancelled,
    # refused (as the sweep recorded its end: only a finished trial has a value)
    values: dict[str, Any]
    value: float | None = None  # the metric it was ranked by (a finished trial)
    curve: dict[int, float] = field(default_factory=dict)  # the metric after each epoch, as reported
    run_id: str = ""
    epochs_done: int = 0
    epochs_total: int | None = None
    test_accuracy: float | None = None
    training_s: float | None = None
    message: str = ""

    @property
    def ended(self) -> bool:
        return self.state in ENDED


@dataclass(frozen=True)
class SweepView:
    """A sweep at one moment: its spec and status, and every trial."""

    sweep_id: str
    spec: SweepSpec
    status: RunStatus
    made_by: str
    trials: tuple[TrialView, ...]

    @property
    def active(self) -> bool:
        return self.status.state.is_active

    @property
    def best(self) -> TrialView | None:
        """The finished trial with the best metric (the first such, on a tie), or None."""
        finished = [t for t in self.trials if t.state == "finished" and t.value is not None]
        if not finished:
            return None
        sign = -1 if self.spec.direction == "maximize" else 1
        return min(finished, key=lambda t: (sign * t.value, t.number))

    def counts(self) -> dict[str, int]:
        """How many trials are in each state, in the order of the first seen."""
        found: dict[str, int] = {}
        for trial in self.trials:
            found[trial.state] = found.get(trial.state, 0) + 1
        return found

    def progress(self) -> str:
        """'7 of 12 trials ended (4 finished, 2 pruned, 1 failed); 1 training, 1 queued.'"""
        counts = self.counts()
        ended = [f"{counts[state]} {state}" for state in ENDED if counts.get(state) and state != "cancelled"]
        going = [f"{counts[state]} {state}" for state in (ENDING, "training", "queued", "paused", "interrupted",
                                                          WAITING, "cancelled") if counts.get(state)]
        done = sum(counts.get(state, 0) for state in ENDED if state != "cancelled")  # (asked again, if it goes on)
        return (f"{done} of {self.spec.planned_trials} trials ended" + (f" ({', '.join(ended)})" if ended else "")
                + (f"; {', '.join(going)}" if going else "") + ".")

    def table(self) -> list[dict[str, Any]]:
        """One record per trial: its number (from 1), state, values, metric, epochs, test accuracy, time, run."""
        metric = METRIC_NAMES[self.spec.metric]
        return [{"trial": t.number + 1, "state": t.state, **{name: t.values.get(name) for name in self.spec.names()},
                 metric: t.value, "epochs": f"{t.epochs_done}/{t.epochs_total}" if t.epochs_total else "",
                 "test accuracy": t.test_accuracy, "training s": None if t.training_s is None else round(t.training_s, 1),
                 "run": t.run_id, "message": t.message} for t in self.trials]

    def csv(self) -> str:
        """Every trial as CSV (the table's columns)."""
        rows = self.table()
        buffer = io.StringIO()
        columns = list(rows[0]) if rows else ["trial", "state", *self.spec.names(), METRIC_NAMES[self.spec.metric]]
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()


def read_sweep(sweeps: SweepStore, sweep_id: str, ended_runs: dict[str, RunSummary] | None = None) -> SweepView:
    """The sweep as its files say now (RunError when it is missing or broken). `ended_runs`: a cache of the
    summaries of runs that have ended for good (finished, stopped, failed: they no longer change), filled as it
    goes."""
    spec, status, made_by = sweeps.spec(sweep_id), sweeps.status(sweep_id), sweeps.made_by(sweep_id)
    cache = {} if ended_runs is None else ended_runs
    trials = tuple(_view(sweeps, frozen, cache) for frozen in read_trials(sweeps, sweep_id))
    return SweepView(sweep_id, spec, status, made_by, trials)


def _view(sweeps: SweepStore, frozen: FrozenTrial, cache: dict[str, RunSummary]) -> TrialView:
    run_id = str(frozen.user_attrs.get("run_id") or "")
    summary = cache.get(run_id)
    if summary is None and run_id:
        summary = sweeps.runs.summary(run_id) if sweeps.runs.exists(run_id) else None
        if summary is not None and not summary.state.is_active and not summary.state.is_resumable:
            cache[run_id] = summary
    state = _state(frozen, summary)
    return TrialView(
        number=frozen.number, state=state, values=dict(frozen.params),
        value=frozen.value if frozen.state is TrialState.COMPLETE else None,
        curve={int(step): float(value) for step, value in sorted(frozen.intermediate_values.items())},
        run_id=run_id if summary is not None else "",
        epochs_done=summary.epochs_done if summary else 0, epochs_total=summary.epochs_total if summary else None,
        test_accuracy=summary.test_accuracy if summary else None,
        training_s=summary.training_s if summary else None,
        message=str(frozen.user_attrs.get("message") or (summary.message if summary else "")))


def _state(frozen: FrozenTrial, summary: RunSummary | None) -> str:
    if frozen.state is TrialState.COMPLETE:
        return "finished"
    if frozen.state is TrialState.PRUNED:
        return "pruned"
    if frozen.state is TrialState.FAIL:
        outcome = frozen.user_attrs.get("outcome")
        return outcome if outcome in ENDED else "failed"
    if summary is None:
        return WAITING
    return RUN_WORDS.get(summary.state, summary.state.value)


def best_run(sweeps: SweepStore, sweep_id: str) -> str:
    """The run of the sweep's best finished trial (RunError when none has finished)."""
    best = read_sweep(sweeps, sweep_id).best
    if best is None or not best.run_id:
        raise RunError(f"Sweep {sweep_id} has no finished trial yet.")
    return best.run_id
