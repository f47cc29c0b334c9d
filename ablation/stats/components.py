"""What each component of a model is worth: the ranked table of a generated ablation study.

A leave-one-component-out (LOCO) study has one arm ``full`` and one arm ``-<id>`` per component;
an add-one study has ``bare`` and ``+<id>`` arms (``ablation.zoo.parts.variants``). Each arm is paired
with the reference arm by seed (:func:`~ablation.stats.tables.paired_deltas`: the same seed trains
the same data order), and ranked by the paired effect on the metric, with its 95% interval and the
probability that the arm beats the reference
(:func:`~ablation.stats.power.probability_of_improvement`, over all seed pairs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ablation.stats.frames import matches, usable
from ablation.stats.intervals import LEVEL, N_BOOT
from ablation.stats.power import probability_of_improvement
from ablation.stats.tables import paired_deltas

AXIS = "ablate"            # the grid axis of a generated ablation study (ablation.zoo.parts.variants.AXIS)
REFERENCES = ("full", "bare")


def component_effects(trials: pd.DataFrame, metric: str = "test_error", *, axis: str = AXIS,
                      lower_is_better: bool = True, level: float = LEVEL, n_boot: int = N_BOOT,
                      seed: int = 0) -> pd.DataFrame:
    """One row per component arm, ranked by its paired effect against the reference arm.

    Args:
        trials: ``records.trials`` of a study with an ``ablate`` axis (columns ``ablate``, ``seed``,
            ``status``, ``metric``).
        metric: the metric column.
        axis: the variant axis.
        lower_is_better: whether a lower metric is better (errors, losses).
        level, n_boot, seed: the intervals' level, resamples and seed.

    Returns:
        Columns ``component``, ``arm``, ``reference``, ``change`` ("removed" / "added"), ``estimate``
        (arm minus reference, mean over seed pairs), ``ci_lo``, ``ci_hi``, ``n_pairs``, ``poi``
        (probability that the arm is better than the reference), ``poi_lo``, ``poi_hi``, ``mean_arm``,
        ``mean_reference``; the largest harm from removing (or the largest gain from adding) first.
    """
    columns = ["component", "arm", "reference", "change", "estimate", "ci_lo", "ci_hi", "n_pairs", "poi", "poi_lo",
               "poi_hi", "mean_arm", "mean_reference"]
    if axis not in trials.columns or metric not in trials.columns:
        return pd.DataFrame(columns=columns)
    levels = [str(v) for v in pd.unique(trials[axis])]
    reference = next((r for r in REFERENCES if r in levels), None)
    if reference is None:
        return pd.DataFrame(columns=columns)
    others = [c for c in ("train_size",) if c in trials.columns and trials[c].nunique() > 1]
    deltas = paired_deltas(trials, axis, reference, metric, axes=[axis, *others], level=level, n_boot=n_boot,
                           seed=seed)
    ok = trials[usable(trials, metric)]
    ref_rows = ok[matches(ok[axis], reference)]
    rows = []
    for _, d in deltas.iterrows():
        arm = str(d["level"])
        if arm[:1] not in "-+":
            continue
        arm_rows = ok[matches(ok[axis], arm)]
        paired = arm_rows.merge(ref_rows, on=["seed", *others], suffixes=("", "_ref"))
        poi = probability_of_improvement(paired[metric].to_numpy(float), paired[f"{metric}_ref"].to_numpy(float),
                                         lower_is_better=lower_is_better, level=level, seed=seed)
        rows.append({"component": arm[1:], "arm": arm, "reference": reference,
                     "change": "removed" if arm[0] == "-" else "added", "estimate": d["estimate"],
                     "ci_lo": d["ci_lo"], "ci_hi": d["ci_hi"], "n_pairs": int(d["n_pairs"]), "poi": poi[0],
                     "poi_lo": poi[1], "poi_hi": poi[2], "mean_arm": d["mean_level"],
                     "mean_reference": d["mean_baseline"]})
    table = pd.DataFrame(rows, columns=columns)
    if table.empty:
        return table
    # worth = how much worse the model is without the component (or better with it), in the metric's direction
    sign = 1.0 if lower_is_better else -1.0
    worth = np.where(table["change"] == "removed", sign, -sign) * table["estimate"].astype(float)
    order = np.argsort(-np.nan_to_num(worth, nan=-np.inf), kind="stable")
    return table.iloc[order].reset_index(drop=True)


def sentence(row: Any, metric: str, fmt: Any = None) -> str:
    """``removing `dropout_2` raises test error by +0.8 pp [+0.5, +1.1]`` for one row of :func:`component_effects`."""
    fmt = fmt or (lambda x: f"{x:+.3g}")
    verb = "removing" if row["change"] == "removed" else "adding"
    est = float(row["estimate"])
    move = "raises" if est > 0 else "lowers" if est < 0 else "leaves"
    what = metric.replace("_", " ")
    if move == "leaves":
        return f"{verb} `{row['component']}` leaves {what} unchanged [{fmt(row['ci_lo'])}, {fmt(row['ci_hi'])}]"
    return f"{verb} `{row['component']}` {move} {what} by {fmt(est)} [{fmt(row['ci_lo'])}, {fmt(row['ci_hi'])}]"
