"""The Inside page's explanations: each idea in a sentence or two, read-only."""

from __future__ import annotations

import pytest

from core.explain.glossary import EXPLANATIONS


def test_explanations_are_short_and_read_only():
    assert {"convolution", "activation", "pooling", "softmax", "saliency", "grad-cam", "embedding"} <= set(EXPLANATIONS)
    for key in EXPLANATIONS:
        sentences = EXPLANATIONS[key].count(". ") + 1
        assert 1 <= sentences <= 3 and EXPLANATIONS[key].endswith("."), key
    with pytest.raises(TypeError):
        EXPLANATIONS["convolution"] = "changed"  # type: ignore[index]
