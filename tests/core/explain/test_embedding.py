"""Embeddings: the penultimate features of test images, projected to 2-D, keeping the indices of the images used."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.splits import fixed_subset


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
