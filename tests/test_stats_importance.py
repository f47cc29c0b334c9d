"""Tests of ablation.stats.importance: the ANOVA split of a metric between grid axes, on synthetic grids
whose effects are known."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from ablation import stats
from ablation.stats import importance

NOISE = 0.1
SHIFT = 3.0


def _grid(levels: dict[str, list], seeds: int, effect, noise: float = NOISE, rng_seed: int = 0) -> pd.DataFrame:
    """One completed row per (grid point, seed): test_error = effect(point) + N(0, noise²)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for values in itertools.product(*levels.values()):
        point = dict(zip(levels, values))
        for seed in range(seeds):
            rows.append({"trial_id": f"{len(rows)}", "status": "completed", "seed": seed,
                         "point": ", ".join(f"{k}={v}" for k, v in point.items()), **point,
                         "test_error": effect(point) + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def _shift_a(point: dict) -> float:
    return SHIFT if point["a"] == "on" else 0.0


def _row(imp: stats.Importance, term: str) -> pd.Series:
    return imp.table.set_index("term").loc[term]


def test_a_known_main_effect_dominates_and_its_interval_covers_the_truth():
    trials = _grid({"a": ["off", "on"], "b": [0.0, 0.5, 1.0]}, seeds=5, effect=_shift_a)
    imp = stats.factor_importance(trials, ["a", "b"])
    assert imp.applicable and imp.axes == ("a", "b") and imp.n == 30 and imp.left_out == ()
    # a moves half the runs by SHIFT: its variance is (SHIFT/2)², the noise's NOISE²; b and a × b add none.
    truth = (SHIFT / 2) ** 2 / ((SHIFT / 2) ** 2 + NOISE ** 2)
    a, b, ab = _row(imp, "a"), _row(imp, "b"), _row(imp, f"a {importance.TIMES} b")
    terms = imp.table[imp.table["kind"] != "residual"]
    assert imp.table["term"].iloc[-1] == importance.RESIDUAL and terms["term"].iloc[0] == "a"
    assert terms["sum_sq"].is_monotonic_decreasing                          # ranked, then the residual
    assert a["eta_sq"] == pytest.approx(truth, abs=0.005) and a["kind"] == "main"
    assert a["ci_lo"] <= truth <= a["ci_hi"] and a["partial_lo"] <= truth <= a["partial_hi"] and a["p"] < 1e-10
    for term in (b, ab):  # no effect: a share near 0, and the partial eta² interval reaches 0
        assert term["eta_sq"] < 0.005 and 0 < term["ci_lo"] < term["ci_hi"] < 0.005
        assert term["partial_lo"] == 0.0 <= term["partial_hi"] < 0.5 and term["p"] > 0.05
    assert np.isnan(_row(imp, importance.RESIDUAL)[["ci_lo", "ci_hi", "F", "p"]].astype(float)).all()
    assert ab["kind"] == "interaction" and ab["axes"] == ("a", "b")
    assert imp.table["eta_sq"].sum() == pytest.approx(1.0)                  # balanced: the shares add up
    assert (a["df"], b["df"], ab["df"], _row(imp, importance.RESIDUAL)["df"]) == (1, 2, 2, 24)


def test_sums_of_squares_match_the_textbook_balanced_formulas():
    """statsmodels' split of the sum of squares equals the two-way formulas of a balanced design."""
    trials = _grid({"a": ["off", "on"], "b": ["x", "y", "z"]}, seeds=3,
                   effect=lambda p: _shift_a(p) + (1.0 if p["b"] == "z" else 0.0) * (p["a"] == "on"), noise=0.5)
    imp = stats.factor_importance(trials, ["a", "b"])
    y, grand = trials["test_error"], trials["test_error"].mean()
    ss_a = 9 * ((trials.groupby("a")["test_error"].mean() - grand) ** 2).sum()
    ss_b = 6 * ((trials.groupby("b")["test_error"].mean() - grand) ** 2).sum()
    ss_cells = 3 * ((trials.groupby(["a", "b"])["test_error"].mean() - grand) ** 2).sum()
    ss_total = ((y - grand) ** 2).sum()
    got = imp.table.set_index("term")["sum_sq"]
    assert got["a"] == pytest.approx(ss_a) and got["b"] == pytest.approx(ss_b)
    assert got[f"a {importance.TIMES} b"] == pytest.approx(ss_cells - ss_a - ss_b)
    assert got[importance.RESIDUAL] == pytest.approx(ss_total - ss_cells)
    ab = _row(imp, f"a {importance.TIMES} b")
    assert ab["F"] == pytest.approx((got[f"a {importance.TIMES} b"] / 2) / (got[importance.RESIDUAL] / 12))
    assert ab["partial_eta_sq"] == pytest.approx(ab["sum_sq"] / (ab["sum_sq"] + got[importance.RESIDUAL]))


def test_three_axes_pool_the_three_way_interaction():
    trials = _grid({"a": ["off", "on"], "b": [1, 2], "c": ["p", "q"]}, seeds=2, effect=_shift_a)
    imp = stats.factor_importance(trials, ["a", "b", "c"])
    terms = set(imp.table["term"])
    assert {"a", "b", "c", "a × b", "a × c", "b × c", importance.HIGHER_ORDER, importance.RESIDUAL} == terms
    assert _row(imp, importance.HIGHER_ORDER)["df"] == 1 and imp.table["eta_sq"].sum() == pytest.approx(1.0)


def test_the_noncentral_f_interval_covers_at_its_level():
    """Coverage by simulation: F drawn with a known noncentrality, interval of λ / (λ + N)."""
    rng = np.random.default_rng(7)
    df1, df2, n = 2, 24, 30
    lam = 6.0
    truth = lam / (lam + n)
    draws = scipy_stats.ncf.rvs(df1, df2, lam, size=400, random_state=rng)
    hits = [lo <= truth <= hi for lo, hi in (importance.partial_eta_sq_interval(F, df1, df2, n) for F in draws)]
    assert 0.92 <= np.mean(hits) <= 0.98
    lo, hi = importance.partial_eta_sq_interval(draws[0], df1, df2, n)
    lam_lo, lam_hi = n * lo / (1 - lo), n * hi / (1 - hi)                  # back to λ: the observed F sits at
    if lam_lo > 0:                                                          # the 97.5% and 2.5% quantiles
        assert scipy_stats.ncf.cdf(draws[0], df1, df2, lam_lo) == pytest.approx(0.975, abs=1e-6)
    assert scipy_stats.ncf.cdf(draws[0], df1, df2, lam_hi) == pytest.approx(0.025, abs=1e-6)
    assert importance.partial_eta_sq_interval(0.01, df1, df2, n) == (0.0, 0.0)  # F far below 1: both ends at 0


def test_a_failed_run_leaves_out_its_seed_not_its_grid_point():
    trials = _grid({"a": ["off", "on"], "b": [0.0, 0.5]}, seeds=5, effect=_shift_a)
    trials.loc[(trials["a"] == "on") & (trials["b"] == 0.5) & (trials["seed"] == 3), "status"] = "failed"
    imp = stats.factor_importance(trials, ["a", "b"])
    assert imp.applicable and imp.seeds == (0, 1, 2, 4) and imp.n == 16
    assert imp.left_out == ("seed 3 (no completed run at 1 of 4 grid points)",)


def test_a_grid_point_with_no_completed_run_leaves_out_a_level():
    trials = _grid({"a": ["off", "on"], "b": [0.0, 0.5, 1.0]}, seeds=3, effect=_shift_a)
    trials.loc[(trials["a"] == "on") & (trials["b"] == 1.0), "status"] = "diverged"
    trials = trials[~((trials["a"] == "off") & (trials["b"] == 0.5) & (trials["seed"] == 0))]  # never ran
    imp = stats.factor_importance(trials, ["a", "b"])
    assert imp.applicable and imp.levels == {"a": ("off", "on"), "b": ("0.0", "0.5")}
    assert imp.seeds == (1, 2) and imp.n == 8
    assert imp.left_out == ("b=1.0 (3 of its 6 runs did not complete)",
                            "seed 0 (no completed run at 1 of 4 grid points)")
    # an empty grid point in a 2 x 2 grid leaves one level of an axis: nothing left to split
    small = _grid({"a": ["off", "on"], "b": ["x", "y"]}, seeds=3, effect=_shift_a)
    small.loc[(small["a"] == "on") & (small["b"] == "y"), "test_error"] = np.nan
    imp = stats.factor_importance(small, ["a", "b"])
    assert not imp.applicable and "fewer than two axes" in imp.reason and imp.table.empty
    assert len(imp.left_out) == 1 and imp.left_out[0].endswith("(3 of its 6 runs did not complete)")


def test_one_axis_is_not_applicable():
    trials = _grid({"a": ["off", "on"], "b": [0.5]}, seeds=3, effect=_shift_a)   # b is a constant
    imp = stats.factor_importance(trials, ["a", "b"])
    assert not imp.applicable and imp.table.empty and list(imp.table.columns) == list(importance.COLUMNS)
    assert imp.reason == "fewer than two axes vary (only a): there is nothing to split between factors"
    assert not stats.factor_importance(trials, ["a"]).applicable


def test_one_seed_gives_shares_without_residual_or_intervals():
    trials = _grid({"a": ["off", "on"], "b": [0.0, 0.5]}, seeds=1, effect=_shift_a)
    imp = stats.factor_importance(trials, ["a", "b"])
    assert imp.applicable and importance.RESIDUAL not in set(imp.table["term"])
    assert imp.table[["F", "p", "partial_eta_sq", "partial_lo", "partial_hi", "ci_lo", "ci_hi"]].isna().all().all()
    assert imp.table["eta_sq"].sum() == pytest.approx(1.0) and imp.table["term"].iloc[0] == "a"
    assert any("one seed" in note for note in imp.notes)


def test_a_constant_metric_is_not_applicable():
    trials = _grid({"a": ["off", "on"], "b": [0.0, 0.5]}, seeds=2, effect=lambda p: 0.1, noise=0.0)
    imp = stats.factor_importance(trials, ["a", "b"])
    assert not imp.applicable and imp.reason == "every analysed run gives the same test_error"


@pytest.mark.parametrize("kwargs, message", [
    (dict(trials=[1, 2], axes=["a", "b"]), "Received: trials=list"),
    (dict(axes="a"), "Received: axes='a'"),
    (dict(axes=["a", "a"]), "expected each axis named once. Received: axes=['a', 'a']"),
    (dict(axes=["a", "nope"]), "Received: ['nope']"),
    (dict(metric="test_acc"), "Received: ['test_acc']"),
    (dict(level=1.5), "Received: level=1.5"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    args = dict(trials=_grid({"a": ["off", "on"], "b": [0, 1]}, seeds=2, effect=_shift_a), axes=["a", "b"])
    with pytest.raises(ValueError, match="Invalid value for argument") as info:
        stats.factor_importance(**{**args, **kwargs})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_bootstrap_uses_anova_lms_sums_of_squares_and_is_repeatable():
    """The resamples' sums of squares come from the fitted model's QR factorization: on the observed
    values they are anova_lm's; the same seed gives the same intervals, another seed others."""
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    trials = _grid({"a": ["off", "on"], "b": ["x", "y", "z"]}, seeds=3, effect=_shift_a, noise=0.5)
    data = trials.rename(columns={"a": "f0", "b": "f1", "test_error": "y"})
    fit = ols("y ~ C(f0) * C(f1)", data=data).fit()
    q, columns = importance._design(fit)
    sums = importance.term_sums(q, columns, data["y"].to_numpy()[:, None])
    table = anova_lm(fit, typ=1)
    assert set(sums) == set(table.index) - {"Residual"}
    for term, value in sums.items():
        assert value[0] == pytest.approx(table.loc[term, "sum_sq"])
    first, again = (stats.factor_importance(trials, ["a", "b"], n_boot=300) for _ in range(2))
    other = stats.factor_importance(trials, ["a", "b"], n_boot=300, seed=1)
    pd.testing.assert_frame_equal(first.table, again.table)
    assert not np.allclose(first.table["ci_lo"].iloc[:3], other.table["ci_lo"].iloc[:3])
    assert (first.table["eta_sq"] == other.table["eta_sq"]).all()
