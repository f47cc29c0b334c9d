"""The report's "Which factors matter" part, for a run whose grid has two or more axes with two or more levels.

:func:`section` computes :func:`ablation.stats.factor_importance` of the run's primary metric and
returns what the template shows: a ranked table (share of variance, partial eta² with its 95%
interval, F, p), what was left out, and :func:`importance_bars`, a ranked horizontal bar chart
(seaborn, as :mod:`ablation.report.draw`) as a PNG ``data:`` URI. A run whose grid has fewer than two
such axes gets no section (None).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ablation import stats
from ablation.report.draw import _require, to_data_uri
from ablation.stats import importance as importance_module

TITLE = "Which factors matter"
CAPTION = ("Bars: partial \u03b7\u00b2 of each axis and each pair of axes in {metric}, SS_term / (SS_term + "
           "SS_residual), i.e. the term's size against the seed-to-seed noise, ranked; whiskers: its 95% interval "
           "(noncentral F, Steiger 2004). A bar whose interval reaches 0 is not told apart from seed noise at this "
           "number of seeds. The table's share is \u03b7\u00b2 = SS_term / SS_total, the term's part of all the "
           "variance of the {n} runs analysed ({cells} grid points \u00d7 {seeds} seed{s}); the shares, residual "
           "included, add up to 100%.")
CAPTION_ONE_SEED = ("Bars: \u03b7\u00b2 = SS_term / SS_total of each axis and each pair of axes in {metric}, ranked: "
                    "the term's share of the variance between the {cells} grid points. One seed per grid point: "
                    "no residual, so no interval, F or p.")


def section(rec: Any, metric: str, *, fmt_p: Callable[[float], str] = lambda p: f"{p:.2g}") -> dict[str, Any] | None:
    """What the page shows about factor importance; None when the grid has fewer than two varying axes.

    Args:
        rec: a ``records.Records`` (``trials``, ``axes`` and ``spec.grid``).
        metric: the metric analysed (the page's primary metric).
        fmt_p: formats a p-value (the page's own format).
    """
    axes = _grid_axes(rec)
    if len(axes) < 2:
        return None
    if metric not in rec.trials.columns:
        return {"applicable": False, "reason": f"these runs recorded no {metric}", "rows": [], "left_out": [],
                "notes": [], "uri": None, "error": None, "caption": "", "method": importance_module.METHOD}
    imp = stats.factor_importance(rec.trials, axes, metric)
    out = {"applicable": imp.applicable, "reason": imp.reason, "rows": _rows(imp.table, fmt_p),
           "left_out": list(imp.left_out), "notes": list(imp.notes), "uri": None, "error": None,
           "method": imp.method, "caption": ""}
    if not imp.applicable:
        return out
    cells = int(np.prod([len(v) for v in imp.levels.values()]))
    one_seed = len(imp.seeds) == 1
    out["caption"] = (CAPTION_ONE_SEED if one_seed else CAPTION).format(
        metric=metric, n=imp.n, cells=cells, seeds=len(imp.seeds), s="s" if len(imp.seeds) != 1 else "")
    try:
        out["uri"] = to_data_uri(importance_bars(imp.table, level=imp.level))
    except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the rest of the report
        warnings.warn(f"figure 'importance' could not be drawn: {exc}", RuntimeWarning, stacklevel=2)
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def importance_bars(table: pd.DataFrame, *, level: float = stats.LEVEL) -> plt.Axes:
    """Ranked horizontal bars of the terms of a :func:`stats.factor_importance` table.

    Partial eta² with its interval as whiskers; when the table has no partial eta² (one seed: no
    residual) the bars are the shares eta², without whiskers. The residual row is not drawn.
    """
    _require(table, ["term", "kind", "eta_sq", "partial_eta_sq", "ci_lo", "ci_hi"], "importance_bars")
    terms = table[table["kind"] != "residual"].reset_index(drop=True)
    partial = bool(terms["partial_eta_sq"].notna().any())
    value = "partial_eta_sq" if partial else "eta_sq"
    terms = terms.sort_values(value, ascending=False, kind="stable", ignore_index=True)
    fig, ax = plt.subplots(figsize=(6.5, 0.8 + 0.35 * len(terms)))
    color = sns.color_palette()[0]
    sns.barplot(data=terms, x=value, y="term", order=list(terms["term"]), color=color, errorbar=None, ax=ax)
    if partial:
        lo = (terms[value] - terms["ci_lo"]).clip(lower=0).fillna(0)
        hi = (terms["ci_hi"] - terms[value]).clip(lower=0).fillna(0)
        ax.errorbar(terms[value], range(len(terms)), xerr=[lo, hi], fmt="none", ecolor="black", elinewidth=1,
                    capsize=3)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"partial \u03b7\u00b2 with {level:.0%} interval" if partial else "share of variance (\u03b7\u00b2)")
    ax.set_ylabel("")
    sns.despine(ax=ax)
    return ax


def _grid_axes(rec: Any) -> list[str]:
    """The grid's axes with two or more levels that are columns of the trials frame, in grid order."""
    grid = getattr(getattr(rec, "spec", None), "grid", None)
    columns = rec.trials.columns
    if grid is not None:
        return [a.name for a in grid if len(a.labels) >= 2 and a.name in columns]
    return [a for a in getattr(rec, "axes", ()) if a in columns and rec.trials[a].map(str).nunique() >= 2]


def _rows(table: pd.DataFrame, fmt_p: Callable[[float], str]) -> list[dict[str, str]]:
    def share(x: float) -> str:
        return "\u2014" if not np.isfinite(x) else f"{100 * x:.1f}%"

    def number(x: float, digits: int = 3) -> str:
        return "\u2014" if not np.isfinite(x) else f"{x:.{digits}f}"

    rows = []
    for _, r in table.iterrows():
        ci = f"[{number(r['ci_lo'])}, {number(r['ci_hi'])}]" if np.isfinite(r["ci_lo"]) else "\u2014"
        rows.append({"term": r["term"], "kind": r["kind"], "df": f"{r['df']:g}", "share": share(r["eta_sq"]),
                     "partial": number(r["partial_eta_sq"]), "ci": ci,
                     "F": "\u2014" if not np.isfinite(r["F"]) else f"{r['F']:.3g}",
                     "p": "\u2014" if not np.isfinite(r["p"]) else fmt_p(r["p"])})
    return rows
