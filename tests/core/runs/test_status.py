"""A run's state and who owns it: an owner is alive while its process is (or, on another machine, its heartbeat)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from core.runs.status import Owner, RunState, RunStatus, effective_status
from core.training.progress import Progress


def test_a_reused_pid_is_not_taken_for_the_owner():
    me = Owner.this_process()
    impostor = replace(me, started=me.started + 1)  # same pid, another start time: another process
    status = RunStatus(state=RunState.RUNNING, owner=impostor, heartbeat=time.time())
    assert effective_status(status).state is RunState.INTERRUPTED
    assert effective_status(replace(status, owner=me)).state is RunState.RUNNING


def test_a_run_owned_by_another_machine_lives_as_long_as_its_heartbeat():
    other = Owner(1, "another-host", 1)
    status = RunStatus(state=RunState.RUNNING, owner=other, heartbeat=time.time())
    assert effective_status(status).state is RunState.RUNNING
    assert effective_status(replace(status, heartbeat=time.time() - 3600)).state is RunState.INTERRUPTED


def test_a_status_round_trips_through_json_and_a_damaged_one_is_refused():
    status = RunStatus(state=RunState.RUNNING, message="Training…", created=1.0, started=2.0, heartbeat=3.0,
                       progress=Progress(epoch=2, epochs=10, batch=5, batches_per_epoch=282, eta_s=None),
                       owner=Owner(4242, "lab-pc", 987654))
    assert RunStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status
    assert status.to_dict()["state"] == "running" and status.training_s == 0.0
    newer = status.to_dict() | {"progress": {"epoch": 1, "loss_shown": 0.3}}  # a field this version does not know
    assert RunStatus.from_dict(newer).progress == Progress(epoch=1)
    damaged = [([1, 2], TypeError), ({"state": "exploded"}, ValueError), ({"message": "no state"}, KeyError),
               (status.to_dict() | {"progress": {"epoch": "two"}}, TypeError),  # pages do arithmetic on these
               (status.to_dict() | {"progress": {"batch": True}}, TypeError)]
    for data, error in damaged:
        with pytest.raises(error):
            RunStatus.from_dict(data)


def test_only_queued_and_training_runs_are_active():
    assert [state.value for state in RunState if state.is_active] == ["queued", "running", "stopping"]
    assert [state.value for state in RunState if state.is_training] == ["running", "stopping"]
    ended = RunStatus(state=RunState.FINISHED, owner=Owner(1, "another-host", 1), heartbeat=0.0)
    assert effective_status(ended) is ended  # an ended run stays as it ended, whoever owned it


def test_a_run_says_how_long_it_was_waited_for_once_it_has_ended():
    assert RunStatus(RunState.RUNNING, created=100.0, started=101.0).waited_s is None
    assert RunStatus(RunState.FINISHED, created=100.0, started=101.0, ended=103.5).waited_s == pytest.approx(3.5)
    assert RunStatus(RunState.FINISHED, ended=103.5).waited_s is None  # no creation time recorded
