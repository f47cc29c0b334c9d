"""The report's "Which factors matter" part, for a run whose grid has two or more axes with two or more levels.

:func:`section` computes :func:`ablation.stats.factor_importance` of the run's primary metric and
returns what the template shows: a ranked table (share of variance and partial eta², each with its
95% interval, F, p), what was left out, and :func:`importance_bars`, a ranked horizontal bar chart
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
CAPTION = ("Share of the variance of {metric} over the {n} runs analysed ({cells} grid points \u00d7 {seeds} "
           "seeds) that each axis and each pair of axes accounts for (\u03b7\u00b2 = SS_term / SS_total, an exact "
           "ANOVA of the complete grid), ranked, with {level:.0%} bootstrap intervals over seeds. The seed-to-seed "
           "noise takes the rest (the table's residual row). A share is never negative, so its interval never "
           "reaches 0: whether a term stands out from the seed noise is the table's p and partial \u03b7\u00b2, "
           "whose interval (noncentral F) reaches 0 when it does not.")
CAPTION_ONE_SEED = ("Share of the variance of {metric} between the {cells} grid points that each axis and each pair "
                    "of axes accounts for (\u03b7\u00b2 = SS_term / SS_total), ranked. One seed per grid point: "
                    "no residual, so no interval, F or p.")


def section(rec: Any, metric: str, *, n_boot: int = stats.N_BOOT,
            fmt_p: Callable[[float], str] = lambda p: f"{p:.2g}") -> dict[str, Any] | None:
    """What the page shows about factor importance; None when the grid has fewer than two varying axes.

    Args:
        rec: a ``records.Records`` (``trials``, ``axes`` and ``spec.grid``).
        metric: the metric analysed (the page's primary metric).
        n_boot: bootstrap resamples of the shares' intervals.
        fmt_p: formats a p-value (the page's own format).
    """
    axes = _grid_axes(rec)
    if len(axes) < 2:
        return None
    if metric not in rec.trials.columns:
        return {"applicable": False, "reason": f"these runs recorded no {metric}", "rows": [], "left_out": [],
                "notes": [], "uri": None, "error": None, "caption": "", "method": importance_module.METHOD}
    imp = stats.factor_importance(rec.trials, axes, metric, n_boot=n_boot)
    out = {"applicable": imp.applicable, "reason": imp.reason, "rows": _rows(imp.table, fmt_p),
           "left_out": list(imp.left_out), "notes": list(imp.notes), "uri": None, "error": None,
           "method": imp.method, "caption": ""}
    if not imp.applicable:
        return out
    cells = int(np.prod([len(v) for v in imp.levels.values()]))
    one_seed = len(imp.seeds) == 1
    out["caption"] = (CAPTION_ONE_SEED if one_seed else CAPTION).format(
        metric=metric, n=imp.n, cells=cells, seeds=len(imp.seeds), level=imp.level)
    try:
        out["uri"] = to_data_uri(importance_bars(imp.table, level=imp.level))
    except Exception as exc:  # noqa: BLE001 - a broken figure must not lose the rest of the report
        warnings.warn(f"figure 'importance' could not be drawn: {exc}", RuntimeWarning, stacklevel=2)
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


def importance_bars(table: pd.DataFrame, *, level: float = stats.LEVEL) -> plt.Axes:
    """Ranked horizontal bars of the shares (eta²) of the terms of a :func:`stats.factor_importance`
    table, with their intervals as whiskers where the table has them; the residual row is not drawn."""
    _require(table, ["term", "kind", "eta_sq", "ci_lo", "ci_hi"], "importance_bars")
    terms = table[table["kind"] != "residual"].sort_values("eta_sq", ascending=False, kind="stable",
                                                          ignore_index=True)
    fig, ax = plt.subplots(figsize=(6.5, 0.8 + 0.35 * len(terms)))
    sns.barplot(data=terms, x="eta_sq", y="term", order=list(terms["term"]), color=sns.color_palette()[0],
                errorbar=None, ax=ax)
    shown = terms["ci_lo"].notna().any()
    if shown:
        lo = (terms["eta_sq"] - terms["ci_lo"]).clip(lower=0).fillna(0)
        hi = (terms["ci_hi"] - terms["eta_sq"]).clip(lower=0).fillna(0)
        ax.errorbar(terms["eta_sq"], range(len(terms)), xerr=[lo, hi], fmt="none", ecolor="black", elinewidth=1,
                    capsize=3)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of variance (\u03b7\u00b2)" + (f" with {level:.0%} interval" if shown else ""))
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
    def share(x: float) -> str:  # one decimal, or two significant digits below 0.1% (a share of 2e-5 is not 0)
        return "\u2014" if not np.isfinite(x) else f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else f"{100 * x:.2g}%"

    def number(x: float, digits: int = 3) -> str:
        return "\u2014" if not np.isfinite(x) else f"{x:.{digits}f}"

    def interval(lo: float, hi: float, fmt: Callable[[float], str]) -> str:
        return f"[{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else ""

    rows = []
    for _, r in table.iterrows():
        rows.append({"term": r["term"], "kind": r["kind"], "df": f"{r['df']:g}", "share": share(r["eta_sq"]),
                     "share_ci": interval(r["ci_lo"], r["ci_hi"], share), "partial": number(r["partial_eta_sq"]),
                     "partial_ci": interval(r["partial_lo"], r["partial_hi"], number),
                     "F": "\u2014" if not np.isfinite(r["F"]) else f"{r['F']:.3g}",
                     "p": "\u2014" if not np.isfinite(r["p"]) else fmt_p(r["p"])})
    return rows
