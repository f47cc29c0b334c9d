"""Claim verdicts: select the runs a claim names, pair them by seed, and decide from the interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ablation.spec import EXPECTS, Claim, claims as claim_spec, test_text
from ablation.stats.frames import axes_from_points, check_choice, pair, select, usable
from ablation.stats.intervals import LEVEL, N_BOOT, bootstrap_ci, effect_stat
from ablation.stats.tables import evaluation_metrics

MIN_PAIRS = 2
_MINUS = "\u2212"


def decide(expect: str, lo: float, hi: float, threshold: float, tolerance: float | None = None) -> tuple[str, str]:
    """Verdict of a confidence interval ``[lo, hi]`` against a claim's expectation.

    ``lower``: supported when hi < threshold, not supported when lo > threshold.
    ``higher``: supported when lo > threshold, not supported when hi < threshold.
    ``near``: supported when the CI lies inside ``threshold ± tolerance``, not supported when it lies
    wholly outside it. Anything else is inconclusive.

    Returns:
        ``(verdict, reason)`` with verdict one of "supported", "not supported", "inconclusive".
    """
    check_choice("expect", expect, EXPECTS)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive", "no confidence interval"
    ci = "the CI"
    if expect == "near":
        band_lo, band_hi = threshold - tolerance, threshold + tolerance
        band = f"{_num(threshold)} \u00b1 {_num(tolerance)}"
        if band_lo <= lo and hi <= band_hi:
            return "supported", f"{ci} lies within {band}"
        if hi < band_lo or lo > band_hi:
            return "not supported", f"{ci} lies outside {band}"
        return "inconclusive", f"{ci} overlaps the edge of {band}"
    good, bad = (hi < threshold, lo > threshold) if expect == "lower" else (lo > threshold, hi < threshold)
    side, other = ("below", "above") if expect == "lower" else ("above", "below")
    if good:
        return "supported", f"{ci} lies {side} {_num(threshold)}"
    if bad:
        return "not supported", f"{ci} lies {other} {_num(threshold)}"
    return "inconclusive", f"{ci} contains {_num(threshold)}"


def _num(value: Any) -> str:
    return f"{value:.4g}".replace("-", _MINUS) if isinstance(value, (float, int, np.number)) else str(value)


def claim_verdict(claim: Any, trials: pd.DataFrame, *, evaluations: pd.DataFrame | None = None,
                  axes: Sequence[str] | None = None, level: float = LEVEL, n_boot: int = N_BOOT,
                  seed: int = 0) -> dict[str, Any]:
    """Test one claim of a study against the trials and give the verdict.

    Rows are selected by ``where`` and then ``compare`` (treatment) / ``against`` (baseline);
    treatment and baseline runs are paired by seed and by every grid axis that none of
    ``compare`` / ``against`` / ``where`` fixes (an axis fixed on one side only is averaged over
    on the other side within each pair). The effect (``difference``: mean of treatment minus
    baseline over the pairs; ``ratio``: ratio of their means) gets a bootstrap CI over the pairs,
    which :func:`decide` turns into a verdict. Without ``against`` the mean metric over the
    selected runs is tested. Fewer than 2 pairs (or runs) gives "inconclusive".

    Args:
        claim: a ``spec`` claim (or a mapping with the same keys).
        trials: ``records.trials``.
        evaluations: ``records.evaluations``; needed when the claim's metric is an evaluation
            column such as ``"test_error@mc_dropout:k=50"`` (see :func:`evaluation_metrics`).
        axes: all grid axes (``records.axes``); default: read off the ``point`` labels.
        level, n_boot, seed: see :func:`bootstrap_ci`.

    Returns:
        A dict: the claim's fields, ``test`` (the test in words, ``spec.test_text``),
        ``estimate``, ``ci_lo``, ``ci_hi``, ``level``,
        ``n`` (pairs, or runs without ``against``), ``n_treatment``, ``n_baseline``,
        ``mean_treatment``, ``mean_baseline``, ``verdict`` and ``reason``.
    """
    c = claim_spec.coerce(claim)
    frame = _claim_frame(c, trials, evaluations)
    axes = [a for a in (axes if axes is not None else axes_from_points(trials)) if a in frame.columns]
    rows = select(frame[usable(frame, c.metric)], c.where)
    treat = select(rows, c.compare)
    base = select(rows, c.against) if c.against is not None else None
    within = bool(c.against_metric)
    if within:  # two metrics of the same runs: each run is its own pair
        treat = treat[usable(treat, c.against_metric)]
        sample = treat[[c.metric, c.against_metric]].apply(pd.to_numeric).to_numpy(dtype=float)
    elif base is None:
        sample = pd.to_numeric(treat[c.metric]).to_numpy(dtype=float)
    else:
        pairs = pair(treat, base, [*claim_spec.free_axes(c, axes), "seed"], c.metric)
        sample = pairs[["treatment", "baseline"]].to_numpy()
    out = {**c.to_dict(), "test": test_text(c, axes, level), "level": level,
           "n": int(sample.shape[0]), "n_treatment": len(treat), "n_baseline": None if base is None else len(base),
           "mean_treatment": _mean(treat, c.metric),
           "mean_baseline": (_mean(treat, c.against_metric) if within else
                             None if base is None else _mean(base, c.metric)),
           "estimate": np.nan, "ci_lo": np.nan, "ci_hi": np.nan}
    if sample.shape[0] < MIN_PAIRS:
        what = "runs" if base is None or within else "seed-matched pairs"
        out.update(verdict="inconclusive", reason=f"too few completed {what}: {sample.shape[0]} (need {MIN_PAIRS})")
        return out
    stat = effect_stat(c.effect) if c.has_baseline else np.mean
    est, lo, hi = bootstrap_ci(sample, stat, level, n_boot, seed)
    verdict, reason = decide(c.expect, lo, hi, c.threshold, c.tolerance)
    out.update(estimate=est, ci_lo=lo, ci_hi=hi, verdict=verdict, reason=reason)
    return out


def _mean(frame: pd.DataFrame, metric: str) -> float:
    return float(pd.to_numeric(frame[metric]).mean()) if len(frame) else float("nan")


def _claim_frame(c: Claim, trials: pd.DataFrame, evaluations: pd.DataFrame | None) -> pd.DataFrame:
    """The trials, joined with the evaluation columns when the claim's metric is one of them."""
    f = {**c.to_dict(), "compare": c.compare, "against": c.against, "where": c.where}
    frame = trials.reset_index(drop=True)
    wanted = [m for m in (f["metric"], f["against_metric"]) if m]
    if any(m not in trials.columns for m in wanted) and evaluations is not None and len(evaluations):
        frame = frame.merge(evaluation_metrics(evaluations), on="trial_id", how="left")
    for key, m in (("metric", f["metric"]), ("against_metric", f["against_metric"])):
        if m and m not in frame.columns:
            raise ValueError(f"Invalid value for argument 'claim.{key}': expected a column of the trials or an "
                             f"evaluation column (claim {f['id']!r}); available: {sorted(map(str, frame.columns))}. "
                             f"Received: {key}={m!r}")
    for part in ("compare", "against", "where"):
        missing = [k for k in (f[part] or {}) if k not in frame.columns]
        if missing:
            raise ValueError(f"Invalid value for argument 'claim.{part}': expected grid axes that are columns of "
                             f"the trials (claim {f['id']!r}). Received: {missing}")
    return frame

