"""Where sweeps are kept: a folder per sweep beside the runs, each file of it named here only.

    runs/sweeps/<sweep id>/
        sweep.json      what to vary and how (`SweepSpec`), when, by whom, the images' details (written once)
        status.json     running, stopping, finished, stopped, cancelled or failed; the message; the process that
                        drives it (a sweep whose process has gone reads as interrupted, as a run does)
        optuna.log      Optuna's own storage (its JournalStorage file): every trial asked, its values, its
                        intermediate values, its state; the trial's run id among its user attributes
        trials.csv      every trial in a table, as the CLI leaves it when the sweep ends

The trials themselves are ordinary runs in the run store, tagged with the
sweep (`RunSpec.sweep`). Everything a sweep needs to go on after its process
stops is in these files and those runs (`core.sweeps.driver` picks it up).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import ConvLabError, RunError
from core.runs.spec import check_sweep_id, new_sweep_id
from core.runs.status import Owner, RunState, RunStatus, effective_status
from core.runs.store import RunStore
from core.sweeps.spec import SweepSpec

SCHEMA = 1
SWEEP, STATUS, JOURNAL, TRIALS = "sweep.json", "status.json", "optuna.log", "trials.csv"


@dataclass(frozen=True)
class SweepSummary:
    """One sweep as the Sweeps page lists it."""

    sweep_id: str
    state: RunState
    message: str
    created: float
    label: str = ""
    made_by: str = ""  # the workspace key of the browser that started it; "" for the CLI
    spec: SweepSpec | None = None  # None when damaged

    def editable_by(self, workspace: str) -> bool:
        """May this browser stop it? Its maker, or anyone for a CLI sweep (as for runs)."""
        return not self.made_by or self.made_by == workspace


class SweepStore:
    """The sweeps of one run store."""

    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self.root = runs.sweeps_root

    def path(self, sweep_id: str) -> Path:
        """The folder of `sweep_id`; refuses anything that is not a sweep id (ids come from URLs)."""
        return self.root / check_sweep_id(sweep_id)

    def exists(self, sweep_id: str) -> bool:
        try:
            return (self.path(sweep_id) / SWEEP).is_file()
        except RunError:
            return False

    def ids(self) -> list[str]:
        """Every sweep, newest first."""
        try:
            names = [entry.name for entry in os.scandir(self.root) if entry.is_dir()]
        except FileNotFoundError:
            return []
        return sorted((name for name in names if self.exists(name)), reverse=True)

    def create(self, spec: SweepSpec, details: dict[str, Any], made_by: str = "") -> str:
        """A new sweep's folder with its spec, the details its trials' runs record (`core.runs.details`: the
        images' shape and classes among them) and a first status (running, driven by this process); its id."""
        now = time.time()
        for _ in range(5):
            sweep_id = new_sweep_id(now)
            try:
                (self.root / sweep_id).mkdir(parents=True)
                break
            except FileExistsError:
                continue
        else:
            raise RunError("could not create a new sweep folder in the run store.")
        atomic.write_json(self.root / sweep_id / SWEEP, {"schema": SCHEMA, "spec": spec.to_dict(), "created": now,
                                                         "made_by": made_by, "details": dict(details)})
        self.write_status(sweep_id, RunStatus(RunState.RUNNING, "Starting.", created=now,
                                              started=now, owner=Owner.this_process(), heartbeat=now))
        return sweep_id

    def _file(self, sweep_id: str) -> dict[str, Any]:
        try:
            data = atomic.read_json(self.path(sweep_id) / SWEEP)
        except FileNotFoundError:
            raise RunError(f"sweep {sweep_id}: sweep.json is missing.") from None
        except (OSError, ValueError) as error:
            raise RunError(f"sweep {sweep_id}: sweep.json cannot be read ({error}).") from None
        if not isinstance(data, dict) or "spec" not in data:
            raise RunError(f"sweep {sweep_id}: sweep.json holds no spec.")
        return data

    def spec(self, sweep_id: str) -> SweepSpec:
        """Its spec (RunError when it is missing or not valid)."""
        data = self._file(sweep_id)
        try:
            return SweepSpec.from_dict(data["spec"])
        except RunError:
            raise
        except (ConvLabError, TypeError, ValueError) as error:
            raise RunError(f"sweep {sweep_id}: sweep.json is not a valid sweep ({error}).") from None

    def made_by(self, sweep_id: str) -> str:
        return str(self._file(sweep_id).get("made_by") or "")

    def details(self, sweep_id: str) -> dict[str, Any]:
        """What its trials' runs record of the data (RunError when the images' shape or classes are missing)."""
        details = self._file(sweep_id).get("details")
        shape = details.get("input_shape") if isinstance(details, dict) else None
        if (not isinstance(shape, list) or len(shape) != 3 or not all(isinstance(n, int) and n > 0 for n in shape)
                or not isinstance(details.get("num_classes"), int)):
            raise RunError(f"sweep {sweep_id}: sweep.json does not say the images' shape and classes.")
        return details

    def raw_status(self, sweep_id: str) -> RunStatus:
        """status.json as written (RunError when it is missing or broken)."""
        try:
            return RunStatus.from_dict(atomic.read_json(self.path(sweep_id) / STATUS))
        except FileNotFoundError:
            raise RunError(f"sweep {sweep_id}: status.json is missing.") from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise RunError(f"sweep {sweep_id}: status.json cannot be read ({error}).") from None

    def status(self, sweep_id: str) -> RunStatus:
        """Its status; interrupted when it claims to be running but the process that drove it has gone."""
        raw = self.raw_status(sweep_id)
        status = effective_status(raw)
        if status.state is not raw.state:
            return RunStatus(RunState.INTERRUPTED, "The process that drove this sweep stopped (the server, or "
                             "python -m core sweep); it goes on from where it was when it is resumed.",
                             created=raw.created, started=raw.started, owner=raw.owner)
        return status

    def write_status(self, sweep_id: str, status: RunStatus) -> None:
        atomic.write_json(self.path(sweep_id) / STATUS, status.to_dict())

    def journal_path(self, sweep_id: str) -> Path:
        """Optuna's journal file of this sweep (`core.sweeps.study` opens it with Optuna's JournalStorage)."""
        return self.path(sweep_id) / JOURNAL

    def write_trials_csv(self, sweep_id: str, text: str) -> Path:
        """Keep the table of trials beside the sweep; returns where."""
        path = self.path(sweep_id) / TRIALS
        atomic.write_bytes(path, text.encode())
        return path

    def summary(self, sweep_id: str) -> SweepSummary:
        """One row of the sweeps list; never raises: a broken sweep is listed as damaged, saying why."""
        try:
            data, spec, status = self._file(sweep_id), self.spec(sweep_id), self.status(sweep_id)
        except RunError as error:
            return SweepSummary(sweep_id, RunState.DAMAGED, str(error), 0.0)
        return SweepSummary(sweep_id, status.state, status.message, float(data.get("created") or status.created),
                            spec.label, str(data.get("made_by") or ""), spec)

    def list(self) -> list[SweepSummary]:
        return [self.summary(sweep_id) for sweep_id in self.ids()]

    def trial_runs(self, sweep_id: str) -> dict[int, list[str]]:
        """For each trial number, the runs tagged as that trial of `sweep_id`, oldest first (reads every run's
        spec: for finding a run whose id was not recorded, after a crash)."""
        found: dict[int, list[str]] = {}
        for run_id in sorted(self.runs.run_ids()):
            try:
                tag = self.runs.spec(run_id).sweep
            except RunError:
                continue
            if tag is not None and tag.sweep_id == sweep_id:
                found.setdefault(tag.trial, []).append(run_id)
        return found
