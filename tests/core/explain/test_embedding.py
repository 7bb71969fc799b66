"""Embeddings: the penultimate features of test images, projected to 2-D, keeping the indices of the images used."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.splits import fixed_subset
from core.explain.embedding import EmbeddingFeatures, project


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


def features(n: int = 40, d: int = 6) -> EmbeddingFeatures:
    """Two clusters far apart along the first feature, the other features noise."""
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    values = rng.normal(0, 0.1, (n, d)).astype(np.float32)
    values[:, 0] += 10 * labels
    return EmbeddingFeatures(values, np.arange(100, 100 + n), labels, labels[::-1].copy(), "dense1")


def test_pca_puts_the_largest_spread_on_the_first_axis():
    emb = project(features(), "pca", seed=0)
    assert emb.points.shape == (40, 2) and emb.points.dtype == np.float32 and emb.method == "pca"
    first, second = emb.explained_variance
    assert first > 0.9 > second > 0
    by_label = [emb.points[emb.labels == k, 0].mean() for k in (0, 1)]
    assert abs(by_label[0] - by_label[1]) > 9  # the clusters apart along the first axis
    np.testing.assert_array_equal(emb.indices, np.arange(100, 140))  # rows keep their images
    assert emb.feature_layer == "dense1" and emb.predicted.tolist() == features().predicted.tolist()


def test_a_subset_of_the_features_keeps_rows_together():
    every = features()
    some = every.subset(10, seed=3)
    rows = fixed_subset(40, 10, 3)
    np.testing.assert_array_equal(some.indices, every.indices[rows])
    np.testing.assert_array_equal(some.features, every.features[rows])
    assert some.labels.tolist() == every.labels[rows].tolist() and some.predicted.tolist() == every.predicted[rows].tolist()


def test_what_cannot_be_projected_is_refused():
    with pytest.raises(ValueError, match=r"^method == 'umap', must be 'pca' or 'tsne'\.$"):
        project(features(), "umap")
    with pytest.raises(ValueError, match=r"^the penultimate layer has 1 value\(s\) per image: nothing to project to "
                                         r"2-D\.$"):
        project(features(d=1), "pca")
