"""One family of checks for every setting: exact messages, the caller's error class, the value handed back."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from core.checks import MAX_SEED, check_choice, check_flag, check_scalar, check_seed, from_mapping, type_error_of
from core.errors import ArchitectureError, ConvLabError, DataError, RunError, TrainingConfigError

EPOCHS = dict(integer=True, lo=1, hi=500, what="an integer from 1 to 500")
RATE = dict(integer=False, lo=0, hi=10, what="in (0, 10]", kind_message="a number", lo_open=True)
MOMENTUM = dict(integer=False, lo=0, hi=1, what="in [0, 1)", kind_message="a number", hi_open=True)
SHIFT = dict(integer=False, lo=0, hi=0.5, what="in [0, 0.5]")
FILTERS = dict(integer=True, lo=1, hi=1024, what="between 1 and 1024", kind_message="an integer")


@dataclass(frozen=True)
class Pen:
    width: int = 3
    colour: str = "black"


CASES = {
    # check_scalar, integers
    "integer below": (lambda: check_scalar(0, "epochs", TrainingConfigError, **EPOCHS),
                      TrainingConfigError, "epochs == 0, must be an integer from 1 to 500."),
    "integer above": (lambda: check_scalar(501, "epochs", TrainingConfigError, **EPOCHS),
                      TrainingConfigError, "epochs == 501, must be an integer from 1 to 500."),
    "numpy integer above": (lambda: check_scalar(np.int64(501), "epochs", TrainingConfigError, **EPOCHS),
                            TrainingConfigError, "epochs == 501, must be an integer from 1 to 500."),
    "float for an integer": (lambda: check_scalar(2.5, "epochs", TrainingConfigError, **EPOCHS),
                             type_error_of(TrainingConfigError), "epochs == 2.5, must be an integer from 1 to 500."),
    "whole float for an integer": (lambda: check_scalar(32.0, "filters", ArchitectureError, **FILTERS),
                                   type_error_of(ArchitectureError), "filters == 32.0, must be an integer."),
    "bool for an integer": (lambda: check_scalar(True, "epochs", TrainingConfigError, **EPOCHS),
                            type_error_of(TrainingConfigError), "epochs == True, must be an integer from 1 to 500."),
    "integer too large for a float": (lambda: check_scalar(10**400, "filters", ArchitectureError, **FILTERS),
                                      ArchitectureError, f"filters == {10**400!r}, must be an integer."),
    # check_scalar, numbers and the ends of their ranges
    "open low end": (lambda: check_scalar(0.0, "learning rate", TrainingConfigError, **RATE),
                     TrainingConfigError, "learning rate == 0.0, must be in (0, 10]."),
    "above a closed high end": (lambda: check_scalar(10.5, "learning rate", TrainingConfigError, **RATE),
                                TrainingConfigError, "learning rate == 10.5, must be in (0, 10]."),
    "open high end": (lambda: check_scalar(1.0, "momentum", TrainingConfigError, **MOMENTUM),
                      TrainingConfigError, "momentum == 1.0, must be in [0, 1)."),
    "below a closed low end": (lambda: check_scalar(-0.1, "momentum", TrainingConfigError, **MOMENTUM),
                               TrainingConfigError, "momentum == -0.1, must be in [0, 1)."),
    "NaN": (lambda: check_scalar(float("nan"), "learning rate", TrainingConfigError, **RATE),
            TrainingConfigError, "learning rate == nan, must be a number."),
    "NaN without a kind message": (lambda: check_scalar(float("nan"), "shift", ArchitectureError, **SHIFT),
                                   ArchitectureError, "shift == nan, must be in [0, 0.5]."),
    "infinity": (lambda: check_scalar(float("-inf"), "learning rate", TrainingConfigError, **RATE),
                 TrainingConfigError, "learning rate == -inf, must be a number."),
    "bool for a number": (lambda: check_scalar(False, "learning rate", TrainingConfigError, **RATE),
                          type_error_of(TrainingConfigError), "learning rate == False, must be a number."),
    "text for a number": (lambda: check_scalar("0.1", "learning rate", TrainingConfigError, **RATE),
                          type_error_of(TrainingConfigError), "learning rate == '0.1', must be a number."),
    "huge integer for a number": (lambda: check_scalar(10**400, "learning rate", TrainingConfigError, **RATE),
                                  TrainingConfigError, f"learning rate == {10**400!r}, must be a number."),
    "default error class": (lambda: check_scalar(-1, "n", integer=True, lo=0, hi=9, what="from 0 to 9"),
                            ConvLabError, "n == -1, must be from 0 to 9."),
    # check_choice
    "unknown choice": (lambda: check_choice("adamw", "optimizer", ("sgd", "adam"), TrainingConfigError),
                       TrainingConfigError, "optimizer == 'adamw', must be one of 'sgd', 'adam'."),
    "choice of another type": (lambda: check_choice(True, "invert", ("never", "always"), DataError),
                               DataError, "invert == True, must be one of 'never', 'always'."),
    # check_flag
    "integer for a flag": (lambda: check_flag(1, "horizontal_flip", ArchitectureError),
                           type_error_of(ArchitectureError), "horizontal_flip == 1, must be True or False."),
    "text for a flag": (lambda: check_flag("yes", "vertical_flip", ArchitectureError),
                        type_error_of(ArchitectureError), "vertical_flip == 'yes', must be True or False."),
    # check_seed
    "negative seed": (lambda: check_seed(-1), ConvLabError, "seed == -1, must be an integer from 0 to 2147483647."),
    "seed past the range": (lambda: check_seed(2**31, "split seed", DataError),
                            DataError, "split seed == 2147483648, must be an integer from 0 to 2147483647."),
    "float seed": (lambda: check_seed(1.5, "seed", RunError),
                   type_error_of(RunError), "seed == 1.5, must be an integer from 0 to 2147483647."),
    "huge seed": (lambda: check_seed(10**400), ConvLabError,
                  f"seed == {10**400!r}, must be an integer from 0 to 2147483647."),
    # from_mapping
    "not a mapping": (lambda: from_mapping(Pen, [("width", 2)], "pen settings", DataError),
                      type_error_of(DataError), "pen settings must be a mapping, not list."),
    "None for a mapping": (lambda: from_mapping(Pen, None, "pen settings"),
                           type_error_of(ConvLabError), "pen settings must be a mapping, not NoneType."),
    "unknown keys": (lambda: from_mapping(Pen, {"width": 2, "size": 1, "angle": 3}, "pen settings", DataError),
                     DataError, "pen settings: unknown setting(s) 'angle', 'size'; known: width, colour."),
}


@pytest.mark.parametrize("call, error, message", CASES.values(), ids=CASES.keys())
def test_each_check_refuses_with_the_callers_error_and_its_exact_message(call, error, message):
    with pytest.raises(Exception) as info:
        call()
    assert type(info.value) is error
    assert str(info.value) == message


@pytest.mark.parametrize("error", [ConvLabError, DataError, ArchitectureError, TrainingConfigError, RunError])
def test_a_wrong_type_raises_the_callers_error_that_is_also_a_type_error(error):
    with pytest.raises(TypeError) as as_type:
        check_scalar("3", "filters", error, **FILTERS)
    with pytest.raises(error) as as_callers:
        check_scalar("3", "filters", error, **FILTERS)
    for raised in (as_type.value, as_callers.value):
        assert isinstance(raised, error) and isinstance(raised, TypeError)
        assert type(raised).__name__ == error.__name__  # shown to the user like the caller's own error
    mixed = type_error_of(error)
    assert mixed is type_error_of(error) and issubclass(mixed, error) and issubclass(mixed, TypeError)
    assert type_error_of(TypeError) is TypeError  # already a TypeError: nothing to mix in
    with pytest.raises(error) as out_of_range:  # a value of the right type out of its range is no TypeError
        check_scalar(0, "filters", error, **FILTERS)
    assert not isinstance(out_of_range.value, TypeError)


def test_each_check_returns_the_value_it_was_given():
    big = np.int64(500)
    for value, check in [
        (1, lambda v: check_scalar(v, "epochs", TrainingConfigError, **EPOCHS)),  # closed ends are in the range
        (500, lambda v: check_scalar(v, "epochs", TrainingConfigError, **EPOCHS)),
        (big, lambda v: check_scalar(v, "epochs", TrainingConfigError, **EPOCHS)),
        (10, lambda v: check_scalar(v, "learning rate", TrainingConfigError, **RATE)),  # an int is a number
        (np.float32(0.5), lambda v: check_scalar(v, "learning rate", TrainingConfigError, **RATE)),
        (0.0, lambda v: check_scalar(v, "momentum", TrainingConfigError, **MOMENTUM)),
        ("adam", lambda v: check_choice(v, "optimizer", ("sgd", "adam"))),
        (False, lambda v: check_flag(v, "horizontal_flip")),
        (0, check_seed),
        (MAX_SEED, check_seed),
    ]:
        assert check(value) is value
    pen = from_mapping(Pen, {"colour": "red"}, "pen settings")
    assert pen == Pen(width=3, colour="red")  # a missing field takes its default
