"""Data augmentation (core.model.augment): settings, Keras layers active only in training, samples."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from core.errors import ArchitectureError
from core.model.augment import (
    Augmentation,
    augment_samples,
    augmentation_layers,
    augmentation_table_rows,
    digit_warning,
    suitable_for_digits,
)

ALL = Augmentation(horizontal_flip=True, vertical_flip=True, rotation=0.1, zoom=0.2, shift=0.1)


def batch(n: int = 6, size: int = 12, channels: int = 1) -> np.ndarray:
    """Asymmetric images (a bright bar near the left edge), float32 in [0, 1]."""
    images = np.random.default_rng(0).uniform(0, 0.2, (n, size, size, channels)).astype(np.float32)
    images[:, 2:-2, 2] = 1.0
    return images


def front_model(aug: Augmentation, shape: tuple[int, int, int], seed: int = 0):
    """The augmentation layers alone, as a model (what build_model will put after its input)."""
    import keras

    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for layer in augmentation_layers(aug, seed):
        x = layer(x)
    return keras.Model(inputs, x)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rotation": 0.6}, "rotation == 0.6, must be in [0, 0.25]."),
        ({"rotation": -0.1}, "rotation == -0.1, must be in [0, 0.25]."),
        ({"zoom": 0.75}, "zoom == 0.75, must be in [0, 0.5]."),
        ({"shift": 1}, "shift == 1, must be in [0, 0.5]."),
        ({"shift": float("nan")}, "shift == nan, must be a number."),
        ({"zoom": "0.1"}, "zoom == '0.1', must be a number."),
        ({"rotation": True}, "rotation == True, must be a number."),
        ({"horizontal_flip": 1}, "horizontal_flip == 1, must be True or False."),
        ({"vertical_flip": "yes"}, "vertical_flip == 'yes', must be True or False."),
        ({"flip": True}, "augmentation: unknown setting(s) 'flip'; known: horizontal_flip, vertical_flip, rotation, zoom, "
                         "shift."),
    ],
)
def test_bad_settings(settings, message):
    with pytest.raises(ArchitectureError, match=re.escape(message)):
        Augmentation.from_dict(settings)


def test_round_trip_enabled_and_describe():
    assert Augmentation.from_dict(json.loads(json.dumps(ALL.to_dict()))) == ALL
    assert not Augmentation().enabled and ALL.enabled and Augmentation(zoom=0.1).enabled
    assert Augmentation().describe() == "none"
    assert ALL.describe() == "flip left-right and up-down, rotate up to 36°, zoom ±20%, shift ±10%"


def test_digit_warning():
    assert suitable_for_digits(Augmentation(rotation=0.05, zoom=0.1, shift=0.1))
    assert not suitable_for_digits(Augmentation(horizontal_flip=True))
    assert digit_warning(Augmentation(vertical_flip=True, rotation=0.1)) == (
        "For handwritten digits: a flipped digit is not a digit (a mirrored 2 or 7 is not a 2 or 7); "
        "rotating by more than 18° makes 6 and 9, or 1 and 7, look alike."
    )


# ---------------------------------------------------------------- Keras layers


def test_table_rows_match_the_layers():
    shape = (12, 12, 1)
    model = front_model(ALL, shape)
    built = [(layer.name, tuple(layer.output.shape[1:])) for layer in model.layers[1:]]
    rows = augmentation_table_rows(ALL, shape)
    assert [(name, out) for name, _, out, _ in rows] == built
    assert [name for name, *_ in rows] == ["augment_flip", "augment_rotation", "augment_zoom", "augment_shift"]
    assert all(params == 0 for *_, params in rows) and model.count_params() == 0
    assert rows[1][1] == "RandomRotation (±36°)"
    assert augmentation_layers(Augmentation()) == [] and augmentation_table_rows(Augmentation(), shape) == []


@pytest.mark.parametrize("channels", [1, 3])
def test_identity_at_inference_random_in_training(channels):
    x = batch(channels=channels)
    model = front_model(ALL, x.shape[1:])
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), x)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    trained = np.asarray(model(x, training=True))
    assert trained.shape == x.shape
    assert not np.allclose(trained, x)


def test_called_without_training_the_layers_augment():
    # Keras' preprocessing layers default to training mode: direct calls must pass training=False.
    x = batch()
    assert not np.allclose(np.asarray(front_model(ALL, x.shape[1:])(x)), x)


def test_horizontal_flip_mirrors_left_and_right():
    x = batch(n=16)
    out = np.asarray(front_model(Augmentation(horizontal_flip=True), x.shape[1:])(x, training=True))
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def test_a_model_with_augmentation_trains_saves_and_predicts_deterministically(tmp_path):
    import keras

    x, y = batch(n=16), np.arange(16) % 2
    inputs = keras.Input(shape=x.shape[1:], name="image")
    h = inputs
    for layer in augmentation_layers(ALL, seed=1):
        h = layer(h)
    outputs = keras.layers.Dense(2, activation="softmax", name="output")(keras.layers.Flatten()(h))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"], steps_per_execution=2)
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    first = model.predict(x, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), first)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), first, rtol=1e-6)
    assert loaded.get_layer("augment_rotation").factor == model.get_layer("augment_rotation").factor


# ---------------------------------------------------------------- samples


def test_augment_samples_shapes_range_and_seed():
    x = (batch(n=3)[..., 0] * 255).astype(np.uint8)  # (N, H, W) uint8 in, as raw datasets hold them
    samples = augment_samples(x, ALL, seed=5, copies=4)
    assert samples.shape == (3, 4, 12, 12) and samples.dtype == np.float32
    assert 0.0 <= samples.min() and samples.max() <= 1.0
    np.testing.assert_array_equal(augment_samples(x, ALL, seed=5, copies=4), samples)
    assert not np.allclose(samples[:, 0], samples[:, 1])  # the copies differ
    colour = augment_samples(batch(n=2, channels=3), ALL, seed=0, copies=2)
    assert colour.shape == (2, 2, 12, 12, 3)


def test_augment_samples_without_augmentation_repeats_the_input():
    x = batch(n=2)
    samples = augment_samples(x, Augmentation(), copies=3)
    assert samples.shape == (2, 3, 12, 12, 1)
    for copy in range(3):
        np.testing.assert_array_equal(samples[:, copy], x)
