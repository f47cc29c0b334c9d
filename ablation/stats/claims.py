"""Claim verdicts: one value per seed, an interval over seeds, and rules that refuse to over-claim.

For each claim (``ablation.spec.Claim``) the runs it names are reduced to **one value per seed**
(the unit of replication; runs that share a seed are correlated, so grid points the claim leaves
free are averaged within the seed first): the metric (kind ``level``), a paired difference or log
ratio (``effect``, ``within``), the worst compare arm minus the best against arm (``separation``),
the spread over an axis (``range``), the margins of the levels outside a window over the best one
inside (``best``), or a difference of effects (``interaction``); see ``spec.claims.KINDS``.

The verdict, in this order of precedence:

1. ``cannot be tested``: the metric or an axis does not exist, or no run completed.
2. ``arm did not train``: a grid point the claim compares has a mean test error within
   ``CHANCE_MARGIN`` of chance (1 - 1/classes) or a training error (a clean pass over its training
   set) of at least ``TRAIN_FRACTION`` of chance; for regression, a mean test or training RMSE of at
   least ``REGRESSION_FRACTION`` of the RMSE of predicting the training set's mean
   (``baseline_test_rmse``, ``baseline_train_rmse``: it explains under ~10% of the variance); or
   none of its runs completed (every one diverged or failed). The verdict names the point and its
   errors (or its runs' outcomes). Claims about the metric at initialization (``*_init``) or
   about divergence are exempt, and a claim may allow one side not to train when that is what it
   says (``allow_untrained``).
3. ``too few seeds``: fewer than ``MIN_SEEDS`` per-seed values; the numbers are still shown.
4. From the interval over seeds (Student's t below 30 seeds; ``stats.intervals``):
   ``lower``: supported when it lies below the threshold, not supported when above;
   ``higher``: the reverse; ``near``: supported when it lies inside threshold ± tolerance, not
   supported when wholly outside; ``inconclusive`` otherwise.

Each verdict also carries a p-value (one-sided t test, or two one-sided tests for ``near``) so that
:func:`claim_verdicts` can give Holm-adjusted verdicts for the several claims of one study.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ablation.spec import EXPECTS, Claim, test_text
from ablation.spec import claims as claim_spec
from ablation.stats.curves import epochs_to_reach, steps_to_reach
from ablation.stats.frames import axes_from_points, axis_label, check_choice, matches, row_keys, select, usable
from ablation.stats import power as power_module
from ablation.stats.intervals import LEVEL, N_BOOT, holm, mean_interval, one_sided_p, tost_p
from ablation.stats.tables import evaluation_metrics

MIN_SEEDS = 5            # fewer per-seed values than this: "too few seeds", never a verdict
CHANCE_MARGIN = 0.05     # an arm whose mean test error is within 5 points of chance did not train ...
TRAIN_FRACTION = 0.8     # ... nor one whose training error is at least 80% of chance
DEFAULT_CLASSES = 10     # chance when the records do not say how many classes there are
REGRESSION_FRACTION = 0.95  # regression: an arm whose mean test or training RMSE is at least 95% of predicting
                            # the training mean's did not train
SEQUENTIAL = "sequential"  # run.json: the looks of a run that added seeds until its claims were decided
NEEDS_FULL = "needs the full profile"
VERDICTS = ("supported", "not supported", "inconclusive", "no spread", "treatment inert", "too few seeds",
            "arm did not train", NEEDS_FULL, "cannot be tested")
DEFINITIVE = ("supported", "not supported")
DERIVED_METRICS = {
    "epochs_to_baseline_best": "epochs the compare run needs to reach its same-seed against run's best validation "
                               "error (Srivastava et al. 2014, section 11); a run that never gets there counts "
                               "as its last epoch + 1 (censored)",
    "steps_to_val_error": "training steps until the run's validation error first reaches the claim's target (read "
                          "at the end of each epoch; Ioffe & Szegedy 2015, Fig. 1(a)); a run that never gets there "
                          "counts as its last step + one epoch's steps (censored)",
}
_MINUS = "\u2212"


# --------------------------------------------------------------------------- verdicts of a study

def claim_verdicts(claims: Sequence[Any], trials: pd.DataFrame, *, evaluations: pd.DataFrame | None = None,
                   curves: pd.DataFrame | None = None, axes: Sequence[str] | None = None, level: float = LEVEL,
                   n_boot: int = N_BOOT, seed: int = 0,
                   looks: Mapping[str, tuple[int, Sequence[int]]] | None = None,
                   scale_gaps: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every claim's verdict, plus Holm-adjusted p-values and verdicts over the study's claims.

    ``scale_gaps`` maps the id of a claim marked ``paper_scale`` to why its run departs from the
    paper's scale (``spec.scale.departure_reasons``): such a claim is shown with its numbers and the verdict
    "needs the full profile" (a shrunk stand-in known to reverse an effect is evidence neither way).

    ``looks`` (runs that added seeds until their claims were decided, ``ablation.engine.sequential``) maps a
    claim id to the look that decided it and the seeds it had then: the claim is judged on those
    seeds only, at that look's confidence level (:func:`ablation.stats.power.look_level`), so the
    verdict is the one the sequential procedure reached, with its error rate.

    The family is the claims with a p-value (those that reached an interval); each adjusted
    verdict keeps the raw one when the adjusted p-value is below ``1 - level`` and is
    ``inconclusive`` otherwise. The p-value of a claim is two-sided (twice the one-sided p of the side
    its interval points to), so it agrees with the two-sided interval: the interval excludes the
    threshold exactly when p < 1 - level.
    """
    out = []
    for claim in claims:
        c = claim_spec.coerce(claim)
        rows, at = trials, level
        look = (looks or {}).get(c.id)
        if look is not None:
            at = power_module.look_level(int(look[0]), level)
            rows = trials[trials["seed"].isin([int(s) for s in look[1]])]
        try:
            v = claim_verdict(c, rows, evaluations=evaluations, curves=curves, axes=axes, level=at, n_boot=n_boot,
                              seed=seed)
        except ValueError as exc:
            v = _untestable(c, axes or [], at, f"cannot be tested: {in_words(exc)}")
        gap = (scale_gaps or {}).get(c.id) if c.paper_scale else None
        if gap:
            v.update(verdict=NEEDS_FULL, reason=f"the run departs from the paper's scale: {gap}", p_value=np.nan)
        v["look"] = int(look[0]) if look is not None else None
        out.append(v)
    return holm_family(out, level)


def in_words(exc: BaseException) -> str:
    """Why a claim cannot be tested, in the user's terms (not an argument check's message)."""
    text = str(exc)
    m = re.search(r"argument 'claim\.([\w.]+)'.*Received: (?:\w+=)?(.+)$", text)
    if not m:
        return text
    key, got = m.groups()
    if key.endswith("metric"):
        return f"these runs recorded no {got} (a probe or evaluation of the study would produce it)"
    return f"its {key} names {got}, which these runs do not have as a grid axis"


def looks_of(meta: Mapping[str, Any] | None, claims: Sequence[Any]) -> dict[str, tuple[int, list[int]]] | None:
    """For a run that added seeds (``ablation.engine.sequential``): each claim id -> the look that decided it (the
    last finished look if none did) and the seeds it had then; None for any other run."""
    state = (meta or {}).get(SEQUENTIAL)
    if not isinstance(state, dict) or not state.get("looks"):
        return None
    looks = [lk for lk in state["looks"] if lk.get("status") == "done"] or state["looks"][:1]
    by_number = {int(lk["look"]): lk for lk in looks}
    last = max(by_number)
    out = {}
    for c in claims:
        k = int((state.get("decided") or {}).get(claim_spec.coerce(c).id, last))
        k = k if k in by_number else last
        out[claim_spec.coerce(c).id] = (k, [int(s) for s in by_number[k]["seeds"]])
    return out


def holm_family(out: list[dict[str, Any]], level: float = LEVEL) -> list[dict[str, Any]]:
    """Add Holm-adjusted p-values and verdicts (``p_holm``, ``verdict_holm``) to the verdicts of one family."""
    adjusted = holm([v["p_value"] if v["verdict"] in DEFINITIVE + ("inconclusive",) else np.nan for v in out])
    for v, p in zip(out, adjusted):
        v["p_holm"] = p
        alpha = 1 - min(level, v.get("level", level))  # a claim decided at a look: that look's (smaller) alpha
        if v["verdict"] in DEFINITIVE:
            v["verdict_holm"] = v["verdict"] if np.isfinite(p) and p < alpha else "inconclusive"
        else:
            v["verdict_holm"] = v["verdict"]
    return out


def claim_verdict(claim: Any, trials: pd.DataFrame, *, evaluations: pd.DataFrame | None = None,
                  curves: pd.DataFrame | None = None, axes: Sequence[str] | None = None, level: float = LEVEL,
                  n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any]:
    """Test one claim of a study against the runs (see the module docstring for the rules).

    Args:
        claim: a ``spec.Claim`` (or a mapping with its fields).
        trials: ``records.trials``.
        evaluations: ``records.evaluations``; needed when the metric is an evaluation column such as
            ``"test_error@mc_dropout:k=50"`` (see :func:`~ablation.stats.tables.evaluation_metrics`).
        curves: ``records.curves``; needed for ``epochs_to_baseline_best``.
        axes: all grid axes (``records.axes``); default: read off the ``point`` labels.
        level, n_boot, seed: the confidence level, and the bootstrap's resamples and seed (20+ seeds).

    Returns:
        A dict: the claim's fields, ``test`` (the test in words), ``method``, ``level``, ``n``
        (per-seed values), ``values`` (them), ``estimate``, ``ci_lo``, ``ci_hi``, ``p_value``,
        ``mean_treatment``, ``mean_baseline``, ``arms`` (grid points compared), ``guard`` (why an
        arm did not train, if one did), ``best_level`` (kind best), ``verdict`` and ``reason``.

    Raises:
        ValueError: the metric or an axis the claim names is not in the records.
    """
    c = claim_spec.coerce(claim)
    asked, selected = c, None
    if c.select:
        c, selected = choose_levels(c, trials)
    frame = _claim_frame(c, trials, evaluations, curves)
    axes = [a for a in (axes if axes is not None else axes_from_points(trials)) if a in frame.columns]
    free = claim_spec.free_axes(c, axes)
    rows = select(frame, c.where)
    out = _blank_verdict(c, axes, level)
    if selected is not None:
        out.update(test=test_text(asked, axes, level), selected=selected)
    completed = rows["status"].astype(str) == "completed" if "status" in rows.columns else pd.Series(True, rows.index)
    if not completed.any():
        out.update(verdict="cannot be tested", reason="no trial completed")
        return out
    values, info = _per_seed(c, rows, free, frame, curves)
    arm_values = info.pop("arm_values", None)
    out.update(info)
    out["guard"] = _guard(c, rows, free, frame) if c.guarded else []
    out["values"] = [float(x) for x in values.to_numpy()]
    out["n"] = len(values)
    out["left_out"] = _left_out(c, rows, free, values.index)
    if c.check:
        out["check_delta"] = _check_delta(c, rows, free, values.index)
    if c.kind == "best":
        return _decide_best(c, out, info.pop("margins"), level, n_boot, seed)
    x = values.to_numpy(dtype=float)
    if len(x) >= 2 and np.ptp(x) == 0:
        out.update(estimate=float(np.exp(x[0]) if c.ratio else x[0]), spread=0.0)
    elif len(x) >= 2:
        iv = mean_interval(x, level, n_boot=n_boot, seed=seed)
        est, lo, hi = (np.exp(iv.estimate), np.exp(iv.lo), np.exp(iv.hi)) if c.ratio else (iv.estimate, iv.lo, iv.hi)
        out.update(method=iv.method, estimate=est, ci_lo=lo, ci_hi=hi, p_value=_p_value(c, x),
                   spread=power_module.t_sd(x))
    elif len(x) == 1:
        out["estimate"] = float(np.exp(x[0]) if c.ratio else x[0])
    if arm_values is not None and c.expect != "near":
        out["poi"] = list(power_module.probability_of_improvement(
            *arm_values, lower_is_better=c.expect == "lower", level=level, seed=seed))
    out["verdict"], out["reason"] = _verdict(c, out)
    _what_it_would_take(c, out, frame, x, level)
    return out


def choose_levels(c: Claim, trials: pd.DataFrame) -> tuple[Claim, dict[str, dict[str, Any]]]:
    """A claim with ``select``: each side naming several levels takes the one with the lowest mean of the
    validation metric ``c.select`` over its completed runs (seeds, and the axes the claim leaves free),
    at the claim's ``where``. Nested selection (Srivastava et al. 2014 chose Table 9's strengths on the
    validation set): the test metric is never read here. Ties go to the level listed first.

    Returns the claim with the chosen levels, and per side: axis, levels, their means, the one chosen.

    Raises:
        ValueError: the runs recorded no ``c.select`` (no validation split), or no level of a side completed.
    """
    if c.select not in trials.columns or not pd.to_numeric(trials[c.select], errors="coerce").notna().any():
        raise ValueError(f"these runs recorded no {c.select}, which select needs (a validation split: "
                         f"data.validation_size)")
    rows = select(trials, c.where)
    if "status" in rows.columns:
        rows = rows[rows["status"].astype(str) == "completed"]
    choice, info = {}, {}
    for side, (axis, levels) in c.candidates().items():
        fixed = {k: lab for k, lab in getattr(c, side).items() if k != axis}
        means = {}
        for lab in levels:
            got = pd.to_numeric(select(rows, {**fixed, axis: lab})[c.select], errors="coerce").dropna()
            means[lab] = float(got.mean()) if len(got) else float("nan")
        ranked = [lab for lab in levels if np.isfinite(means[lab])]
        if not ranked:
            raise ValueError(f"no run of {axis} in {{{', '.join(levels)}}} ({side}) completed with a {c.select}")
        choice[side] = min(ranked, key=lambda lab: means[lab])
        info[side] = {"axis": axis, "levels": list(levels), "means": means, "chosen": choice[side], "by": c.select}
    return c.chosen(choice), info


def _blank_verdict(c: Claim, axes: Sequence[str], level: float) -> dict[str, Any]:
    """A verdict's fields before anything is measured (see :func:`claim_verdict`)."""
    return {**c.to_dict(), "test": test_text(c, axes, level), "level": level, "method": "", "n": 0, "values": [],
            "estimate": np.nan, "ci_lo": np.nan, "ci_hi": np.nan, "p_value": np.nan, "mean_treatment": np.nan,
            "mean_baseline": np.nan, "arms": [], "guard": [], "best_level": None, "verdict": "", "reason": "",
            "left_out": {}, "spread": np.nan, "poi": None, "check_delta": np.nan, "detectable": np.nan,
            "seeds_needed": np.nan, "target": np.nan, "target_from": "", "noise_floor": np.nan,
            "below_floor": False, "test_size": None}


def _verdict(c: Claim, out: dict[str, Any]) -> tuple[str, str]:
    if out["guard"]:
        return "arm did not train", "; ".join(out["guard"])
    if out["n"] == 0:
        return "cannot be tested", "no seed has every run the claim compares"
    if out["n"] < MIN_SEEDS:
        return "too few seeds", f"{out['n']} seed{'s' if out['n'] != 1 else ''} with every run the claim compares " \
                                f"(a verdict needs {MIN_SEEDS})"
    if c.check:
        inert = _inert(c, out["check_delta"])
        if inert:
            return "treatment inert", inert
    if out.get("spread") == 0.0:
        return _decide_zero_spread(c, out)
    return decide(c.expect, out["ci_lo"], out["ci_hi"], c.threshold, c.tolerance)


def _decide_zero_spread(c: Claim, out: dict[str, Any]) -> tuple[str, str]:
    """Every seed gave the same value (often a bound of the measurement: a budget's floor, no events at all):
    no interval and no p-value. A verdict only where the claim declared a ``margin`` and the value lies at
    least that far from the threshold (p-value 0: no seed disagrees)."""
    value = out["estimate"]
    what = f"every seed gives {_num(value)}: no spread, so no interval or p-value (often a bound of the measurement)"
    if c.margin is None or c.expect == "near":
        return "no spread", what + ("" if c.expect == "near" else "; the claim declares no margin")
    distance = value - c.threshold
    toward = -distance if c.expect == "lower" else distance
    if toward >= c.margin:
        out["p_value"] = 0.0
        return "supported", f"{what}; it lies at least the declared margin {_num(c.margin)} on the claimed side"
    if -toward >= c.margin:
        out["p_value"] = 0.0
        return "not supported", f"{what}; it lies at least the declared margin {_num(c.margin)} on the other side"
    return "no spread", f"{what}; within the declared margin {_num(c.margin)} of {_num(c.threshold)}"


def _untestable(c: Claim, axes: Sequence[str], level: float, reason: str) -> dict[str, Any]:
    return {**_blank_verdict(c, axes, level), "verdict": "cannot be tested", "reason": reason}


# --------------------------------------------------------------------------- what it would take

def _what_it_would_take(c: Claim, out: dict[str, Any], frame: pd.DataFrame, x: np.ndarray, level: float) -> None:
    """Power at this n, the seeds that would settle the claim, and the test set's noise floor (stats.power);
    an inconclusive verdict's reason says which of them stands in the way."""
    sd = out["spread"]
    thr = np.log(c.threshold) if c.ratio and c.threshold > 0 else c.threshold
    if len(x) >= 2 and np.isfinite(sd) and sd > 0:
        out["detectable"] = power_module.detectable_effect(sd, len(x), level)
        if c.published_effect is not None and not (c.ratio and c.published_effect <= 0):
            target = (np.log(c.published_effect) if c.ratio else c.published_effect) - thr
            out["target_from"] = "published"
        else:
            mean = float(np.mean(x))
            target = (min(abs(mean - (thr - c.tolerance)), abs(mean - (thr + c.tolerance)))
                      if c.expect == "near" else mean - thr)
            out["target_from"] = "observed"
        out["target"] = float(target)
        out["seeds_needed"] = power_module.seeds_needed(target, sd, level)
    _noise_floor(c, out, frame)
    if out["verdict"] != "inconclusive":
        return
    needed = out["seeds_needed"]
    effect = "the published effect" if out["target_from"] == "published" else "the observed effect"
    if out["below_floor"]:
        out["reason"] += (f"; the effect is below the test set's noise floor (\u00b1{100 * out['noise_floor']:.2f} pp at "
                          f"{out['test_size']:,} test examples{', an upper bound for two arms' if c.has_baseline else ''}"
                          f"): more seeds alone cannot settle it, a larger test set could")
    elif np.isfinite(needed):
        out["reason"] += f"; about {int(needed)} seeds would detect {effect} (power {power_module.POWER:.0%})"
    elif needed == np.inf:
        out["reason"] += f"; more than {power_module.MAX_SEEDS:,} seeds would be needed to detect {effect}"


def _noise_floor(c: Claim, out: dict[str, Any], frame: pd.DataFrame) -> None:
    """The test set's binomial noise floor of an error-rate claim, and whether its effect lies below it."""
    if "error" not in c.metric or not c.metric.startswith("test_") or c.kind in ("range", "best", "interaction"):
        return
    sizes = pd.to_numeric(frame.get("test_size", pd.Series(dtype=float)), errors="coerce").dropna()
    if not len(sizes):
        return
    n_test = int(sizes.mode().iloc[0])
    arms = [m for m in (out["mean_treatment"], out["mean_baseline"]) if np.isfinite(m)]
    if not arms or not all(0 <= m <= 1 for m in arms):
        return
    floor = power_module.noise_floor(float(np.mean(arms)), n_test, difference=c.has_baseline)
    out.update(test_size=n_test, noise_floor=floor)
    est = out["estimate"]
    if not np.isfinite(est):
        return
    distance = abs(est - c.threshold)
    if c.ratio:  # a ratio of error rates: its distance from the threshold in the baseline's units
        distance = abs(est - c.threshold) * out["mean_baseline"]
    if c.expect == "near":  # a band, not an effect: the floor is shown, nothing is flagged
        return
    out["below_floor"] = bool(distance < floor)


# --------------------------------------------------------------------------- manipulation check

def _check_delta(c: Claim, rows: pd.DataFrame, free: list[str], seeds: Any) -> float:
    """The mean over the claim's seeds of compare minus against of the check metric (paired by seed)."""
    m = c.check["metric"]
    if m not in rows.columns:
        raise ValueError(f"Invalid value for argument 'claim.check.metric': expected a column of the trials (claim "
                         f"{c.id!r}). Received: metric={m!r}")
    ok = rows[usable(rows, m)]
    pairs = _paired(select(ok, c.compare), select(ok, c.against), free, m, False)
    pairs = pairs[pairs["seed"].isin(list(seeds))]
    return float(pairs.groupby("seed")["v"].mean().mean()) if len(pairs) else float("nan")


def _inert(c: Claim, delta: float) -> str | None:
    """Why the treatment counts as inert (its check metric did not move as declared), or None."""
    m, by, expect = c.check["metric"], c.check["by"], c.check["expect"]
    moved = np.isfinite(delta) and (delta <= -by if expect == "lower" else delta >= by)
    if moved:
        return None
    need = f"{_MINUS}{_num(by)} or less" if expect == "lower" else f"+{_num(by)} or more"
    return (f"the treatment did not move its check metric: mean Δ {m} = {_num(delta)} (the claim needs {need} "
            f"before its comparison counts)")


# --------------------------------------------------------------------------- seeds left out

def _left_out(c: Claim, rows: pd.DataFrame, free: list[str], counted: Any) -> dict[str, str]:
    """Seeds that ran some of the claim's grid points but are not among its per-seed values, and why."""
    sides = [select(rows, c.compare)]
    if c.against is not None:
        sides.append(select(rows, c.against))
    if c.kind in ("range", "best"):
        sides = [_levels(select(rows, c.compare), c)]
    if c.kind == "interaction":
        sides = [select(select(rows, part), sel) for part in (c.at, c.versus) for sel in (c.compare, c.against)]
    sel = pd.concat(sides)
    if sel.empty or "seed" not in sel.columns:
        return {}
    points = list(pd.unique(sel["point"].astype(str))) if "point" in sel.columns else []
    counted = {str(s) for s in counted}
    out = {}
    for seed, group in sel.groupby("seed", sort=True):
        if str(seed) in counted:
            continue
        status = group["status"].astype(str) if "status" in group.columns else pd.Series("completed", group.index)
        problems = [f"{p}: {st}" for p, st in zip(group.get("point", pd.Series(dtype=str)).astype(str), status)
                    if st != "completed"]
        ran = set(group["point"].astype(str)) if "point" in group.columns else set()
        problems += [f"{p}: not run" for p in points if p not in ran]
        out[str(seed)] = "; ".join(problems) or f"no value of {c.metric} for every compared run"
    return out


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


def _p_value(c: Claim, values: np.ndarray) -> float:
    """The two-sided p-value that agrees with the two-sided interval: twice the smaller of the one-sided
    t test towards the claim (lower / higher; two one-sided tests, TOST, for near) and the one against it
    (for near: that the mean lies outside the band), capped at 1."""
    thr, tol = c.threshold, c.tolerance
    if c.expect == "near":
        lo, hi = thr - tol, thr + tol
        if c.ratio:  # the values are log ratios
            lo, hi = np.log(max(lo, 1e-300)), np.log(hi)
        toward = tost_p(values, lo, hi)
        against = min(one_sided_p(values, lo, "less"), one_sided_p(values, hi, "greater"))
    else:
        if c.ratio:
            thr = np.log(thr)
        toward = one_sided_p(values, thr, "less" if c.expect == "lower" else "greater")
        against = one_sided_p(values, thr, "greater" if c.expect == "lower" else "less")
    return float(min(1.0, 2.0 * min(toward, against)))


# --------------------------------------------------------------------------- one value per seed

def _seed_means(frame: pd.DataFrame, column: str) -> pd.Series:
    """The mean of ``column`` per seed (averaging the grid points a claim leaves free)."""
    return pd.to_numeric(frame[column], errors="coerce").astype(float).groupby(frame["seed"]).mean().dropna()


def _points(frame: pd.DataFrame, free: Sequence[str]) -> pd.Series:
    return row_keys(frame, free)


def _paired(treat: pd.DataFrame, base: pd.DataFrame, free: Sequence[str], metric: str, ratio: bool) -> pd.DataFrame:
    """Treatment and baseline runs matched by seed and the free axes; the per-pair effect in column ``v``."""
    keep = [*free, "seed"]
    t = treat[keep + [metric]].assign(_key=row_keys(treat, free).to_numpy())
    b = base[keep + [metric]].assign(_key=row_keys(base, free).to_numpy())
    t = t.groupby(["_key", "seed"], as_index=False)[metric].mean()
    b = b.groupby(["_key", "seed"], as_index=False)[metric].mean()
    pairs = t.merge(b, on=["_key", "seed"], suffixes=("_t", "_b"))
    x, y = pairs[f"{metric}_t"].astype(float), pairs[f"{metric}_b"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pairs["v"] = np.log(x / y) if ratio else x - y
    pairs = pairs[np.isfinite(pairs["v"])]
    return pairs.rename(columns={f"{metric}_t": "t", f"{metric}_b": "b"})


def _per_seed(c: Claim, rows: pd.DataFrame, free: list[str], frame: pd.DataFrame,
              curves: pd.DataFrame | None) -> tuple[pd.Series, dict[str, Any]]:
    """The claim's statistic for each seed, and what the report shows beside it."""
    m = c.metric
    ok = rows[usable(rows, m)]
    info: dict[str, Any] = {}
    if c.kind == "level":
        treat = _complete(select(ok, c.compare), free, select(rows, c.compare))
        info.update(mean_treatment=_mean(treat, m), arms=_arm_labels(treat, free))
        return _seed_means(treat, m), info
    if c.kind == "within":
        treat = select(ok, c.compare)
        treat = _complete(treat[usable(treat, c.against_metric)], free, select(rows, c.compare))
        x, y = (pd.to_numeric(treat[col], errors="coerce").astype(float) for col in (m, c.against_metric))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log(x / y) if c.ratio else x - y
        info.update(mean_treatment=float(x.mean()), mean_baseline=float(y.mean()), arms=_arm_labels(treat, free))
        per = treat.assign(_v=v, _x=x, _y=y)
        per = per[np.isfinite(per["_v"])]
        info["arm_values"] = (_seed_means(per, "_x").to_numpy(), _seed_means(per, "_y").to_numpy())
        return _seed_means(per, "_v"), info
    if c.kind == "effect":
        treat, base = select(ok, c.compare), select(ok, c.against)
        if m == "epochs_to_baseline_best":
            pairs = _epochs_to_baseline_best(c, rows, free, curves)
        else:
            pairs = _complete_pairs(_paired(treat, base, free, m, c.ratio), select(rows, c.compare), free)
        info.update(mean_treatment=float(pairs["t"].mean()) if len(pairs) else np.nan,
                    mean_baseline=float(pairs["b"].mean()) if len(pairs) else np.nan,
                    arms=_arm_labels(treat, free) + _arm_labels(base, free))
        per_seed = pairs.groupby("seed")[["t", "b"]].mean()
        info["arm_values"] = (per_seed["t"].to_numpy(), per_seed["b"].to_numpy())
        return pairs.groupby("seed")["v"].mean(), info
    if c.kind == "separation":
        treat, base = select(ok, c.compare), select(ok, c.against)
        worst = _extreme_by_seed(treat, free, m, "max" if c.expect != "higher" else "min")
        best = _extreme_by_seed(base, free, m, "min" if c.expect != "higher" else "max")
        v = (worst - best).dropna()
        info.update(mean_treatment=_mean(treat, m), mean_baseline=_mean(base, m),
                    arms=_arm_labels(treat, free) + _arm_labels(base, free))
        return v, info
    if c.kind == "range":
        sel = _levels(select(ok, c.compare), c)
        others = [a for a in free if a != c.over]
        spread = sel.groupby([*others, "seed"] if others else ["seed"], dropna=False)[m].agg(
            lambda s: s.max() - s.min() if len(s) == _n_levels(sel, c) else np.nan)
        spread = spread.dropna().reset_index()
        info.update(arms=_arm_labels(sel, free))
        return spread.groupby("seed")[m].mean(), info
    if c.kind == "best":
        return _best_margins(c, ok, free, info)
    # interaction
    at, versus = select(ok, c.at), select(ok, c.versus)
    e_at = _paired(select(at, c.compare), select(at, c.against), free, m, False)
    e_vs = _paired(select(versus, c.compare), select(versus, c.against), free, m, False)
    both = _complete_pairs(e_at.merge(e_vs, on=["_key", "seed"], suffixes=("_at", "_vs")),
                           select(select(rows, c.at), c.compare), free)
    both["d"] = both["v_at"] - both["v_vs"]
    info.update(mean_treatment=float(e_at["v"].mean()) if len(e_at) else np.nan,
                mean_baseline=float(e_vs["v"].mean()) if len(e_vs) else np.nan,
                arms=_arm_labels(pd.concat([at, versus]), free))
    return both.groupby("seed")["d"].mean(), info


def _complete(frame: pd.DataFrame, free: Sequence[str], planned: pd.DataFrame) -> pd.DataFrame:
    """The rows of the seeds that have a usable run at every grid point the claim's selection planned
    (``planned``: the selection's rows of any status), so that n counts seeds with every compared run."""
    if frame.empty:
        return frame
    want = set(row_keys(planned, free)) if len(planned) else set()
    have = frame.assign(_k=row_keys(frame, free).to_numpy()).groupby("seed")["_k"].agg(set)
    full = [seed for seed, keys in have.items() if want <= keys]
    return frame[frame["seed"].isin(full)]


def _complete_pairs(pairs: pd.DataFrame, planned: pd.DataFrame, free: Sequence[str]) -> pd.DataFrame:
    """The pairs of the seeds that have a pair at every combination of the free axes the claim planned."""
    if pairs.empty:
        return pairs
    want = set(row_keys(planned, free)) if len(planned) else set()
    have = pairs.groupby("seed")["_key"].agg(set)
    full = [seed for seed, keys in have.items() if want <= keys]
    return pairs[pairs["seed"].isin(full)]


def _levels(frame: pd.DataFrame, c: Claim) -> pd.DataFrame:
    """Rows of the claim's ``levels`` of ``over`` (all of them when none are given)."""
    if not c.levels:
        return frame
    mask = pd.Series(False, index=frame.index)
    for lab in c.levels:
        mask |= matches(frame[c.over], lab)
    return frame[mask]


def _n_levels(frame: pd.DataFrame, c: Claim) -> int:
    return len(c.levels) if c.levels else int(frame[c.over].map(str).nunique())


def _extreme_by_seed(frame: pd.DataFrame, free: Sequence[str], metric: str, how: str) -> pd.Series:
    """Per seed, the max / min over arms (grid points) of the metric; NaN unless every arm has the seed."""
    arms = frame.assign(_arm=row_keys(frame, free).to_numpy())
    table = arms.pivot_table(index="seed", columns="_arm", values=metric, aggfunc="mean")
    complete = table.dropna()
    return complete.max(axis=1) if how == "max" else complete.min(axis=1)


def _best_margins(c: Claim, ok: pd.DataFrame, free: list[str], info: dict[str, Any]) -> tuple[pd.Series, dict]:
    """Per level outside ``best_in``: per seed, how much worse it is than the best level inside."""
    sel = _levels(select(ok, c.compare), c)
    others = [a for a in free if a != c.over]
    sel = sel.assign(_lab=sel[c.over].map(axis_label))
    table = sel.pivot_table(index=[*others, "seed"] if others else ["seed"], columns="_lab", values=c.metric,
                            aggfunc="mean").dropna()
    inside = [lab for lab in c.best_in if lab in table.columns]
    outside = [lab for lab in table.columns if lab not in c.best_in]
    sign = 1.0 if c.expect != "higher" else -1.0
    best_inside = table[inside].min(axis=1) if sign > 0 else table[inside].max(axis=1)
    margins = {lab: (sign * (table[lab] - best_inside)).groupby(level="seed").mean() for lab in outside}
    means = table.mean()
    info.update(best_level=str(means.idxmin() if sign > 0 else means.idxmax()) if len(means) else None,
                margins=margins, arms=_arm_labels(sel, free))
    smallest = min(margins.values(), key=lambda s: s.mean()) if margins else pd.Series(dtype=float)
    return smallest, info


def _decide_best(c: Claim, out: dict[str, Any], margins: dict[str, pd.Series], level: float, n_boot: int,
                 seed: int) -> dict[str, Any]:
    """Supported when every outside level is worse than the best inside one (each interval above 0:
    an intersection-union test, so no correction is needed); not supported when one is better."""
    ivs = {lab: mean_interval(v.to_numpy(), level, n_boot=n_boot, seed=seed) for lab, v in margins.items() if len(v) >= 2}
    out["n"] = min((len(v) for v in margins.values()), default=0)
    if not ivs:
        out["verdict"], out["reason"] = _verdict(c, out)
        return out
    worst = min(ivs, key=lambda lab: ivs[lab].lo)
    iv = ivs[worst]
    out.update(method=iv.method, estimate=iv.estimate, ci_lo=iv.lo, ci_hi=iv.hi,
               p_value=min(1.0, 2 * min(max(one_sided_p(margins[lab].to_numpy(), 0.0, "greater") for lab in ivs),
                                        min(one_sided_p(margins[lab].to_numpy(), 0.0, "less") for lab in ivs))),
               margins={lab: [ivs[lab].estimate, ivs[lab].lo, ivs[lab].hi] for lab in ivs})
    if out["guard"] or out["n"] < MIN_SEEDS:
        out["verdict"], out["reason"] = _verdict(c, out)
    elif all(v.lo > 0 for v in ivs.values()):
        out["verdict"], out["reason"] = "supported", f"every level outside is worse (smallest margin: {c.over}={worst})"
    elif any(v.hi < 0 for v in ivs.values()):
        better = [lab for lab, v in ivs.items() if v.hi < 0]
        out["verdict"], out["reason"] = "not supported", f"{c.over}={', '.join(better)} is better than every level inside"
    else:
        out["verdict"], out["reason"] = "inconclusive", f"the CI of the margin of {c.over}={worst} contains 0"
    return out


def _epochs_to_baseline_best(c: Claim, rows: pd.DataFrame, free: list[str], curves: pd.DataFrame | None) -> pd.DataFrame:
    """Per pair: epochs the compare run needs to reach the against run's best validation error (``t``),
    the epochs the against run needed (``b``), and the log ratio or difference (``v``)."""
    if curves is None or curves.empty:
        raise ValueError("claim metric 'epochs_to_baseline_best' needs the learning curves (records.curves)")
    keep = set(rows["trial_id"])
    cur = curves[curves["trial_id"].isin(keep)]
    table = epochs_to_reach(cur, c.compare, c.against, within=free)
    if table.empty:
        return pd.DataFrame(columns=["seed", "t", "b", "v"])
    last = rows.set_index("trial_id")["epochs_run"]
    reached = table["target_epochs"].astype(float)
    censored = table["trial_id"].map(last).astype(float) + 1.0
    t = reached.where(np.isfinite(reached), censored)
    b = table["baseline_epochs"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.log(t / b) if c.ratio else t - b
    out = pd.DataFrame({"seed": table["seed"], "t": t, "b": b, "v": v})
    return out[np.isfinite(out["v"])]


# --------------------------------------------------------------------------- the untrained-arm guard

def chance_error(trials: pd.DataFrame) -> float:
    """The error rate of guessing: 1 - 1/classes (``num_classes`` of the records, else 10)."""
    k = pd.to_numeric(trials.get("num_classes", pd.Series(dtype=float)), errors="coerce").dropna()
    classes = int(k.iloc[0]) if len(k) else DEFAULT_CLASSES
    return 1.0 - 1.0 / classes


def _is_regression(frame: pd.DataFrame) -> bool:
    return "task" in frame.columns and (frame["task"].astype(str) == "regression").any()


def _untrained(arm: pd.DataFrame, regression: bool, chance: float) -> str | None:
    """Why the runs of one grid point did not train, in words, or None."""
    def mean(column: str) -> float:
        return float(pd.to_numeric(arm[column], errors="coerce").mean()) if column in arm else np.nan

    if regression:
        test, train = mean("test_rmse"), mean("train_rmse")
        base_test, base_train = mean("baseline_test_rmse"), mean("baseline_train_rmse")
        if (np.isfinite(test) and np.isfinite(base_test) and test >= REGRESSION_FRACTION * base_test) or \
                (np.isfinite(train) and np.isfinite(base_train) and train >= REGRESSION_FRACTION * base_train):
            return (f"test RMSE {test:.4g} (predicting the training mean: {base_test:.4g}), training RMSE {train:.4g} "
                    f"(mean: {base_train:.4g})")
        return None
    test, train = mean("test_error"), mean("train_error")
    if (np.isfinite(test) and test >= chance - CHANCE_MARGIN) or \
            (np.isfinite(train) and train >= TRAIN_FRACTION * chance):
        return f"test error {test:.1%}, training error {train:.1%} (chance {chance:.0%})"
    return None


def _guard(c: Claim, rows: pd.DataFrame, free: list[str], frame: pd.DataFrame) -> list[str]:
    """The compared grid points that did not train (see the module docstring), in words."""
    regression = _is_regression(frame)
    if ("test_rmse" if regression else "test_error") not in frame.columns:
        return []
    chance = np.nan if regression else chance_error(frame)
    sides = {"compare": select(rows, c.compare)}
    if c.against is not None:
        sides["against"] = select(rows, c.against)
    if c.kind in ("range", "best"):
        sides = {"compare": _levels(select(rows, c.compare), c)}
    if c.kind == "interaction":
        sides = {side: pd.concat([select(select(rows, c.at), sel), select(select(rows, c.versus), sel)])
                 for side, sel in (("compare", c.compare), ("against", c.against))}
    problems = []
    for side, arm_rows in sides.items():
        if side in c.allow_untrained or arm_rows.empty:
            continue
        for point, arm in arm_rows.groupby("point", sort=False):
            status = arm["status"].astype(str) if "status" in arm.columns else pd.Series("completed", arm.index)
            if not (status == "completed").any():  # every run diverged or failed: the arm never trained
                counts = ", ".join(f"{n} {s}" for s, n in status.value_counts().items())
                problems.append(f"{point}: no run completed ({counts})")
                continue
            why = _untrained(arm[status == "completed"], regression, chance)
            if why is not None:
                problems.append(f"{point}: {why}")
    return problems


# --------------------------------------------------------------------------- helpers

def _arm_labels(frame: pd.DataFrame, free: Sequence[str]) -> list[str]:
    return list(pd.unique(frame["point"].astype(str))) if "point" in frame.columns else []


def _mean(frame: pd.DataFrame, metric: str) -> float:
    return float(pd.to_numeric(frame[metric], errors="coerce").mean()) if len(frame) else float("nan")


def _claim_frame(c: Claim, trials: pd.DataFrame, evaluations: pd.DataFrame | None,
                 curves: pd.DataFrame | None) -> pd.DataFrame:
    """The trials, joined with the evaluation columns when the claim's metric is one of them."""
    frame = trials.reset_index(drop=True)
    if "status" in frame.columns and "diverged" not in frame.columns:
        status = frame["status"].astype(str)
        frame["diverged"] = np.where(status.isin(["completed", "diverged"]), (status == "diverged").astype(float),
                                     np.nan)
    wanted = [m for m in (c.metric, c.against_metric) if m and m not in DERIVED_METRICS]
    if any(m not in frame.columns for m in wanted) and evaluations is not None and len(evaluations):
        frame = frame.merge(evaluation_metrics(evaluations), on="trial_id", how="left")
    for key, m in (("metric", c.metric), ("against_metric", c.against_metric)):
        if m and m not in frame.columns and m not in DERIVED_METRICS:
            raise ValueError(f"Invalid value for argument 'claim.{key}': expected a column of the trials, an "
                             f"evaluation column or one of {', '.join(DERIVED_METRICS)} (claim {c.id!r}); available: "
                             f"{', '.join(sorted(map(str, frame.columns)))}. Received: {key}={m!r}")
    if c.metric == "epochs_to_baseline_best":
        frame[c.metric] = 0.0  # computed per pair from the curves; the column only marks usable rows
    elif c.metric in claim_spec.TARGET_METRICS:  # per run, from its curve and the claim's target
        if curves is None or curves.empty:
            raise ValueError(f"claim metric {c.metric!r} needs the learning curves (records.curves)")
        frame[c.metric] = frame["trial_id"].map(steps_to_reach(curves, c.target))
    for part, names in (("compare", c.compare), ("against", c.against or {}), ("where", c.where), ("at", c.at),
                        ("versus", c.versus), ("over", {c.over: 0} if c.over else {})):
        missing = [k for k in names if k not in frame.columns]
        if missing:
            raise ValueError(f"Invalid value for argument 'claim.{part}': expected grid axes that are columns of "
                             f"the trials (claim {c.id!r}). Received: {missing}")
    return frame
