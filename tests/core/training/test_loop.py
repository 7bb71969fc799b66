"""Stage 3: one training in the calling thread (tiny data, one or two epochs): records, progress, seeding, stops and failures."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from core.errors import TrainingConfigError
from core.model.architecture import PRESETS, Architecture, ConvBlock, DenseLayer
from core.model.build import build_model
from core.runs.status import RunState
from core.training.config import TRAINING_PRESETS, TrainingConfig, override
from core.training.controls import Controls
from core.training.loop import MAX_STEPS_PER_EXECUTION, steps_per_execution, train
from core.training.progress import MemorySink

TINY = Architecture(conv_blocks=(ConvBlock(filters=8),), dense_layers=(DenseLayer(units=16),), name="tiny")
QUICK = TrainingConfig(optimizer="adam", learning_rate=0.01, batch_size=32, epochs=2, validation_fraction=0.1)
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def test_bad_setting_is_refused_before_any_model_is_built(bars):
    with pytest.raises(TrainingConfigError, match=r"^epochs == 0"):
        train(TINY, bars, TrainingConfig(epochs=0))


def test_integer_learning_rate_and_momentum_are_accepted(bars):
    # A validated config must build: Keras itself refuses int rates, so they are converted.
    result = train(TINY, bars, TrainingConfig(learning_rate=1, momentum=0, epochs=1))
    assert math.isclose(float(result.model.optimizer.learning_rate.numpy()), 1.0)


# --- steps per execution ----------------------------------------------------------------------------


def test_small_models_run_many_batches_per_call_and_heavy_ones_few():
    lab = steps_per_execution(PRESETS["lab"], (28, 28, 1), 10, batch_size=32, steps_per_epoch=282)
    assert 8 <= lab <= MAX_STEPS_PER_EXECUTION
    heavy = Architecture(conv_blocks=(ConvBlock(filters=64, kernel_size=5, padding="same", pooling="none"),
                                      ConvBlock(filters=64, kernel_size=5, padding="same")), dense_layers=())
    assert steps_per_execution(heavy, (64, 64, 3), 10, batch_size=256, steps_per_epoch=100) == 1
    assert steps_per_execution(PRESETS["lab"], (28, 28, 1), 10, batch_size=32, steps_per_epoch=3) == 3


# --- a training that runs to its end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(bars):
    """A two-epoch training on the bars, with every reported record kept."""
    sink = MemorySink()
    result = train(TINY, bars, QUICK, sink=sink)
    return result, sink


def test_training_finishes_and_learns_the_bars(finished):
    result, _ = finished
    assert (result.outcome, result.message) == (RunState.FINISHED, "Training finished.")
    assert result.epochs[-1]["accuracy"] > 0.8  # four easy classes: chance is 0.25
    assert result.epochs[-1]["loss"] < result.epochs[0]["loss"]
    assert result.model.name == "tiny"


def test_the_validations_traced_forward_pass_scores_the_test_set_as_a_fresh_one_does(finished, bars):
    from core.evaluation.metrics import evaluate

    result, _ = finished
    assert result.forward is not None and result.forward.model is result.model  # traced by the validation
    reused = evaluate(result.model, bars.x_test, bars.y_test, bars.class_names, forward=result.forward)
    fresh = evaluate(result.model, bars.x_test, bars.y_test, bars.class_names)
    np.testing.assert_allclose(reused.probabilities, fresh.probabilities, rtol=1e-5, atol=1e-6)
    assert reused.accuracy == fresh.accuracy


def test_epoch_records_have_every_metric(finished):
    result, sink = finished
    assert [row["epoch"] for row in result.epochs] == [1, 2]
    assert sink.epochs == result.epochs
    for row in result.epochs:
        assert all(math.isfinite(row[key]) for key in METRICS)
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["val_accuracy"] <= 1.0
        assert row["epoch_s"] > 0 and row["elapsed_s"] >= row["epoch_s"] and row["partial"] is False
    assert result.epochs[1]["elapsed_s"] > result.epochs[0]["elapsed_s"]


def test_batch_records_come_once_per_chunk_and_end_each_epoch(finished):
    result, sink = finished
    per_epoch = math.ceil(result.train_size / QUICK.batch_size)
    assert (result.train_size, result.validation_size) == (216, 24)  # 240 bars, 10 % held out
    steps = [b["step"] for b in result.batches]
    assert steps == sorted(steps) and steps[-1] == 2 * per_epoch
    assert {(b["epoch"], b["batch"]) for b in result.batches} >= {(1, per_epoch), (2, per_epoch)}
    assert all(b["step"] == (b["epoch"] - 1) * per_epoch + b["batch"] for b in result.batches)
    assert [row["step"] for row in result.epochs] == [per_epoch, 2 * per_epoch]
    assert all(math.isfinite(b["loss"]) and 0 <= b["accuracy"] <= 1 for b in result.batches)
    assert sink.batches == result.batches


def test_progress_at_the_end(finished):
    result, _ = finished
    progress = result.progress
    per_epoch = math.ceil(result.train_size / QUICK.batch_size)
    assert (progress.epoch, progress.epochs, progress.batch, progress.batches_per_epoch) == (2, 2, per_epoch, per_epoch)
    assert progress.fraction == 1.0
    assert progress.images_per_second > 0 and progress.elapsed_s > 0
    assert progress.eta_s == 0


def test_history_has_keras_shape(finished):
    result, _ = finished
    history = result.history()
    assert list(history) == list(METRICS)
    assert all(len(values) == 2 and all(isinstance(v, float) for v in values) for values in history.values())


def test_no_validation_split_gives_training_metrics_only(bars):
    result = train(TINY, bars, dataclasses.replace(QUICK, epochs=1, validation_fraction=0.0))
    assert result.outcome == RunState.FINISHED
    assert result.validation_size == 0 and result.train_size == len(bars.x_train)
    assert list(result.history()) == ["loss", "accuracy"]


def test_the_same_seed_gives_the_same_metrics_and_another_seed_does_not(bars):
    config = dataclasses.replace(QUICK, epochs=2, batch_size=16)
    first, again = train(TINY, bars, config), train(TINY, bars, config)
    other = train(TINY, bars, dataclasses.replace(config, seed=7))
    assert first.epochs[-1]["loss"] > 0
    assert [(r["loss"], r["val_accuracy"]) for r in first.epochs] == [(r["loss"], r["val_accuracy"]) for r in again.epochs]
    assert all(np.array_equal(a, b) for a, b in zip(first.model.get_weights(), again.model.get_weights()))
    assert first.epochs[0]["loss"] != other.epochs[0]["loss"]


# --- stopping and failing ---------------------------------------------------------------------------


def test_stop_ends_training_within_a_chunk_and_keeps_the_weights(bars):
    config = dataclasses.replace(QUICK, batch_size=4, epochs=20)  # 54 batches x 20 epochs if never stopped
    controls = Controls()
    controls.stop()  # asked before the first chunk ends
    result = train(TINY, bars, config, controls=controls)
    chunk = steps_per_execution(TINY, bars.input_shape, bars.num_classes, 4, 54)
    assert result.outcome == RunState.STOPPED
    assert [(e["kind"], e["step"], e["by"]) for e in result.events] == [("stop", chunk, "user")]  # for a replay
    assert result.message == (f"Stopped by the user in epoch 1/20, after batch {chunk}/54; "
                               "the weights learned so far are kept.")
    assert [b["step"] for b in result.batches] == [chunk]  # one chunk of batches, then the stop
    assert [row["partial"] for row in result.epochs] == [True]  # the interrupted epoch says so
    assert result.progress.fraction < 0.05
    initial = build_model(TINY, bars.input_shape, bars.num_classes, seed=config.seed)  # the same seeded start
    assert any(not np.array_equal(a, b) for a, b in zip(initial.get_weights(), result.model.get_weights()))


EXPLODES = Architecture(
    conv_blocks=(ConvBlock(filters=16, activation="elu", pooling="none"), ConvBlock(filters=16, activation="elu")),
    dense_layers=(DenseLayer(256, activation="elu"), DenseLayer(256, activation="elu")),
    name="explodes",
)


def test_exploding_loss_fails_the_training_with_advice(bars):
    """SGD at the maximum rate on a deep ELU net overflows to NaN within the first epoch."""
    sink = MemorySink()
    result = train(EXPLODES, bars, TrainingConfig(learning_rate=10.0, momentum=0.9, epochs=3), sink=sink)
    assert result.outcome == RunState.FAILED, result.message
    assert re.match(r"^Training stopped: the loss became (nan|inf) at epoch 1, batch \d+\. "
                    r"The learning rate is probably too high", result.message)
    assert result.epochs == [] and result.progress.epoch <= 1
    assert all(math.isfinite(b["loss"]) for b in result.batches)  # the bad batch is not recorded
    assert "loss" not in result.history()


def test_a_preset_architecture_trains_end_to_end(bars):
    result = train(PRESETS["lab"], bars, override(TRAINING_PRESETS["lab"], epochs=1))
    assert result.outcome == RunState.FINISHED and len(result.history()["loss"]) == 1
    assert result.model.name == "lab_cnn"


def test_a_training_too_large_for_the_machine_is_refused_before_anything_is_built(bars):
    from core.errors import ArchitectureError
    from core.training.loop import check_trainable

    assert check_trainable(PRESETS["lab"], (28, 28, 1), 10, TRAINING_PRESETS["lab"]) == 542_230
    big_batch = override(TRAINING_PRESETS["lab"], batch_size=8192)
    with pytest.raises(ArchitectureError, match=r"needs about .* to train"):
        check_trainable(PRESETS["lab"], (28, 28, 1), 10, big_batch)
    with pytest.raises(TrainingConfigError, match=r"^epochs == 0"):
        check_trainable(PRESETS["lab"], (28, 28, 1), 10, TrainingConfig(epochs=0))


# --- pause, resume, change course, stop early, continue ---------------------------------------------------
# With batches of 4 the bars make 54 batches an epoch, in chunks of 32 and 22: a pause can land mid-epoch.

DROPPY = Architecture(conv_blocks=(ConvBlock(filters=8, dropout=0.2),), dense_layers=(DenseLayer(units=16, dropout=0.3),),
                      name="droppy")  # dropout: the random generators' states must be restored too
COSINE = TrainingConfig(optimizer="sgd", learning_rate=0.05, momentum=0.9, batch_size=4, epochs=3, schedule="cosine")


class Acting(MemorySink):
    """A sink that does something to the controls once a step is reached (as a person clicking would)."""

    def __init__(self, controls: Controls, acts: dict[int, object]) -> None:
        super().__init__()
        self.controls, self.acts = controls, dict(acts)

    def on_batch(self, record, progress) -> None:
        super().on_batch(record, progress)
        for step in sorted(self.acts):
            if record["step"] >= step:
                self.acts.pop(step)(self.controls)


def weights(result) -> list[np.ndarray]:
    return [np.array(variable.numpy()) for variable in result.model.variables]


def right_answers(result, bars) -> int:
    """How many test images the model gets right (compared exactly)."""
    return int((result.model.predict(bars.x_test, verbose=0).argmax(axis=1) == bars.y_test).sum())


def assert_same_training(mine, theirs, bars) -> None:
    for a, b in zip(weights(mine), weights(theirs), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    assert [[row[k] for k in keys] for row in mine.epochs] == [[row[k] for k in keys] for row in theirs.epochs]
    assert right_answers(mine, bars) == right_answers(theirs, bars)


@pytest.fixture(scope="module")
def never_paused(bars):
    import keras

    keras.backend.clear_session()
    return {optimizer: train(DROPPY, bars, dataclasses.replace(COSINE, optimizer=optimizer))
            for optimizer in ("sgd", "adam")}


def paused_and_resumed(bars, config, pauses: list[int]):
    """Train, pausing once each step in `pauses` is reached, resuming each time in a fresh Keras session."""
    import keras

    epochs: list[dict] = []
    start = None
    for step in [*pauses, None]:
        keras.backend.clear_session()
        controls = Controls()
        acts = {step: Controls.pause} if step is not None else {}
        result = train(DROPPY, bars, config, sink=Acting(controls, acts), controls=controls, start=start)
        epochs += result.epochs
        if step is None:
            assert result.outcome is RunState.FINISHED
            result.epochs = epochs
            return result
        assert result.outcome is RunState.PAUSED and result.checkpoint is not None
        start = result.checkpoint


@pytest.mark.parametrize("optimizer, pauses", [("sgd", [1]), ("sgd", [54]), ("sgd", [100]),
                                               ("sgd", [1, 60, 120]), ("adam", [1, 86])])
def test_a_run_paused_and_resumed_ends_with_what_the_run_never_paused_ends_with(bars, never_paused, optimizer, pauses):
    """Paused mid-epoch or at an epoch's end, once or several times: the same weights, metrics and test score."""
    result = paused_and_resumed(bars, dataclasses.replace(COSINE, optimizer=optimizer), pauses)
    assert_same_training(result, never_paused[optimizer], bars)


def test_a_pause_lands_on_the_chunk_it_was_asked_in_and_says_where(bars):
    controls = Controls()
    result = train(DROPPY, bars, COSINE, sink=Acting(controls, {1: Controls.pause}), controls=controls)
    assert result.outcome is RunState.PAUSED
    assert result.message == "Paused in epoch 1/3, after batch 32/54; Resume goes on from there."
    assert result.checkpoint.position.describe(54) == "epoch 1, after batch 32/54"
    assert [e["kind"] for e in result.events] == ["paused"] and result.epochs == []  # no partial epoch scored


def test_changes_made_by_hand_are_recorded_and_replayed_to_the_same_weights(bars):
    import keras

    from core.training.controls import replayable

    controls = Controls()
    changed = train(DROPPY, bars, COSINE, controls=controls, sink=Acting(controls, {
        1: lambda c: c.change("learning_rate", 0.01), 60: lambda c: c.change("epochs", 4)}))
    assert [(e["kind"], e["value"], e["step"], e["by"]) for e in changed.events] == [
        ("learning_rate", 0.01, 32, "user"), ("epochs", 4, 86, "user")]
    assert len(changed.epochs) == 4 and changed.progress.epochs == 4
    keras.backend.clear_session()
    replay = train(DROPPY, bars, COSINE, controls=Controls(replayable(changed.events)))
    assert [(e["kind"], e["step"], e["by"]) for e in replay.events] == [("learning_rate", 32, "plan"),
                                                                        ("epochs", 86, "plan")]
    assert_same_training(replay, changed, bars)


def test_fewer_epochs_finish_the_epoch_under_way(bars):
    controls = Controls()
    result = train(DROPPY, bars, COSINE, controls=controls, sink=Acting(controls, {60: lambda c: c.change("epochs", 1)}))
    assert result.outcome is RunState.FINISHED and len(result.epochs) == 2  # epoch 2 was under way
    assert result.events[0]["text"] == "epochs 3 → 2"


def test_early_stopping_keeps_the_best_epochs_weights(bars):
    import keras

    # the bars are easy: the validation accuracy soon reaches its best and stays there
    config = TrainingConfig(optimizer="adam", learning_rate=0.01, momentum=0.0, batch_size=16, epochs=12,
                            early_stopping=True, patience=2, monitor="val_accuracy")
    result = train(TINY, bars, config)
    accuracies = [row["val_accuracy"] for row in result.epochs]
    best = int(np.argmax(accuracies)) + 1  # (the first of equal bests)
    assert result.outcome is RunState.FINISHED and result.kept_epoch == best
    assert len(result.epochs) == best + 2 < 12  # two epochs without a higher validation accuracy, then it stopped
    assert result.message == (f"Stopped early after epoch {best + 2}: the validation accuracy had not improved for "
                              f"2 epochs. The weights of epoch {best} are kept (best validation accuracy).")
    assert [e["kind"] for e in result.events][-2:] == ["early_stop", "kept"]
    keras.backend.clear_session()
    shorter = train(TINY, bars, dataclasses.replace(config, epochs=best, early_stopping=False))
    for a, b in zip(result.model.get_weights(), shorter.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the kept weights are the best epoch's


def test_reduce_on_plateau_halves_the_rate_and_says_so(bars):
    config = TrainingConfig(optimizer="sgd", learning_rate=0.3, momentum=0.9, batch_size=16, epochs=6,
                            reduce_on_plateau=True, plateau_patience=1)
    result = train(TINY, bars, config)
    plateaus = [e for e in result.events if e["kind"] == "plateau"]
    assert plateaus and plateaus[0]["by"] == "recipe" and plateaus[0]["value"] == pytest.approx(0.15)
    assert float(result.model.optimizer.learning_rate) == pytest.approx(0.3 * 0.5 ** len(plateaus))


def test_early_stopping_without_validation_images_is_refused():
    with pytest.raises(TrainingConfigError, match="Early stopping watches the validation loss"):
        TrainingConfig(early_stopping=True, validation_fraction=0).validated()


def test_a_continued_run_goes_on_from_its_parents_final_state(bars):
    """At a constant rate, 2 epochs then 1 more in a continued run are 3 epochs in one go."""
    import keras

    config = dataclasses.replace(COSINE, schedule="constant")
    parent = train(DROPPY, bars, dataclasses.replace(config, epochs=2))
    keras.backend.clear_session()
    child = train(DROPPY, bars, config, start=parent.checkpoint, continuing=True)
    assert [e["kind"] for e in child.events] == ["continued"] and [r["epoch"] for r in child.epochs] == [3]
    keras.backend.clear_session()
    whole = train(DROPPY, bars, config)
    child.epochs = parent.epochs + child.epochs
    assert_same_training(child, whole, bars)


def test_a_checkpoint_made_with_another_batch_size_is_refused(bars):
    from core.errors import RunError

    paused = train(DROPPY, bars, COSINE, controls=_paused_at_once())
    with pytest.raises(RunError, match="batches per epoch"):
        train(DROPPY, bars, dataclasses.replace(COSINE, batch_size=8), start=paused.checkpoint)


def _paused_at_once() -> Controls:
    controls = Controls()
    controls.pause()
    return controls
