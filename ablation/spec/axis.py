"""A grid axis and its labels: the values of one axis, the string label of each (keras-tuner's
``hp.Choice`` holds strings), and value equality where ``0 == 0.0`` but ``True != 1``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ablation.spec.errors import invalid


@dataclass(frozen=True)
class Axis:
    """One grid axis: values and their string labels, in the order of the study file."""

    name: str                                 # a model argument, a train key, "train_size" or "config"
    values: tuple[Any, ...]                   # config: dicts of overrides (model or train keys)
    labels: tuple[str, ...]                   # unique strings; config: the recipe names
    section: str                              # "model" | "train" | "data" | "config"

    def value_of(self, label: str) -> Any:
        """Return the value whose label is ``label`` (SpecError if there is none)."""
        if label in self.labels:
            return self.values[self.labels.index(label)]
        raise invalid(f"point.{self.name}", f"one of {', '.join(self.labels)}", label)

    def label_of(self, value: Any) -> str:
        """Return the label of ``value`` (or of the value whose label ``value`` is)."""
        for v, lab in zip(self.values, self.labels):
            if same(v, value) or (isinstance(value, str) and value == lab):
                return lab
        raise invalid(f"grid.{self.name}", f"one of {', '.join(self.labels)}", value)


def label(value: Any) -> str:
    """The string label of an axis value: ``None`` -> "none", ``[100, 100]`` -> "100-100", 0.5 -> "0.5"."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(label(v) for v in value) if value else "[]"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={label(v)}" for k, v in value.items()) if value else "{}"
    return str(value)


def freeze(value: Any) -> Any:
    """Lists become tuples (recursively); tables stay dicts."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: freeze(v) for k, v in value.items()}
    return value


def same(a: Any, b: Any) -> bool:
    """Value equality where 0 == 0.0 but True != 1 and lists equal tuples."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, Mapping)) or isinstance(b, (list, tuple, Mapping)):
        return False
    return a == b
