"""Argument checks: the one error style of the package, and the checkers every module shares.

Every bad argument raises one ``ValueError`` in Keras' style, naming the argument, what was
expected and what was received::

    Invalid value for argument 'dropout': expected a float in [0, 1). Received: dropout=1.5

The study-file parser (``ablation.spec``) calls the same checkers and puts the key path in front
(``train.epochs: expected a positive integer. Received: epochs=0``), so a study file and a Python
call say the same thing about the same value. This module imports nothing heavy.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection, Sequence
from typing import Any

PREFIX = "Invalid value for argument"


def invalid(arg: str, expected: str, value: Any, *, shown: str | None = None) -> ValueError:
    """The ValueError for one bad argument value (``shown`` replaces ``repr(value)``)."""
    return ValueError(f"{PREFIX} '{arg}': expected {expected}. Received: {arg}={shown or repr(value)}")


def split_message(error: ValueError) -> tuple[str, str] | None:
    """``(argument, 'expected ... Received: ...')`` of an :func:`invalid` message, else None."""
    text = str(error)
    if not text.startswith(PREFIX + " '"):
        return None
    arg, _, rest = text[len(PREFIX) + 2:].partition("': ")
    return arg, rest


# --------------------------------------------------------------------------- predicates

def is_int(value: Any) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def is_real(value: Any) -> bool:
    """A finite real number (Python or NumPy), not a bool."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and type(value).__name__ != "bool_" and math.isfinite(value))


# --------------------------------------------------------------------------- checkers
# Each returns the (normalized) value or raises invalid(...).

def integer(arg: str, value: Any, minimum: int | None = 1, maximum: int | None = None, what: str = "") -> int:
    """An int in ``[minimum, maximum]`` (None: unbounded); ``what`` adds a note to the expectation."""
    ok = is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        raise invalid(arg, _int_words(minimum, maximum) + what, value)
    return int(value)


def _int_words(minimum: int | None, maximum: int | None) -> str:
    if maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    return {1: "a positive integer", 0: "a non-negative integer", None: "an integer"}.get(
        minimum, f"an integer >= {minimum}")


def real(arg: str, value: Any, expected: str = "a finite float", ok: Callable[[float], bool] = lambda x: True) -> float:
    """A finite real number accepted by ``ok``; ``expected`` says which."""
    if not is_real(value) or not ok(float(value)):
        raise invalid(arg, expected, value)
    return float(value)


def positive(arg: str, value: Any) -> float:
    """A finite float > 0."""
    return real(arg, value, "a positive float", lambda x: x > 0)


def non_negative(arg: str, value: Any) -> float:
    """A finite float >= 0."""
    return real(arg, value, "a non-negative float", lambda x: x >= 0)


def unit_interval(arg: str, value: Any, *, closed_right: bool = False) -> float:
    """A float in [0, 1) (drop rates), or [0, 1] with ``closed_right``."""
    if closed_right:
        return real(arg, value, "a float in [0, 1]", lambda x: 0 <= x <= 1)
    return real(arg, value, "a float in [0, 1)", lambda x: 0 <= x < 1)


def open_unit_interval(arg: str, value: Any) -> float:
    """A float in (0, 1) (confidence levels)."""
    return real(arg, value, "a float in (0, 1)", lambda x: 0 < x < 1)


def boolean(arg: str, value: Any) -> bool:
    """True or False (not 0 / 1)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise invalid(arg, "True or False", value)
    return bool(value)


def text(arg: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(arg, "a non-empty string", value)
    return value


def choice(arg: str, value: Any, choices: Collection[Any]) -> Any:
    """One of ``choices`` (True never matches 1, nor 1.0 the string '1.0')."""
    def same(option: Any, v: Any) -> bool:
        if isinstance(option, bool) or isinstance(v, bool):
            return option is v
        return type(option) is type(v) and option == v

    if not any(same(option, value) for option in choices):
        raise invalid(arg, f"one of {', '.join(map(str, choices))}", value)
    return value


def int_list(arg: str, value: Any, minimum: int = 1, non_empty: bool = True) -> list[int]:
    """A list (or tuple) of ints >= ``minimum``, distinct."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or (non_empty and not value) \
            or not all(is_int(v) and v >= minimum for v in value) or len(set(value)) != len(value):
        words = _int_words(minimum, None).replace("an integer", "integers").replace("a positive integer",
                                                                                  "positive integers")
        words = words.replace("a non-negative integer", "non-negative integers")
        raise invalid(arg, f"{'a non-empty' if non_empty else 'a'} list of distinct {words}", value)
    return [int(v) for v in value]
