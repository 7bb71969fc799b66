"""The run store: specs as plain data, atomic records, listings that survive damaged and abandoned runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from core import atomic
from core.data.dataset import DatasetRef
from core.errors import DataError, RunError
from core.model.architecture import PRESETS
from core.runs.compare import comparison_rows, spec_differences
from core.runs.logs import CsvLog
from core.runs.spec import RunSpec
from core.runs.status import Owner, RunState, RunStatus, effective_status
from core.runs.store import BATCHES, EPOCHS, SPEC, STATUS, RunStore
from core.runs.writer import MAX_BATCH_ROWS, RunWriter
from core.training.config import TRAINING_PRESETS, override
from core.training.progress import Progress

LAB = RunSpec(DatasetRef.of("builtin", "mnist-10k"), PRESETS["lab"], TRAINING_PRESETS["lab"], label="lab run")


@pytest.fixture()
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


def dead_owner() -> Owner:
    """A process that has ended: a child we started and waited for."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return Owner(child.pid, Owner.this_process().host, 12345)


# --- specs ---------------------------------------------------------------------------------------------


def test_spec_round_trips_through_json():
    spec = RunSpec(DatasetRef.of("images", "/data/leaves.zip", {"image_size": 64, "color_mode": "rgb"}),
                   PRESETS["fast"], override(TRAINING_PRESETS["fast"], seed=4), label="leaves", origin="cli")
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.seed == 4


@pytest.mark.parametrize("data, message", [
    ([], "a run spec must be a mapping, not list."),
    ({"dataset": LAB.dataset.to_dict(), "seed": 3}, "a run spec: unknown setting(s) 'seed'; known: dataset, "),
    ({"dataset": {"kind": "web", "name": "x", "options": {}}},
     "dataset kind == 'web', must be one of 'builtin', 'file', "),
    ({"dataset": "mnist"}, "a dataset reference needs a kind, a name and options"),
    ({"dataset": LAB.dataset.to_dict(), "architecture": None, "training": {"epochs": 0}},
     "epochs == 0, must be an integer from 1 to 500."),
])
def test_malformed_specs_are_refused_with_their_reason(data, message):
    with pytest.raises((RunError, DataError, ValueError), match=message.replace("(", r"\(").replace(")", r"\)")):
        RunSpec.from_dict(data)


def test_spec_differences_lists_only_the_settings_that_differ():
    other = replace(LAB, architecture=PRESETS["fast"], training=override(TRAINING_PRESETS["lab"], learning_rate=0.05))
    differences = spec_differences([LAB, other])
    assert differences["training.learning_rate"] == [0.01, 0.05]
    assert differences["architecture"] == ["lab_cnn", "fast_cnn"]
    assert differences["conv1.filters"] == [32, 16] and differences["conv2.filters"] == [None, 32]
    assert "training.momentum" not in differences and "dataset" not in differences
    assert spec_differences([LAB, LAB]) == {}


# --- creating, reading, listing ----------------------------------------------------------------------------


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


def test_delete_removes_an_ended_run_but_refuses_an_active_one(store):
    active = store.create(LAB)
    with pytest.raises(RunError, match="is still queued: stop or cancel it first"):
        store.delete(active)
    ended = store.create(LAB, state=RunState.FINISHED)
    store.delete(ended)
    assert not store.path(ended).exists() and store.run_ids() == [active]
    with pytest.raises(RunError, match="does not exist"):
        store.delete(ended)


# --- writing as training goes ------------------------------------------------------------------------------


def test_atomic_writes_leave_the_old_file_when_a_write_fails(tmp_path):
    target = tmp_path / "status.json"
    atomic.write_json(target, {"state": "running"})

    def explode(handle) -> None:
        handle.write(b"{ half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_with(target, explode)
    assert json.loads(target.read_text()) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left behind
    with pytest.raises(ValueError):
        atomic.write_json(target, {"loss": float("nan")})  # never a file that JSON readers reject
    assert json.loads(target.read_text()) == {"state": "running"}


def test_csv_log_reads_only_complete_lines_and_continues_where_it_stopped(tmp_path):
    path = tmp_path / EPOCHS
    log = CsvLog(path)
    assert log.read() == []
    atomic.append_line(path, "epoch,loss,partial")
    atomic.append_line(path, "1,0.5,False")
    with open(path, "a") as handle:
        handle.write("2,0.4")  # a line still being written
    assert log.read() == [{"epoch": 1, "loss": 0.5, "partial": False}]
    with open(path, "a") as handle:
        handle.write(",True\n")
    assert log.read() == [{"epoch": 1, "loss": 0.5, "partial": False}, {"epoch": 2, "loss": 0.4, "partial": True}]


def test_writer_streams_epochs_thins_batches_and_throttles_status(store):
    run_id = store.create(LAB)
    total_steps = 10 * MAX_BATCH_ROWS
    writer = RunWriter(store, run_id, total_steps=total_steps)
    writer.begin()
    assert store.raw_status(run_id).state is RunState.RUNNING
    for step in range(1, total_steps + 1):
        writer.on_batch({"step": step, "epoch": 1, "batch": step, "loss": 1 / step, "accuracy": 0.5,
                         "elapsed_s": step / 1000}, Progress(epoch=1, epochs=1, batch=step, batches_per_epoch=total_steps))
    writer.on_epoch({"epoch": 1, "step": total_steps, "loss": 0.1, "accuracy": 0.9, "epoch_s": 1.0, "elapsed_s": 1.0,
                     "partial": False})
    batches = CsvLog(store.path(run_id) / BATCHES).read()
    assert batches[0]["step"] == 1 and MAX_BATCH_ROWS <= len(batches) <= MAX_BATCH_ROWS + 1
    assert store.epochs(run_id) == [{"epoch": 1, "step": total_steps, "loss": 0.1, "accuracy": 0.9, "epoch_s": 1.0,
                                     "elapsed_s": 1.0, "partial": False}]
    assert store.raw_status(run_id).progress.batch == total_steps  # an epoch's end always writes the status
    writer.end(RunState.FINISHED, "Training finished.")
    summary = store.summary(run_id)
    assert summary.state is RunState.FINISHED and summary.epochs_done == 1 and summary.best_val_accuracy is None


def test_test_metrics_and_comparison_rows(store):
    first, second = store.create(LAB), store.create(replace(LAB, training=override(LAB.training, seed=3)))
    for run_id, loss in ((first, 0.3), (second, 0.2)):
        writer = RunWriter(store, run_id)
        writer.on_epoch({"epoch": 1, "step": 10, "loss": loss, "accuracy": 0.9, "val_loss": loss, "val_accuracy": 0.8,
                         "epoch_s": 1.0, "elapsed_s": 1.0, "partial": False})
    store.write_test(first, {"accuracy": 0.97, "loss": 0.1}, np.eye(10, dtype=np.float32))
    assert store.test_metrics(first)["accuracy"] == 0.97
    assert store.test_probabilities(first).shape == (10, 10) and store.test_probabilities(second) is None
    rows = comparison_rows(store, [first, second])
    assert [(row["run"], row["epoch"], row["loss"], row["training.seed"]) for row in rows] == [
        (first, 1, 0.3, 0), (second, 1, 0.2, 3)]
    assert rows[0]["test_accuracy"] == 0.97 and rows[1]["test_accuracy"] is None


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
