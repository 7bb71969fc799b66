"""One run executed from its spec alone, in this process: everything it keeps, stops, failures."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from core.data.dataset import DatasetRef
from core.engine.execute import execute
from core.runs.spec import RunSpec
from core.runs.status import RunState
from core.runs.store import CONFUSION, FILTERS, MODEL, TENSORBOARD, RunStore
from core.training.controls import Controls, Halt
from tests.core.engine.conftest import PAUSABLE, QUICK, TINY, same_training, spec


@pytest.fixture(scope="module")
def executed(tmp_path_factory, bars_file):
    store = RunStore(tmp_path_factory.mktemp("runs"))
    run_id = store.create(spec(bars_file))
    return store, run_id, execute(store, run_id)


def test_execute_trains_from_the_spec_alone_and_keeps_everything(executed):
    store, run_id, state = executed
    assert state is RunState.FINISHED
    folder = store.path(run_id)
    assert {"spec.json", "status.json", "epochs.csv", "batches.csv", MODEL, "test.json", "test_probabilities.npy",
            CONFUSION, FILTERS, TENSORBOARD} <= {path.name for path in folder.iterdir()}
    status = store.status(run_id)
    assert (status.state, status.message) == (RunState.FINISHED, "Training finished.")
    assert status.started is not None and status.ended >= status.started and status.progress.fraction == 1.0
    assert [row["epoch"] for row in store.epochs(run_id)] == [1, 2]
    events = list((folder / TENSORBOARD).rglob("events.out.tfevents.*"))
    assert {path.parent.name for path in events} >= {"train", "validation"}  # `tensorboard --logdir runs`


def test_the_saved_model_scores_what_the_store_says(executed, bars):
    from core.evaluation.metrics import evaluate
    from core.model.files import load_model_file

    store, run_id, _ = executed
    model = load_model_file(store.path(run_id) / MODEL)
    result = evaluate(model, bars.x_test, bars.y_test, bars.class_names)
    assert store.test_metrics(run_id)["accuracy"] == pytest.approx(result.accuracy)
    assert store.test_metrics(run_id)["images"] == 80
    np.testing.assert_allclose(store.test_probabilities(run_id), result.probabilities, atol=1e-5)


def test_the_confusion_matrix_is_recorded_after_every_epoch(executed):
    store, run_id, _ = executed
    matrices = json.loads((store.path(run_id) / CONFUSION).read_text())
    assert [entry["epoch"] for entry in matrices] == [1, 2]
    for entry in matrices:
        matrix = np.array(entry["matrix"])
        assert matrix.shape == (4, 4) and matrix.sum() == 24  # the 10 % of 240 bars held out
    kernels = np.load(store.path(run_id) / FILTERS)
    assert kernels.shape == (3, 3, 1, 8)


def test_the_same_spec_gives_the_same_metrics(executed, bars_file):
    store, first, _ = executed
    again = store.create(spec(bars_file))
    assert execute(store, again) is RunState.FINISHED
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    assert [[row[k] for k in keys] for row in store.epochs(first)] == [[row[k] for k in keys] for row in store.epochs(again)]
    assert store.test_metrics(first)["accuracy"] == store.test_metrics(again)["accuracy"]


def test_a_stop_keeps_the_weights_and_still_scores_the_model(tmp_path, bars_file):
    store = RunStore(tmp_path)
    run_id = store.create(spec(bars_file, replace(QUICK, epochs=50)))
    controls = Controls()
    state = execute(store, run_id, controls, on_epoch=lambda record: controls.stop())
    assert state is RunState.STOPPED
    # the stop came after epoch 1; an epoch of the bars is one chunk of batches: it stops as epoch 2 ends
    assert store.status(run_id).message.startswith("Stopped by the user at the end of epoch 2/50")
    assert store.has_model(run_id) and store.test_metrics(run_id) is not None
    assert len(store.epochs(run_id)) == 2  # the epoch the stop was asked in, and the one it stopped in


def test_when_the_server_goes_the_run_is_interrupted_with_its_weights(tmp_path, bars_file):
    store = RunStore(tmp_path)
    run_id = store.create(spec(bars_file, replace(QUICK, epochs=50)))
    controls = Controls()
    state = execute(store, run_id, controls, on_epoch=lambda record: controls.halt(Halt.SERVER_GONE))
    assert state is RunState.INTERRUPTED and store.has_model(run_id) and store.has_checkpoint(run_id, "last")
    assert store.status(run_id).message.startswith("The server stopped at the end of epoch 2/50")
    assert store.status(run_id).message.endswith("Resume goes on from there.")


def test_a_dataset_that_cannot_be_loaded_fails_the_run_with_the_reason(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create(RunSpec(DatasetRef.of("file", str(tmp_path / "gone.npz")), TINY, QUICK))
    assert execute(store, run_id) is RunState.FAILED
    assert store.status(run_id).message == f"{tmp_path / 'gone.npz'}: no such file or folder."
    assert not store.has_model(run_id)


def test_the_confusion_matrix_per_epoch_is_the_one_the_engine_computes(tmp_path, bars_file, monkeypatch):
    """As the engine runs it: after each epoch, the fixed subset of the run's own validation images (its split,
    its seed) is scored; the last matrix is the saved model's, and every matrix counts the whole subset."""
    from core.data.registry import load_ref
    from core.data.splits import fixed_subset, split_validation
    from core.evaluation.metrics import confusion_counts
    from core.model.files import load_model_file
    from core.training import callbacks

    monkeypatch.setattr(callbacks, "CONFUSION_SUBSET", 10)  # fewer than the 48 held out: which 10 matters
    store = RunStore(tmp_path)
    run_id = store.create(spec(bars_file, replace(QUICK, validation_fraction=0.2, seed=5)))
    assert execute(store, run_id) is RunState.FINISHED

    config, dataset = store.spec(run_id).training, load_ref(store.spec(run_id).dataset)
    _, _, x_val, y_val = split_validation(dataset.x_train, dataset.y_train, config.validation_fraction, config.seed)
    subset = fixed_subset(len(x_val), callbacks.CONFUSION_SUBSET, config.seed)
    assert (len(x_val), len(subset)) == (48, 10)
    model = load_model_file(store.model_path(run_id))
    expected = confusion_counts(model.predict_on_batch, x_val[subset], y_val[subset], dataset.num_classes)
    recorded = store.confusion(run_id)
    assert [entry["epoch"] for entry in recorded] == [1, 2]
    assert recorded[-1]["matrix"] == expected.tolist()
    assert all(int(np.sum(entry["matrix"])) == len(subset) for entry in recorded)
    np.testing.assert_array_equal(np.sum(recorded[-1]["matrix"], axis=1),
                                  np.bincount(y_val[subset], minlength=dataset.num_classes))


def test_a_paused_run_resumes_where_it_paused_and_ends_as_if_never_paused(tmp_path, bars_file, never_paused):
    store = RunStore(tmp_path)
    run_id = store.create(spec(bars_file, PAUSABLE))
    controls = Controls()
    controls.pause()  # taken at the end of the first chunk of batches
    assert execute(store, run_id, controls) is RunState.PAUSED
    status = store.status(run_id)
    assert status.message == "Paused in epoch 1/3, after batch 32/216; Resume goes on from there."
    assert store.has_checkpoint(run_id, "last") and store.has_model(run_id) and store.test_metrics(run_id) is None
    assert status.progress.batch == 32 and status.ended is not None
    assert execute(store, run_id) is RunState.FINISHED
    assert store.status(run_id).started == status.started  # the same run, started once
    assert [e["kind"] for e in store.events(run_id)] == ["paused", "resumed"]
    assert same_training(store, run_id, *never_paused)


def test_a_run_resumed_after_a_crash_forgets_what_it_logged_after_its_checkpoint(tmp_path, bars_file, never_paused):
    store = RunStore(tmp_path)
    run_id = store.create(spec(bars_file, PAUSABLE))
    controls = Controls()
    execute(store, run_id, controls, on_epoch=lambda record: controls.pause() if record["epoch"] == 1 else None)
    # as if the worker had gone on into epoch 2 and died there, after logging some of it
    store.append_batch(run_id, {"step": 300, "epoch": 2, "batch": 84, "loss": 9.0, "accuracy": 0.0})
    store.append_event(run_id, {"kind": "learning_rate", "value": 1.0, "step": 300, "by": "user"})
    assert execute(store, run_id) is RunState.FINISHED
    assert all(row["loss"] != 9.0 for row in store.reader(run_id).snapshot().batches)
    assert [e["kind"] for e in store.events(run_id)] == ["paused", "resumed"]
    assert same_training(store, run_id, *never_paused)


def test_a_worker_keeps_the_dataset_it_loaded_last_if_its_content_cannot_change(tmp_path):
    from core.engine.execute import RecentData
    from tests.conftest import bars_arrays

    data = RecentData()
    digits = DatasetRef.of("builtin", "digits-8x8")
    first = data.load(digits, None, False)
    assert data.load(digits, None, False) is first  # the next run on it starts without loading it
    # a file on disk may change between runs: it is read again each time
    path = tmp_path / "bars.npz"
    x_train, y_train, x_test, y_test = bars_arrays()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    ref = DatasetRef.of("file", str(path))
    assert data.load(ref, None, False).y_train.tolist() == y_train.tolist()
    np.savez(path, x_train=x_train, y_train=y_train[::-1], x_test=x_test, y_test=y_test)
    assert data.load(ref, None, False).y_train.tolist() == y_train[::-1].tolist()
    assert data.load(digits, None, False) is not first  # (only the last one is kept)

