"""Confidence intervals and tests of a mean, that hold at the small numbers of seeds studies run.

The unit of replication is the seed: every interval here is over one value per seed (a metric, a
paired difference, a log ratio), never over rows that share a seed. Methods:

- ``"t"`` (the default below ``BOOTSTRAP_MIN_N`` values): Student's t interval,
  ``mean ± t_{(1+level)/2, n-1} · s / sqrt(n)`` (``scipy.stats.ttest_1samp``). Exact for normal
  data; ``tests/test_stats.py`` measures its coverage on normal, skewed and heavy-tailed samples.
- ``"sign-flip"``: the exact permutation interval of the mean of a symmetric distribution: every
  ``mu`` whose sign-flip test of ``values - mu`` is not rejected (all 2**n flips up to
  ``EXACT_FLIPS_MAX_N`` values, ``N_FLIPS`` random ones beyond). Needs no normality, only symmetry;
  it cannot reach 95% below 6 values (the smallest p-value of 5 values is 2/32), and is then infinite.
- ``"bootstrap"`` (the default from ``BOOTSTRAP_MIN_N`` values on, where it covers): the
  percentile bootstrap (Efron & Tibshirani 1993, ch. 13), ``n_boot`` resamples, seeded.

A 2-value percentile bootstrap is exactly [min, max] and covers the mean about half of the time;
the t interval on the same values is honest about how little two seeds say (``tests/test_stats.py``).
One-sided t tests and two one-sided tests (TOST, for "near" claims) give the p-values that
:func:`holm` adjusts for the several claims of one study.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from ablation.base import checks
from ablation.spec import EFFECTS
from ablation.stats.frames import check_choice

N_BOOT = 10_000
LEVEL = 0.95
BOOTSTRAP_MIN_N = 30         # from this many values on, "auto" uses the percentile bootstrap (it covers there)
EXACT_FLIPS_MAX_N = 14       # sign-flip: all 2**n flips up to this n, N_FLIPS random ones beyond
N_FLIPS = 20_000
METHODS = ("auto", "t", "sign-flip", "bootstrap")
_CHUNK_ELEMENTS = 4_000_000  # resampled values held in memory at once


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval, over ``n`` values, by ``method``."""

    estimate: float
    lo: float
    hi: float
    n: int
    method: str

    @property
    def finite(self) -> bool:
        return bool(np.isfinite(self.lo) and np.isfinite(self.hi))


def mean_interval(values: Any, level: float = LEVEL, method: str = "auto", *, n_boot: int = N_BOOT,
                  seed: int = 0) -> Interval:
    """The mean of ``values`` (one per seed) with its confidence interval.

    Args:
        values: a 1-D sample of finite numbers.
        level: confidence level in (0, 1).
        method: "auto" (t below ``BOOTSTRAP_MIN_N`` values, bootstrap from there), "t",
            "sign-flip" or "bootstrap".
        n_boot, seed: bootstrap resamples and the seed of their generator.

    Returns:
        An :class:`Interval`; with fewer than 2 values (or no spread for t) the bounds are NaN or
        the single value.
    """
    x = _as_sample(values)
    if x.ndim != 1:
        raise checks.invalid("values", "a 1-D sample", x.shape, shown=f"values with shape {x.shape}")
    checks.open_unit_interval("level", level)
    checks.choice("method", method, METHODS)
    n = len(x)
    if method == "auto":
        method = "bootstrap" if n >= BOOTSTRAP_MIN_N else "t"
    estimate = float(np.mean(x))
    if n < 2:
        return Interval(estimate, float("nan"), float("nan"), n, method)
    if method == "t":
        if np.ptp(x) == 0:
            return Interval(estimate, estimate, estimate, n, method)
        lo, hi = sps.ttest_1samp(x, 0.0).confidence_interval(confidence_level=level)
    elif method == "sign-flip":
        lo, hi = _sign_flip_interval(x, level, seed)
    else:
        _, lo, hi = bootstrap_ci(x, np.mean, level, n_boot, seed)
    return Interval(estimate, float(lo), float(hi), n, method)


def _flips(n: int, seed: int) -> np.ndarray:
    """Sign patterns: all 2**n for small n (exact), else N_FLIPS random ones plus the identity."""
    if n <= EXACT_FLIPS_MAX_N:
        codes = np.arange(2 ** n)[:, None] >> np.arange(n)[None, :]
        return np.where(codes & 1, -1.0, 1.0)
    rng = np.random.default_rng(seed)
    return np.vstack([np.ones((1, n)), rng.choice([-1.0, 1.0], size=(N_FLIPS, n))])


def _sign_flip_p(x: np.ndarray, mu: float, flips: np.ndarray) -> float:
    """Two-sided sign-flip p-value of H0: the distribution of ``x`` is symmetric about ``mu``."""
    d = x - mu
    observed = abs(d.sum())
    return float(np.mean(np.abs(flips @ d) >= observed - 1e-12 * (1 + observed)))


def _sign_flip_interval(x: np.ndarray, level: float, seed: int) -> tuple[float, float]:
    """The set of ``mu`` not rejected at ``1 - level`` by the sign-flip test, found by bisection."""
    flips = _flips(len(x), seed)
    alpha, centre = 1 - level, float(np.mean(x))
    if 2.0 / len(flips) > alpha:  # e.g. 5 values: the smallest two-sided p is 2/32 > 0.05: no finite interval
        return float("-inf"), float("inf")
    span = float(np.ptp(x)) or 1.0

    def edge(direction: float) -> float:
        inside, outside = centre, centre + direction * span
        while _sign_flip_p(x, outside, flips) > alpha:  # widen until rejected
            inside, outside = outside, outside + direction * span
        for _ in range(40):
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if _sign_flip_p(x, mid, flips) > alpha else (inside, mid)
        return inside

    return edge(-1.0), edge(1.0)


def one_sided_p(values: Any, threshold: float, alternative: str) -> float:
    """p-value of a one-sided t test that the mean is ``"less"`` / ``"greater"`` than ``threshold``."""
    x = _as_sample(values)
    if len(x) < 2:
        return float("nan")
    if np.ptp(x) == 0:
        return 0.0 if (x[0] < threshold if alternative == "less" else x[0] > threshold) else 1.0
    return float(sps.ttest_1samp(x, threshold, alternative=alternative).pvalue)


def tost_p(values: Any, low: float, high: float) -> float:
    """p-value of two one-sided t tests that the mean lies inside ``(low, high)`` (equivalence)."""
    return max(one_sided_p(values, low, "greater"), one_sided_p(values, high, "less"))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p-values (family-wise error rate); NaN stays NaN.

    The i-th smallest of m p-values is multiplied by m - i + 1, then made non-decreasing and capped at 1.
    """
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out.tolist()
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.maximum.accumulate([min(1.0, (m - i) * p[j]) for i, j in enumerate(order)])
    out[order] = adjusted
    return out.tolist()


# --------------------------------------------------------------------------- the percentile bootstrap

def bootstrap_ci(values: Any, stat: Callable[..., Any] = np.mean, level: float = LEVEL,
                 n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """Percentile bootstrap confidence interval of a statistic (for many values; see the module docstring).

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
    checks.open_unit_interval("level", level)
    checks.integer("n_boot", n_boot, 1)
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
        raise checks.invalid("values", "a non-empty 1-D sample (or 2-D, one observation per row)", x.shape,
                             shown=f"values with shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise checks.invalid("values", "finite numbers", None,
                             shown=f"{int(np.sum(~np.isfinite(x)))} non-finite value(s) in values")
    return x


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


def effect_values(treatment: np.ndarray, baseline: np.ndarray, effect: str) -> np.ndarray:
    """Per-pair effect values: differences, or log ratios (an interval on them exponentiates to one
    on the geometric-mean ratio)."""
    check_choice("effect", effect, EFFECTS)
    t, b = np.asarray(treatment, dtype=float), np.asarray(baseline, dtype=float)
    if effect == "difference":
        return t - b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(t / b)
