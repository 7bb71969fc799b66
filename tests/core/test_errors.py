"""Exceptions that carry a message meant for the user: what each one also is."""

from __future__ import annotations

import pytest

from core.errors import (
    ArchitectureError,
    ConvLabError,
    DataError,
    DrawingError,
    ModelFileError,
    RunError,
    TrainingConfigError,
    TrainingDiverged,
)


def test_architecture_error_is_a_value_error():
    assert issubclass(ArchitectureError, ValueError)


@pytest.mark.parametrize("error, builtin", [
    (DataError, ValueError), (ArchitectureError, ValueError), (TrainingConfigError, ValueError),
    (DrawingError, ValueError), (RunError, ValueError), (ModelFileError, ValueError),
    (TrainingDiverged, ArithmeticError),
])
def test_every_error_is_a_convlab_error_and_the_builtin_error_callers_expect(error, builtin):
    assert issubclass(error, ConvLabError) and issubclass(error, builtin)
    with pytest.raises(ConvLabError) as info:  # one `except ConvLabError` shows any of them to the user
        raise error("bars.npz: 'y_test' has negative labels (minimum -1).")
    assert str(info.value) == "bars.npz: 'y_test' has negative labels (minimum -1)."  # the message as it is
    others = {DataError, ArchitectureError, TrainingConfigError, DrawingError, RunError, ModelFileError,
              TrainingDiverged} - {error}
    assert not any(issubclass(error, other) for other in others)  # each caught on its own
