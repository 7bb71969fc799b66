"""Where sweeps are kept: a folder each beside the runs, read back whole, listed even when broken, interrupted
when the process that drove one has gone."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from core.errors import RunError
from core.runs.spec import RunSpec, SweepTag
from core.runs.status import RunState
from core.sweeps.store import SweepStore
from tests.core.runs.conftest import dead_owner
from tests.core.sweeps.conftest import QUICK, SMALL, details, sweep_spec


def test_a_sweep_is_kept_beside_the_runs_and_read_back(store, digits):
    sweeps = SweepStore(store)
    spec = sweep_spec(digits, label="rates")
    sweep_id = sweeps.create(spec, details(digits), made_by="00000000000000aa")
    assert sweeps.path(sweep_id).parent == store.root / "sweeps" and store.run_ids() == []  # never taken for a run
    assert sweeps.ids() == [sweep_id] and sweeps.exists(sweep_id) and sweeps.spec(sweep_id) == spec
    assert sweeps.made_by(sweep_id) == "00000000000000aa" and sweeps.details(sweep_id)["input_shape"] == [8, 8, 1]
    status = sweeps.status(sweep_id)
    assert status.state is RunState.RUNNING and status.owner.pid > 0
    (summary,) = sweeps.list()
    assert (summary.sweep_id, summary.label, summary.spec) == (sweep_id, "rates", spec)
    assert summary.editable_by("00000000000000aa") and not summary.editable_by("00000000000000bb")
    assert sweeps.journal_path(sweep_id).parent == sweeps.path(sweep_id)
    assert sweeps.write_trials_csv(sweep_id, "trial\n1\n").read_text() == "trial\n1\n"


def test_a_sweep_whose_process_has_gone_reads_as_interrupted(store, digits):
    sweeps = SweepStore(store)
    sweep_id = sweeps.create(sweep_spec(digits), details(digits))
    sweeps.write_status(sweep_id, replace(sweeps.raw_status(sweep_id), owner=dead_owner()))
    status = sweeps.status(sweep_id)
    assert status.state is RunState.INTERRUPTED and sweeps.raw_status(sweep_id).state is RunState.RUNNING
    assert status.message.startswith("The process that drove this sweep stopped")


def test_ids_from_outside_never_become_paths_and_broken_sweeps_are_listed_as_damaged(store, digits):
    sweeps = SweepStore(store)
    for bad in ("../runs", "20261206-101500-a1b2c3", "s2026"):
        with pytest.raises(RunError, match="is not a sweep id"):
            sweeps.path(bad)
        assert not sweeps.exists(bad)
    sweep_id = sweeps.create(sweep_spec(digits), details(digits))
    path = sweeps.path(sweep_id) / "sweep.json"
    path.write_text(json.dumps({"spec": {"trials": 3}}))
    (summary,) = sweeps.list()
    assert summary.state is RunState.DAMAGED and summary.spec is None and "is not a valid sweep" in summary.message
    path.write_text(json.dumps({"spec": sweep_spec(digits).to_dict(), "details": {"input_shape": "8x8"}}))
    with pytest.raises(RunError, match="does not say the images' shape and classes"):
        sweeps.details(sweep_id)


def test_a_trials_runs_are_found_by_their_tag(store, digits):
    sweeps = SweepStore(store)
    sweep_id = sweeps.create(sweep_spec(digits), details(digits))
    base = RunSpec(digits.ref, SMALL, QUICK)
    first = store.create(replace(base, sweep=SweepTag(sweep_id, 0)))
    store.create(base)
    store.create(replace(base, sweep=SweepTag("s20991231-235959-000000", 0)))
    again = store.create(replace(base, sweep=SweepTag(sweep_id, 0)))
    assert sweeps.trial_runs(sweep_id) == {0: sorted([first, again])}
    assert store.summary(first).sweep == f"{sweep_id} #1" and not store.summary(first).pruned
