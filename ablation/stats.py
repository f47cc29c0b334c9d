"""Statistics of an ablation run: bootstrap CIs, paired deltas, claim verdicts, epochs to a target.

Pure functions over the long-form frames of :mod:`ablation.records` (NumPy and pandas, plus
``ablation.spec.label`` for axis labels; no plotting).

Conventions used throughout:

- **Confidence intervals** are percentile bootstrap intervals (Efron & Tibshirani 1993, ch. 13):
  the observations are resampled with replacement ``n_boot`` times (default 10,000) by
  ``numpy.random.default_rng(seed)`` (default seed 0, so every number is reproducible), the
  statistic is recomputed on each resample, and the ``(1 - level) / 2`` and ``(1 + level) / 2``
  quantiles of those values are the interval. The estimate is the statistic of the sample itself.
- **Only completed rows count**: a row enters an estimate when its ``status`` is ``"completed"``
  (a frame without a ``status`` column counts as all completed) and its metric is finite. Failed
  and diverged rows are counted, never averaged.
- **Seeds are replicates, paired**: an effect compares runs that share a seed (and every other
  grid axis that is not being compared), so the seed-to-seed spread cancels.
- **Axis selections** (a claim's ``compare`` / ``against`` / ``where``, the selectors of
  :func:`epochs_to_reach`) match the frames' axis columns by value *or* by label
  (``ablation.spec.label``): a claim holds labels (``"0.5"``, ``"none"``, ``"100-100"``, the
  recipe name for ``config``), a column may hold values or labels, and ``0.5``, ``"0.5"`` and
  ``0.50`` all match (numbers within ``numpy.isclose``).
- **Metrics from evaluations**: :func:`evaluation_metrics` turns ``records.evaluations`` into one
  column per (metric, mode, k) named ``"<metric>@<mode>:k=<k>"`` (``"<metric>@<mode>"`` for a
  deterministic pass, k = 0), e.g. ``"test_error@mc_dropout:k=50"`` or
  ``"test_error@dropconnect_gaussian:k=100"``; a claim may name such a column as its ``metric``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ablation.spec import label

N_BOOT = 10_000
LEVEL = 0.95
EFFECTS = ("difference", "ratio")
EXPECTS = ("lower", "higher", "near")
MIN_PAIRS = 2
_MINUS = "\u2212"
_CHUNK_ELEMENTS = 4_000_000  # resampled values held in memory at once


# --------------------------------------------------------------------------- bootstrap

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
    _check_choice("effect", effect, EFFECTS)

    def stat(pairs: np.ndarray, axis: int = 0) -> np.ndarray:
        means = np.mean(pairs, axis=axis)
        return means[..., 0] - means[..., 1] if effect == "difference" else means[..., 0] / means[..., 1]

    return stat


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"Invalid value for argument '{name}': expected one of {list(choices)}. "
                         f"Received: {name}={value!r}")


# --------------------------------------------------------------------------- row helpers

def _usable(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Rows that enter estimates: completed status and a finite metric."""
    values = pd.to_numeric(frame[metric], errors="coerce").astype(float)
    ok = pd.Series(np.isfinite(values.to_numpy()), index=frame.index)
    if "status" in frame.columns:
        ok &= frame["status"].astype(str) == "completed"
    return ok


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], argument: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"Invalid value for argument '{argument}': expected column(s) of the frame "
                         f"{sorted(map(str, frame.columns))}. Received: {missing}")


def matches(column: pd.Series, value: Any) -> pd.Series:
    """Boolean mask of the entries of an axis column equal to ``value`` (see module docstring).

    ``value`` may be an axis value or its label (``spec.label``): ``0.5``, ``"0.5"``, ``None`` /
    ``"none"``, ``[100, 100]`` / ``"100-100"``, ``True`` / ``"true"`` all match their counterparts.
    """
    want = axis_label(value)
    hit = np.array([axis_label(cell) == want or str(cell) == str(value) for cell in column], dtype=bool)
    number = _as_number(value)
    if number is not None:
        cells = column.map(lambda cell: np.nan if _as_number(cell) is None else _as_number(cell))
        with np.errstate(invalid="ignore"):
            hit = hit | np.isclose(cells.to_numpy(dtype=float), number, rtol=1e-9, atol=1e-12)
    return pd.Series(hit, index=column.index)


def axis_label(value: Any) -> str:
    """The study-file label of an axis value (``ablation.spec.label``; NumPy scalars included)."""
    return label(value.item() if isinstance(value, np.generic) else value)


def _as_number(value: Any) -> float | None:
    """A finite float from a number or a numeric string (never from a bool); else None."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return None
    if isinstance(value, (int, float, np.number)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if np.isfinite(number) else None
    return None


def select(frame: pd.DataFrame, selector: Mapping[str, Any] | None) -> pd.DataFrame:
    """Rows of ``frame`` whose axis columns equal every ``{axis: value}`` of ``selector``."""
    mask = pd.Series(True, index=frame.index)
    for axis, value in (selector or {}).items():
        mask &= matches(frame[axis], value)
    return frame[mask]


def _keys(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """A hashable string key per row from ``columns`` (axis values may be lists or floats)."""
    if not columns or frame.empty:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[list(columns)].map(str).agg("\x1f".join, axis=1).astype(object)


def _groups(frame: pd.DataFrame, columns: Sequence[str]) -> Iterator[tuple[dict, pd.DataFrame]]:
    """Groups of rows sharing ``columns``, in order of appearance, with their original values."""
    for _, group in frame.groupby(_keys(frame, columns), sort=False):
        yield {c: group[c].iloc[0] for c in columns}, group


def _pair(treatment: pd.DataFrame, baseline: pd.DataFrame, on: Sequence[str], metric: str) -> pd.DataFrame:
    """Mean metric per key on each side, inner-joined on the key: columns treatment, baseline."""
    def side(frame: pd.DataFrame) -> pd.Series:
        values = pd.to_numeric(frame[metric], errors="coerce").astype(float)
        return values.groupby(_keys(frame, on), sort=False).mean()

    return pd.concat([side(treatment).rename("treatment"), side(baseline).rename("baseline")],
                     axis=1, join="inner")


def axes_from_points(frame: pd.DataFrame) -> list[str]:
    """Axis names read off the ``point`` labels (``"activation=relu, dropout=0.5"``), in order.

    Only names that are also columns of ``frame`` are returned; no ``point`` column gives ``[]``.
    """
    if "point" not in frame.columns:
        return []
    names: list[str] = []
    for label in pd.unique(frame["point"].astype(str)):
        for name in re.findall(r"(?:^|,\s*)([A-Za-z_][\w.]*)=", label):
            if name in frame.columns and name not in names:
                names.append(name)
    return names


# --------------------------------------------------------------------------- tables

def summarize(trials: pd.DataFrame, by: Sequence[str], metric: str = "test_error", *, level: float = LEVEL,
              n_boot: int = N_BOOT, seed: int = 0, sort: bool = False) -> pd.DataFrame:
    """Per-group mean of a metric with its bootstrap CI across seeds, and the status counts.

    Args:
        trials: long-form frame, e.g. ``records.trials`` (any frame with ``by`` and ``metric``).
        by: grouping columns (the grid axes for the results table); ``[]`` = one group.
        metric: the column to average.
        level, n_boot, seed: see :func:`bootstrap_ci`.
        sort: sort groups by their keys; default keeps the order of first appearance.

    Returns:
        One row per group: the ``by`` columns, ``n`` (completed rows with a finite metric),
        ``mean``, ``ci_lo``, ``ci_hi`` (nan when ``n`` < 2; all nan when ``n`` == 0),
        ``n_failed``, ``n_diverged`` and ``n_trials`` (all rows of the group).
    """
    by = list(by)
    _require_columns(trials, by, "by")
    _require_columns(trials, [metric], "metric")
    trials = trials.reset_index(drop=True)
    usable = _usable(trials, metric)
    status = trials["status"].astype(str) if "status" in trials.columns else pd.Series("completed", index=trials.index)
    rows = []
    for values, group in _groups(trials, by):
        sample = pd.to_numeric(group.loc[usable[group.index], metric]).to_numpy(dtype=float)
        est = bootstrap_ci(sample, level=level, n_boot=n_boot, seed=seed) if sample.size else (np.nan,) * 3
        rows.append({**values, "n": int(sample.size), "mean": est[0], "ci_lo": est[1], "ci_hi": est[2],
                     "n_failed": int((status[group.index] == "failed").sum()),
                     "n_diverged": int((status[group.index] == "diverged").sum()), "n_trials": len(group)})
    out = pd.DataFrame(rows, columns=[*by, "n", "mean", "ci_lo", "ci_hi", "n_failed", "n_diverged", "n_trials"])
    return out.sort_values(by, kind="stable", ignore_index=True) if sort and by else out


def paired_deltas(trials: pd.DataFrame, axis: str, baseline: Any = None, metric: str = "test_error",
                  effect: str = "difference", *, axes: Sequence[str] | None = None, level: float = LEVEL,
                  n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """Same-seed effect of each level of ``axis`` against its baseline level, per other-axes point.

    Within every combination of the other grid axes, each run at a level is paired with the run
    at the baseline level that has the same seed; the effect and its bootstrap CI are computed
    over those pairs (resampling pairs).

    Args:
        trials: ``records.trials`` (columns: the axes, ``seed``, ``status``, ``metric``).
        axis: the axis whose levels are compared.
        baseline: the baseline level. Default: the axis's first level in order of appearance in
            ``trials``; the report passes the axis's first value in the study file.
        metric: the metric column.
        effect: ``"difference"`` (level - baseline) or ``"ratio"`` (level / baseline, ratio of means).
        axes: all grid axes (``records.axes``); default: read off the ``point`` labels.
        level, n_boot, seed: see :func:`bootstrap_ci`.

    Returns:
        One row per (other-axes point, level): the other axes, ``axis``, ``level``, ``baseline``,
        ``effect``, ``estimate``, ``ci_lo``, ``ci_hi``, ``n_pairs``, ``mean_level``, ``mean_baseline``.
    """
    _check_choice("effect", effect, EFFECTS)
    _require_columns(trials, [axis, metric, "seed"], "axis/metric")
    trials = trials.reset_index(drop=True)
    axes = list(axes) if axes is not None else axes_from_points(trials)
    others = [a for a in axes if a != axis and a in trials.columns]
    levels = list(pd.unique(trials[axis]))
    if baseline is None:
        baseline = levels[0] if levels else None
    if not any(matches(trials[axis], baseline)):
        raise ValueError(f"Invalid value for argument 'baseline': expected one of the levels of axis '{axis}' "
                         f"{levels}. Received: baseline={baseline!r}")
    usable = trials[_usable(trials, metric)]
    base_rows = usable[matches(usable[axis], baseline)]
    base_keys = _keys(base_rows, others)
    rows = []
    for level_value in levels:
        if matches(pd.Series([level_value]), baseline).iloc[0]:
            continue
        for point, treat in _groups(usable[matches(usable[axis], level_value)], others):
            key = _keys(treat.iloc[:1], others).iloc[0]
            pairs = _pair(treat, base_rows[base_keys == key], ["seed"], metric)
            rows.append({**point, **_paired_row(pairs, effect, level, n_boot, seed),
                         "axis": axis, "level": level_value, "baseline": baseline, "effect": effect})
    columns = [*others, "axis", "level", "baseline", "effect", "estimate", "ci_lo", "ci_hi", "n_pairs",
               "mean_level", "mean_baseline"]
    return pd.DataFrame(rows, columns=columns)


def _paired_row(pairs: pd.DataFrame, effect: str, level: float, n_boot: int, seed: int) -> dict:
    if pairs.empty:
        est = (np.nan,) * 3
    else:
        est = bootstrap_ci(pairs[["treatment", "baseline"]].to_numpy(), effect_stat(effect), level, n_boot, seed)
    return {"estimate": est[0], "ci_lo": est[1], "ci_hi": est[2], "n_pairs": len(pairs),
            "mean_level": pairs["treatment"].mean(), "mean_baseline": pairs["baseline"].mean()}


def evaluation_metrics(evaluations: pd.DataFrame) -> pd.DataFrame:
    """One row per trial, one column per evaluation: ``"<metric>@<mode>"`` or ``"<metric>@<mode>:k=<k>"``.

    Args:
        evaluations: ``records.evaluations`` (columns ``trial_id``, ``mode``, ``k``, ``metric``, ``value``).

    Returns:
        A frame with ``trial_id`` and one column per (metric, mode, k); a missing, nan or 0 ``k``
        (a deterministic pass such as ``weight_scaling``) leaves the ``:k=`` part out.
    """
    _require_columns(evaluations, ["trial_id", "mode", "metric", "value"], "evaluations")
    k = evaluations["k"] if "k" in evaluations.columns else pd.Series(np.nan, index=evaluations.index)
    k_text = pd.to_numeric(k, errors="coerce").map(lambda v: "" if pd.isna(v) or v == 0 else f":k={v:g}")
    names = evaluations["metric"].astype(str) + "@" + evaluations["mode"].astype(str) + k_text
    wide = evaluations.assign(_name=names).pivot_table(index="trial_id", columns="_name", values="value",
                                                       aggfunc="mean")
    wide.columns.name = None
    return wide.reset_index()


# --------------------------------------------------------------------------- claims

_CLAIM_DEFAULTS: dict[str, Any] = {
    "id": "", "statement": "", "source": "", "published": "", "approx": False, "metric": "test_error",
    "compare": None, "against": None, "against_metric": "", "where": None, "effect": "difference",
    "expect": "lower",
    "threshold": None, "tolerance": None, "rule": None,
}


def claim_fields(claim: Any) -> dict[str, Any]:
    """The fields of a claim (a ``spec`` claim object or a mapping) with defaults filled in.

    ``threshold`` defaults to 0 for a difference (and for a claim without ``against``), 1 for a
    ratio; ``compare`` / ``where`` default to ``{}``; an empty ``against`` counts as absent.
    """
    def get(name: str) -> Any:
        value = claim.get(name) if isinstance(claim, Mapping) else getattr(claim, name, None)
        return _CLAIM_DEFAULTS[name] if value is None else value

    fields = {name: get(name) for name in _CLAIM_DEFAULTS}
    fields.update(compare=dict(fields["compare"] or {}), where=dict(fields["where"] or {}),
                  against=dict(fields["against"]) if fields["against"] else None)
    _check_choice("claim.effect", fields["effect"], EFFECTS)
    _check_choice("claim.expect", fields["expect"], EXPECTS)
    if fields["threshold"] is None:
        baseline = fields["against"] or fields["against_metric"]
        fields["threshold"] = 1.0 if fields["effect"] == "ratio" and baseline else 0.0
    if fields["expect"] == "near" and fields["tolerance"] is None:
        raise ValueError(f"Invalid value for argument 'claim.tolerance': expected a number for expect='near' "
                         f"(claim {fields['id']!r}). Received: tolerance=None")
    return fields


def decide(expect: str, lo: float, hi: float, threshold: float, tolerance: float | None = None) -> tuple[str, str]:
    """Verdict of a confidence interval ``[lo, hi]`` against a claim's expectation.

    ``lower``: supported when hi < threshold, not supported when lo > threshold.
    ``higher``: supported when lo > threshold, not supported when hi < threshold.
    ``near``: supported when the CI lies inside ``threshold ± tolerance``, not supported when it lies
    wholly outside it. Anything else is inconclusive.

    Returns:
        ``(verdict, reason)`` with verdict one of "supported", "not supported", "inconclusive".
    """
    _check_choice("expect", expect, EXPECTS)
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


def _selection_text(selector: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_num(v)}" for k, v in selector.items())


def _free_axes(fields: Mapping[str, Any], axes: Sequence[str]) -> list[str]:
    fixed = set(fields["compare"]) | set(fields["where"]) | set(fields["against"] or {})
    return [a for a in axes if a not in fixed]


def claim_rule(claim: Any, axes: Sequence[str] = (), level: float = LEVEL) -> str:
    """The claim's ``rule`` text, or :func:`claim_test` when it has none."""
    rule = claim_fields(claim)["rule"]
    return str(rule) if rule else claim_test(claim, axes, level)


def claim_test(claim: Any, axes: Sequence[str] = (), level: float = LEVEL) -> str:
    """The test :func:`claim_verdict` runs, in words, e.g.

    ``test_error(dropout=0.5) − test_error(dropout=0.0) at train_size=5000, paired by seed: 95% CI
    must lie below 0``.
    """
    f = claim_fields(claim)
    metric, pct = f["metric"], f"{level * 100:g}%"
    term = f"{metric}({_selection_text(f['compare'])})" if f["compare"] else metric
    op = f" {_MINUS} " if f["effect"] == "difference" else " / "
    if f["against"]:
        text = f"{term}{op}{metric}({_selection_text(f['against'])})"
    elif f["against_metric"]:
        text = f"{term}{op}{f['against_metric']} of the same run, over seeds"
    else:
        text = f"mean {term} over seeds"
    if f["where"]:
        text += f" at {_selection_text(f['where'])}"
    if f["against"]:
        free = _free_axes(f, axes)
        text += ", paired by seed" + (f" within {', '.join(free)}" if free else "")
    thr = _num(f["threshold"])
    criterion = {"lower": f"below {thr}", "higher": f"above {thr}",
                 "near": f"within {thr} \u00b1 {_num(f['tolerance'])}"}[f["expect"]]
    return f"{text}: {pct} CI must lie {criterion}"


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
        A dict: the claim's fields, ``rule`` (the claim's, or generated), ``test`` (generated),
        ``estimate``, ``ci_lo``, ``ci_hi``, ``level``,
        ``n`` (pairs, or runs without ``against``), ``n_treatment``, ``n_baseline``,
        ``mean_treatment``, ``mean_baseline``, ``verdict`` and ``reason``.
    """
    f = claim_fields(claim)
    frame = _claim_frame(f, trials, evaluations)
    axes = [a for a in (axes if axes is not None else axes_from_points(trials)) if a in frame.columns]
    usable = select(frame[_usable(frame, f["metric"])], f["where"])
    treat = select(usable, f["compare"])
    base = select(usable, f["against"]) if f["against"] else None
    within = bool(f["against_metric"])
    if within:  # two metrics of the same runs: each run is its own pair
        treat = treat[_usable(treat, f["against_metric"])]
        sample = treat[[f["metric"], f["against_metric"]]].apply(pd.to_numeric).to_numpy(dtype=float)
    elif base is None:
        sample = pd.to_numeric(treat[f["metric"]]).to_numpy(dtype=float)
    else:
        pairs = _pair(treat, base, [*_free_axes(f, axes), "seed"], f["metric"])
        sample = pairs[["treatment", "baseline"]].to_numpy()
    out = {**f, "rule": claim_rule(claim, axes, level), "test": claim_test(claim, axes, level), "level": level,
           "n": int(sample.shape[0]), "n_treatment": len(treat), "n_baseline": None if base is None else len(base),
           "mean_treatment": _mean(treat, f["metric"]),
           "mean_baseline": (_mean(treat, f["against_metric"]) if within else
                             None if base is None else _mean(base, f["metric"])),
           "estimate": np.nan, "ci_lo": np.nan, "ci_hi": np.nan}
    if sample.shape[0] < MIN_PAIRS:
        what = "runs" if base is None or within else "seed-matched pairs"
        out.update(verdict="inconclusive", reason=f"too few completed {what}: {sample.shape[0]} (need {MIN_PAIRS})")
        return out
    stat = effect_stat(f["effect"]) if base is not None or within else np.mean
    est, lo, hi = bootstrap_ci(sample, stat, level, n_boot, seed)
    verdict, reason = decide(f["expect"], lo, hi, f["threshold"], f["tolerance"])
    out.update(estimate=est, ci_lo=lo, ci_hi=hi, verdict=verdict, reason=reason)
    return out


def _mean(frame: pd.DataFrame, metric: str) -> float:
    return float(pd.to_numeric(frame[metric]).mean()) if len(frame) else float("nan")


def _claim_frame(f: Mapping[str, Any], trials: pd.DataFrame, evaluations: pd.DataFrame | None) -> pd.DataFrame:
    """The trials, joined with the evaluation columns when the claim's metric is one of them."""
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


# --------------------------------------------------------------------------- curves

def first_epoch_below(curve: pd.DataFrame, threshold: float, *, x: str = "epoch", y: str = "value") -> float:
    """The first ``x`` (an epoch, or a step with ``x="step"``) at which ``y <= threshold``; nan if never.

    Args:
        curve: one run's curve (rows of ``records.curves`` for one trial, split and metric).
        threshold: the value to reach.
        x, y: the time and value columns.
    """
    _require_columns(curve, [x, y], "curve")
    ordered = curve.sort_values(x, kind="stable")
    hit = ordered[pd.to_numeric(ordered[y]).to_numpy(dtype=float) <= threshold]
    return float(hit[x].iloc[0]) if len(hit) else float("nan")


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
    _require_columns(curves, ["trial_id", "metric", "split", "value", x, *keys], "curves")
    c = curves[(curves["metric"].astype(str) == metric) & (curves["split"].astype(str) == split)]
    c = c[_usable(c, "value")]
    base, target = select(c, baseline_selector), select(c, target_selector)
    base_keys = _keys(base, keys)
    rows = []
    for _, run in _groups(target, ["trial_id"]):
        mine = base[base_keys == _keys(run.iloc[:1], keys).iloc[0]]
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
