"""``SpecError``: a study file that cannot be run, in one line that starts with the key path.

Value errors follow the package's one style (``ablation.base.checks``), with the key path in front::

    train.epochs: expected a positive integer. Received: epochs=0
    grid.dropuot: unknown key; did you mean grid.dropout?
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ablation.base import checks


class SpecError(ValueError):
    """A study file that cannot be run: the message is one line starting with the key path.

    Attributes:
        key: the dotted key path the error is about (``"grid.dropout"``), or the file name.
        problem: the message after the key path.
    """

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = re.sub(r"\s*\n\s*", " ", problem).strip()
        super().__init__(f"{key}: {self.problem}")


def show(value: Any) -> str:
    """How a received value is shown (TOML-like: strings quoted, booleans lower-case)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # TOML spells them inf, -inf, nan
    try:
        return json.dumps(jsonable(value), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def jsonable(value: Any) -> Any:
    """Mappings and sequences as dicts and lists (recursively), paths as strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def last_key(path: str) -> str:
    """The name a value has in ``Received: name=value``: the last part of its key path."""
    return path.rsplit(".", 1)[-1] if path else "value"


def invalid(path: str, expected: str, value: Any) -> SpecError:
    """The SpecError for a bad value at ``path``, in the package's error style."""
    return SpecError(path, f"expected {expected}. Received: {last_key(path)}={show(value)}")


def checked(path: str, check: Callable[..., Any], value: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one of ``ablation.base.checks``' checkers on a study-file value; its error names ``path``."""
    try:
        return check(last_key(path), value, *args, **kwargs)
    except ValueError as exc:
        parts = checks.split_message(exc)
        if parts is None:
            raise SpecError(path, str(exc)) from None
        expected = parts[1].split(". Received: ")[0]
        raise invalid(path, expected.removeprefix("expected "), value) from None


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def unknown(path: str, key: str, allowed: Iterable[str], noun: str = "key") -> SpecError:
    """The error for an unknown key, with a did-you-mean suggestion."""
    allowed = sorted(set(allowed))
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return SpecError(join(path, key), f"unknown {noun}; did you mean {join(path, close[0])}?")
    return SpecError(join(path, key), f"unknown {noun}; expected one of {', '.join(allowed) or '(none)'}")


def from_value_error(path: str, exc: Exception, blame_argument: bool = False,
                     arguments: Iterable[str] = ()) -> SpecError:
    """A SpecError at ``path`` from a ValueError of the zoo or the data module.

    With ``blame_argument``, an ``Invalid value for argument 'x'`` error about one of ``arguments``
    is put at ``path.x``.
    """
    message = str(exc)
    parts = checks.split_message(exc) if isinstance(exc, ValueError) else None
    if parts is not None:
        arg, rest = parts
        if blame_argument and arg in set(arguments):
            return SpecError(join(path, arg), rest)
    return SpecError(path, message)
