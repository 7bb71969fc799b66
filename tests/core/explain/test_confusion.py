"""The confusion matrix over epochs: the matrix at an epoch, and the cells that changed most."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain.confusion import CellChange, ConfusionOverEpochs


def test_confusion_over_epochs_finds_the_cells_that_changed_most():
    before = np.array([[5, 3, 0], [2, 6, 0], [0, 0, 8]])
    after = np.array([[8, 0, 0], [1, 6, 1], [0, 1, 7]])
    over = ConfusionOverEpochs([before, after], epochs=[0, 3])
    np.testing.assert_array_equal(over.at(3), after)
    assert over.changes(0, 3, top=3) == [CellChange(0, 0, 5, 8), CellChange(0, 1, 3, 0), CellChange(1, 0, 2, 1)]
    assert over.changes(0, 3, top=10, off_diagonal_only=True) == [
        CellChange(0, 1, 3, 0), CellChange(1, 0, 2, 1), CellChange(1, 2, 0, 1), CellChange(2, 1, 0, 1)]
    assert over.changes(3, 3) == []
    assert over.improvement(0, 3).tolist() == [[3, 3, 0], [1, 0, -1], [0, -1, -1]]  # better: positive
    assert over.improvement(3, 0).tolist() == (-over.improvement(0, 3)).tolist()
    with pytest.raises(ValueError, match=r"epoch == 2, recorded epochs are \[0, 3\]"):
        over.at(2)
    with pytest.raises(ValueError, match="must all be square and of one shape"):
        ConfusionOverEpochs([before, np.zeros((2, 2))])
