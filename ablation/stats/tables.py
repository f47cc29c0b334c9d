"""Tables of a run: means with CIs per grid point, same-seed effects per axis level, evaluation columns.

- **Seeds are replicates, paired**: an effect compares runs that share a seed (and every other
  grid axis that is not being compared), so the seed-to-seed spread cancels.
- **Metrics from evaluations**: :func:`evaluation_metrics` turns ``records.evaluations`` into one
  column per (metric, mode, k) named ``"<metric>@<mode>:k=<k>"`` (``"<metric>@<mode>"`` for a
  deterministic pass, k = 0), e.g. ``"test_error@mc_dropout:k=50"``; a claim may name such a column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ablation.spec import EFFECTS
from ablation.stats.frames import (axes_from_points, check_choice, groups, matches, pair, require_columns,
                                   row_keys, usable)
from ablation.stats.intervals import LEVEL, N_BOOT, effect_values, mean_interval


def summarize(trials: pd.DataFrame, by: Sequence[str], metric: str = "test_error", *, level: float = LEVEL,
              n_boot: int = N_BOOT, seed: int = 0, sort: bool = False) -> pd.DataFrame:
    """Per-group mean of a metric with its confidence interval across seeds, and the status counts.

    Args:
        trials: long-form frame, e.g. ``records.trials`` (any frame with ``by`` and ``metric``).
        by: grouping columns (the grid axes for the results table); ``[]`` = one group.
        metric: the column to average.
        level, n_boot, seed: see :func:`~ablation.stats.intervals.mean_interval` (t interval below 30
            values, percentile bootstrap from there).
        sort: sort groups by their keys; default keeps the order of first appearance.

    Returns:
        One row per group: the ``by`` columns, ``n`` (completed rows with a finite metric),
        ``mean``, ``ci_lo``, ``ci_hi`` (nan when ``n`` < 2; all nan when ``n`` == 0), ``method``,
        ``n_failed``, ``n_diverged`` and ``n_trials`` (all rows of the group).
    """
    by = list(by)
    require_columns(trials, by, "by")
    require_columns(trials, [metric], "metric")
    trials = trials.reset_index(drop=True)
    ok = usable(trials, metric)
    status = trials["status"].astype(str) if "status" in trials.columns else pd.Series("completed", index=trials.index)
    rows = []
    for values, group in groups(trials, by):
        sample = pd.to_numeric(group.loc[ok[group.index], metric]).to_numpy(dtype=float)
        iv = mean_interval(sample, level, n_boot=n_boot, seed=seed) if sample.size else None
        rows.append({**values, "n": int(sample.size), "mean": iv.estimate if iv else np.nan,
                     "ci_lo": iv.lo if iv else np.nan, "ci_hi": iv.hi if iv else np.nan,
                     "method": iv.method if iv else "", "n_failed": int((status[group.index] == "failed").sum()),
                     "n_diverged": int((status[group.index] == "diverged").sum()), "n_trials": len(group)})
    out = pd.DataFrame(rows, columns=[*by, "n", "mean", "ci_lo", "ci_hi", "method", "n_failed", "n_diverged",
                                      "n_trials"])
    return out.sort_values(by, kind="stable", ignore_index=True) if sort and by else out


def paired_deltas(trials: pd.DataFrame, axis: str, baseline: Any = None, metric: str = "test_error",
                  effect: str = "difference", *, axes: Sequence[str] | None = None, level: float = LEVEL,
                  n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Same-seed effect of each level of ``axis`` against its baseline level, per other-axes point.

    Within every combination of the other grid axes, each run at a level is paired with the run
    at the baseline level that has the same seed; the effect and its confidence interval are
    computed over those pairs (one per seed): for ``"difference"`` the mean paired difference, for
    ``"ratio"`` the geometric mean of the paired ratios (an interval on the mean log ratio,
    exponentiated).

    Args:
        trials: ``records.trials`` (columns: the axes, ``seed``, ``status``, ``metric``).
        axis: the axis whose levels are compared.
        baseline: the baseline level. Default: the axis's first level in order of appearance in
            ``trials``; the report passes the axis's first value in the study file.
        metric: the metric column.
        effect: ``"difference"`` (level - baseline) or ``"ratio"`` (level / baseline, geometric mean).
        axes: all grid axes (``records.axes``); default: read off the ``point`` labels.
        level, n_boot, seed: see :func:`~ablation.stats.intervals.mean_interval`.

    Returns:
        One row per (other-axes point, level): the other axes, ``axis``, ``level``, ``baseline``,
        ``effect``, ``estimate``, ``ci_lo``, ``ci_hi``, ``method``, ``n_pairs``, ``mean_level``,
        ``mean_baseline``.
    """
    check_choice("effect", effect, EFFECTS)
    require_columns(trials, [axis, metric, "seed"], "axis/metric")
    trials = trials.reset_index(drop=True)
    axes = list(axes) if axes is not None else axes_from_points(trials)
    others = [a for a in axes if a != axis and a in trials.columns]
    levels = list(pd.unique(trials[axis]))
    if baseline is None:
        baseline = levels[0] if levels else None
    if not any(matches(trials[axis], baseline)):
        raise ValueError(f"Invalid value for argument 'baseline': expected one of the levels of axis '{axis}' "
                         f"{levels}. Received: baseline={baseline!r}")
    rows_ok = trials[usable(trials, metric)]
    base_rows = rows_ok[matches(rows_ok[axis], baseline)]
    base_keys = row_keys(base_rows, others)
    rows = []
    for level_value in levels:
        if matches(pd.Series([level_value]), baseline).iloc[0]:
            continue
        for point, treat in groups(rows_ok[matches(rows_ok[axis], level_value)], others):
            key = row_keys(treat.iloc[:1], others).iloc[0]
            pairs = pair(treat, base_rows[base_keys == key], ["seed"], metric)
            rows.append({**point, **_paired_row(pairs, effect, level, n_boot, seed),
                         "axis": axis, "level": level_value, "baseline": baseline, "effect": effect})
    columns = [*others, "axis", "level", "baseline", "effect", "estimate", "ci_lo", "ci_hi", "method", "n_pairs",
               "mean_level", "mean_baseline"]
    return pd.DataFrame(rows, columns=columns)


def effect_interval(treatment: Any, baseline: Any, effect: str, level: float = LEVEL, *, n_boot: int = N_BOOT,
                    seed: int = 0) -> tuple[float, float, float, str, int]:
    """``(estimate, lo, hi, method, n)`` of a paired effect over pairs (one per seed).

    ``"difference"``: the mean paired difference; ``"ratio"``: the geometric mean of the paired
    ratios (the interval of the mean log ratio, exponentiated). Pairs whose ratio is not positive
    and finite are left out of a ratio.
    """
    values = effect_values(treatment, baseline, effect)
    values = values[np.isfinite(values)]
    if not len(values):
        return np.nan, np.nan, np.nan, "", 0
    iv = mean_interval(values, level, n_boot=n_boot, seed=seed)
    if effect == "ratio":
        return float(np.exp(iv.estimate)), float(np.exp(iv.lo)), float(np.exp(iv.hi)), iv.method, iv.n
    return iv.estimate, iv.lo, iv.hi, iv.method, iv.n


def _paired_row(pairs: pd.DataFrame, effect: str, level: float, n_boot: int, seed: int) -> dict:
    est, lo, hi, method, _ = effect_interval(pairs["treatment"].to_numpy(), pairs["baseline"].to_numpy(), effect,
                                             level, n_boot=n_boot, seed=seed) if len(pairs) else (np.nan,) * 3 + ("", 0)
    return {"estimate": est, "ci_lo": lo, "ci_hi": hi, "method": method, "n_pairs": len(pairs),
            "mean_level": pairs["treatment"].mean(), "mean_baseline": pairs["baseline"].mean()}


def evaluation_metrics(evaluations: pd.DataFrame) -> pd.DataFrame:
    """One row per trial, one column per evaluation: ``"<metric>@<mode>"`` or ``"<metric>@<mode>:k=<k>"``.

    Args:
        evaluations: ``records.evaluations`` (columns ``trial_id``, ``mode``, ``k``, ``metric``, ``value``).

    Returns:
        A frame with ``trial_id`` and one column per (metric, mode, k); a missing, nan or 0 ``k``
        (a deterministic pass such as ``weight_scaling``) leaves the ``:k=`` part out.
    """
    require_columns(evaluations, ["trial_id", "mode", "metric", "value"], "evaluations")
    k = evaluations["k"] if "k" in evaluations.columns else pd.Series(np.nan, index=evaluations.index)
    k_text = pd.to_numeric(k, errors="coerce").map(lambda v: "" if pd.isna(v) or v == 0 else f":k={v:g}")
    names = evaluations["metric"].astype(str) + "@" + evaluations["mode"].astype(str) + k_text
    wide = evaluations.assign(_name=names).pivot_table(index="trial_id", columns="_name", values="value",
                                                       aggfunc="mean")
    wide.columns.name = None
    return wide.reset_index()

