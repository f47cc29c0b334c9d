"""Selecting, matching, grouping and pairing rows of the long-form frames of a run.

- **Only completed rows count**: a row enters an estimate when its ``status`` is ``"completed"``
  (a frame without a ``status`` column counts as all completed) and its metric is finite. Failed
  and diverged rows are counted, never averaged.
- **Axis selections** (a claim's ``compare`` / ``against`` / ``where``, the selectors of
  ``epochs_to_reach``) match the frames' axis columns by value *or* by label
  (``ablation.spec.label``): a claim holds labels (``"0.5"``, ``"none"``, ``"100-100"``, the
  recipe name for ``config``), a column may hold values or labels, and ``0.5``, ``"0.5"`` and
  ``0.50`` all match (numbers within ``numpy.isclose``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ablation.spec import label


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"Invalid value for argument '{name}': expected one of {list(choices)}. "
                         f"Received: {name}={value!r}")


def usable(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Rows that enter estimates: completed status and a finite metric (for the ``diverged``
    indicator: every trial that finished training, completed or diverged)."""
    values = pd.to_numeric(frame[metric], errors="coerce").astype(float)
    ok = pd.Series(np.isfinite(values.to_numpy()), index=frame.index)
    if "status" in frame.columns:
        finished = ("completed", "diverged") if metric == "diverged" else ("completed",)
        ok &= frame["status"].astype(str).isin(finished)
    return ok


def require_columns(frame: pd.DataFrame, columns: Sequence[str], argument: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"Invalid value for argument '{argument}': expected column(s) of the frame "
                         f"{sorted(map(str, frame.columns))}. Received: {missing}")


def matches(column: pd.Series, value: Any) -> pd.Series:
    """Boolean mask of the entries of an axis column equal to ``value`` (see module docstring).

    ``value`` may be an axis value or its label (``spec.label``): ``0.5``, ``"0.5"``, ``None`` /
    ``"none"``, ``[100, 100]`` / ``"100-100"``, ``True`` / ``"true"`` all match their counterparts.
    """
    want = axis_label(value)
    hit = np.array([axis_label(cell) == want or str(cell) == str(value) for cell in column], dtype=bool)
    number = _as_number(value)
    if number is not None:
        cells = column.map(lambda cell: np.nan if _as_number(cell) is None else _as_number(cell))
        with np.errstate(invalid="ignore"):
            hit = hit | np.isclose(cells.to_numpy(dtype=float), number, rtol=1e-9, atol=1e-12)
    return pd.Series(hit, index=column.index)


def axis_label(value: Any) -> str:
    """The study-file label of an axis value (``ablation.spec.label``; NumPy scalars included)."""
    return label(value.item() if isinstance(value, np.generic) else value)


def _as_number(value: Any) -> float | None:
    """A finite float from a number or a numeric string (never from a bool); else None."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    if isinstance(value, (int, float, np.number)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if np.isfinite(number) else None
    return None


def select(frame: pd.DataFrame, selector: Mapping[str, Any] | None) -> pd.DataFrame:
    """Rows of ``frame`` whose axis columns equal every ``{axis: value}`` of ``selector``."""
    mask = pd.Series(True, index=frame.index)
    for axis, value in (selector or {}).items():
        mask &= matches(frame[axis], value)
    return frame[mask]


def row_keys(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """A hashable string key per row from ``columns`` (axis values may be lists or floats)."""
    if not columns or frame.empty:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[list(columns)].map(str).agg("\x1f".join, axis=1).astype(object)


def groups(frame: pd.DataFrame, columns: Sequence[str]) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Groups of rows sharing ``columns``, in order of appearance, with their original values."""
    for _, group in frame.groupby(row_keys(frame, columns), sort=False):
        yield {c: group[c].iloc[0] for c in columns}, group


def pair(treatment: pd.DataFrame, baseline: pd.DataFrame, on: Sequence[str], metric: str) -> pd.DataFrame:
    """Mean metric per key on each side, inner-joined on the key: columns treatment, baseline."""
    def side(frame: pd.DataFrame) -> pd.Series:
        values = pd.to_numeric(frame[metric], errors="coerce").astype(float)
        return values.groupby(row_keys(frame, on), sort=False).mean()

    return pd.concat([side(treatment).rename("treatment"), side(baseline).rename("baseline")],
                     axis=1, join="inner")


def axes_from_points(frame: pd.DataFrame) -> list[str]:
    """Axis names read off the ``point`` labels (``"activation=relu, dropout=0.5"``), in order.

    Only names that are also columns of ``frame`` are returned; no ``point`` column gives ``[]``.
    """
    if "point" not in frame.columns:
        return []
    names: list[str] = []
    for text in pd.unique(frame["point"].astype(str)):
        for name in re.findall(r"(?:^|,\s*)([A-Za-z_][\w.]*)=", text):
            if name in frame.columns and name not in names:
                names.append(name)
    return names

