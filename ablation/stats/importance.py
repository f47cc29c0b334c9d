"""Factor importance of a grid with several axes: how much of a metric's variance each axis, and each
pair of axes, accounts for.

**Method.** Functional ANOVA (Hutter, Hoos & Leyton-Brown 2014, "An efficient approach for assessing
hyperparameter importance", ICML) splits the variance of a performance measure over a configuration
space into main effects and interactions; fANOVA estimates the split on a random-forest surrogate,
because a random search covers the space sparsely. A study's grid is a complete factorial with the
seeds as replicates, so here the split is exact, with no surrogate: an ordinary least-squares
ANOVA (``statsmodels.formula.api.ols`` and ``statsmodels.stats.anova.anova_lm``) of the metric on
every varying axis as a categorical factor ``C(axis)`` and all their interactions, one value per
(grid point, seed). The design is balanced (every kept grid point has every kept seed), so the sums
of squares of the terms and of the residual add up to the total and do not depend on the order of
the terms. Interactions of three or more axes are pooled into one "higher-order interactions" row.

**What each row gives.** ``eta_sq`` = SS_term / SS_total, the term's share of all the variance of
the runs (seed-to-seed noise included, as the ``residual`` row; the shares add up to 1), with
``ci_lo`` / ``ci_hi``, a percentile bootstrap interval (``n_boot`` resamples, fixed seed) that
resamples the seeds of every grid point, independently per grid point: each resample is the grid
point's mean plus its runs' residuals drawn with replacement and scaled by sqrt(n / (n - 1)), so
that the resampled noise keeps the noise's variance (modified residuals r / sqrt(1 - h), leverage
h = 1/n: Davison & Hinkley 1997, "Bootstrap Methods and their Application", §6.2). In a simulation
(2 x 3 grid, one axis shifting the metric, 150 data sets each) it covered that axis's share 89-95% of
the time at 2, 5 and 10 seeds. A share cannot be negative, so this interval does not reach 0 even for
a term with no effect: whether a term stands out from the seed noise is the F test's: ``F``, ``p``,
and ``partial_eta_sq`` = SS_term / (SS_term + SS_residual) with ``partial_lo`` / ``partial_hi``, the
95% interval of the population partial eta² found by inverting the noncentral F distribution of the observed F in its
noncentrality λ (Steiger 2004, "Beyond the F test: effect size confidence intervals and tests of
close fit in the analysis of variance and contrast analysis", Psychological Methods 9(2), 164-182),
partial eta² = λ / (λ + N) with N the number of runs analysed: exact under normal seed noise for any
number of seeds, and 0 at its lower end whenever the F test is not significant at the same level.
Terms rank the same by eta², partial eta² and sum of squares.

**What is left out.** Only completed runs with a finite metric count (:func:`frames.usable`). When
a grid point lacks a seed (a run failed, diverged or has not run), the analysis keeps the largest
complete sub-grid it can find greedily: it repeatedly leaves out the seed or the axis level whose
removal loses the fewest usable runs per missing run it removes (a seed before a level on ties),
until every remaining grid point has every remaining seed, and names what it left out. An axis left
with one level drops out.
Fewer than two varying axes: not applicable. One seed: no residual, so no F, p, partial eta² or
interval (the shares are still given).

The report draws the shares with their intervals (``ablation.report.importance``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as scipy_stats

from ablation.base import checks
from ablation.stats.frames import axis_label, require_columns, usable
from ablation.stats.intervals import LEVEL, N_BOOT

TIMES = "\u00d7"                        # "a × b"
HIGHER_ORDER = "higher-order interactions"
RESIDUAL = "residual (seeds)"
KINDS = ("main", "interaction", "higher-order", "residual")
COLUMNS = ("term", "kind", "axes", "df", "sum_sq", "eta_sq", "ci_lo", "ci_hi", "partial_eta_sq", "partial_lo",
           "partial_hi", "F", "p")
METHOD = ("ANOVA of every varying axis as a categorical factor with all their interactions, seeds as replicates "
          "(statsmodels ols + anova_lm), on the complete grid: an exact functional ANOVA (Hutter, Hoos & "
          "Leyton-Brown 2014) with no surrogate model. Share = \u03b7\u00b2 = SS_term / SS_total, with a percentile "
          "bootstrap interval (the seeds of each grid point resampled; a share never reaches 0, so tell a term "
          "from seed noise by p); partial \u03b7\u00b2 = SS_term / (SS_term + SS_residual), with its interval from "
          "the noncentral F distribution (Steiger 2004)")


@dataclass(frozen=True)
class Importance:
    """The variance decomposition of one metric over a run's grid (:func:`factor_importance`).

    ``table`` has one row per term, ranked by sum of squares, then the residual; columns
    :data:`COLUMNS`. ``applicable`` is False (and ``table`` empty) when fewer than two axes vary in
    the analysed runs, or the metric does not vary; ``reason`` then says why.
    """

    metric: str
    table: pd.DataFrame
    applicable: bool
    reason: str = ""
    axes: tuple[str, ...] = ()               # the factors analysed, in grid order
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)   # their kept levels (labels)
    seeds: tuple[Any, ...] = ()              # the kept seeds
    n: int = 0                               # runs analysed (grid points x seeds)
    left_out: tuple[str, ...] = ()           # seeds and levels left out, each with why
    notes: tuple[str, ...] = ()              # e.g. one seed: no residual
    level: float = LEVEL
    method: str = METHOD


def factor_importance(trials: pd.DataFrame, axes: Sequence[str], metric: str = "test_error", *,
                      level: float = LEVEL, n_boot: int = N_BOOT, seed: int = 0) -> Importance:
    """Main effects and pairwise interactions of the grid axes on ``metric`` (see the module docstring).

    Args:
        trials: ``records.trials`` (columns: the axes, ``seed``, ``status``, ``metric``).
        axes: the grid axes (``records.axes``); those with a single level are constants and are ignored.
        metric: the column analysed.
        level: confidence level of the intervals.
        n_boot: bootstrap resamples of the intervals of the shares.
        seed: seed of the bootstrap's ``numpy.random.default_rng``.

    Returns:
        An :class:`Importance`.

    Raises:
        ValueError: ``trials`` is not a DataFrame, an axis, ``seed`` or ``metric`` is not one of its
            columns, an axis is named twice, ``level`` is not in (0, 1), or ``n_boot`` is not a positive
            integer.
    """
    if not isinstance(trials, pd.DataFrame):
        raise checks.invalid("trials", "a pandas DataFrame (records.trials)", trials,
                             shown=type(trials).__name__)
    if isinstance(axes, str) or not all(isinstance(a, str) for a in axes):
        raise checks.invalid("axes", "a sequence of axis names (str)", axes)
    axes = list(axes)
    if len(set(axes)) != len(axes):
        raise checks.invalid("axes", "each axis named once", axes)
    if not isinstance(metric, str):
        raise checks.invalid("metric", "a column name (str)", metric)
    require_columns(trials, [*axes, "seed"], "axes")
    require_columns(trials, [metric], "metric")
    level = checks.open_unit_interval("level", level)
    n_boot = checks.integer("n_boot", n_boot, minimum=1)
    seed = checks.integer("seed", seed, minimum=0)

    trials = trials[trials["seed"].notna()].reset_index(drop=True)
    trials["seed"] = trials["seed"].map(_plain)  # 3, not np.int64(3) or 3.0, in what is left out
    labels = pd.DataFrame({a: trials[a].map(axis_label) for a in axes}, index=trials.index)
    factors = [a for a in axes if labels[a].nunique() >= 2]
    if len(factors) < 2:
        return _not_applicable(metric, level, "fewer than two axes vary" + (
            f" (only {factors[0]})" if factors else "") + ": there is nothing to split between factors")
    levels = {a: list(pd.unique(labels[a])) for a in factors}
    seeds = list(pd.unique(trials["seed"]))
    ok = usable(trials, metric)
    keys = [labels.loc[ok, a] for a in factors] + [trials.loc[ok, "seed"]]
    values = trials.loc[ok, metric].astype(float).groupby(keys).mean()
    present = {(tuple(k[:-1]), k[-1]): v for k, v in values.items()}
    if not present:
        return _not_applicable(metric, level, f"no run completed with a finite {metric}")
    levels, seeds, left_out = _complete(present, levels, seeds)
    notes: list[str] = []
    dropped = [a for a in factors if len(levels.get(a, ())) == 1]
    for a in dropped:
        notes.append(f"axis {a} keeps only {a}={levels[a][0]} after that, so it is not a factor here")
    kept = [a for a in factors if len(levels.get(a, ())) >= 2]
    if len(kept) < 2 or not seeds:
        why = ("fewer than two axes keep two or more levels with every seed completed" if seeds else
               "no seed has a completed run at every grid point")
        return _not_applicable(metric, level, why, left_out=left_out, notes=notes)

    index = [factors.index(a) for a in kept]
    fixed = {factors.index(a): levels[a][0] for a in dropped}
    rows = [{**{f"f{j}": cell[i] for j, i in enumerate(index)}, "y": y}
            for (cell, s), y in present.items()
            if s in seeds and all(cell[i] in levels[factors[i]] for i in index)
            and all(cell[i] == v for i, v in fixed.items())]
    data = pd.DataFrame(rows)
    if not np.isfinite(data["y"].var(ddof=0)) or data["y"].var(ddof=0) == 0:
        return _not_applicable(metric, level, f"every analysed run gives the same {metric}", left_out=left_out,
                               notes=notes)
    if len(seeds) == 1:
        notes.append("one seed per grid point: no replicate, so no residual, F, p, partial eta\u00b2 or interval; "
                     "the shares split the variance between grid points only")
    table = _anova(data, kept, level, n_boot, seed)
    return Importance(metric=metric, table=table, applicable=True, axes=tuple(kept),
                      levels={a: tuple(levels[a]) for a in kept}, seeds=tuple(seeds), n=len(data),
                      left_out=tuple(left_out), notes=tuple(notes), level=level)


def partial_eta_sq_interval(F: float, df1: float, df2: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Confidence interval of a population partial eta² from an observed F (Steiger 2004).

    The noncentrality λ of F(df1, df2; λ) is bounded by the values at which the observed ``F`` sits
    at the upper and lower (1 - level)/2 quantiles; each bound maps to λ / (λ + n). A bound is 0 when
    even λ = 0 puts ``F`` below that quantile.
    """
    if not (np.isfinite(F) and df1 > 0 and df2 > 0 and n > 0):
        return np.nan, np.nan
    alpha = (1 - level) / 2
    lo, hi = (_noncentrality(F, df1, df2, 1 - alpha), _noncentrality(F, df1, df2, alpha))
    return lo / (lo + n), hi / (hi + n)


def _noncentrality(F: float, df1: float, df2: float, target: float) -> float:
    """The λ >= 0 at which P(F(df1, df2; λ) <= F) = target (it falls as λ grows); 0 when none is."""
    if scipy_stats.f.cdf(F, df1, df2) <= target:
        return 0.0
    cdf = lambda lam: scipy_stats.ncf.cdf(F, df1, df2, lam) - target  # noqa: E731
    top = max(10.0, 2.0 * F * df1)
    while cdf(top) > 0:
        top *= 2.0
        if top > 1e12:
            return np.inf
    return float(optimize.brentq(cdf, 0.0, top, xtol=1e-10, rtol=1e-10))


def _complete(present: dict[tuple[tuple[str, ...], Any], float], levels: dict[str, list[str]],
              seeds: list[Any]) -> tuple[dict[str, list[str]], list[Any], list[str]]:
    """The largest complete sub-grid found greedily, and what was left out (see the module docstring)."""
    axes = list(levels)
    levels = {a: list(v) for a, v in levels.items()}
    seeds = list(seeds)
    left_out: list[str] = []

    def inside(key: tuple[tuple[str, ...], Any]) -> bool:
        cell, seed = key
        return seed in seeds and all(cell[i] in levels[a] for i, a in enumerate(axes))

    while seeds and all(levels.values()):
        have = [k for k in present if inside(k)]
        cells = int(np.prod([len(v) for v in levels.values()]))
        if len(have) == cells * len(seeds):
            break
        candidates = []  # (runs lost per missing run removed, runs lost, 0 = seed / 1 = level, position, ...)
        for position, seed in enumerate(seeds):
            lost = sum(1 for _, s in have if s == seed)
            missing = cells - lost
            if missing:
                candidates.append((lost / missing, lost, 0, position, ("seed", seed),
                                   f"seed {seed} (no completed run at {missing} of {cells} grid points)"))
        for i, a in enumerate(axes):
            for position, lab in enumerate(levels[a]):
                lost = sum(1 for cell, _ in have if cell[i] == lab)
                total = cells // len(levels[a]) * len(seeds)
                if total - lost:
                    candidates.append((lost / (total - lost), lost, 1, position, (a, lab),
                                       f"{a}={lab} ({total - lost} of its {total} runs "
                                       f"did not complete)"))
        *_, (what, value), text = min(candidates, key=lambda c: c[:4])
        left_out.append(text)
        if what == "seed":
            seeds.remove(value)
        else:
            levels[what].remove(value)
    if not seeds or not all(levels.values()):
        return levels, [], left_out
    return levels, seeds, left_out


def _anova(data: pd.DataFrame, axes: Sequence[str], level: float, n_boot: int, seed: int) -> pd.DataFrame:
    """The ranked term table of a balanced full-factorial ANOVA (columns f0, f1, ... and y)."""
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    factors = [f"f{j}" for j in range(len(axes))]
    data = data.sort_values(factors, kind="stable", ignore_index=True)
    fit = ols("y ~ " + " * ".join(f"C({f})" for f in factors), data=data).fit()
    n = len(data)
    df_resid = float(fit.df_resid)
    with warnings.catch_warnings():  # a saturated model (one seed) divides by a zero residual; balanced: type I = II
        warnings.simplefilter("ignore", RuntimeWarning)
        aov = anova_lm(fit, typ=1)
    ss_resid = float(aov.loc["Residual", "sum_sq"]) if df_resid > 0 else 0.0
    ss_total = float(fit.centered_tss)
    ms_resid = ss_resid / df_resid if df_resid > 0 else np.nan
    names: dict[str, tuple[str, tuple[str, ...]]] = {}   # statsmodels' term -> (row name, its axes)
    for name in aov.index.drop("Residual"):
        members = tuple(axes[int(j)] for j in re.findall(r"C\(f(\d+)\)", str(name)))
        names[name] = (f" {TIMES} ".join(members), members) if len(members) <= 2 else (HIGHER_ORDER, tuple(axes))
    pooled = aov.drop(index="Residual").groupby([names[t][0] for t in names], sort=False)[["df", "sum_sq"]].sum()
    shares = _bootstrap_shares(fit, data, factors, names, n_boot, seed) if df_resid > 0 else {}
    rows = []
    for term, r in pooled.iterrows():
        members = next(m for t, m in names.values() if t == term)
        kind = "main" if len(members) == 1 else "interaction" if term != HIGHER_ORDER else "higher-order"
        rows.append(_row(str(term), kind, members, float(r["df"]), float(r["sum_sq"]), ss_total, ss_resid, ms_resid,
                         df_resid, n, level, shares.get(term)))
    rows.sort(key=lambda r: -r["sum_sq"])
    if df_resid > 0:  # its share only: a bootstrap of the residual's share covers poorly at a few seeds
        rows.append(_row(RESIDUAL, "residual", (), df_resid, ss_resid, ss_total, 0.0, np.nan, 0.0, n, level, None))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _bootstrap_shares(fit: Any, data: pd.DataFrame, factors: Sequence[str], names: dict[str, tuple[str, Any]],
                      n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Bootstrap eta² of each row (and of the residual): the seeds of every grid point resampled with
    replacement, independently per grid point (``numpy.random.default_rng(seed)``).

    The design is the same in every resample, so each one's sums of squares are those ``anova_lm(typ=1)``
    computes, from the fitted model's own design matrix: the squared effects Q'y of its QR factorization,
    summed over each term's columns.
    """
    q, columns = _design(fit)
    y = data["y"].to_numpy(dtype=float)
    cells = np.stack([np.asarray(v) for v in data.groupby(list(factors), sort=False).indices.values()])
    n_cells, n_seeds = cells.shape
    means = y[cells].mean(axis=1)
    residuals = y[cells] - means[:, None]
    inflate = np.sqrt(n_seeds / (n_seeds - 1))  # resampled residuals have the variance (n - 1)/n of the noise's
    rng = np.random.default_rng(seed)
    out = {row: np.zeros(n_boot) for row, _ in names.values()}
    for start in range(0, n_boot, 500):
        b = min(500, n_boot - start)
        pick = rng.integers(0, n_seeds, size=(b, n_cells, n_seeds))
        drawn = np.take_along_axis(np.broadcast_to(residuals, (b, n_cells, n_seeds)), pick, axis=2)
        ys = np.empty((len(y), b))
        ys[cells.ravel(), :] = (means[None, :, None] + inflate * drawn).reshape(b, -1).T
        sums = term_sums(q, columns, ys)
        total = ((ys - ys.mean(axis=0)) ** 2).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):  # a resample with no spread at all: nan
            for term, (row, _) in names.items():
                out[row][start:start + b] += sums[term] / total
    return out


def _design(fit: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Q of the QR factorization of the fitted model's design matrix, and each term's columns (by the
    ``C(f0):C(f1)`` names ``anova_lm`` gives its rows, read off the public ``exog_names``)."""
    q, _ = np.linalg.qr(np.asarray(fit.model.exog, dtype=float))
    keys = [":".join(f"C({f})" for f in re.findall(r"C\((f\d+)\)", name)) for name in fit.model.exog_names]
    return q, {key: np.flatnonzero([k == key for k in keys]) for key in dict.fromkeys(keys) if key}


def term_sums(q: np.ndarray, columns: dict[str, np.ndarray], ys: np.ndarray) -> dict[str, np.ndarray]:
    """Type I sums of squares of each term for each column of ``ys``, as ``anova_lm(typ=1)`` computes them:
    the squared effects Q'y summed over the term's columns."""
    effects = q.T @ ys
    return {term: (effects[cols] ** 2).sum(axis=0) for term, cols in columns.items()}


def _row(term: str, kind: str, members: tuple[str, ...], df: float, ss: float, ss_total: float, ss_resid: float,
         ms_resid: float, df_resid: float, n: int, level: float, shares: np.ndarray | None) -> dict[str, Any]:
    if df_resid > 0 and ms_resid > 0:
        F = (ss / df) / ms_resid
        p = float(scipy_stats.f.sf(F, df, df_resid))
        partial = ss / (ss + ss_resid)
        partial_lo, partial_hi = partial_eta_sq_interval(F, df, df_resid, n, level)
    else:
        F = p = partial = partial_lo = partial_hi = np.nan
    lo = hi = np.nan
    if shares is not None and np.isfinite(shares).any():
        lo, hi = (float(v) for v in np.nanquantile(shares, [(1 - level) / 2, (1 + level) / 2]))
    return {"term": term, "kind": kind, "axes": members, "df": df, "sum_sq": ss, "eta_sq": ss / ss_total,
            "ci_lo": lo, "ci_hi": hi, "partial_eta_sq": partial, "partial_lo": partial_lo, "partial_hi": partial_hi,
            "F": F, "p": p}


def _plain(seed: Any) -> Any:
    """A seed as a plain Python int where it is a whole number."""
    value = seed.item() if isinstance(seed, np.generic) else seed
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _not_applicable(metric: str, level: float, reason: str, *, left_out: Sequence[str] = (),
                    notes: Sequence[str] = ()) -> Importance:
    return Importance(metric=metric, table=pd.DataFrame(columns=list(COLUMNS)), applicable=False,
                      reason=reason, left_out=tuple(left_out), notes=tuple(notes), level=level)
