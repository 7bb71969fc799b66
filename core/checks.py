"""One rule for every scalar setting (slider values, training settings), in scikit-learn's `check_scalar` style.

Integers are Python or NumPy integers (never booleans); numbers are any finite real (never booleans,
never too large for a float). A value of the wrong kind or out of range raises the caller's error class
with `"{name} == {value}, must be {what}."`.
"""

from __future__ import annotations

import math
import numbers
from typing import Type


def check_scalar(value: object, name: str, error: Type[Exception], *, integer: bool, lo: float, hi: float,
                 what: str, kind_message: str | None = None, lo_open: bool = False, hi_open: bool = False) -> None:
    """Raise `error` unless `value` is an integer (or a finite number) within [lo, hi] (ends open as asked).

    `what` describes the valid range ("an integer from 1 to 500", "in (0, 10]"); `kind_message`, when
    given, is said instead for a value of the wrong kind ("an integer", "a number").
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not _finite(value):
        raise error(f"{name} == {value!r}, must be {kind_message or what}.")
    below = value <= lo if lo_open else value < lo
    above = value >= hi if hi_open else value > hi
    if below or above:
        raise error(f"{name} == {value}, must be {what}.")


def _finite(value: numbers.Real) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False
