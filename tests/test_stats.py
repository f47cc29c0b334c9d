"""Tests of ablation.stats against hand-computed values.

With three observations the percentile bootstrap's 95% interval is exactly [min, max] of the
observations: each extreme resample (all three draws the same observation) has probability
1/27 = 3.7% > 2.5%, so with 10,000 resamples the 2.5% and 97.5% quantiles land on them. For a
ratio of means the extremes are the smallest and largest single-pair ratio (the mediant of ratios
lies between them). Many expected intervals below are computed that way by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablation import spec, stats

# test_error by (dropout, train_size) for seeds 0, 1, 2
_ERRORS = {
    (0.0, 100): [0.50, 0.52, 0.54],
    (0.5, 100): [0.48, 0.53, 0.50],    # paired differences -0.02, +0.01, -0.04
    (0.0, 1000): [0.30, 0.32, 0.31],
    (0.5, 1000): [0.25, 0.26, 0.27],   # paired differences -0.05, -0.06, -0.04
}


def _trials(extra: list[dict] | None = None) -> pd.DataFrame:
    rows = []
    for (p, n), errors in _ERRORS.items():
        for seed, err in enumerate(errors):
            rows.append({"trial_id": f"{len(rows):04d}", "status": "completed", "seed": seed,
                         "point": f"dropout={p}, train_size={n}", "dropout": p, "train_size": n,
                         "test_error": err, "reason": None})
    return pd.DataFrame(rows + (extra or []))


def _claim(**fields) -> dict:
    base = {"id": "C1", "statement": "dropout helps", "metric": "test_error", "expect": "lower",
            "compare": {"dropout": "0.5"}, "against": {"dropout": "0.0"}, "where": {"train_size": "1000"}}
    return {**base, **fields}


# ----------------------------------------------------------------------------- bootstrap_ci

def test_bootstrap_two_point_sample_hand_computed():
    # resampled means of [0, 1]: 0 (25%), 0.5 (50%), 1 (25%)
    assert stats.bootstrap_ci([0.0, 1.0]) == (0.5, 0.0, 1.0)
    assert stats.bootstrap_ci([0.0, 1.0], level=0.4) == (0.5, 0.5, 0.5)


def test_bootstrap_three_values_gives_min_max_and_contains_mean():
    est, lo, hi = stats.bootstrap_ci([0.2, 0.9, 0.4])
    assert est == pytest.approx(0.5)
    assert (lo, hi) == pytest.approx((0.2, 0.9))


def test_bootstrap_is_reproducible_and_seeded():
    sample = np.linspace(0.0, 1.0, 20) ** 2
    a = stats.bootstrap_ci(sample, seed=0)
    assert a == stats.bootstrap_ci(sample, seed=0)
    assert a != stats.bootstrap_ci(sample, seed=1)
    assert a[0] == pytest.approx(sample.mean())
    assert a[1] < sample.mean() < a[2]
    assert stats.bootstrap_ci(sample, n_boot=500)[1:] != a[1:]


def test_bootstrap_custom_statistic_without_axis_argument():
    # max of a resample of [1, 2, 3] is 1 with probability 1/27 (3.7%): the 2.5% quantile is 1
    est, lo, hi = stats.bootstrap_ci([1.0, 2.0, 3.0], stat=lambda x: float(np.max(x)), n_boot=2000)
    assert (est, lo, hi) == (3.0, 1.0, 3.0)
    assert stats.bootstrap_ci([1.0, 2.0, 3.0, 10.0], stat=np.median)[0] == 2.5


def test_bootstrap_single_value_and_constant_sample():
    est, lo, hi = stats.bootstrap_ci([0.3])
    assert est == 0.3 and np.isnan(lo) and np.isnan(hi)
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"values": []}, "argument 'values'.*non-empty"),
    ({"values": [0.1, np.nan]}, "argument 'values'.*finite.*1 non-finite"),
    ({"values": [0.1, 0.2], "level": 1.5}, r"argument 'level': expected a float in \(0, 1\). Received: level=1.5"),
    ({"values": [0.1, 0.2], "n_boot": 0}, "argument 'n_boot'.*Received: n_boot=0"),
])
def test_bootstrap_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_ci(**kwargs)


# ----------------------------------------------------------------------------- summarize

def test_summarize_means_cis_and_status_counts():
    extra = [{"trial_id": "0100", "status": "failed", "seed": 3, "dropout": 0.5, "train_size": 100,
              "test_error": np.nan, "reason": "OOM"},
             {"trial_id": "0101", "status": "diverged", "seed": 4, "dropout": 0.5, "train_size": 100,
              "test_error": 0.9, "reason": "loss is NaN"}]
    table = stats.summarize(_trials(extra), ["dropout", "train_size"])
    assert list(table.columns) == ["dropout", "train_size", "n", "mean", "ci_lo", "ci_hi", "n_failed",
                                   "n_diverged", "n_trials"]
    assert len(table) == 4
    row = table[(table.dropout == 0.5) & (table.train_size == 100)].iloc[0]
    assert (row.n, row.n_failed, row.n_diverged, row.n_trials) == (3, 1, 1, 5)
    assert row["mean"] == pytest.approx(np.mean([0.48, 0.53, 0.50]))   # the diverged 0.9 is not averaged
    assert (row.ci_lo, row.ci_hi) == pytest.approx((0.48, 0.53))
    other = table[(table.dropout == 0.0) & (table.train_size == 1000)].iloc[0]
    assert (other["mean"], other.ci_lo, other.ci_hi) == pytest.approx((0.31, 0.30, 0.32))


def test_summarize_one_group_and_bad_columns():
    table = stats.summarize(_trials(), [])
    assert len(table) == 1 and table.n.iloc[0] == 12
    assert table["mean"].iloc[0] == pytest.approx(np.mean(sum(_ERRORS.values(), [])))
    with pytest.raises(ValueError, match="argument 'metric'.*test_acc"):
        stats.summarize(_trials(), ["dropout"], metric="test_acc")
    with pytest.raises(ValueError, match="argument 'by'.*activation"):
        stats.summarize(_trials(), ["activation"])


# ----------------------------------------------------------------------------- paired_deltas

def test_paired_deltas_same_seed_differences_per_point():
    trials = _trials().sample(frac=1.0, random_state=3)   # row order must not matter: pairing is by seed
    table = stats.paired_deltas(trials, "dropout", baseline=0.0, axes=["dropout", "train_size"])
    table = table.sort_values("train_size").reset_index(drop=True)
    assert list(table.train_size) == [100, 1000]
    assert list(table.n_pairs) == [3, 3]
    assert table.estimate.tolist() == pytest.approx([-0.05 / 3, -0.05])
    assert table.ci_lo.tolist() == pytest.approx([-0.04, -0.06])
    assert table.ci_hi.tolist() == pytest.approx([0.01, -0.04])
    assert table.mean_baseline.tolist() == pytest.approx([0.52, 0.31])
    assert set(table.level) == {0.5} and set(table.baseline) == {0.0}


def test_paired_deltas_default_baseline_axes_from_points_and_ratio():
    table = stats.paired_deltas(_trials(), "train_size", effect="ratio")   # baseline: first level, 100
    table = table.sort_values("dropout").reset_index(drop=True)
    assert list(table.dropout) == [0.0, 0.5] and set(table.baseline) == {100}
    assert table.estimate[0] == pytest.approx(0.31 / 0.52)
    # single-pair ratios for dropout 0: 0.30/0.50, 0.32/0.52, 0.31/0.54
    assert (table.ci_lo[0], table.ci_hi[0]) == pytest.approx((0.31 / 0.54, 0.32 / 0.52))


def test_paired_deltas_skips_unpaired_and_rejects_unknown_baseline():
    trials = _trials()
    trials.loc[(trials.dropout == 0.0) & (trials.seed == 2), "status"] = "diverged"
    table = stats.paired_deltas(trials, "dropout", axes=["dropout", "train_size"])
    assert list(table.n_pairs) == [2, 2]
    assert table.estimate[0] == pytest.approx((-0.02 + 0.01) / 2)
    trials.loc[(trials.dropout == 0.0) & (trials.train_size == 100), "status"] = "failed"
    table = stats.paired_deltas(trials, "dropout", axes=["dropout", "train_size"])
    assert list(table.n_pairs) == [0, 2] and np.isnan(table.estimate[0]) and np.isnan(table.ci_lo[0])
    with pytest.raises(ValueError, match="argument 'baseline'.*axis 'dropout'.*Received: baseline=0.3"):
        stats.paired_deltas(trials, "dropout", baseline=0.3)
    with pytest.raises(ValueError, match="argument 'effect'"):
        stats.paired_deltas(trials, "dropout", effect="log")


# ----------------------------------------------------------------------------- claims

def test_claim_supported_lower_with_generated_test_text():
    v = stats.claim_verdict(_claim(), _trials(), axes=["dropout", "train_size"])
    assert v["verdict"] == "supported"
    assert (v["estimate"], v["ci_lo"], v["ci_hi"]) == pytest.approx((-0.05, -0.06, -0.04))
    assert v["n"] == 3 and v["n_treatment"] == 3 and v["n_baseline"] == 3
    assert v["test"] == ("test_error(dropout=0.5) \u2212 test_error(dropout=0.0) at train_size=1000, "
                         "paired by seed: 95% CI must lie below 0")
    assert "lies below 0" in v["reason"]


def test_claim_not_supported_and_inconclusive_lower():
    v = stats.claim_verdict(_claim(compare={"dropout": 0.0}, against={"dropout": 0.5}), _trials())
    assert v["verdict"] == "not supported" and v["ci_lo"] == pytest.approx(0.04)
    v = stats.claim_verdict(_claim(where={"train_size": 100}, rule="CI below 0"), _trials())
    assert v["verdict"] == "inconclusive" and v["rule"] == "CI below 0"  # a note kept beside the generated test
    assert (v["ci_lo"], v["ci_hi"]) == pytest.approx((-0.04, 0.01))
    assert "contains 0" in v["reason"]


def test_claim_higher_both_ways():
    up = _claim(compare={"dropout": "0.0"}, against={"dropout": "0.5"}, expect="higher")
    assert stats.claim_verdict(up, _trials())["verdict"] == "supported"
    down = _claim(expect="higher")
    assert stats.claim_verdict(down, _trials())["verdict"] == "not supported"


def test_claim_ratio_uses_ratio_of_means_and_threshold_one():
    v = stats.claim_verdict(_claim(effect="ratio"), _trials())
    assert v["threshold"] == 1.0
    assert v["estimate"] == pytest.approx(0.26 / 0.31)
    assert (v["ci_lo"], v["ci_hi"]) == pytest.approx((0.26 / 0.32, 0.27 / 0.31))
    assert v["verdict"] == "supported"
    assert " / test_error(dropout=0.0)" in v["test"] and "below 1" in v["test"]


@pytest.mark.parametrize("threshold, tolerance, verdict", [
    (0.26, 0.02, "supported"),        # CI [0.25, 0.27] inside [0.24, 0.28]
    (0.26, 0.005, "inconclusive"),    # overlaps the edge of [0.255, 0.265]
    (0.50, 0.05, "not supported"),    # wholly outside [0.45, 0.55]
])
def test_claim_near_without_baseline(threshold, tolerance, verdict):
    claim = _claim(against=None, expect="near", threshold=threshold, tolerance=tolerance)
    v = stats.claim_verdict(claim, _trials())
    assert v["verdict"] == verdict
    assert (v["estimate"], v["ci_lo"], v["ci_hi"]) == pytest.approx((0.26, 0.25, 0.27))
    assert v["test"].startswith("mean test_error(dropout=0.5) over seeds at train_size=1000: 95% CI must lie within")


def test_claim_pairs_within_free_axes_and_too_few_pairs():
    v = stats.claim_verdict(_claim(where={}), _trials(), axes=["dropout", "train_size"])
    assert v["n"] == 6 and v["estimate"] == pytest.approx(-0.20 / 6)
    assert "paired by seed within train_size" in v["test"]
    trials = _trials()
    trials.loc[(trials.dropout == 0.5) & (trials.train_size == 1000) & (trials.seed > 0), "status"] = "failed"
    v = stats.claim_verdict(_claim(), trials)
    assert v["verdict"] == "inconclusive" and v["n"] == 1
    assert v["reason"] == "too few completed seed-matched pairs: 1 (need 2)"
    assert np.isnan(v["ci_lo"])


def test_claim_accepts_spec_claim_object_and_evaluation_metric():
    trials = _trials()
    evaluations = pd.DataFrame({
        "trial_id": list(trials.trial_id) * 2, "mode": ["mc_dropout"] * 12 + ["weight_scaling"] * 12,
        "k": [50] * 12 + [0] * 12, "metric": "test_error",
        "value": list(trials.test_error - 0.01) + list(trials.test_error)})
    wide = stats.evaluation_metrics(evaluations)
    assert sorted(wide.columns) == ["test_error@mc_dropout:k=50", "test_error@weight_scaling", "trial_id"]
    claim = spec.Claim(id="C5", statement="MC dropout", metric="test_error@mc_dropout:k=50", expect="lower",
                       compare={"dropout": "0.5"}, where={"train_size": "1000"}, threshold=0.3)
    v = stats.claim_verdict(claim, trials, evaluations=evaluations)
    assert v["verdict"] == "supported" and v["id"] == "C5"
    assert (v["estimate"], v["ci_lo"], v["ci_hi"]) == pytest.approx((0.25, 0.24, 0.26))


def test_claim_rejects_unknown_metric_and_axis():
    with pytest.raises(ValueError, match="argument 'claim.metric'.*Received: metric='test_acc'"):
        stats.claim_verdict(_claim(metric="test_acc"), _trials())
    with pytest.raises(ValueError, match=r"argument 'claim.where'.*\['activation'\]"):
        stats.claim_verdict(_claim(where={"activation": "relu"}), _trials())
    with pytest.raises(ValueError, match=r"claim.tolerance: required when expect = \"near\""):
        stats.claim_verdict(_claim(expect="near"), _trials())


def test_decide_edges():
    assert stats.decide("lower", -0.2, 0.0, 0.0)[0] == "inconclusive"     # touching is not excluding
    assert stats.decide("higher", np.nan, 1.0, 0.0) == ("inconclusive", "no confidence interval")
    assert stats.decide("near", 0.9, 1.1, 1.0, 0.1)[0] == "supported"


# ----------------------------------------------------------------------------- curves

def _curves() -> pd.DataFrame:
    runs = {("b0", 0.0, 0): [0.5, 0.4, 0.35, 0.36, 0.37], ("t0", 0.5, 0): [0.6, 0.5, 0.45, 0.40, 0.35, 0.34],
            ("b1", 0.0, 1): [0.5, 0.3, 0.31], ("t1", 0.5, 1): [0.5, 0.4, 0.35]}
    rows = [{"trial_id": tid, "status": "completed", "seed": seed, "dropout": p, "epoch": e + 1,
             "step": 10 * (e + 1), "split": "val", "metric": "error", "value": v}
            for (tid, p, seed), values in runs.items() for e, v in enumerate(values)]
    train = [{**r, "split": "train", "value": r["value"] / 10} for r in rows]
    return pd.DataFrame(rows + train)


def test_first_epoch_below_epochs_and_steps():
    run = _curves().query("trial_id == 't0' and split == 'val'")
    assert stats.first_epoch_below(run, 0.45) == 3.0
    assert stats.first_epoch_below(run, 0.45, x="step") == 30.0
    assert np.isnan(stats.first_epoch_below(run, 0.1))


def test_epochs_to_reach_baseline_best():
    table = stats.epochs_to_reach(_curves(), {"dropout": 0.5}, {"dropout": 0.0})
    assert list(table.trial_id) == ["t0", "t1"]
    assert table.baseline_best.tolist() == pytest.approx([0.35, 0.30])
    assert table.baseline_epochs.tolist() == [3.0, 2.0]
    assert table.target_epochs[0] == 5.0 and np.isnan(table.target_epochs[1])
    assert table.ratio[0] == pytest.approx(5 / 3)


def test_claim_against_another_metric_of_the_same_runs():
    """C5: Monte-Carlo dropout at k=50 vs weight scaling, each run its own pair."""
    trials = pd.DataFrame({"trial_id": ["0", "1", "2", "3"], "status": ["completed"] * 4, "seed": [0, 1, 2, 0],
                           "point": ["dropout=0.5"] * 3 + ["dropout=0.0"], "dropout": [0.5, 0.5, 0.5, 0.0],
                           "test_error": [0.020, 0.030, 0.025, 0.5]})
    evaluations = pd.DataFrame({"trial_id": ["0", "1", "2"], "mode": ["mc_dropout"] * 3, "k": [50] * 3,
                                "metric": ["test_error"] * 3, "value": [0.021, 0.029, 0.026]})
    claim = {"id": "C5", "statement": "MC ~ weight scaling", "metric": "test_error@mc_dropout:k=50",
             "against_metric": "test_error", "compare": {"dropout": 0.5}, "expect": "near",
             "threshold": 0.0, "tolerance": 0.01}
    v = stats.claim_verdict(claim, trials, evaluations=evaluations, n_boot=2000)
    assert v["n"] == 3 and v["estimate"] == pytest.approx((0.001 - 0.001 + 0.001) / 3)
    assert v["mean_baseline"] == pytest.approx(0.025)
    assert v["verdict"] == "supported"
    assert "test_error of the same run" in v["test"]
    with pytest.raises(ValueError, match="claim.against_metric"):
        stats.claim_verdict({**claim, "against_metric": "nope"}, trials, evaluations=evaluations)
