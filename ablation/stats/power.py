"""What it would take to settle a claim: power, the test set's noise floor, the probability of improvement,
and the confidence levels of repeated looks.

- **Power** (Colas, Sigaud & Oudeyer 2018, "How many random seeds?": pilot, then power analysis,
  then the number of seeds). A claim's verdict asks a 95% two-sided interval over per-seed values to
  lie on one side of the threshold: a one-sided test at ``(1 - level) / 2``. From the per-seed
  standard deviation, :func:`detectable_effect` is the smallest distance from the threshold that this
  test finds with probability ``power`` at the seeds it has, and :func:`seeds_needed` the seeds that
  would find a given distance (``statsmodels.stats.power.TTestPower``, the one-sample t test's
  power by the non-central t distribution).
- **Noise floor** (Jordan 2023, "Calibrated chaos"; SCIENCE.md): a test set of ``N`` examples at
  error rate ``e`` measures the error with a binomial standard error ``sqrt(e (1 - e) / N)``; every seed
  is scored on the same test set, so no number of seeds removes that part. An effect smaller than
  :func:`noise_floor` (1.96 standard errors, times sqrt(2) for a difference of two arms) is below what
  the test set resolves.
- **Probability of improvement** (Agarwal et al. 2021, rliable): the share of (compare, against) seed
  pairs in which the compare arm is better, ties counting one half (the Mann-Whitney U statistic over
  ``n m``), with a stratified bootstrap interval (each arm's seeds resampled on their own).
- **Repeated looks** (:func:`look_level`): ``--until-decided`` looks at the intervals after every
  batch of seeds. Look ``k`` uses the confidence level ``1 - alpha_k`` with
  ``alpha_k = alpha · 6 / (pi^2 k^2)``; the alphas sum to ``alpha`` over any number of looks, so by the
  union bound the chance that any look gives a wrong verdict stays at most ``alpha`` however the looks
  are correlated and however many there are (an alpha-spending rule that needs neither the number of
  looks nor the seeds per look in advance; tests/test_stats_power.py simulates it).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ablation.base import checks

POWER = 0.8               # the power the report's "seeds needed" and detectable effects are for
MAX_SEEDS = 10_000        # beyond this many seeds a claim "cannot be settled by adding seeds"
Z_FLOOR = 1.96            # a difference of less than 1.96 binomial standard errors is below the noise floor


def _solver() -> Any:
    from statsmodels.stats.power import TTestPower  # imported on use: statsmodels is slow to import

    return TTestPower()


def detectable_effect(sd: float, n: int, level: float = 0.95, power: float = POWER) -> float:
    """The smallest distance from the threshold that ``n`` seeds detect with probability ``power``.

    Args:
        sd: the per-seed standard deviation of the claim's statistic.
        n: seeds (>= 2).
        level: the interval's confidence level (the test is one-sided at ``(1 - level) / 2``).
        power: the probability of detecting the effect.

    Returns:
        The effect in the statistic's units (``sd`` times Cohen's d), or NaN when ``sd`` is not
        positive and finite or ``n < 2``.
    """
    checks.open_unit_interval("level", level)
    checks.open_unit_interval("power", power)
    if n < 2 or not (np.isfinite(sd) and sd > 0):
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = _solver().solve_power(effect_size=None, nobs=n, alpha=(1 - level) / 2, power=power,
                                  alternative="larger")
    return float(np.asarray(d).item()) * sd


def seeds_needed(effect: float, sd: float, level: float = 0.95, power: float = POWER) -> float:
    """The seeds that detect an ``effect`` (distance from the threshold) with probability ``power``.

    Returns:
        A whole number of seeds (at least 2), ``inf`` when more than ``MAX_SEEDS`` would be needed or
        the effect is 0, NaN when ``sd`` is not positive and finite.
    """
    checks.open_unit_interval("level", level)
    checks.open_unit_interval("power", power)
    if not (np.isfinite(sd) and sd > 0) or not np.isfinite(effect):
        return float("nan")
    d = abs(effect) / sd
    if d == 0:
        return float("inf")
    alpha = (1 - level) / 2
    if _power(d, MAX_SEEDS, alpha) < power:
        return float("inf")
    lo, hi = 2, MAX_SEEDS  # power grows with n: the smallest n with enough power, by bisection
    if _power(d, lo, alpha) >= power:
        return float(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _power(d, mid, alpha) >= power else (mid, hi)
    return float(hi)


def _power(d: float, n: int, alpha: float) -> float:
    return float(_solver().power(effect_size=d, nobs=n, alpha=alpha, alternative="larger"))


def binomial_se(error: float, n_test: int) -> float:
    """The binomial standard error of an error rate measured on ``n_test`` examples."""
    if not (np.isfinite(error) and n_test and n_test > 0):
        return float("nan")
    e = min(max(float(error), 0.0), 1.0)
    return math.sqrt(e * (1 - e) / n_test)


def noise_floor(error: float, n_test: int, *, difference: bool) -> float:
    """The smallest effect on an error rate the test set resolves: 1.96 binomial standard errors at the
    error rate, times sqrt(2) for the difference of two arms (scored as independent: an upper bound, since
    both arms see the same examples)."""
    return Z_FLOOR * (math.sqrt(2.0) if difference else 1.0) * binomial_se(error, n_test)


def probability_of_improvement(compare: Any, against: Any, *, lower_is_better: bool = True, level: float = 0.95,
                               n_boot: int = 2_000, seed: int = 0) -> tuple[float, float, float]:
    """P(compare beats against) over all seed pairs, ties 1/2, with a stratified bootstrap interval.

    Args:
        compare, against: per-seed values of the two arms (1-D, finite).
        lower_is_better: whether a lower value is the better one (errors, losses).
        level, n_boot, seed: the interval's level, resamples and generator seed.

    Returns:
        ``(estimate, lo, hi)``; NaN bounds with fewer than 2 values in an arm.
    """
    x, y = np.asarray(compare, dtype=float), np.asarray(against, dtype=float)
    if not len(x) or not len(y):
        return float("nan"), float("nan"), float("nan")
    if lower_is_better:
        x, y = -x, -y
    estimate = _poi(x[None, :], y[None, :])[0]
    if len(x) < 2 or len(y) < 2:
        return float(estimate), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    xb = x[rng.integers(0, len(x), size=(n_boot, len(x)))]
    yb = y[rng.integers(0, len(y), size=(n_boot, len(y)))]
    lo, hi = np.quantile(_poi(xb, yb), [(1 - level) / 2, (1 + level) / 2])
    return float(estimate), float(lo), float(hi)


def _poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Mann-Whitney U / (n m): the share of pairs with x > y, ties counting 1/2."""
    gt = (x[:, :, None] > y[:, None, :]).mean(axis=(1, 2))
    eq = (x[:, :, None] == y[:, None, :]).mean(axis=(1, 2))
    return gt + 0.5 * eq


def look_level(look: int, level: float = 0.95) -> float:
    """The confidence level of look ``look`` (1, 2, ...) of a sequence of looks whose overall error stays
    at most ``1 - level``: ``1 - (1 - level) · 6 / (pi^2 look^2)``."""
    checks.integer("look", look, 1)
    checks.open_unit_interval("level", level)
    return 1.0 - (1.0 - level) * 6.0 / (math.pi ** 2 * look ** 2)


def t_sd(values: Any) -> float:
    """The sample standard deviation (ddof 1) of per-seed values; NaN below 2 values."""
    x = np.asarray(values, dtype=float)
    return float(np.std(x, ddof=1)) if len(x) >= 2 else float("nan")


__all__ = ["POWER", "MAX_SEEDS", "detectable_effect", "seeds_needed", "binomial_se", "noise_floor",
           "probability_of_improvement", "look_level", "t_sd"]
