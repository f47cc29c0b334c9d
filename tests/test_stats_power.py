"""ablation.stats.power: power and seeds needed (against statsmodels' own solver and a simulation), the
test set's binomial noise floor, the probability of improvement, and the levels of repeated looks
(a simulation under the null: with peeking, the spending rule keeps the false "supported" rate at
most 2.5% per side, where re-testing at 95% at every look does not)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.power import TTestPower

from ablation.stats import power


def test_detectable_effect_is_statsmodels_solution_times_sd():
    d = TTestPower().solve_power(nobs=5, alpha=0.025, power=0.8, alternative="larger")
    assert power.detectable_effect(0.02, 5) == pytest.approx(0.02 * d)
    assert math.isnan(power.detectable_effect(0.0, 5)) and math.isnan(power.detectable_effect(1.0, 1))


@pytest.mark.parametrize("n", [3, 5, 10, 40])
def test_seeds_needed_inverts_the_detectable_effect(n):
    effect = power.detectable_effect(1.0, n)
    assert power.seeds_needed(effect * 1.0001, 1.0) == n
    assert power.seeds_needed(effect * 0.95, 1.0) > n


def test_seeds_needed_has_the_power_it_claims_in_a_simulation():
    rng = np.random.default_rng(1)
    n = int(power.seeds_needed(0.5, 1.0))  # a half-sd effect below the threshold 0
    x = rng.normal(-0.5, 1.0, size=(20_000, n))
    hi = x.mean(1) + sps.t.ppf(0.975, n - 1) * x.std(1, ddof=1) / math.sqrt(n)
    assert 0.78 <= np.mean(hi < 0) <= 0.86  # the verdict rule finds it ~80% of the time


def test_effects_no_number_of_seeds_settles():
    assert power.seeds_needed(1e-4, 1.0) == math.inf
    assert power.seeds_needed(0.0, 1.0) == math.inf
    assert math.isnan(power.seeds_needed(0.1, 0.0))


def test_noise_floor_of_a_10k_test_set_at_1_6_percent():
    assert power.binomial_se(0.016, 10_000) == pytest.approx(0.00125, abs=1e-5)  # SCIENCE.md: ~0.13 pp
    assert power.noise_floor(0.016, 10_000, difference=False) == pytest.approx(1.96 * 0.0012548, rel=1e-3)
    assert power.noise_floor(0.016, 10_000, difference=True) == pytest.approx(
        math.sqrt(2) * power.noise_floor(0.016, 10_000, difference=False))
    assert math.isnan(power.binomial_se(0.1, 0))


def test_probability_of_improvement_counts_pairs_and_ties():
    # lower is better: compare beats against in pairs (1,2) (1,3) (2,3); ties (2,2) count 1/2; of 9 pairs
    est, lo, hi = power.probability_of_improvement([1, 2, 4], [2, 3, 1])
    wins = sum((a < b) + 0.5 * (a == b) for a in [1, 2, 4] for b in [2, 3, 1])
    assert est == pytest.approx(wins / 9) and 0 <= lo <= est <= hi <= 1
    assert power.probability_of_improvement([5, 6], [1, 2], lower_is_better=False)[0] == 1.0
    assert power.probability_of_improvement([5, 6], [1, 2])[0] == 0.0


def test_look_levels_spend_at_most_alpha_over_any_number_of_looks():
    alphas = [1 - power.look_level(k) for k in range(1, 100_001)]
    assert alphas[0] == pytest.approx(0.05 * 6 / math.pi ** 2)
    assert sum(alphas) < 0.05
    with pytest.raises(ValueError, match="look"):
        power.look_level(0)


def _false_supported(levels, n0=5, n_max=50, runs=4000, seed=0) -> float:
    """Share of null studies (true effect exactly at the threshold 0) ever called "lower" at some look."""
    x = np.random.default_rng(seed).normal(size=(runs, n_max))
    called = np.zeros(runs, bool)
    for look, n in enumerate(range(n0, n_max + 1), start=1):
        s = x[:, :n]
        hi = s.mean(1) + sps.t.ppf((1 + levels(look)) / 2, n - 1) * s.std(1, ddof=1) / math.sqrt(n)
        called |= hi < 0
    return float(called.mean())


def test_peeking_with_the_spending_rule_keeps_the_error_rate_and_plain_retests_do_not():
    spending = _false_supported(power.look_level)
    plain = _false_supported(lambda look: 0.95)
    assert spending <= 0.025  # one side of a two-sided 5%
    assert plain > 0.05       # re-testing at 95% after every added seed: 46 looks
