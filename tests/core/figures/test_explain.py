"""The figures of inside the network: feature maps, filters, weights, arithmetic, attributions, confusion over epochs, embeddings."""

from __future__ import annotations

import numpy as np

from core.explain.confusion import ConfusionOverEpochs
from tests.core.conftest import _image


def test_the_change_heatmap_colours_gains_on_the_diagonal_like_losses_off_it():
    from core.figures.explain import confusion_change_figure

    before = np.array([[5, 3], [2, 6]])
    after = np.array([[8, 0], [4, 4]])  # class 0 got better (+3 right, -3 mistakes), class 1 worse
    figure = confusion_change_figure(ConfusionOverEpochs([before, after]), 1, 2, ["0", "1"])
    heatmap = figure.data[0]
    assert np.asarray(heatmap.z).tolist() == [[3, 3], [-2, -2]]
    assert [list(row) for row in heatmap.text] == [["+3", "-3"], ["+2", "-2"]]
    scale = [colour for _, colour in heatmap.colorscale]
    assert scale[0] != scale[-1] and heatmap.zmid == 0  # diverging: worse one colour, better another
    assert "blue better, red worse" in figure.layout.title.text


def test_figures_render_the_records(explainers, trained, bars):
    from core.figures import explain as figs

    _, explainer, shape, _ = explainers["fast"]
    image = _image(shape)
    trace = explainer.activations(image)
    grid = figs.feature_maps_figure(trace, "conv2_relu", max_maps=20, columns=5)
    assert grid.layout.title.text == "conv2_relu (Activation (relu)): 20 of 32 maps of 10x10"
    assert grid.data[0].z.shape == (4 * 11 - 1, 5 * 11 - 1)
    assert len(figs.network_overview_figure(trace).data) == 1 + len(trace.layers)
    assert len(figs.filters_figure(explainer.filters()).layout.annotations) == 32
    assert len(figs.weight_histograms_figure(explainer.weight_histograms()).data) == 5  # conv1-3, dense1, output
    a = explainer.conv_arithmetic(trace, "conv2", 1, 2, 3)
    assert f"= {a.pre_activation:.3f}" in figs.conv_arithmetic_figure(a, channel=5).layout.title.text
    assert len(figs.attribution_figure(image, explainer.grad_cam(image)).data) == 3
    _, bars_explainer, matrices, _ = trained
    over = ConfusionOverEpochs(matrices)
    assert "after epoch 2 (60 validation images)" in figs.confusion_at_epoch_figure(
        over, 2, bars.class_names).layout.title.text
    change = figs.confusion_change_figure(over, 1, 2, bars.class_names)
    np.testing.assert_array_equal(change.data[0].z, over.improvement(1, 2))  # coloured by better or worse
    diff = matrices[1] - matrices[0]
    assert [list(row) for row in change.data[0].text] == [[f"{v:+d}" if v else "0" for v in row] for row in diff]
    assert list(change.data[0].colorbar.ticktext) == ["worse", "nothing", "better"]
    emb = bars_explainer.embedding(bars.x_test, bars.y_test, max_points=40)
    scatter = figs.embedding_figure(emb, bars.class_names)
    shown = np.concatenate([np.asarray(t.customdata)[:, 0] for t in scatter.data])
    np.testing.assert_array_equal(np.sort(shown), emb.indices)
    assert [t.name for t in scatter.data] == list(bars.class_names)
