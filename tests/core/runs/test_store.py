"""The run store: every file of a run, listings that survive damaged and abandoned runs, deleting, uploaded datasets."""

from __future__ import annotations

import json
import os
import time

import pytest

from core import atomic
from core.errors import RunError
from core.runs.status import Owner, RunState
from core.runs.store import SPEC, STATUS, RunStore
from core.runs.writer import RunWriter
from core.training.progress import Progress
from tests.core.runs.conftest import LAB, dead_owner


def test_a_new_run_is_queued_with_its_spec_details_and_library_versions(store):
    run_id = store.create(LAB, {"params": 542_230, "dataset_name": "mnist"})
    assert store.exists(run_id) and store.run_ids() == [run_id]
    spec_file = json.loads((store.path(run_id) / SPEC).read_text())
    assert spec_file["schema"] == 1 and spec_file["details"]["params"] == 542_230
    assert {"python", "numpy", "keras"} <= set(spec_file["versions"])
    assert store.spec(run_id) == LAB
    status = store.status(run_id)
    assert status.state is RunState.QUEUED and status.owner == Owner.this_process()
    summary = store.summary(run_id)
    assert (summary.label, summary.dataset, summary.architecture, summary.params) == (
        "lab run", "mnist", "conv 32 · dense 100", 542_230)
    assert (summary.epochs_done, summary.epochs_total, summary.test_accuracy) == (0, 10, None)


@pytest.mark.parametrize("bad_id", ["../etc", "20261127-120000-zzzzzz", "", "20261127-120000-abcdef/../x", None])
def test_only_run_ids_become_paths(store, bad_id):
    with pytest.raises(RunError, match="is not a run id"):
        store.path(bad_id)
    assert not store.exists(bad_id)


def test_label_edits_are_kept_apart_from_the_spec(store):
    run_id = store.create(LAB)
    store.set_label(run_id, "my best one")
    assert store.label(run_id) == "my best one" and store.spec(run_id).label == "lab run"


def test_listing_survives_damaged_and_half_written_runs(store):
    good = store.create(LAB)
    no_spec = store.create(LAB)
    (store.path(no_spec) / SPEC).unlink()
    garbage = store.create(LAB)
    (store.path(garbage) / SPEC).write_text("{ not json")
    wrong_spec = store.create(LAB)
    atomic.write_json(store.path(wrong_spec) / SPEC, {"schema": 1, "spec": {"dataset": 3}})
    no_status = store.create(LAB)
    (store.path(no_status) / STATUS).unlink()
    (store.root / "notes.txt").write_text("not a run")
    (store.root / "not-a-run-folder").mkdir()

    rows = {row.run_id: row for row in store.list()}
    assert set(rows) == {good, no_spec, garbage, wrong_spec, no_status}
    assert rows[good].state is RunState.QUEUED
    assert rows[no_spec].state is RunState.DAMAGED and "spec.json is missing" in rows[no_spec].message
    assert rows[garbage].state is RunState.DAMAGED and "spec.json cannot be read" in rows[garbage].message
    assert rows[wrong_spec].state is RunState.DAMAGED and "not a valid spec" in rows[wrong_spec].message
    assert rows[no_status].state is RunState.INTERRUPTED and "status.json is missing" in rows[no_status].message


def test_a_run_whose_owner_died_is_listed_as_interrupted_and_marked_so(store):
    run_id = store.create(LAB, owner=dead_owner())
    writer = RunWriter(store, run_id)
    writer.update(force=True, state=RunState.RUNNING, started=time.time(),
                  progress=Progress(epoch=3, epochs=10, batch=5, batches_per_epoch=282))
    assert store.raw_status(run_id).state is RunState.RUNNING  # as written …
    status = store.status(run_id)  # … but its process has gone
    assert status.state is RunState.INTERRUPTED
    assert status.message.startswith("The training process ended without finishing, in epoch 3/10")
    assert store.mark_interrupted() == [run_id]
    assert store.raw_status(run_id).state is RunState.INTERRUPTED and store.raw_status(run_id).ended is not None
    assert store.mark_interrupted() == []


def test_a_queued_run_of_a_dead_server_is_interrupted_but_a_live_one_is_not(store):
    orphan = store.create(LAB, owner=dead_owner())
    alive = store.create(LAB)
    assert store.status(orphan).state is RunState.INTERRUPTED
    assert store.status(orphan).message == "The server stopped before this run started."
    assert store.status(alive).state is RunState.QUEUED


def test_delete_removes_an_ended_run_but_refuses_an_active_one(store):
    active = store.create(LAB)
    with pytest.raises(RunError, match="is still queued: stop or cancel it first"):
        store.delete(active)
    ended = store.create(LAB, state=RunState.FINISHED)
    store.delete(ended)
    assert not store.path(ended).exists() and store.run_ids() == [active]
    with pytest.raises(RunError, match="does not exist"):
        store.delete(ended)


def test_uploaded_datasets_are_kept_once_by_content(store):
    digest, path = store.store_dataset_file(b"some bytes", "mine.npz", ".npz")
    again, same = store.store_dataset_file(b"some bytes", "renamed.npz", ".npz")
    assert (digest, path) == (again, same) and path.read_bytes() == b"some bytes"
    assert store.stored_dataset_path(digest, ".npz") == path
    with pytest.raises(RunError, match="is not the SHA-256"):
        store.stored_dataset_path("../../etc/passwd", ".npz")


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVLAB_RUNS", str(tmp_path / "elsewhere"))
    assert RunStore().root == tmp_path / "elsewhere"
    monkeypatch.delenv("CONVLAB_RUNS")
    assert RunStore().root == __import__("pathlib").Path("runs")
    assert os.environ.get("CONVLAB_RUNS") is None


def test_an_export_is_kept_with_its_check_until_the_model_changes(store):
    run_id = store.create(LAB)
    store.write_model_bytes(run_id, b"weights")
    path = store.keep_export(run_id, ".onnx", b"onnx bytes", {"max_difference": 1e-7})
    assert path == store.path(run_id) / "exports" / "model.onnx" and path.read_bytes() == b"onnx bytes"
    kept, record = store.kept_export(run_id, ".onnx")
    assert kept == path and record["max_difference"] == 1e-7
    assert store.kept_export(run_id, ".tflite") is None
    later = time.time() + 5
    store.write_model_bytes(run_id, b"new weights")
    os.utime(store.model_path(run_id), (later, later))
    assert store.kept_export(run_id, ".onnx") is None  # made from another model: made again
    with pytest.raises(RunError, match="not an export format"):
        store.keep_export(run_id, "/../spec.json", b"", {})


def test_checkpoints_and_events_are_kept_in_the_run(store):
    run_id = store.create(LAB)
    assert store.checkpoint_bytes(run_id, "last") is None and not store.has_checkpoint(run_id, "best")
    store.write_checkpoint(run_id, "last", b"state")
    assert store.checkpoint_bytes(run_id, "last") == b"state" and store.has_checkpoint(run_id, "last")
    with pytest.raises(RunError, match="not a checkpoint"):
        store.write_checkpoint(run_id, "../spec", b"x")
    store.append_event(run_id, {"kind": "paused", "step": 40})
    assert store.events(run_id) == [{"kind": "paused", "step": 40}]
    assert store.reader(run_id).snapshot().events == ({"kind": "paused", "step": 40},)


def test_rewinding_drops_what_a_run_recorded_after_its_checkpoint(store):
    run_id = store.create(LAB)
    for epoch in (1, 2, 3):
        store.append_epoch(run_id, {"epoch": epoch, "step": epoch * 10, "loss": 1 / epoch, "partial": epoch == 3})
    for step in range(1, 36, 5):
        store.append_batch(run_id, {"step": step, "epoch": step // 10 + 1, "batch": step % 10, "loss": 0.5})
    store.append_event(run_id, {"kind": "learning_rate", "step": 12})
    store.append_event(run_id, {"kind": "epochs", "step": 24})
    store.write_confusion(run_id, [{"epoch": e, "matrix": [[1]]} for e in (1, 2, 3)])
    reader = store.reader(run_id)
    assert len(reader.snapshot().epochs) == 3
    store.rewind(run_id, epochs=2, step=20)  # the checkpoint: the end of epoch 2
    assert [row["epoch"] for row in store.epochs(run_id)] == [1, 2]
    assert [row["epoch"] for row in reader.snapshot().epochs] == [1, 2]  # a reader following the run sees it
    assert max(row["step"] for row in reader.snapshot().batches) <= 20
    assert [event["kind"] for event in store.events(run_id)] == ["learning_rate"]
    assert [record["epoch"] for record in store.confusion(run_id)] == [1, 2]


def test_a_continued_run_starts_with_its_parents_state_and_records(store):
    parent = store.create(LAB)
    store.append_epoch(parent, {"epoch": 1, "step": 10, "loss": 0.5, "partial": False})
    store.append_epoch(parent, {"epoch": 2, "step": 15, "loss": 0.4, "partial": True})  # stopped mid-epoch
    child = store.create(LAB)
    store.start_from(child, store, parent, b"final state", epochs=1, step=15)
    assert store.checkpoint_bytes(child, "start") == b"final state" and store.checkpoint_bytes(child, "last") is None
    assert [row["epoch"] for row in store.epochs(child)] == [1]  # the partial epoch will be finished by the child
    assert [row["epoch"] for row in store.epochs(parent)] == [1, 2]  # the parent's own records are untouched
