"""Runs made from other runs: a continued run (its parent's final state, N more epochs) and a replay.

`continue_run` creates a child run that starts from its parent's final
weights and optimizer state (its last checkpoint), with the parent's records
copied up to there so its curves show both parts joined, and its own
learning-rate schedule over the epochs it adds. `replay_spec` is a run's spec
with the changes a person made while it trained, at the batches they took
effect: training it again gives the same weights. `ancestry` follows a run's
parents back to the first.
"""

from __future__ import annotations

from dataclasses import replace

from core.checks import check_scalar
from core.errors import RunError
from core.runs.spec import RunSpec
from core.runs.status import Owner, RunState
from core.runs.store import RunStore
from core.training.checkpoint import Checkpoint
from core.training.controls import replayable

MAX_ANCESTRY = 100


def continue_run(store: RunStore, parent_id: str, more_epochs: int, learning_rate: float | None = None,
                 origin: str = "dashboard", made_by: str = "", owner: Owner | None = None) -> str:
    """A new queued run that trains `parent_id`'s final state for `more_epochs` more epochs; returns its id.

    A parent stopped mid-epoch first finishes that epoch. `learning_rate` replaces the parent's (its
    schedule, if any, runs over the epochs added). RunError when the parent cannot be continued.
    """
    check_scalar(more_epochs, "more epochs", RunError, integer=True, lo=1, hi=500, what="an integer from 1 to 500")
    spec, status = store.spec(parent_id), store.status(parent_id)
    if spec.training is None or spec.architecture is None:
        raise RunError("An uploaded model has no training to continue.")
    if not status.state.is_continuable:
        raise RunError(f"This run is {status.state.value}: only a finished or stopped run can be continued"
                       + (" (resume a paused or interrupted one)." if status.state.is_resumable else "."))
    data = store.checkpoint_bytes(parent_id, "last")
    if data is None:
        raise RunError("This run has no final checkpoint to continue from (it was trained before ConvLab kept "
                       "them): train it again, or start a new run.")
    at = Checkpoint.from_bytes(data).position
    epochs = at.epoch + (1 if at.mid_epoch else 0) + more_epochs
    training = replace(spec.training, epochs=epochs,
                       learning_rate=spec.training.learning_rate if learning_rate is None else learning_rate)
    child = replace(spec, training=training.validated(), parent=parent_id, changes=(), origin=origin, sweep=None,
                    label=f"{store.label(parent_id) or parent_id} +{more_epochs}")
    run_id = store.create(child, store.spec_file(parent_id).get("details"), owner=owner, state=RunState.QUEUED,
                          message="Waiting for a free training slot.", made_by=made_by)
    store.start_from(run_id, store, parent_id, data, at.epoch, at.step)
    return run_id


def replay_spec(store: RunStore, run_id: str, origin: str = "cli") -> RunSpec:
    """`run_id`'s spec with the changes a person made while it trained (a replay of those too); a repeated sweep
    trial is no trial of that sweep."""
    spec = store.spec(run_id)
    planned = {(change.kind, change.step) for change in spec.changes}
    made = [change for change in replayable(store.events(run_id)) if (change.kind, change.step) not in planned]
    return replace(spec, origin=origin, sweep=None,
                   changes=tuple(sorted((*spec.changes, *made), key=lambda c: c.step or 0)))


def replay_run(source: RunStore, run_id: str, store: RunStore, label: str = "", origin: str = "cli") -> str:
    """A new run in `store` that trains `run_id` of `source` again: its spec, its seed, the changes made to it
    by hand at the same batches, and for a continued run the same starting state. Returns its id."""
    spec = replay_spec(source, run_id, origin)
    if spec.architecture is None or spec.training is None:
        raise RunError(f"run {run_id} is an uploaded model: it has no training to repeat.")
    start = source.checkpoint_bytes(run_id, "start") if spec.parent else None
    if spec.parent and start is None:
        raise RunError(f"run {run_id} continues run {spec.parent}, but the state it started from is missing.")
    new_id = store.create(replace(spec, label=label or f"repeat of {run_id}"), source.spec_file(run_id).get("details"))
    if start is not None:
        at = Checkpoint.from_bytes(start).position
        store.start_from(new_id, source, run_id, start, at.epoch, at.step)
    return new_id


def ancestry(store: RunStore, run_id: str) -> list[str]:
    """`run_id`'s parent, its parent's parent, … (those still in the store), nearest first."""
    chain: list[str] = []
    current = run_id
    while len(chain) < MAX_ANCESTRY:
        try:
            parent = store.spec(current).parent
        except RunError:
            break
        if not parent or parent in chain or not store.exists(parent):
            break
        chain.append(parent)
        current = parent
    return chain


def children(store: RunStore, run_id: str) -> list[str]:
    """The runs that continue `run_id`."""
    return [summary.run_id for summary in store.list() if summary.parent == run_id]
