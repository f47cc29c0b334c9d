"""Measures on learning curves: the first epoch a curve reaches a value, steps to reach a fixed value, and epochs
to reach a baseline."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ablation.stats.frames import groups, require_columns, row_keys, select, usable


def first_epoch_below(curve: pd.DataFrame, threshold: float, *, x: str = "epoch", y: str = "value") -> float:
    """The first ``x`` (an epoch, or a step with ``x="step"``) at which ``y <= threshold``; nan if never.

    Args:
        curve: one run's curve (rows of ``records.curves`` for one trial, split and metric).
        threshold: the value to reach.
        x, y: the time and value columns.
    """
    require_columns(curve, [x, y], "curve")
    ordered = curve.sort_values(x, kind="stable")
    hit = ordered[pd.to_numeric(ordered[y]).to_numpy(dtype=float) <= threshold]
    return float(hit[x].iloc[0]) if len(hit) else float("nan")


def steps_to_reach(curves: pd.DataFrame, target: float, metric: str = "error", split: str = "val") -> pd.Series:
    """Per trial, the training steps until its ``split``/``metric`` curve first reaches ``target`` (at or below it).

    A curve is sampled at the end of each epoch, so the count is that epoch's last step. A run that never
    gets there within its budget counts as its last recorded step plus one epoch's steps (censored: the
    true count is larger, so a comparison against it is conservative in both directions). Only completed
    runs count (a diverged run's curve stops early); trials without such a curve are left out.

    Args:
        curves: ``records.curves``.
        target: the value to reach, e.g. a validation error of 0.05.
        metric, split: which curve (default: validation error).

    Returns:
        Steps per ``trial_id``.
    """
    require_columns(curves, ["trial_id", "metric", "split", "value", "step"], "curves")
    c = _completed(curves[(curves["metric"].astype(str) == metric) & (curves["split"].astype(str) == split)])
    c = c[usable(c, "value")]
    out = {}
    for tid, run in groups(c, ["trial_id"]):
        steps = pd.to_numeric(run["step"]).sort_values().to_numpy(dtype=float)
        reached = first_epoch_below(run, target, x="step")
        epoch = steps[-1] - steps[-2] if len(steps) > 1 else steps[-1]
        out[run["trial_id"].iloc[0]] = float(steps[-1] + epoch) if math.isnan(reached) else reached
    return pd.Series(out, dtype=float, name="steps")


def epochs_to_reach(curves: pd.DataFrame, target_selector: Mapping[str, Any], baseline_selector: Mapping[str, Any],
                    metric: str = "error", split: str = "val", *, within: Sequence[str] = (),
                    x: str = "epoch") -> pd.DataFrame:
    """Epochs each target run needs to reach its paired baseline's best value (Srivastava 2014 §11).

    For dropout's "2-3x longer to train" (claim C6): the baseline is the no-dropout run with the
    same seed (and the same ``within`` axes); its best ``split``/``metric`` value (lowest, e.g. the
    best validation error) and the epoch it first got there are taken, then the first epoch at
    which the target run is at or below that value. Only completed runs are used.

    Args:
        curves: ``records.curves``.
        target_selector, baseline_selector: ``{axis: value}`` picking the target and baseline runs.
        metric, split: which curve (default: validation error).
        within: more axes to pair on besides the seed.
        x: ``"epoch"`` (epoch numbers as recorded) or ``"step"``.

    Returns:
        One row per target run: ``within`` axes, ``seed``, ``trial_id``, ``baseline_best``,
        ``baseline_epochs`` (first x at the baseline's best), ``target_epochs`` (nan when never
        reached) and ``ratio`` = target_epochs / baseline_epochs.
    """
    keys = [*within, "seed"]
    require_columns(curves, ["trial_id", "metric", "split", "value", x, *keys], "curves")
    c = _completed(curves[(curves["metric"].astype(str) == metric) & (curves["split"].astype(str) == split)])
    c = c[usable(c, "value")]
    base, target = select(c, baseline_selector), select(c, target_selector)
    base_keys = row_keys(base, keys)
    rows = []
    for _, run in groups(target, ["trial_id"]):
        mine = base[base_keys == row_keys(run.iloc[:1], keys).iloc[0]]
        if mine.empty:
            continue
        mean_curve = mine.groupby(x, as_index=False)["value"].mean()
        best = float(mean_curve["value"].min())
        base_epochs = first_epoch_below(mean_curve, best, x=x)
        reach = first_epoch_below(run, best, x=x)
        rows.append({**{k: run[k].iloc[0] for k in keys}, "trial_id": run["trial_id"].iloc[0],
                     "baseline_best": best, "baseline_epochs": base_epochs, "target_epochs": reach,
                     "ratio": reach / base_epochs if base_epochs else float("nan")})
    return pd.DataFrame(rows, columns=[*keys, "trial_id", "baseline_best", "baseline_epochs", "target_epochs",
                                       "ratio"])


def _completed(curves: pd.DataFrame) -> pd.DataFrame:
    """The curves of completed runs (a diverged or failed run's curve stops early)."""
    return curves[curves["status"].astype(str) == "completed"] if "status" in curves.columns else curves
