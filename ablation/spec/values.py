"""Checks of study-file values at a key path: tables, keys, lists, numbers, names.

Thin wrappers around ``ablation.base.checks`` (the package's one set of checkers) that raise
``SpecError`` naming the key path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ablation.base import checks
from ablation.spec.axis import same
from ablation.spec.errors import SpecError, checked, invalid, show, unknown


def table(value: Any, path: str) -> dict:
    """A TOML table."""
    if not isinstance(value, dict):
        raise invalid(path, "a table", value)
    return value


def check_keys(t: Mapping, path: str, allowed: Iterable[str], noun: str = "key") -> None:
    """Every key of ``t`` is one of ``allowed`` (else: unknown key, with a did-you-mean)."""
    allowed = set(allowed)
    for key in t:
        if key not in allowed:
            raise unknown(path, key, allowed, noun)


def require(t: Mapping, path: str, *keys: str) -> None:
    for key in keys:
        if key not in t:
            raise SpecError(f"{path}.{key}" if path else key, "required key is missing")


def integer(v: Any, path: str, minimum: int = 1) -> int:
    return checked(path, checks.integer, v, minimum)


def real(v: Any, path: str, what: str, ok: Any = lambda x: True) -> float:
    return checked(path, checks.real, v, what, ok)


def positive(v: Any, path: str) -> float:
    return checked(path, checks.positive, v)


def non_negative(v: Any, path: str) -> float:
    return checked(path, checks.non_negative, v)


def boolean(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise invalid(path, "true or false", v)
    return v


def text(v: Any, path: str) -> str:
    return checked(path, checks.text, v)


def optional_text(t: Mapping, key: str, path: str) -> str:
    """``t[key]`` if it is a string (empty allowed), "" when absent."""
    v = t.get(key, "")
    if not isinstance(v, str):
        raise invalid(f"{path}.{key}", "a string", v)
    return v


def choice(v: Any, path: str, choices: Iterable[Any]) -> Any:
    return checked(path, checks.choice, v, tuple(choices))


def items(v: Any, path: str, what: str, non_empty: bool = False) -> list:
    """A TOML array."""
    if not isinstance(v, list) or (non_empty and not v):
        raise invalid(path, f"{'a non-empty' if non_empty else 'a'} list of {what}", v)
    return v


def unique(values: list, path: str) -> None:
    for i, item in enumerate(values):
        if any(same(item, other) for other in values[:i]):
            raise SpecError(path, f"duplicate value {show(item)}")
