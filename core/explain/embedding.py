"""Embeddings: each test image as the numbers the last hidden layer computes for it, projected to 2-D.

PCA takes well under a second; t-SNE takes seconds (the Inside page runs it
off the page's thread). The images embedded are a fixed subset
(`core.data.splits.fixed_subset`), the same for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.splits import fixed_subset


@dataclass(frozen=True)
class Embedding:
    """Penultimate-layer activations projected to 2-D, one row per image used."""

    points: np.ndarray  # (n, 2) float32
    indices: np.ndarray  # (n,) int64: row i is images[indices[i]]
    labels: np.ndarray  # (n,) int64 true classes
    predicted: np.ndarray  # (n,) int64 predicted classes
    method: str  # "pca" or "tsne"
    feature_layer: str  # the layer whose output was projected
    explained_variance: tuple[float, float] | None = None  # PCA only: share of variance per axis


@dataclass(frozen=True)
class EmbeddingFeatures:
    """Penultimate-layer activations of a subset of images, before any projection."""

    features: np.ndarray  # (n, d) float32
    indices: np.ndarray  # (n,) int64: row i is images[indices[i]]
    labels: np.ndarray  # (n,) int64 true classes
    predicted: np.ndarray  # (n,) int64 predicted classes
    feature_layer: str

    def subset(self, size: int, seed: int = 0) -> "EmbeddingFeatures":
        """At most `size` of the rows (a seeded choice, in order): t-SNE of fewer points takes less time."""
        rows = fixed_subset(len(self.indices), size, seed)
        return EmbeddingFeatures(self.features[rows], self.indices[rows], self.labels[rows], self.predicted[rows],
                                 self.feature_layer)


def _check_method(method: str) -> None:
    if method not in ("pca", "tsne"):
        raise ValueError(f"method == {method!r}, must be 'pca' or 'tsne'.")


def project(features: "EmbeddingFeatures", method: str = "pca", seed: int = 0,
            tsne_iterations: int = 500) -> Embedding:
    """`features` projected to 2-D by PCA (well under a second) or t-SNE (seconds: run it off the page's thread)."""
    _check_method(method)
    points, variance = _project(features.features, method, seed, tsne_iterations)
    return Embedding(points, features.indices, features.labels, features.predicted, method, features.feature_layer,
                     variance)


def _project(features: np.ndarray, method: str, seed: int,
             tsne_iterations: int) -> tuple[np.ndarray, tuple[float, float] | None]:
    from sklearn.decomposition import PCA

    if features.shape[1] < 2:
        raise ValueError(f"the penultimate layer has {features.shape[1]} value(s) per image: "
                         "nothing to project to 2-D.")
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed)
        points = pca.fit_transform(features)
        return points.astype(np.float32), tuple(float(v) for v in pca.explained_variance_ratio_)
    from sklearn.manifold import TSNE

    if features.shape[1] > 50:  # the usual t-SNE recipe: PCA to 50 dimensions first (faster, less noise)
        features = PCA(n_components=min(50, len(features)), random_state=seed).fit_transform(features)
    perplexity = min(30.0, (len(features) - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=max(250, tsne_iterations),
                random_state=seed)
    points = tsne.fit_transform(features)
    return points.astype(np.float32), None
