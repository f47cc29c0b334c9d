"""Confidence intervals: the percentile bootstrap, and the statistic of an effect on paired runs.

Percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13): the observations are resampled
with replacement ``n_boot`` times (default 10,000) by ``numpy.random.default_rng(seed)`` (default
seed 0, so every number is reproducible), the statistic is recomputed on each resample, and the
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those values are the interval. The
estimate is the statistic of the sample itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ablation import checks
from ablation.spec import EFFECTS
from ablation.stats.frames import check_choice

N_BOOT = 10_000
LEVEL = 0.95
_CHUNK_ELEMENTS = 4_000_000  # resampled values held in memory at once


def bootstrap_ci(values: Any, stat: Callable[..., Any] = np.mean, level: float = LEVEL,
                 n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """Percentile bootstrap confidence interval of a statistic.

    Args:
        values: the sample: a 1-D array of finite numbers, or a 2-D array with one observation
            per row (e.g. ``(treatment, baseline)`` pairs, resampled together).
        stat: the statistic; called as ``stat(sample)`` on the sample and, where it accepts it,
            as ``stat(resamples, axis=1)`` on all resamples at once (``np.mean``, ``np.median``).
        level: confidence level in (0, 1).
        n_boot: number of bootstrap resamples (>= 1).
        seed: seed of ``numpy.random.default_rng``; the same inputs give the same interval.

    Returns:
        ``(estimate, lo, hi)``: ``stat(values)`` and the percentile interval. With a single
        observation there is nothing to resample: the interval is ``(nan, nan)``.

    Raises:
        ValueError: no observations, non-finite values, or a bad ``level`` / ``n_boot``.
    """
    x = _as_sample(values)
    _check_level(level)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"Invalid value for argument 'n_boot': expected an int >= 1. Received: n_boot={n_boot!r}")
    estimate = float(stat(x))
    if x.shape[0] == 1:
        return estimate, float("nan"), float("nan")
    boots = _resampled_stats(x, stat, n_boot, seed)
    with np.errstate(invalid="ignore"):
        lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return estimate, float(lo), float(hi)


def _as_sample(values: Any) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ValueError("Invalid value for argument 'values': expected a non-empty 1-D sample "
                         f"(or 2-D, one observation per row). Received: values with shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("Invalid value for argument 'values': expected finite numbers. "
                         f"Received: {int(np.sum(~np.isfinite(x)))} non-finite value(s) in values")
    return x


def _check_level(level: float) -> None:
    if not isinstance(level, (float, int)) or isinstance(level, bool) or not 0 < level < 1:
        raise ValueError(f"Invalid value for argument 'level': expected a float in (0, 1). Received: level={level!r}")


def _resampled_stats(x: np.ndarray, stat: Callable[..., Any], n_boot: int, seed: int) -> np.ndarray:
    """``stat`` of ``n_boot`` resamples of the rows of ``x``, drawn in memory-bounded chunks."""
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // x.size)
    out = []
    for start in range(0, n_boot, chunk):
        samples = x[rng.integers(0, n, size=(min(chunk, n_boot - start), n))]
        out.append(_stat_rows(samples, stat))
    return np.concatenate(out)


def _stat_rows(samples: np.ndarray, stat: Callable[..., Any]) -> np.ndarray:
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.asarray(stat(samples, axis=1), dtype=float)
        if values.shape == (samples.shape[0],):
            return values
    except TypeError:
        pass
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.array([stat(s) for s in samples], dtype=float)


def effect_stat(effect: str) -> Callable[..., Any]:
    """The statistic of an effect on ``(treatment, baseline)`` pairs (rows of a 2-D array).

    ``"difference"``: ``mean(treatment) - mean(baseline)`` (= the mean paired difference);
    ``"ratio"``: ``mean(treatment) / mean(baseline)`` (ratio of means, robust to single zeros).
    """
    check_choice("effect", effect, EFFECTS)

    def stat(pairs: np.ndarray, axis: int = 0) -> np.ndarray:
        means = np.mean(pairs, axis=axis)
        return means[..., 0] - means[..., 1] if effect == "difference" else means[..., 0] / means[..., 1]

    return stat
