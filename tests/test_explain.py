"""Looking inside the network: traces, conv arithmetic, attributions, embeddings, confusion over epochs."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.splits import fixed_subset
from core.evaluation.metrics import confusion_counts
from core.explain.confusion import CellChange, ConfusionOverEpochs
from core.explain.glossary import EXPLANATIONS
from core.explain.images import overlay
from core.explain.network import SCORE_LOGIT, Explainer, NetworkTrace
from core.model.architecture import PRESETS, Architecture, ConvBlock, DenseLayer, layer_table
from core.model.build import build_model

SAME_NO_POOL = Architecture(
    conv_blocks=(ConvBlock(filters=4, kernel_size=3, pooling="none", padding="same"),
                 ConvBlock(filters=6, kernel_size=3, pooling="none", padding="same", activation="tanh"),
                 ConvBlock(filters=5, kernel_size=5, pooling="none", padding="same", dropout=0.3)),
    dense_layers=(DenseLayer(units=12),),
    name="same_no_pool",
)
COLOUR = Architecture(conv_blocks=(ConvBlock(filters=8, kernel_size=3, batch_norm=True, pooling="average"),),
                      dense_layers=(DenseLayer(units=16, dropout=0.2),), name="colour")
STAGE_KINDS = {"Conv2D": "conv", "BatchNormalization": "batch norm", "Activation": "activation",
               "MaxPooling2D": "pooling", "AveragePooling2D": "pooling"}

CASES = {
    "lab": (PRESETS["lab"], (28, 28, 1), 10),
    "fast": (PRESETS["fast"], (28, 28, 1), 10),
    "same-no-pool": (SAME_NO_POOL, (12, 12, 1), 4),
    "colour": (COLOUR, (32, 32, 3), 10),
    "no-dense": (PRESETS["keras-example"], (28, 28, 1), 10),
}


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.fixture(scope="module")
def explainers():
    """One (model, Explainer) per architecture, built once for the module."""
    out = {}
    for key, (arch, shape, classes) in CASES.items():
        model = build_model(arch, shape, classes, seed=1)
        out[key] = (model, Explainer(model), shape, classes)
    return out


@pytest.fixture(scope="module")
def trained(bars):
    """A small CNN trained 2 epochs on the bars data, with a confusion matrix recorded after each epoch."""
    import keras

    keras.utils.set_random_seed(0)
    arch = Architecture(conv_blocks=(ConvBlock(filters=8, kernel_size=3),), dense_layers=(DenseLayer(units=16),))
    model = build_model(arch, bars.input_shape, bars.num_classes, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    from core.training.callbacks import ConfusionRecorder

    subset = fixed_subset(len(bars.x_test), 60, seed=3)
    recorded = []
    record = ConfusionRecorder(bars.x_test[subset], bars.y_test[subset], bars.num_classes, recorded.append)
    model.fit(bars.x_train, bars.y_train, epochs=2, batch_size=16, verbose=0, callbacks=[record])
    matrices = [np.asarray(entry["matrix"], dtype=np.int64) for entry in recorded[-1]]
    return model, Explainer(model), matrices, subset


# --- structure and one forward pass -----------------------------------------------------------------


@pytest.mark.parametrize("key", CASES)
def test_layers_match_the_layer_table(explainers, key):
    model, explainer, shape, classes = explainers[key]
    arch = CASES[key][0]
    expected = [(row.name, STAGE_KINDS[row.kind], row.output_shape) for row in layer_table(arch, shape, classes).rows
                if row.kind in STAGE_KINDS]
    assert [(i.name, i.stage, i.output_shape) for i in explainer.layers()] == expected
    blocks = [int(i.name[4]) if i.name.startswith("conv") else int(i.name[4:]) for i in explainer.layers()]
    assert [i.block for i in explainer.layers()] == blocks
    assert explainer.conv_layers() == tuple(f"conv{n}" for n in range(1, len(arch.conv_blocks) + 1))


@pytest.mark.parametrize("key", CASES)
def test_trace_has_every_map_and_the_models_probabilities(explainers, key):
    model, explainer, shape, classes = explainers[key]
    image = _image(shape)
    trace = explainer.activations(image)
    assert isinstance(trace, NetworkTrace)
    for info in trace.layers:
        assert trace.feature_maps[info.name].shape == info.output_shape
        assert trace.feature_maps[info.name].dtype == np.float32
    np.testing.assert_array_equal(trace.conv_inputs["conv1"], image)
    expected = np.asarray(model(image[None], training=False))[0]
    np.testing.assert_allclose(trace.probabilities, expected, atol=1e-6)
    assert trace.score_kind == SCORE_LOGIT
    softmax = np.exp(trace.scores - trace.scores.max())
    np.testing.assert_allclose(softmax / softmax.sum(), trace.probabilities, atol=1e-6)
    assert trace.predicted_class == int(expected.argmax())
    before_output = [row for row in layer_table(CASES[key][0], shape, classes).rows if row.kind != "Dropout"][-2]
    assert trace.features.shape == before_output.output_shape  # the last dense layer's, or flatten's


def test_grey_images_may_come_without_a_channel_axis(explainers):
    _, explainer, shape, _ = explainers["lab"]
    image = _image(shape)
    a, b = explainer.activations(image[:, :, 0]), explainer.activations(image[None])
    np.testing.assert_array_equal(a.feature_maps["pool1"], b.feature_maps["pool1"])


def test_a_wrong_image_shape_is_refused(explainers):
    _, explainer, _, _ = explainers["lab"]
    with pytest.raises(ValueError, match=r"expected one 28x28x1 image, got an array of shape \(32, 32, 3\)"):
        explainer.activations(np.zeros((32, 32, 3)))


# --- convolution arithmetic -------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["conv1", "conv2", "conv3"])
def test_conv_arithmetic_equals_the_layer_output_with_same_padding(explainers, layer):
    _, explainer, shape, _ = explainers["same-no-pool"]
    trace = explainer.activations(_image(shape, seed=4))
    out = trace.feature_maps[layer]
    height, width, filters = out.shape
    k = {"conv1": 3, "conv2": 3, "conv3": 5}[layer]
    half = k // 2
    for row, col, padded in ((0, 0, k * k - (k - half) ** 2), (0, width - 1, k * k - (k - half) ** 2),
                             (height - 1, 5, k * half), (6, 6, 0)):
        for f in (0, filters - 1):
            a = explainer.conv_arithmetic(trace, layer, row, col, f)
            assert abs(a.result - out[row, col, f]) < 1e-4
            assert int(a.padding_mask.sum()) == padded
            assert a.origin == (row - half, col - half)
            np.testing.assert_array_equal(a.products, a.patch * a.kernel)
            assert a.pre_activation == pytest.approx(a.total + a.bias)
            assert np.all(a.patch[a.padding_mask] == 0)


def test_conv_arithmetic_reads_the_previous_blocks_output(explainers):
    """conv2 of `fast` convolves pool1's maps (valid padding, 16 input channels)."""
    _, explainer, shape, _ = explainers["fast"]
    trace = explainer.activations(_image(shape, seed=5))
    np.testing.assert_array_equal(trace.conv_inputs["conv2"], trace.feature_maps["pool1"])
    for row, col, f in ((0, 0, 0), (10, 10, 31), (4, 7, 12)):
        a = explainer.conv_arithmetic(trace, "conv2", row, col, f)
        assert a.patch.shape == a.kernel.shape == (3, 3, 16)
        np.testing.assert_array_equal(a.patch, trace.feature_maps["pool1"][row:row + 3, col:col + 3])
        assert abs(a.result - trace.feature_maps["conv2"][row, col, f]) < 1e-4
        assert not a.padding_mask.any()


def test_conv_arithmetic_accepts_an_image_and_checks_its_arguments(explainers):
    _, explainer, shape, _ = explainers["lab"]
    image = _image(shape)
    a = explainer.conv_arithmetic(image, "conv1", 3, 4, 5)
    assert abs(a.result - explainer.activations(image).feature_maps["conv1"][3, 4, 5]) < 1e-4
    with pytest.raises(ValueError, match=r"row == 26, must be an integer in 0..25 for layer 'conv1'"):
        explainer.conv_arithmetic(image, "conv1", 26, 0, 0)
    with pytest.raises(ValueError, match=r"'pool1' is not a Conv2D layer of this model; Conv2D layers: conv1"):
        explainer.conv_arithmetic(image, "pool1", 0, 0, 0)


# --- uploaded models --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def uploaded():
    """A functional model with augmentation, rescaling, a strided 'same' conv with a fused ReLU, logits out."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(2)
    augment = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.2)], name="augment")
    inputs = keras.Input((16, 16, 3))
    x = layers.Rescaling(1 / 255)(augment(inputs))
    x = layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="first")(x)
    x = layers.MaxPooling2D(name="shrink")(x)
    x = layers.Conv2D(5, 4, padding="same", name="second")(x)
    x = layers.LeakyReLU(name="leaky")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(3, name="scores")(x)
    model = keras.Model(inputs, outputs)
    return model, Explainer(model)


def test_uploaded_model_layers_are_found_by_type_and_augmentation_is_off(uploaded):
    model, explainer = uploaded
    assert [(i.name, i.stage, i.block, i.output_shape) for i in explainer.layers()] == [
        ("first", "conv", 1, (8, 8, 6)), ("shrink", "pooling", 1, (4, 4, 6)),
        ("second", "conv", 2, (4, 4, 5)), ("leaky", "activation", 2, (4, 4, 5))]
    image = _image((16, 16, 3), seed=6) * 255
    first, again = explainer.activations(image), explainer.activations(image)
    for name in first.feature_maps:
        np.testing.assert_array_equal(first.feature_maps[name], again.feature_maps[name])
    np.testing.assert_allclose(first.scores, np.asarray(model(image[None], training=False))[0], atol=1e-5)
    assert first.probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(first.conv_inputs["first"], image / 255, atol=1e-6)  # after Rescaling
    assert explainer.default_cam_layer() == "leaky"


def test_uploaded_model_conv_arithmetic_with_stride_and_fused_relu(uploaded):
    _, explainer = uploaded
    trace = explainer.activations(_image((16, 16, 3), seed=7) * 255)
    # stride 2, 'same', 16 -> 8: TensorFlow pads 1 pixel after, none before
    a = explainer.conv_arithmetic(trace, "first", 7, 7, 1)
    assert a.origin == (14, 14) and int(a.padding_mask.sum()) == 5 and a.activation == "relu"
    checked = 0
    for layer in ("first", "second"):
        out = trace.feature_maps[layer]
        for row, col, f in np.ndindex(out.shape):
            a = explainer.conv_arithmetic(trace, layer, row, col, f)
            assert abs(a.result - out[row, col, f]) < 1e-4
            assert a.result == pytest.approx(max(a.pre_activation, 0.0) if layer == "first" else a.pre_activation,
                                             abs=1e-6)
            checked += 1
    assert checked == 8 * 8 * 6 + 4 * 4 * 5


def test_a_saved_and_reloaded_model_is_explained_the_same(uploaded, tmp_path):
    import keras

    model, explainer = uploaded
    model.save(tmp_path / "uploaded.keras")
    reloaded = Explainer(keras.models.load_model(tmp_path / "uploaded.keras"))
    image = _image((16, 16, 3), seed=9) * 255
    before, after = explainer.activations(image), reloaded.activations(image)
    assert [i.name for i in reloaded.layers()] == [i.name for i in explainer.layers()]
    for name in before.feature_maps:
        np.testing.assert_allclose(after.feature_maps[name], before.feature_maps[name], atol=1e-6)
    np.testing.assert_allclose(after.probabilities, before.probabilities, atol=1e-6)


def test_a_model_without_convolutions_is_refused():
    import keras

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="has no Conv2D layer at its top level"):
        Explainer(model)


# --- weights ----------------------------------------------------------------------------------------


def test_filters_are_the_kernels_on_one_shared_scale(explainers):
    model, explainer, _, _ = explainers["fast"]
    first = explainer.filters()
    kernel = np.asarray(model.get_layer("conv1").kernel)
    assert first.layer == "conv1" and first.images.shape == (16, 3, 3, 1)
    np.testing.assert_array_equal(first.weights, kernel.transpose(3, 0, 1, 2))
    assert first.scale == pytest.approx(float(np.abs(kernel).max()))
    np.testing.assert_allclose(first.images, 0.5 + 0.5 * first.weights / first.scale)
    assert first.images.min() >= 0.0 and first.images.max() <= 1.0
    assert explainer.filters("conv2").images.shape == (32, 3, 3, 16)


def test_weight_histograms_count_every_kernel_weight(explainers):
    model, explainer, _, _ = explainers["fast"]
    histograms = explainer.weight_histograms(bins=20)
    assert [h.layer for h in histograms] == ["conv1", "conv2", "dense1", "output"]
    for h in histograms:
        assert h.counts.shape == (20,) and h.edges.shape == (21,)
        assert int(h.counts.sum()) == h.size == int(np.prod(model.get_layer(h.layer).kernel.shape))


# --- attributions -----------------------------------------------------------------------------------


def test_saliency_puts_more_mass_on_the_ink(trained, bars):
    """A clean synthetic digit (the test image's ink on blank paper): its ink pixels matter most."""
    _, explainer, _, _ = trained
    ratios = []
    for index in range(8):  # two test images of each class
        ink = bars.x_test[index][:, :, 0] == 1.0
        drawing = ink[:, :, None].astype(np.float32)
        saliency = explainer.saliency(drawing, class_index=int(bars.y_test[index]))
        ratios.append(float(saliency.map[ink].mean() / saliency.map[~ink].mean()))
    assert min(ratios) > 1.25 and np.mean(ratios) > 1.75, ratios


def test_saliency_is_the_gradient_of_the_logit(trained, bars):
    """Finite differences of the traced logit agree with the map (the network is piecewise linear)."""
    _, explainer, _, _ = trained
    image = bars.x_test[1]
    saliency = explainer.saliency(image, class_index=2)
    assert saliency.score_kind == SCORE_LOGIT and saliency.class_index == 2
    top, second = np.argsort(saliency.map.ravel())[::-1][:2]
    slopes = []
    for flat in (top, second):
        bumped = [image.copy(), image.copy()]
        r, c = np.unravel_index(flat, image.shape[:2])
        bumped[0][r, c, 0] += 1e-3
        bumped[1][r, c, 0] -= 1e-3
        up, down = (explainer.activations(b).scores[2] for b in bumped)
        slopes.append(abs(up - down) / 2e-3)
    assert slopes[1] / slopes[0] == pytest.approx(saliency.map.ravel()[second], rel=0.02)


def test_gradient_x_input_is_zero_where_the_input_is_zero(trained, bars):
    _, explainer, _, _ = trained
    image = bars.x_test[0].copy()
    image[image < 1.0] = 0.0  # only the ink left
    attribution = explainer.gradient_x_input(image)
    assert np.all(attribution.map[image[:, :, 0] == 0] == 0) and attribution.map.max() == 1.0
    assert attribution.method == "gradient x input"


@pytest.mark.parametrize("key", ["lab", "same-no-pool", "colour"])
def test_grad_cam_is_in_unit_range_with_the_inputs_size(explainers, key):
    _, explainer, shape, classes = explainers[key]
    image = _image(shape, seed=8)
    trace = explainer.activations(image)
    cam = explainer.grad_cam(image)
    assert cam.map.shape == shape[:2] and cam.map.dtype == np.float32
    assert cam.map.min() >= 0.0 and cam.map.max() <= 1.0
    assert cam.class_index == trace.predicted_class
    assert cam.probability == pytest.approx(float(trace.probabilities.max()), abs=1e-6)
    assert cam.layer == f"conv{len(CASES[key][0].conv_blocks)}_{CASES[key][0].conv_blocks[-1].activation}"
    other = explainer.grad_cam(image, class_index=classes - 1, layer_name="conv1")
    assert other.class_index == classes - 1 and other.layer == "conv1"
    assert other.probability == pytest.approx(float(trace.probabilities[classes - 1]), abs=1e-6)


def test_a_class_index_out_of_range_is_refused(explainers):
    _, explainer, shape, _ = explainers["lab"]
    with pytest.raises(ValueError, match=r"class_index == 10, must be None or an integer in 0..9"):
        explainer.saliency(_image(shape), class_index=10)


# --- embedding --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embedding_keeps_the_indices_of_the_images_it_used(trained, bars, method):
    _, explainer, _, _ = trained
    labels = bars.y_test
    emb = explainer.embedding(bars.x_test, labels, method=method, max_points=30, seed=4, tsne_iterations=250)
    np.testing.assert_array_equal(emb.indices, fixed_subset(len(bars.x_test), 30, 4))
    assert emb.points.shape == (30, 2) and emb.points.dtype == np.float32
    np.testing.assert_array_equal(emb.labels, labels[emb.indices])
    assert emb.feature_layer == "dense1"
    expected = np.stack([explainer.activations(bars.x_test[i]).probabilities.argmax() for i in emb.indices[:5]])
    np.testing.assert_array_equal(emb.predicted[:5], expected)
    if method == "pca":
        assert emb.explained_variance[0] >= emb.explained_variance[1] > 0


def test_embedding_uses_every_image_below_the_limit(trained, bars):
    _, explainer, _, _ = trained
    emb = explainer.embedding(bars.x_test[:12], bars.y_test[:12], max_points=3000)
    np.testing.assert_array_equal(emb.indices, np.arange(12))


# --- confusion over epochs --------------------------------------------------------------------------


def test_per_epoch_confusion_matrices_sum_to_the_subset_size(trained, bars):
    _, _, matrices, subset = trained
    assert len(matrices) == 2 and len(subset) == 60
    for matrix in matrices:
        assert matrix.shape == (4, 4) and matrix.dtype == np.int64
        assert int(matrix.sum()) == 60
        np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(bars.y_test[subset], minlength=4))


def test_confusion_counts_take_a_predict_function_in_batches():
    x = np.zeros((5, 2, 2, 1), dtype=np.float32)
    y = np.array([0, 1, 2, 2, 1])
    predicted = np.array([0, 2, 2, 1, 1])
    calls = []

    def predict(batch):
        calls.append(len(batch))
        start = sum(calls[:-1])
        return np.eye(3)[predicted[start:start + len(batch)]]

    matrix = confusion_counts(predict, x, y, 3, batch_size=2)
    assert calls == [2, 2, 1]
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [0, 1, 1], [0, 1, 1]])


def test_confusion_over_epochs_finds_the_cells_that_changed_most():
    before = np.array([[5, 3, 0], [2, 6, 0], [0, 0, 8]])
    after = np.array([[8, 0, 0], [1, 6, 1], [0, 1, 7]])
    over = ConfusionOverEpochs([before, after], epochs=[0, 3])
    np.testing.assert_array_equal(over.at(3), after)
    assert over.changes(0, 3, top=3) == [CellChange(0, 0, 5, 8), CellChange(0, 1, 3, 0), CellChange(1, 0, 2, 1)]
    assert over.changes(0, 3, top=10, off_diagonal_only=True) == [
        CellChange(0, 1, 3, 0), CellChange(1, 0, 2, 1), CellChange(1, 2, 0, 1), CellChange(2, 1, 0, 1)]
    assert over.changes(3, 3) == []
    with pytest.raises(ValueError, match=r"epoch == 2, recorded epochs are \[0, 3\]"):
        over.at(2)
    with pytest.raises(ValueError, match="must all be square and of one shape"):
        ConfusionOverEpochs([before, np.zeros((2, 2))])


def test_fixed_subset_indices_are_sorted_distinct_and_repeatable():
    a = fixed_subset(10_000, 1_000, seed=7)
    assert len(a) == 1_000 == len(np.unique(a)) and np.all(np.diff(a) > 0) and a.max() < 10_000
    np.testing.assert_array_equal(a, fixed_subset(10_000, 1_000, seed=7))
    assert not np.array_equal(a, fixed_subset(10_000, 1_000, seed=8))
    np.testing.assert_array_equal(fixed_subset(7, 1_000, seed=0), np.arange(7))
    with pytest.raises(ValueError, match="size == -1, must be an integer >= 0"):
        fixed_subset(10, -1, 0)


# --- display helpers, figures, words ----------------------------------------------------------------


def test_overlay_blends_the_heat_colours_where_the_map_is_high():
    grey = np.full((4, 5, 1), 0.25, dtype=np.float32)
    heat = np.zeros((4, 5), dtype=np.float32)
    heat[0, 0] = 1.0
    out = overlay(grey, heat, alpha=1.0)
    assert out.shape == (4, 5, 3) and out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_allclose(out[1:, :], 0.25)  # no heat: the grey image, unchanged
    np.testing.assert_allclose(out[0, 0], [1.0, 1.0, 1.0])  # full heat, full alpha: the scale's top (white)
    colour = overlay(np.ones((4, 5, 3)) * [0.0, 0.5, 1.0], heat, alpha=0.0)
    np.testing.assert_allclose(colour[2, 2], [0.0, 0.5, 1.0])
    with pytest.raises(ValueError, match="must share height and width"):
        overlay(grey, np.zeros((5, 4)))


def test_figures_render_the_records(explainers, trained, bars):
    from core.figures import explain as figs

    _, explainer, shape, _ = explainers["fast"]
    image = _image(shape)
    trace = explainer.activations(image)
    grid = figs.feature_maps_figure(trace, "conv2_relu", max_maps=20, columns=5)
    assert grid.layout.title.text == "conv2_relu (Activation (relu)): 20 of 32 maps of 11x11"
    assert grid.data[0].z.shape == (4 * 12 - 1, 5 * 12 - 1)
    assert len(figs.network_overview_figure(trace).data) == 1 + len(trace.layers)
    assert len(figs.filters_figure(explainer.filters()).layout.annotations) == 16
    assert len(figs.weight_histograms_figure(explainer.weight_histograms()).data) == 4
    a = explainer.conv_arithmetic(trace, "conv2", 1, 2, 3)
    assert f"= {a.pre_activation:.3f}" in figs.conv_arithmetic_figure(a, channel=5).layout.title.text
    assert len(figs.attribution_figure(image, explainer.grad_cam(image)).data) == 3
    _, bars_explainer, matrices, _ = trained
    over = ConfusionOverEpochs(matrices)
    assert "after epoch 2 (60 validation images)" in figs.confusion_at_epoch_figure(
        over, 2, bars.class_names).layout.title.text
    np.testing.assert_array_equal(figs.confusion_change_figure(over, 1, 2, bars.class_names).data[0].z,
                                  matrices[1] - matrices[0])
    emb = bars_explainer.embedding(bars.x_test, bars.y_test, max_points=40)
    scatter = figs.embedding_figure(emb, bars.class_names)
    shown = np.concatenate([np.asarray(t.customdata)[:, 0] for t in scatter.data])
    np.testing.assert_array_equal(np.sort(shown), emb.indices)
    assert [t.name for t in scatter.data] == list(bars.class_names)


def test_explanations_are_short_and_read_only():
    assert {"convolution", "activation", "pooling", "softmax", "saliency", "grad-cam", "embedding"} <= set(EXPLANATIONS)
    for key in EXPLANATIONS:
        sentences = EXPLANATIONS[key].count(". ") + 1
        assert 1 <= sentences <= 3 and EXPLANATIONS[key].endswith("."), key
    with pytest.raises(TypeError):
        EXPLANATIONS["convolution"] = "changed"  # type: ignore[index]
