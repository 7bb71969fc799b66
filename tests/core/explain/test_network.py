"""Inside the network: one forward pass traced, the arithmetic of one convolution, uploaded models, weights, attributions."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain.network import SCORE_LOGIT, Explainer, NetworkTrace
from core.model.architecture import layer_table
from tests.core.conftest import CASES, _image

STAGE_KINDS = {"Conv2D": "conv", "BatchNormalization": "batch norm", "Activation": "activation",
               "MaxPooling2D": "pooling", "AveragePooling2D": "pooling"}


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


def test_the_strongest_place_of_a_map_is_its_largest_value_and_not_the_background(explainers):
    _, explainer, shape, _ = explainers["fast"]
    image = np.zeros(shape, np.float32)
    image[8:20, 12:15] = 1.0  # a stroke on a black background
    trace = explainer.activations(image)
    out = trace.feature_maps["conv1"]
    for f in range(out.shape[2]):
        row, col = trace.strongest("conv1", f)
        assert out[row, col, f] == out[:, :, f].max()
        if out[:, :, f].max() > out[0, 0, f]:  # the filter answers the stroke more than the background
            a = explainer.conv_arithmetic(trace, "conv1", row, col, f)
            assert np.abs(a.products).sum() > 0  # its window holds ink: the products are not all zero
    assert trace.strongest("conv1", 0) == tuple(int(i) for i in np.unravel_index(out[:, :, 0].argmax(),
                                                                                  out.shape[:2]))


def test_conv_arithmetic_reads_the_previous_blocks_output(explainers):
    """conv2 of `fast` convolves pool1's maps (valid padding, 32 input channels)."""
    _, explainer, shape, _ = explainers["fast"]
    trace = explainer.activations(_image(shape, seed=5))
    np.testing.assert_array_equal(trace.conv_inputs["conv2"], trace.feature_maps["pool1"])
    for row, col, f in ((0, 0, 0), (9, 9, 31), (4, 7, 12)):
        a = explainer.conv_arithmetic(trace, "conv2", row, col, f)
        assert a.patch.shape == a.kernel.shape == (3, 3, 32)
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
    assert first.layer == "conv1" and first.images.shape == (32, 5, 5, 1)
    np.testing.assert_array_equal(first.weights, kernel.transpose(3, 0, 1, 2))
    assert first.scale == pytest.approx(float(np.abs(kernel).max()))
    np.testing.assert_allclose(first.images, 0.5 + 0.5 * first.weights / first.scale)
    assert first.images.min() >= 0.0 and first.images.max() <= 1.0
    assert explainer.filters("conv2").images.shape == (32, 3, 3, 32)


def test_weight_histograms_count_every_kernel_weight(explainers):
    model, explainer, _, _ = explainers["fast"]
    histograms = explainer.weight_histograms(bins=20)
    assert [h.layer for h in histograms] == ["conv1", "conv2", "conv3", "dense1", "output"]
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
