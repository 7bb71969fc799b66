"""Driving sweeps: ask a trial, train it as an ordinary run through the job manager, watch it, prune it, tell it.

One `SweepDriver` per process (the web server's, or `python -m core sweep`'s)
drives every sweep that process runs, from one thread that never calls
Streamlit. For each sweep it keeps the training slots busy: as many trials in
flight as the job manager has slots, plus one queued ahead (`AHEAD`), so a
slot that frees takes the next trial at once. Each trial is submitted as a run
tagged with its sweep; its turn in the queue counts against the browser that
started the sweep (`core.engine.queue`). Every `POLL_S` it reads each trial's
new epochs, reports the metric to Optuna and, when the median pruner says so,
stops the run (`JobManager.stop`): the run ends stopped, keeping its weights,
and is recorded as pruned (an event, and its message). When a run ends, its
metric (at the epoch whose weights it kept) is told to Optuna, and the next
trial asked.

A sweep's state is its files (`core.sweeps.store`) and its runs, so a driver
started later (a restarted server, `--resume`) picks it up: a trial's run that
was training is resumed from its checkpoint, one that never got a run gets
one, one that ended meanwhile is told.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from optuna.trial import Trial, TrialState

from core import limits
from core.errors import ConvLabError, RunError
from core.runs.status import Owner, RunState, RunStatus
from core.runs.store import PRUNED, RunStore
from core.sweeps.spec import METRIC_NAMES, SweepSpec
from core.sweeps.store import SweepStore
from core.sweeps.study import ask, live_trial, open_study, set_attr, tell

if TYPE_CHECKING:
    from core.engine.jobs import JobManager

POLL_S = 0.25  # how often each trial's new epochs are read (a pruned trial is stopped within an epoch and this)
AHEAD = 1  # trials queued beyond the training slots
MAX_RESUMES = 2  # a trial whose run is interrupted again and again fails after this many resumes


@dataclass(frozen=True)
class TrialEnd:
    """What a listener hears when a trial ends."""

    sweep_id: str
    number: int
    outcome: str  # finished, pruned, failed, stopped, cancelled, refused
    values: dict[str, Any]
    value: float | None = None
    run_id: str = ""
    message: str = ""


Listener = Callable[[TrialEnd], None]


@dataclass
class _Active:
    """A trial in flight: its run, what was reported of it, whether the pruner stopped it."""

    number: int
    run_id: str
    trial: Trial
    values: dict[str, Any]
    reported: int = 0  # the last epoch reported to Optuna
    best: float | None = None  # the best metric reported so far
    pruning: tuple[int, float, float | None] | None = None  # (epoch, best so far, median) when the pruner stopped it
    resumes: int = 0
    paused: bool = False


@dataclass
class _Drive:
    """One sweep being driven: its study, its trials in flight, and whether it was asked to stop."""

    manager: "JobManager"
    store: RunStore
    sweep_id: str
    spec: SweepSpec
    details: dict[str, Any]
    made_by: str
    listener: Listener | None
    active: dict[int, _Active] = field(default_factory=dict)
    stopping: str | None = None  # "stop" (let the running trials end) or "cancel" (stop them now)
    said: str = ""  # the message last written to the sweep's status

    def __post_init__(self) -> None:
        self.sweeps = SweepStore(self.store)
        self.study = open_study(self.sweeps, self.sweep_id, self.spec)
        self.shape = tuple(self.details["input_shape"])
        self.classes = int(self.details["num_classes"])
        self.share = self.made_by or f"sweep {self.sweep_id}"
        # the budget counts every trial asked but those cancelled before they trained (a sweep stopped, then resumed)
        # and those put back to be asked again that have not been yet (waiting: the next ask takes them)
        self.asked = sum(t.state is not TrialState.WAITING and t.user_attrs.get("outcome") != "cancelled"
                         for t in self.study.get_trials(deepcopy=False))

    # --- picking up a sweep where it was ---
    def pick_up(self) -> None:
        """The trials the study holds as running: watch their runs again, or give them one. Those cancelled before
        they trained (the sweep was stopped) are asked again, with the same values."""
        trials = self.study.get_trials(deepcopy=False)
        again = {t.user_attrs.get("again_of") for t in trials}
        for frozen in trials:
            if frozen.user_attrs.get("outcome") == "cancelled" and frozen.number not in again:
                self.study.enqueue_trial(dict(frozen.params), user_attrs={"again_of": frozen.number})
        tagged: dict[int, list[str]] | None = None
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            run_id = frozen.user_attrs.get("run_id")
            if not run_id:  # the process stopped between asking and recording the run: look for a tagged run
                tagged = self.sweeps.trial_runs(self.sweep_id) if tagged is None else tagged
                run_id = (tagged.get(frozen.number) or [""])[-1]
            if not run_id or not self.store.exists(run_id):
                self._submit(live_trial(self.study, frozen), dict(frozen.params))
                continue
            values = frozen.intermediate_values
            best = (max if self.spec.direction == "maximize" else min)(values.values()) if values else None
            self.active[frozen.number] = _Active(frozen.number, run_id, live_trial(self.study, frozen),
                                                 dict(frozen.params), reported=max(values, default=0), best=best)

    # --- one step of the driver's loop ---
    def step(self) -> bool:
        """Watch the trials in flight, ask new ones while there is room; True once the sweep has ended."""
        if self.stopping is not None:
            self._stop_trials()
        for active in list(self.active.values()):
            self._watch(active)
        if self.stopping is None:
            self._fill()
        if not self.active and (self.stopping is not None or self.asked >= self.spec.planned_trials):
            self._end()
            return True
        return False

    def _fill(self) -> None:
        target = self.manager.max_concurrent + AHEAD
        while sum(not a.paused for a in self.active.values()) < target and self.asked < self.spec.planned_trials:
            trial = ask(self.study, self.spec)
            self.asked += 1
            self._submit(trial, dict(trial.params))

    def _submit(self, trial: Trial, values: dict[str, Any]) -> None:
        number = trial.number
        try:
            arch, config, params = self.spec.trial(values, self.shape, self.classes)
        except RunError as error:  # a combination of values this model cannot train with
            self._told(number, values, "refused", TrialState.FAIL, message=str(error))
            return
        spec = self.spec.run_spec(self.sweep_id, number, values, arch, config)
        run_id = self.manager.submit(self.store, spec, dict(self.details, params=params), owner=None,
                                     made_by=self.made_by, share=self.share)
        set_attr(self.study, number, "run_id", run_id)
        self.active[number] = _Active(number, run_id, trial, values)

    def _watch(self, active: _Active) -> None:
        if not self.store.exists(active.run_id) and not self.manager.is_running(active.run_id):
            del self.active[active.number]  # its run was deleted (by its maker, once it had ended)
            self._told(active.number, active.values, "failed", TrialState.FAIL, message="Its run was deleted.")
            return
        status = self.store.status(active.run_id)
        self._report(active, status)
        if status.state.is_active or self.manager.is_running(active.run_id):
            active.paused = False
            return
        if status.state is RunState.PAUSED:  # paused by hand: it waits for its Resume, out of the slot count
            active.paused = True
            return
        if active.resumes < MAX_RESUMES and self.stopping is None:
            if status.state is RunState.INTERRUPTED:
                active.resumes += 1
                try:
                    self.manager.resume(self.store, active.run_id, owner=None, share=self.share)
                    return
                except RunError:
                    pass  # it cannot be resumed: it is told as it is
            elif status.state is RunState.CANCELLED and status.started is None:
                # cancelled before it ever trained, though the sweep was not stopped (its server shut down): the
                # trial gets a new run, and the empty one goes
                del self.active[active.number]
                self.store.delete(active.run_id)
                self._submit(active.trial, active.values)
                if active.number in self.active:
                    self.active[active.number].resumes = active.resumes + 1
                return
        self._finish(active, status)

    def _report(self, active: _Active, status: RunStatus) -> None:
        """New complete epochs to Optuna; the pruner's verdict after each (a training run only)."""
        if active.pruning is not None:
            return
        better = max if self.spec.direction == "maximize" else min
        for row in self.store.epochs(active.run_id):
            epoch, value = int(row.get("epoch", 0)), row.get(self.spec.metric)
            if row.get("partial") or epoch <= active.reported or not _finite(value):
                continue
            active.trial.report(float(value), epoch)
            active.reported, active.best = epoch, better(active.best, value) if active.best is not None else value
            if status.state is RunState.RUNNING and active.trial.should_prune():
                if self.manager.stop(active.run_id):
                    active.pruning = (epoch, float(active.best), self._median(epoch))
                return

    def _median(self, epoch: int) -> float | None:
        values = [t.intermediate_values[epoch] for t in self.study.get_trials(deepcopy=False,
                                                                              states=(TrialState.COMPLETE,))
                  if epoch in t.intermediate_values]
        return statistics.median(values) if values else None

    def _finish(self, active: _Active, status: RunStatus) -> None:
        """The trial's run has ended: tell Optuna how, and say so."""
        del self.active[active.number]
        state = status.state
        if state is RunState.FINISHED:
            value = final_value(self.store, active.run_id, self.spec.metric)
            if value is None:
                self._told(active.number, active.values, "failed", TrialState.FAIL, run_id=active.run_id,
                           message=f"It ended with no {METRIC_NAMES[self.spec.metric]} to rank it by.")
            else:
                self._told(active.number, active.values, "finished", TrialState.COMPLETE, value, active.run_id,
                           status.message)
        elif state is RunState.STOPPED and active.pruning is not None:
            message = self._mark_pruned(active, status)
            self._told(active.number, active.values, "pruned", TrialState.PRUNED, active.pruning[1], active.run_id,
                       message)
        else:
            outcome = {RunState.STOPPED: "stopped", RunState.PAUSED: "stopped", RunState.CANCELLED: "cancelled",
                       RunState.INTERRUPTED: "stopped" if self.stopping else "failed"}.get(state, "failed")
            self._told(active.number, active.values, outcome, TrialState.FAIL, run_id=active.run_id,
                       message=status.message)

    def _mark_pruned(self, active: _Active, status: RunStatus) -> str:
        """The run's record says it was pruned, and why: an event, and its message (its state stays stopped)."""
        epoch, best, median = active.pruning
        metric = METRIC_NAMES[self.spec.metric]
        message = (f"Pruned by its sweep after epoch {epoch}: its best {metric} so far, {_metric(self.spec, best)}, "
                   f"was worse than the median of the completed trials at that epoch"
                   + (f" ({_metric(self.spec, median)})" if median is not None else "")
                   + "; the weights reached are kept.")
        rows = self.store.epochs(active.run_id)
        self.store.append_event(active.run_id, {"kind": PRUNED, "value": epoch, "by": "sweep",
                                                "step": int(rows[-1].get("step", 0)) if rows else 0,
                                                "text": f"pruned after epoch {epoch}"})
        self.store.write_status(active.run_id, replace(self.store.raw_status(active.run_id), message=message))
        return message

    def _told(self, number: int, values: dict[str, Any], outcome: str, state: TrialState, value: float | None = None,
              run_id: str = "", message: str = "") -> None:
        tell(self.study, number, state, value, outcome=outcome, message=message[:500])
        if self.listener is not None:
            self.listener(TrialEnd(self.sweep_id, number, outcome, values, value, run_id, message))

    # --- stopping and ending ---
    def _stop_trials(self) -> None:
        """Stop: queued trials are cancelled (the running ones end as they would); cancel: running ones stop now."""
        for active in list(self.active.values()):
            status = self.store.status(active.run_id)
            if status.state is RunState.QUEUED or self.stopping == "cancel" and status.state.is_training:
                self.manager.stop(active.run_id)  # (cancels a queued run, stops a training one)
            elif status.state in (RunState.PAUSED, RunState.INTERRUPTED) and not self.manager.is_running(active.run_id):
                self._finish(active, status)

    def _end(self) -> None:
        state = {None: RunState.FINISHED, "stop": RunState.STOPPED, "cancel": RunState.CANCELLED}[self.stopping]
        self._write(state, self.summary(state), ended=time.time())

    def summary(self, state: RunState) -> str:
        """'Finished: 12 trials (8 finished, 3 pruned, 1 failed); best trial 5, validation accuracy 97.2 %.'"""
        counts: dict[str, int] = {}
        for trial in self.study.get_trials(deepcopy=False):
            if trial.state.is_finished():
                outcome = trial.user_attrs.get("outcome") or trial.state.name.lower()
                counts[outcome] = counts.get(outcome, 0) + 1
        ended = sum(count for outcome, count in counts.items() if outcome != "cancelled")
        words = {RunState.FINISHED: "Finished", RunState.STOPPED: "Stopped", RunState.CANCELLED: "Cancelled",
                 RunState.RUNNING: "Running", RunState.STOPPING: "Stopping"}.get(state, state.value.capitalize())
        parts = ", ".join(f"{count} {outcome}" for outcome, count in counts.items() if outcome != "cancelled")
        text = f"{words}: {ended} of {self.spec.planned_trials} trials ended" + (f" ({parts})" if parts else "")
        if counts.get("cancelled"):
            text += f"; {counts['cancelled']} cancelled before training"
        try:
            best = self.study.best_trial
            text += f"; the best is trial {best.number + 1}, {METRIC_NAMES[self.spec.metric]} " \
                    f"{_metric(self.spec, best.value)}."
        except ValueError:
            text += "."
        return text

    def _write(self, state: RunState, message: str, ended: float | None = None) -> None:
        status = self.sweeps.raw_status(self.sweep_id)
        now = time.time()
        self.sweeps.write_status(self.sweep_id, replace(status, state=state, message=message, ended=ended,
                                                        heartbeat=now, owner=Owner.this_process()))

    def say(self, message: str) -> None:
        """The sweep's status while it runs (written when it changes)."""
        if message != self.said:
            self._write(RunState.STOPPING if self.stopping else RunState.RUNNING, message)
            self.said = message

    def suspend(self) -> None:
        """Its process stops (a server's, or the CLI's): the sweep is left interrupted, for a later driver."""
        self._write(RunState.INTERRUPTED, "The process that drove this sweep stopped; it goes on from where it was "
                    "when it is resumed.", ended=time.time())

    def fail(self, error: Exception) -> None:
        """The driver could not go on with this sweep: it says why (its trials already running finish)."""
        try:
            self._write(RunState.FAILED, f"The sweep stopped: {type(error).__name__}: {error}", ended=time.time())
        except (ConvLabError, OSError):
            pass  # the sweep's folder has gone: nothing to say it in


class SweepDriver:
    """Drives sweeps through a job manager, from one thread: start, pick up, stop, wait."""

    def __init__(self, manager: "JobManager", poll_s: float = POLL_S) -> None:
        self.manager = manager
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._drives: dict[str, _Drive] = {}
        self._closed = False
        self._known_stores: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="convlab-sweeps", daemon=True)
        self._thread.start()

    def start(self, store: RunStore, spec: SweepSpec, details: dict[str, Any], made_by: str = "",
              listener: Listener | None = None) -> str:
        """Start a sweep (refused with RunError when it is invalid for these images or over the limits); its id.

        `details`: the base run's (`core.runs.details.run_details`), which holds the images' shape and classes.
        """
        spec.check_for(tuple(details["input_shape"]), int(details["num_classes"]))
        self._check_room(made_by)
        sweep_id = SweepStore(store).create(spec, details, made_by)
        self._drive(_Drive(self.manager, store, sweep_id, spec, details, made_by, listener), "Starting.")
        return sweep_id

    def resume(self, store: RunStore, sweep_id: str, listener: Listener | None = None) -> None:
        """Drive a sweep that no process drives any more (interrupted, stopped or cancelled) on to its budget."""
        sweeps = SweepStore(store)
        with self._cond:
            if sweep_id in self._drives:
                raise RunError(f"Sweep {sweep_id} is already running.")
        self._check_room(sweeps.made_by(sweep_id))
        status = sweeps.status(sweep_id)
        if status.state.is_active:
            raise RunError(f"Sweep {sweep_id} is driven by another process (pid {status.owner.pid if status.owner else '?'}): "
                           "stop it there.")
        drive = _Drive(self.manager, store, sweep_id, sweeps.spec(sweep_id), sweeps.details(sweep_id),
                       sweeps.made_by(sweep_id), listener)
        drive.pick_up()
        self._drive(drive, f"Going on from trial {drive.asked + 1 - len(drive.active)}.")

    def _check_room(self, made_by: str) -> None:
        """Refuse (RunError, the limit stated) one more sweep on this server, or one more of this browser's."""
        with self._cond:
            if len(self._drives) >= limits.MAX_SWEEPS_AT_ONCE:
                raise RunError(f"This server runs at most {limits.MAX_SWEEPS_AT_ONCE} sweeps at once; "
                               f"{len(self._drives)} are running: try again when one has ended.")
            mine = [d for d in self._drives.values() if made_by and d.made_by == made_by]
            if len(mine) >= limits.MAX_SWEEPS_PER_BROWSER:
                raise RunError(f"Each browser runs {limits.MAX_SWEEPS_PER_BROWSER} sweep at a time: stop sweep "
                               f"{mine[0].sweep_id} first, or let it end.")

    def adopt(self, store: RunStore) -> list[str]:
        """The first time a store is seen: dashboard sweeps a stopped server left running go on; their ids."""
        key = str(store.root.resolve())
        with self._cond:
            if key in self._known_stores:
                return []
            self._known_stores.add(key)
        picked = []
        for summary in SweepStore(store).list():
            if summary.spec is None or summary.spec.origin != "dashboard" or summary.state is not RunState.INTERRUPTED:
                continue
            try:
                self.resume(store, summary.sweep_id)
                picked.append(summary.sweep_id)
            except ConvLabError:
                continue  # (a damaged sweep stays listed as it is)
        return picked

    def stop(self, sweep_id: str, cancel: bool = False) -> bool:
        """Ask no more trials: the queued ones are cancelled, the training ones end as they would (`cancel`:
        they stop now, keeping their weights). False when this driver does not drive it."""
        with self._cond:
            drive = self._drives.get(sweep_id)
            if drive is None:
                return False
            drive.stopping = "cancel" if cancel or drive.stopping == "cancel" else "stop"
            self._cond.notify_all()
        return True

    def driving(self) -> list[str]:
        with self._cond:
            return list(self._drives)

    def is_driving(self, sweep_id: str) -> bool:
        with self._cond:
            return sweep_id in self._drives

    def wait(self, sweep_id: str, timeout: float | None = None) -> bool:
        """Block until the sweep has ended (for the CLI and tests); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: sweep_id not in self._drives, timeout)

    def shutdown(self) -> None:
        """End the driver's thread; its sweeps are left interrupted on disk (a later driver goes on with them).
        Call it before the job manager's shutdown, which ends their runs."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=30)
        with self._cond:
            drives, self._drives = list(self._drives.values()), {}
            self._cond.notify_all()
        for drive in drives:
            try:
                drive.suspend()
            except (ConvLabError, OSError):
                continue

    def _drive(self, drive: _Drive, message: str) -> None:
        drive.say(message)
        with self._cond:
            self._drives[drive.sweep_id] = drive
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                drives = list(self._drives.values())
            for drive in drives:
                try:
                    ended = drive.step()
                    if not ended:
                        drive.say(drive.summary(RunState.STOPPING if drive.stopping else RunState.RUNNING))
                except Exception as error:  # noqa: BLE001 - one sweep's failure is said in its status, never the others'
                    drive.fail(error)
                    ended = True
                if ended:
                    with self._cond:
                        self._drives.pop(drive.sweep_id, None)
                        self._cond.notify_all()
            with self._cond:
                if not self._closed:
                    self._cond.wait(self.poll_s)


def final_value(store: RunStore, run_id: str, metric: str) -> float | None:
    """The run's metric at the epoch whose weights it kept (early stopping's best, else its last); None if none."""
    kept = next((int(e["value"]) for e in reversed(store.events(run_id)) if e.get("kind") == "kept"), None)
    rows = [row for row in store.epochs(run_id) if not row.get("partial")]
    chosen = [row for row in rows if row.get("epoch") == kept] or rows[-1:]
    value = chosen[0].get(metric) if chosen else None
    return float(value) if _finite(value) else None


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _metric(spec: SweepSpec, value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.1%}" if spec.metric == "val_accuracy" else f"{value:.4f}"

