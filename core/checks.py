"""One family of checks for every setting, in scikit-learn's `check_scalar` style.

Each check returns the value it was given, so a caller writes
`self.epochs = check_scalar(...)` or simply calls it for the side effect, and
raises the caller's error class (an `ArchitectureError`, a `DataError`, ...)
with `"{name} == {value}, must be {what}."`. A value of the wrong type raises
that same class mixed with `TypeError` (`type_error_of`): `except TypeError`
and `except ArchitectureError` both catch it, and the dashboard shows it like
any other message. Integers are Python or NumPy integers (never booleans);
numbers are any finite real (never booleans, never too large for a float).

`from_mapping` is the one way a settings dataclass is read back from JSON
(a run's spec, a dataset reference's options), and `check_seed` the one
seed range every seed in ConvLab obeys.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from typing import Any, Mapping, Sequence, TypeVar

from core.errors import ConvLabError

# NumPy takes seeds up to 2**32 - 1 but TensorFlow's and the Training page's stop at 2**31 - 1: one range for all
MAX_SEED = 2**31 - 1

V = TypeVar("V")
C = TypeVar("C")


@functools.cache
def type_error_of(error: type[Exception]) -> type[Exception]:
    """`error` mixed with TypeError, named like `error` (one class per error class)."""
    if issubclass(error, TypeError):
        return error
    return type(error.__name__, (error, TypeError), {"__module__": error.__module__,
                                                      "__doc__": f"{error.__name__}: a value of the wrong type."})


def check_scalar(value: V, name: str, error: type[Exception] = ConvLabError, *, integer: bool, lo: float, hi: float,
                 what: str, kind_message: str | None = None, lo_open: bool = False, hi_open: bool = False) -> V:
    """Return `value` if it is an integer (or a finite number) within [lo, hi] (ends open as asked).

    `what` describes the valid range ("an integer from 1 to 500", "in (0, 10]"); `kind_message`, when
    given, is said instead for a value of the wrong type ("an integer", "a number").
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise type_error_of(error)(f"{name} == {value!r}, must be {kind_message or what}.")
    if not _finite(value):
        raise error(f"{name} == {value!r}, must be {kind_message or what}.")
    below = value <= lo if lo_open else value < lo
    above = value >= hi if hi_open else value > hi
    if below or above:
        raise error(f"{name} == {value}, must be {what}.")
    return value


def check_choice(value: V, name: str, choices: Sequence[Any], error: type[Exception] = ConvLabError) -> V:
    """Return `value` if it is one of `choices`."""
    if value not in choices:
        listed = ", ".join(repr(choice) for choice in choices)
        raise error(f"{name} == {value!r}, must be one of {listed}.")
    return value


def check_flag(value: V, name: str, error: type[Exception] = ConvLabError) -> V:
    """Return `value` if it is True or False."""
    if not isinstance(value, bool):
        raise type_error_of(error)(f"{name} == {value!r}, must be True or False.")
    return value


def check_seed(value: V, name: str = "seed", error: type[Exception] = ConvLabError) -> V:
    """Return `value` if it is a seed ConvLab accepts: an integer from 0 to MAX_SEED."""
    return check_scalar(value, name, error, integer=True, lo=0, hi=MAX_SEED, what=f"an integer from 0 to {MAX_SEED}")


def from_mapping(cls: type[C], data: object, what: str, error: type[Exception] = ConvLabError) -> C:
    """A settings dataclass from a mapping of its fields (JSON), refusing anything else by name.

    Missing fields take their defaults; the dataclass checks the values themselves.
    """
    if not isinstance(data, Mapping):
        raise type_error_of(error)(f"{what} must be a mapping, not {type(data).__name__}.")
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise error(f"{what}: unknown setting(s) {', '.join(repr(k) for k in unknown)}; "
                    f"known: {', '.join(known)}.")
    return cls(**data)


def _finite(value: numbers.Real) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False
