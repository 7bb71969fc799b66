"""A run's state and who owns it: an owner is alive while its process is (or, on another machine, its heartbeat)."""

from __future__ import annotations

import time
from dataclasses import replace

from core.runs.status import Owner, RunState, RunStatus, effective_status


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
