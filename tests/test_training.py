"""Stage 3: training settings and the background training job (tiny data, one or two epochs)."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from core.architecture import PRESETS, Architecture, ConvBlock, DenseLayer
from core.errors import TrainingConfigError
from core.training import TRAINING_PRESETS, JobState, Progress, TrainingConfig, TrainingJob, override, train

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2, validation_fraction=0.1)
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


# --- settings ---------------------------------------------------------------------------------

BAD_SETTINGS = [
    ({"optimizer": "adamw"}, "optimizer 'adamw' is not one of sgd, adam, rmsprop."),
    ({"schedule": "step"}, "schedule 'step' is not one of constant, cosine."),
    ({"learning_rate": 0.0}, "learning rate == 0.0, must be in (0, 10]."),
    ({"learning_rate": -0.1}, "learning rate == -0.1, must be in (0, 10]."),
    ({"learning_rate": 11.0}, "learning rate == 11.0, must be in (0, 10]."),
    ({"learning_rate": math.nan}, "learning rate == nan, must be a number."),
    ({"learning_rate": "0.1"}, "learning rate == '0.1', must be a number."),
    ({"momentum": "high"}, "momentum == 'high', must be a number."),
    ({"learning_rate": True}, "learning rate == True, must be a number."),
    ({"momentum": 1.0}, "momentum == 1.0, must be in [0, 1)."),
    ({"momentum": -0.5}, "momentum == -0.5, must be in [0, 1)."),
    ({"batch_size": 0}, "batch size == 0, must be an integer from 1 to 8192."),
    ({"batch_size": 8193}, "batch size == 8193, must be an integer from 1 to 8192."),
    ({"batch_size": 32.0}, "batch size == 32.0, must be an integer from 1 to 8192."),
    ({"batch_size": True}, "batch size == True, must be an integer from 1 to 8192."),
    ({"epochs": 0}, "epochs == 0, must be an integer from 1 to 500."),
    ({"epochs": 501}, "epochs == 501, must be an integer from 1 to 500."),
    ({"epochs": 2.5}, "epochs == 2.5, must be an integer from 1 to 500."),
    ({"validation_fraction": 0.6}, "validation fraction == 0.6, must be in [0, 0.5]."),
    ({"validation_fraction": -0.1}, "validation fraction == -0.1, must be in [0, 0.5]."),
    ({"seed": -1}, "seed == -1, must be a non-negative integer."),
    ({"seed": 1.5}, "seed == 1.5, must be a non-negative integer."),
]


@pytest.mark.parametrize("change, message", BAD_SETTINGS, ids=[str(c) for c, _ in BAD_SETTINGS])
def test_bad_setting_is_refused_with_its_message(change, message):
    with pytest.raises(TrainingConfigError, match=f"^{re.escape(message)}$"):
        TrainingConfig(**change).validated()


def test_bad_setting_is_refused_before_any_model_is_built(bars):
    with pytest.raises(TrainingConfigError, match=r"^epochs == 0"):
        TrainingJob(TINY, bars, TrainingConfig(epochs=0))


@pytest.mark.parametrize("edge", [
    {"learning_rate": 10.0}, {"momentum": 0.0}, {"batch_size": 1}, {"batch_size": 8192}, {"epochs": 500},
    {"validation_fraction": 0.0}, {"validation_fraction": 0.5}, {"seed": 0},
])
def test_edges_of_the_ranges_are_accepted(edge):
    config = TrainingConfig(**edge)
    assert config.validated() is config


def test_presets_are_valid_and_lab_is_the_lab_recipe():
    lab = TRAINING_PRESETS["lab"]
    assert (lab.optimizer, lab.learning_rate, lab.momentum, lab.batch_size, lab.epochs) == ("sgd", 0.01, 0.9, 32, 10)
    assert lab.schedule == "constant"
    for preset in TRAINING_PRESETS.values():
        assert preset.validated() is preset


def test_override_replaces_only_given_settings_and_validates():
    config = override(TRAINING_PRESETS["lab"], epochs=2, batch_size=None)
    assert (config.epochs, config.batch_size, config.learning_rate) == (2, 32, 0.01)
    with pytest.raises(TrainingConfigError, match="batch size == 0"):
        override(TRAINING_PRESETS["lab"], batch_size=0)


def test_integer_learning_rate_and_momentum_are_accepted(bars):
    # A validated config must build: Keras itself refuses int rates, so the job converts them.
    job = TrainingJob(TINY, bars, TrainingConfig(learning_rate=1, momentum=0, epochs=1))
    assert math.isclose(float(job.model.optimizer.learning_rate.numpy()), 1.0)


# --- a job that runs to its end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(bars):
    """A two-epoch job on the bars, with every listener event recorded."""
    events: list[tuple[str, dict]] = []
    job = TrainingJob(TINY, bars, QUICK, listeners=[lambda kind, record: events.append((kind, record))])
    initial = [w.copy() for w in job.model.get_weights()]
    assert job.state is JobState.RUNNING and job.snapshot().batch_history == ()
    job.start()
    assert job.wait(timeout=120)
    return job, events, initial


def test_job_finishes_and_learns_the_bars(finished):
    job, _, initial = finished
    snap = job.snapshot()
    assert snap.state is JobState.FINISHED and snap.message == "Training finished."
    assert not snap.state.is_active
    assert snap.epoch_history[-1]["accuracy"] > 0.8  # four easy classes: chance is 0.25
    assert snap.epoch_history[-1]["loss"] < snap.epoch_history[0]["loss"]
    assert any(not np.array_equal(a, b) for a, b in zip(initial, job.model.get_weights()))


def test_epoch_history_has_every_metric_per_epoch(finished):
    job, _, _ = finished
    epochs = job.snapshot().epoch_history
    assert [row["epoch"] for row in epochs] == [1, 2]
    for row in epochs:
        assert all(math.isfinite(row[key]) for key in METRICS)
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["val_accuracy"] <= 1.0
        assert row["epoch_s"] > 0 and row["elapsed_s"] >= row["epoch_s"]
    assert epochs[1]["elapsed_s"] > epochs[0]["elapsed_s"]


def test_batch_history_grows_one_record_per_batch(finished):
    job, _, _ = finished
    snap = job.snapshot()
    per_epoch = math.ceil(job.train_size / QUICK.batch_size)
    assert (job.train_size, job.validation_size) == (216, 24)  # 240 bars, 10 % held out
    assert [b["step"] for b in snap.batch_history] == list(range(1, 2 * per_epoch + 1))
    assert [(b["epoch"], b["batch"]) for b in snap.batch_history] == [
        (e, b) for e in (1, 2) for b in range(1, per_epoch + 1)
    ]
    assert snap.epoch_history[0]["step"] == per_epoch and snap.epoch_history[1]["step"] == 2 * per_epoch
    assert all(math.isfinite(b["loss"]) and 0 <= b["accuracy"] <= 1 for b in snap.batch_history)


def test_progress_at_the_end(finished):
    job, _, _ = finished
    progress = job.snapshot().progress
    per_epoch = math.ceil(job.train_size / QUICK.batch_size)
    assert (progress.epoch, progress.epochs, progress.batch, progress.batches_per_epoch) == (2, 2, per_epoch, per_epoch)
    assert progress.fraction == 1.0
    assert progress.images_per_second > 0 and progress.elapsed_s > 0
    assert progress.eta_s == 0


def test_progress_fraction_counts_batches():
    assert Progress().fraction == 0.0
    assert Progress(epoch=1, epochs=2, batch=5, batches_per_epoch=10).fraction == 0.25
    assert Progress(epoch=2, epochs=2, batch=10, batches_per_epoch=10).fraction == 1.0


def test_history_has_keras_shape(finished):
    job, _, _ = finished
    history = job.history()
    assert list(history) == list(METRICS)
    assert all(len(values) == 2 and all(isinstance(v, float) for v in values) for values in history.values())
    assert history["val_accuracy"] == [row["val_accuracy"] for row in job.snapshot().epoch_history]


def test_listeners_get_batches_epochs_then_one_state(finished):
    job, events, _ = finished
    snap = job.snapshot()
    kinds = [kind for kind, _ in events]
    assert kinds.count("batch") == len(snap.batch_history)
    assert kinds.count("epoch") == 2
    assert kinds[-1] == "state" and kinds.count("state") == 1
    assert events[-1][1] == {"state": "finished", "message": "Training finished."}
    assert [record for kind, record in events if kind == "batch"] == list(snap.batch_history)
    assert [record for kind, record in events if kind == "epoch"] == list(snap.epoch_history)
    # each epoch event comes after that epoch's batches
    first_epoch_at = kinds.index("epoch")
    assert kinds[:first_epoch_at] == ["batch"] * snap.epoch_history[0]["step"]


def test_no_validation_split_gives_training_metrics_only(bars):
    job = train(TINY, bars, dataclasses.replace(QUICK, epochs=1, validation_fraction=0.0))
    assert job.state is JobState.FINISHED
    assert job.validation_size == 0 and job.train_size == len(bars.x_train)
    assert list(job.history()) == ["loss", "accuracy"]


# --- stopping, failing, running side by side ------------------------------------------------------


def test_stop_ends_the_job_within_a_batch_and_keeps_the_weights(bars):
    config = dataclasses.replace(QUICK, batch_size=8, epochs=20)  # 27 batches x 20 epochs if never stopped
    stopped_at: list[int] = []
    holder: dict[str, TrainingJob] = {}

    def stop_on_first_batch(kind: str, record: dict) -> None:
        if kind == "batch" and not stopped_at:
            stopped_at.append(record["step"])
            holder["job"].stop()
            assert holder["job"].state is JobState.STOPPING

    job = TrainingJob(TINY, bars, config, listeners=[stop_on_first_batch])
    holder["job"] = job
    initial = [w.copy() for w in job.model.get_weights()]
    job.start()
    assert job.wait(timeout=120)
    snap = job.snapshot()
    assert snap.state is JobState.STOPPED
    assert snap.message.startswith("Stopped by the user in epoch 1/20, after batch ")
    assert all(row["partial"] for row in snap.epoch_history)  # the interrupted epoch says so
    assert stopped_at == [1]
    assert len(snap.batch_history) <= 2  # the batch that saw the request, and at most the one in flight
    assert len(snap.epoch_history) <= 1 and snap.progress.epoch == 1
    assert snap.progress.fraction < 0.01
    assert any(not np.array_equal(a, b) for a, b in zip(initial, job.model.get_weights()))
    job.stop()  # stopping a job that has ended changes nothing
    assert job.state is JobState.STOPPED


def test_exploding_loss_fails_the_job_with_advice(bars):
    """SGD at the maximum rate on a deep ELU net overflows to NaN within the first epoch."""
    arch = Architecture(
        conv_blocks=(ConvBlock(filters=16, activation="elu", pooling="none"), ConvBlock(filters=16, activation="elu")),
        dense_layers=(DenseLayer(256, activation="elu"), DenseLayer(256, activation="elu")),
        name="explodes",
    )
    events: list[tuple[str, dict]] = []
    job = train(arch, bars, TrainingConfig(learning_rate=10.0, momentum=0.9, epochs=3),
                listeners=[lambda kind, record: events.append((kind, record))])
    snap = job.snapshot()
    assert snap.state is JobState.FAILED, snap.message
    assert re.match(r"^Training stopped: the loss became (nan|inf) at epoch 1, batch \d+\. "
                    r"The learning rate is probably too high", snap.message)
    assert snap.epoch_history == () and snap.progress.epoch <= 1
    assert all(math.isfinite(b["loss"]) for b in snap.batch_history)  # the bad batch is not recorded
    assert events[-1] == ("state", {"state": "failed", "message": snap.message})
    assert "loss" not in job.history()


def test_two_jobs_in_parallel_train_independently(bars):
    jobs = [
        TrainingJob(TINY, bars, dataclasses.replace(QUICK, seed=1)),
        TrainingJob(TINY, bars, dataclasses.replace(QUICK, seed=2, batch_size=16)),
    ]
    for job in jobs:
        job.start()
    assert all(job.wait(timeout=120) for job in jobs)
    assert [job.state for job in jobs] == [JobState.FINISHED, JobState.FINISHED]
    for job, per_epoch in zip(jobs, (7, 14)):
        snap = job.snapshot()
        assert snap.progress.batches_per_epoch == per_epoch
        assert [b["step"] for b in snap.batch_history] == list(range(1, 2 * per_epoch + 1))  # no records mixed
        assert len(snap.epoch_history) == 2
    assert jobs[0].history() != jobs[1].history()
    first, second = (job.model.get_weights() for job in jobs)
    assert not np.array_equal(first[0], second[0])


def test_snapshots_are_frozen_and_consistent_while_training(bars):
    job = TrainingJob(TINY, bars, dataclasses.replace(QUICK, batch_size=8, epochs=2)).start()
    seen = []
    while not job.wait(timeout=0.005):  # poll from this thread while the worker publishes
        seen.append(job.snapshot())
    seen.append(job.snapshot())
    versions = [s.version for s in seen]
    assert versions == sorted(versions)
    for snap in seen:
        if snap.batch_history:
            last = snap.batch_history[-1]
            assert (snap.progress.epoch, snap.progress.batch) == (last["epoch"], last["batch"])
            assert len(snap.batch_history) == last["step"]
        assert len(snap.epoch_history) <= max(snap.progress.epoch, 0)
    early, final = seen[0], seen[-1]
    assert len(early.batch_history) <= len(final.batch_history) == 2 * 27
    assert isinstance(final.batch_history, tuple) and isinstance(final.epoch_history, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        final.state = JobState.RUNNING  # type: ignore[misc]
    assert final.final_metrics() == final.epoch_history[-1] and final.final_metrics() is not final.epoch_history[-1]


def test_train_runs_a_preset_architecture_end_to_end(bars):
    job = train(PRESETS["lab"], bars, override(TRAINING_PRESETS["lab"], epochs=1))
    assert job.state is JobState.FINISHED and len(job.history()["loss"]) == 1
    assert job.model.name == "lab_cnn" and job.dataset_name == "bars"
