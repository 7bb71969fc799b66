"""The confusion matrix over epochs: what a training recorded after each epoch, and how cells changed.

The training process records one matrix per epoch on a fixed subset of the
validation images (`core.training.callbacks.ConfusionRecorder`, counted by
`core.evaluation.metrics.confusion_counts`); the run store keeps them as JSON
records (`RunStore.confusion`), and `confusion_over_epochs` turns those into a
`ConfusionOverEpochs` for the Inside page.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from core.errors import RunError


def confusion_over_epochs(records: Sequence[dict[str, Any]] | None) -> "ConfusionOverEpochs | None":
    """The recorded matrices ([{"epoch": n, "matrix": [[...]]}, ...]), or None when there are none.

    Raises RunError when they cannot be used.
    """
    if not records:
        return None
    try:
        return ConfusionOverEpochs([np.asarray(r["matrix"], dtype=np.int64) for r in records],
                                   [int(r["epoch"]) for r in records])
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(f"the confusion matrices over epochs cannot be used: {error}") from None


class CellChange(NamedTuple):
    true: int
    predicted: int
    before: int
    after: int


class ConfusionOverEpochs:
    """Per-epoch confusion matrices of one fixed validation subset."""

    def __init__(self, matrices: Sequence[np.ndarray], epochs: Sequence[int] | None = None) -> None:
        """`epochs` numbers the matrices (default 1, 2, ...; use 0 for one recorded before training)."""
        self.matrices = tuple(np.asarray(m, dtype=np.int64) for m in matrices)
        self.epochs = tuple(int(e) for e in (epochs if epochs is not None else range(1, len(self.matrices) + 1)))
        if len(self.epochs) != len(self.matrices):
            raise ValueError(f"{len(self.matrices)} matrices but {len(self.epochs)} epoch numbers.")
        if any(b <= a for a, b in zip(self.epochs, self.epochs[1:])):
            raise ValueError(f"epochs {list(self.epochs)} must be strictly increasing.")
        shapes = {m.shape for m in self.matrices}
        if len(shapes) > 1 or any(len(s) != 2 or s[0] != s[1] for s in shapes):
            raise ValueError(f"matrices must all be square and of one shape, got {sorted(shapes)}.")

    def __len__(self) -> int:
        return len(self.matrices)

    def at(self, epoch: int) -> np.ndarray:
        """The matrix recorded at `epoch`."""
        if epoch not in self.epochs:
            raise ValueError(f"epoch == {epoch}, recorded epochs are {list(self.epochs)}.")
        return self.matrices[self.epochs.index(epoch)]

    def improvement(self, a: int, b: int) -> np.ndarray:
        """How each cell moved from epoch a to epoch b, signed so that better is positive: images gained on the
        diagonal (read right) and lost off it (fewer mistakes) count up; the opposite counts down."""
        diff = self.at(b) - self.at(a)
        better = -diff
        np.fill_diagonal(better, np.diag(diff))
        return better

    def changes(self, a: int, b: int, top: int = 5, off_diagonal_only: bool = False) -> list[CellChange]:
        """The `top` cells whose counts changed most from epoch a to epoch b, largest change first."""
        before, after = self.at(a), self.at(b)
        diff = np.abs(after - before)
        if off_diagonal_only:
            np.fill_diagonal(diff, 0)
        cells = [(int(-diff[t, p]), t, p) for t, p in zip(*np.nonzero(diff))]
        return [CellChange(int(t), int(p), int(before[t, p]), int(after[t, p])) for _, t, p in sorted(cells)[:top]]
