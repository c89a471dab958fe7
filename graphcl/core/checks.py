"""Range checks of constructor arguments (temperatures, rates, momenta, widths), one line per failure.

A method checks its hyper-parameters at the top of `__init__`, so a bad value fails when the method is built,
before any training. The error is an `ArgumentError` (a `ValueError`) that names the argument, so the trainer's
builder can name the config key it came from (`model.params.<argument>`).
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Any, Iterable, Optional

__all__ = ["ArgumentError", "check_choice", "check_nonnegative", "check_positive", "check_probability",
           "check_rate", "check_size"]


class ArgumentError(ValueError):
    """`owner`'s argument `argument` is unusable; `problem` says why ("must be > 0, got -1")."""

    def __init__(self, owner: str, argument: str, problem: str) -> None:
        self.owner, self.argument, self.problem = owner, argument, problem
        super().__init__(f"{owner}: {argument} {problem}")


def _number(value: Any) -> Optional[float]:
    """`value` as a float if it is a real number (bools are not), else None; NaN stays NaN."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    return float(value)


def _check(owner: str, values: dict[str, Any], ok, requirement: str, allow_none: bool) -> None:
    for name, value in values.items():
        if value is None and allow_none:
            continue
        v = _number(value)
        if v is None or math.isnan(v) or not ok(v):
            raise ArgumentError(owner, name, f"must be {requirement}{' or None' if allow_none else ''}, "
                                             f"got {value!r}")


def check_rate(owner: str, allow_none: bool = False, **values: Any) -> None:
    """Drop / mask rates: each in [0, 1)."""
    _check(owner, values, lambda v: 0.0 <= v < 1.0, "in [0, 1)", allow_none)


def check_probability(owner: str, **values: Any) -> None:
    """Momenta and other closed-interval fractions: each in [0, 1]."""
    _check(owner, values, lambda v: 0.0 <= v <= 1.0, "in [0, 1]", False)


def check_positive(owner: str, allow_none: bool = False, **values: Any) -> None:
    """Temperatures, exponents, scales: each > 0 (NaN and Inf rejected)."""
    _check(owner, values, lambda v: 0.0 < v < math.inf, "> 0", allow_none)


def check_nonnegative(owner: str, **values: Any) -> None:
    """Loss weights: each >= 0 and finite."""
    _check(owner, values, lambda v: 0.0 <= v < math.inf, ">= 0", False)


def check_size(owner: str, allow_none: bool = True, **values: Any) -> None:
    """Widths, head counts, chunk sizes: each an int >= 1 (None allowed by default: "the default width")."""
    for name, value in values.items():
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArgumentError(owner, name, f"must be an int >= 1{' or None' if allow_none else ''}, "
                                             f"got {value!r}")


def check_choice(owner: str, argument: str, value: Any, choices: Iterable[Any]) -> None:
    """`value` must be one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ArgumentError(owner, argument, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
