"""The Keras callbacks a training reports through: metrics per chunk of batches, the confusion matrix per epoch."""

from __future__ import annotations

import numpy as np
import pytest


def test_a_short_last_chunk_of_batches_is_reported_as_the_epochs_last_batch():
    """With steps per execution, Keras reports the last chunk's index rounded up past the epoch's end."""
    from core.training.callbacks import MetricsCallback, Place

    seen = []

    class Sink:
        def on_batch(self, record, progress):
            seen.append((record["batch"], record["step"], progress.batch, progress.fraction))

    place = Place(epoch=0, first_batch=0, batches_per_epoch=1125, epochs=2, batch_size=8)
    callback = MetricsCallback(Sink(), place)
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    callback.on_train_batch_end(1151, {"loss": 0.5, "accuracy": 0.9})
    assert seen == [(1125, 1125, 1125, 0.5)]


def test_per_epoch_confusion_matrices_sum_to_the_subset_size(trained, bars):
    _, _, matrices, subset = trained
    assert len(matrices) == 2 and len(subset) == 60
    for matrix in matrices:
        assert matrix.shape == (4, 4) and matrix.dtype == np.int64
        assert int(matrix.sum()) == 60
        np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(bars.y_test[subset], minlength=4))


def test_validation_puts_keras_own_validation_metrics_into_the_epochs_logs(trained, bars):
    from core.training.callbacks import Validation

    model = trained[0]
    validation = Validation(bars.x_test, bars.y_test, batch_size=32)
    validation.set_model(model)
    logs = {"loss": 0.1}
    validation.on_epoch_end(0, logs)
    keras_loss, keras_accuracy = model.evaluate(bars.x_test, bars.y_test, batch_size=32, verbose=0)
    assert logs["loss"] == 0.1 and logs["val_loss"] == pytest.approx(keras_loss, rel=1e-4, abs=1e-6)
    assert logs["val_accuracy"] == pytest.approx(keras_accuracy, abs=1e-9)


def test_a_training_validates_without_keras_evaluation_function(bars):
    """Keras' evaluation traces its function for every model (a second here, at the end of every short run)."""
    from core.model.architecture import Architecture, ConvBlock, DenseLayer
    from core.training.config import TrainingConfig
    from core.training.loop import train

    arch = Architecture(conv_blocks=(ConvBlock(filters=4),), dense_layers=(DenseLayer(units=8),), name="tiny")
    result = train(arch, bars, TrainingConfig(optimizer="adam", learning_rate=0.01, epochs=2))
    assert result.model.test_function is None
    assert [sorted(key for key in epoch if key.startswith("val_")) for epoch in result.epochs] == \
        [["val_accuracy", "val_loss"]] * 2


def test_the_confusion_matrix_takes_the_validations_predictions_when_it_shares_its_images(trained, bars):
    """No second forward pass over the same images: the matrix comes from the epoch's validation predictions, and
    equals the one a forward pass of its own gives; images that are not the validation's get their own pass."""
    from core.evaluation.metrics import confusion_counts
    from core.training.callbacks import ConfusionRecorder, Validation

    model, _, _, subset = trained
    validation = Validation(bars.x_test, bars.y_test, batch_size=32)
    shared, alone = [], []
    sharing = ConfusionRecorder(bars.x_test[subset], bars.y_test[subset], 4, shared.append, rows=subset)
    sharing.share_validation(validation)
    wrong_rows = ConfusionRecorder(bars.x_test[subset], bars.y_test[subset], 4, alone.append, rows=subset[::-1])
    wrong_rows.share_validation(validation)  # (its labels are not the validation's at these rows: not shared)
    for callback in (validation, sharing, wrong_rows):
        callback.set_model(model)
        callback.on_epoch_end(0, {"loss": 0.1})
    expected = confusion_counts(model.predict_on_batch, bars.x_test[subset], bars.y_test[subset], 4).tolist()
    assert shared[-1] == alone[-1] == [{"epoch": 1, "matrix": expected}]
    assert sharing._predict is None and wrong_rows._predict is not None
