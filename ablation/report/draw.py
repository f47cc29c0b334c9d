"""Seaborn figure functions: each takes a long-form frame (``data=``) plus column names and returns a
seaborn ``FacetGrid`` (or a matplotlib ``Axes``). The means and confidence bands they draw come from
:func:`ablation.stats.summarize` (t intervals across seeds), never from seaborn's own estimators.
:func:`to_data_uri` turns a figure into an embeddable PNG. Which figures a run gets, with their
titles and captions, is :mod:`ablation.report.figures`.

Matplotlib is switched to the non-interactive Agg backend on import (reports are rendered headless).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from ablation import stats  # noqa: E402

_HEIGHT, _ASPECT = 3.0, 1.35
_BAND_ALPHA = 0.2

# The one palette of every figure: ten hues that stay apart in print and for most colour-blind readers
# (matplotlib's "tab10"); past ten arms the hues repeat with another line style (:func:`hue_styles`).
PALETTE = "tab10"
PALETTE_SIZE = 10
LINESTYLES = ("-", "--", ":", "-.")
MIN_SEED_SHARE = 0.5  # a learning curve is drawn while at least this share of an arm's seeds still trains

_RATES = ("error", "accuracy", "fraction", "sparsity", "saturation", "dead", "inactive")
_NONNEGATIVE = ("loss", "rmse", "norm", "|w|", "time", "seconds", "epochs", "steps")


def value_range(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: rates (errors, accuracies, fractions of units) lie in [0, 1];
    losses, RMSEs, norms, magnitudes and times are >= 0; anything else is unbounded. A CI band or error
    bar is clipped to this range (a t interval of errors near 0 can reach below 0)."""
    name = str(metric).lower()
    if any(k in name for k in _RATES):
        return 0.0, 1.0
    if any(k in name for k in _NONNEGATIVE):
        return 0.0, math.inf
    return -math.inf, math.inf


def hue_styles(n: int) -> tuple[list[Any], list[str]]:
    """Colours and line styles of ``n`` hue levels: :data:`PALETTE`'s ten hues, then the same hues with
    the next of :data:`LINESTYLES` for levels 11-20, and so on."""
    colors = sns.color_palette(PALETTE, PALETTE_SIZE)
    return ([colors[i % PALETTE_SIZE] for i in range(n)],
            [LINESTYLES[(i // PALETTE_SIZE) % len(LINESTYLES)] for i in range(n)])


def _clip(summary: pd.DataFrame, bounds: tuple[float, float]) -> pd.DataFrame:
    lo, hi = bounds
    cols = [c for c in ("mean", "ci_lo", "ci_hi") if c in summary.columns]
    return summary.assign(**{c: pd.to_numeric(summary[c], errors="coerce").clip(lower=lo, upper=hi) for c in cols})


def _while_seeds_train(summary: pd.DataFrame, x: str, keys: Sequence[str],
                       share: float = MIN_SEED_SHARE) -> pd.DataFrame:
    """The rows of each curve (one per ``keys`` group) up to the last ``x`` at which at least ``share`` of
    its seeds still has a value; the last kept row carries ``seeds_on`` (seeds that go on past it),
    ``seeds_all`` and ``x_until`` (the last ``x`` any seed reached) so the cut can be marked."""
    parts = []
    grouped = summary.groupby(list(keys), sort=False, dropna=False) if keys else [((), summary)]
    for _, part in grouped:
        part = part.sort_values(x)
        total = int(part["n"].max())
        enough = part[part["n"] >= share * total]
        if enough.empty:
            continue
        last = enough[x].max()
        kept = part[part[x] <= last].assign(seeds_on=0, seeds_all=total, x_until=last)
        after = part[part[x] > last]
        if len(after):
            kept.loc[kept.index[-1], ["seeds_on", "x_until"]] = [int(after["n"].iloc[0]), after[x].max()]
        parts.append(kept)
    return pd.concat(parts) if parts else summary.iloc[0:0]


# --------------------------------------------------------------------------- drawing helpers

def _line_band(data: pd.DataFrame, x: str, color: Any = None, label: Any = None, linestyle: str = "-",
               **_: Any) -> None:
    """Mean line with its CI band (columns mean, ci_lo, ci_hi) on the current axes; where most seeds
    stopped early (a ``seeds_on`` > 0 on the last row) a triangle marks the cut, labelled with how many
    seeds went on and how far."""
    data = data.sort_values(x)
    ax = plt.gca()
    ax.plot(data[x], data["mean"], color=color, label=label, marker="o" if len(data) <= 12 else None, ms=3,
            linestyle=linestyle)
    ax.fill_between(data[x], data["ci_lo"], data["ci_hi"], color=color, alpha=_BAND_ALPHA, linewidth=0)
    if "seeds_on" in data.columns and data["seeds_on"].iloc[-1] > 0:
        end = data.iloc[-1]
        ax.plot([end[x]], [end["mean"]], marker=">", ms=6, color=color, linestyle="none")
        ax.annotate(f"{int(end['seeds_on'])}/{int(end['seeds_all'])} on to {end['x_until']:g}",
                    (end[x], end["mean"]), textcoords="offset points", xytext=(4, 3), fontsize=6, color=color)


def _points_errorbars(data: pd.DataFrame, x: str, order: Sequence[Any] | None = None, color: Any = None,
                      label: Any = None, linestyle: str = "-", **_: Any) -> None:
    """Means with CI error bars joined by a line; categorical ``x`` goes at positions of ``order``."""
    if order is not None:
        data = data.assign(_pos=data[x].map({v: i for i, v in enumerate(order)})).sort_values("_pos")
        xs = data["_pos"]
    else:
        data = data.sort_values(x)
        xs = data[x]
    lo = (data["mean"] - data["ci_lo"]).clip(lower=0).fillna(0)
    hi = (data["ci_hi"] - data["mean"]).clip(lower=0).fillna(0)
    plt.gca().errorbar(xs, data["mean"], yerr=[lo, hi], color=color, label=label, marker="o", ms=4, capsize=0,
                       linestyle=linestyle)


def _grid(data: pd.DataFrame, *, hue: str | None, col: str | None, row: str | None,
          orders: dict[str, Sequence[Any]] | None, sharey: bool = True, col_wrap: int | None = None) -> sns.FacetGrid:
    orders = orders or {}
    hue_order = _order(data, hue, orders)
    colors, styles = hue_styles(len(hue_order) if hue_order else 1)
    return sns.FacetGrid(data, hue=hue, col=col, row=row, hue_order=hue_order,
                         col_order=_order(data, col, orders), row_order=_order(data, row, orders),
                         palette=colors if hue is not None else None,
                         hue_kws={"linestyle": styles} if hue is not None else None,
                         height=_HEIGHT, aspect=_ASPECT, sharey=sharey, margin_titles=row is not None,
                         col_wrap=col_wrap if row is None else None, despine=True)


def _order(data: pd.DataFrame, column: str | None, orders: dict[str, Sequence[Any]]) -> list | None:
    if column is None:
        return None
    present = list(pd.unique(data[column]))
    wanted = [v for v in orders.get(column, ()) if v in present]
    return wanted + [v for v in present if v not in wanted]


def _finish(g: sns.FacetGrid, *, hue: str | None, xlabel: str, ylabel: str, logx: bool = False,
            logy: bool = False, names: Mapping[str, str] | None = None) -> sns.FacetGrid:
    """Axis labels and scales, and the legend; ``names`` renames hue levels in the legend (e.g. a
    recipe named for the paper's widths, run narrower at this profile)."""
    g.set_axis_labels(xlabel, ylabel)
    if logx:
        g.set(xscale="log")
    if logy:
        g.set(yscale="log")
    if hue is not None:  # renamed before the legend is placed, so the figure makes room for the longer text
        data = {names.get(str(k), str(k)) if names else k: h for k, h in g._legend_data.items()}
        g.add_legend(legend_data=data, label_order=list(data), title=hue)
    return g


def _require(data: pd.DataFrame, columns: Sequence[str | None], name: str) -> None:
    if data is None or len(data) == 0:
        raise ValueError(f"Invalid value for argument 'data': expected a non-empty frame for {name}(). "
                         f"Received: {0 if data is None else len(data)} rows")
    missing = [c for c in columns if c is not None and c not in data.columns]
    if missing:
        raise ValueError(f"Invalid value for argument 'data': expected column(s) {missing} for {name}(). "
                         f"Received: columns {list(data.columns)}")


# --------------------------------------------------------------------------- figure functions

def band_lines(data: pd.DataFrame, *, x: str, y: str = "value", hue: str | None = None, col: str | None = None,
               row: str | None = None, orders: dict[str, Sequence[Any]] | None = None, xlabel: str | None = None,
               ylabel: str | None = None, logx: bool = False, logy: bool = False, sharey: bool = True,
               n_boot: int = stats.N_BOOT, bounds: tuple[float, float] | None = None,
               min_share: float | None = None, names: Mapping[str, str] | None = None) -> sns.FacetGrid:
    """Mean of ``y`` over the runs (seeds) at each ``x``, with its 95% CI (t interval over seeds) as a band.

    One line per ``hue`` level in each ``col`` x ``row`` facet. The base of every curve figure. The
    band is clipped to ``bounds`` (default: :func:`value_range` of ``ylabel`` or ``y``).

    Args:
        data: long form, one row per run and ``x`` (rows of other statuses than completed are ignored).
        x, y: the time (or depth) and value columns.
        hue, col, row: optional grouping columns; ``orders`` gives their level order.
        xlabel, ylabel, logx, logy, sharey: axes settings.
        n_boot: bootstrap resamples for bands over 30+ seeds.
        bounds: the metric's range, ``(low, high)``.
        min_share: draw each line only while at least this share of its runs has a value (runs that
            stop early drop out); the cut is marked (see :func:`_line_band`). None: draw every ``x``.
        names: legend text per hue level (levels not named keep their own text).

    Returns:
        The ``seaborn.FacetGrid``.
    """
    _require(data, [x, y, hue, col, row], "band_lines")
    keys = [c for c in (row, col, hue) if c]
    summary = stats.summarize(data, keys + [x], metric=y, n_boot=n_boot)
    summary = summary[summary["n"] > 0]
    if min_share is not None:
        summary = _while_seeds_train(summary, x, keys, min_share)
    summary = _clip(summary, bounds if bounds is not None else value_range(ylabel or y))
    g = _grid(summary, hue=hue, col=col, row=row, orders=orders, sharey=sharey)
    g.map_dataframe(_line_band, x=x)
    if not logx and pd.api.types.is_integer_dtype(summary[x]):
        for ax in g.axes.flat:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _finish(g, hue=hue, xlabel=xlabel or x, ylabel=ylabel or y, logx=logx, logy=logy, names=names)


def learning_curves(data: pd.DataFrame, *, x: str = "epoch", y: str = "value", hue: str | None = None,
                    col: str | None = "split", row: str | None = None, ylabel: str = "error",
                    orders: dict[str, Sequence[Any]] | None = None, n_boot: int = stats.N_BOOT,
                    names: Mapping[str, str] | None = None) -> sns.FacetGrid:
    """Learning curves (rows of ``records.curves`` for one metric): mean over seeds with a CI band clipped
    to the metric's range, each drawn only while at least half of its seeds still train
    (:data:`MIN_SEED_SHARE`): an early-stopped tail is not averaged into a spike but marked."""
    return band_lines(data, x=x, y=y, hue=hue, col=col, row=row, orders=orders, ylabel=ylabel, n_boot=n_boot,
                      min_share=MIN_SEED_SHARE, names=names)


def final_metric(summary: pd.DataFrame, *, x: str, hue: str | None = None, col: str | None = None,
                 row: str | None = None, orders: dict[str, Sequence[Any]] | None = None, ylabel: str = "test error",
                 logx: bool | None = None, names: Mapping[str, str] | None = None) -> sns.FacetGrid:
    """Final metric per grid point with 95% CI error bars (a :func:`stats.summarize` table).

    A numeric ``x`` (e.g. ``train_size``) is drawn on a continuous axis, logarithmic by default
    when it spans a factor of 10 or more (Srivastava et al. 2014, Fig. 10); any other ``x`` goes
    at evenly spaced positions in ``orders[x]`` order. With two or more axes this is the
    interaction plot: non-parallel lines mean the effect of one axis depends on the other.
    """
    _require(summary, [x, "mean", "ci_lo", "ci_hi", hue, col, row], "final_metric")
    summary = _clip(summary, value_range(ylabel))
    numeric = _numeric(summary[x])
    data = summary.assign(**{x: numeric}) if numeric is not None else summary
    order = None if numeric is not None else _order(summary, x, orders or {})
    if logx is None:
        logx = numeric is not None and numeric.min() > 0 and numeric.max() / numeric.min() >= 10
    g = _grid(data, hue=hue, col=col, row=row, orders=orders)
    g.map_dataframe(_points_errorbars, x=x, order=order)
    if order is not None:
        g.set(xticks=range(len(order)), xlim=(-0.5, len(order) - 0.5))
        g.set_xticklabels([str(v) for v in order], rotation=30 if len(order) > 4 else 0)
    return _finish(g, hue=hue, xlabel=x, ylabel=ylabel, logx=bool(logx), names=names)


def _numeric(column: pd.Series) -> pd.Series | None:
    """The column as floats when every entry is a number (not a bool), else None."""
    if any(isinstance(v, (bool, np.bool_)) for v in column):
        return None
    values = pd.to_numeric(column, errors="coerce")
    return values.astype(float) if values.notna().all() else None


def gradient_norms(data: pd.DataFrame, *, hue: str | None = None, col: str | None = "when",
                   orders: dict[str, Sequence[Any]] | None = None, n_boot: int = stats.N_BOOT,
                   names: Mapping[str, str] | None = None) -> sns.FacetGrid:
    """Per-layer gradient norm vs layer depth on a log scale (rows of the ``gradients`` probe)."""
    return band_lines(data, x="depth", hue=hue, col=col, orders=orders, ylabel="gradient norm", logy=True,
                      n_boot=n_boot, names=names)


def unit_fractions(data: pd.DataFrame, *, hue: str | None = None, col: str | None = "stat",
                   orders: dict[str, Sequence[Any]] | None = None, n_boot: int = stats.N_BOOT,
                   names: Mapping[str, str] | None = None) -> sns.FacetGrid:
    """Fractions of zero / dead / saturated units over training (rows of the ``activations`` probe)."""
    return band_lines(data, x="epoch", hue=hue, col=col, orders=orders, ylabel="fraction", n_boot=n_boot,
                      names=names)


def percentile_traces(data: pd.DataFrame, *, x: str = "step", y: str = "value", hue: str = "stat",
                      col: str | None = None, row: str | None = None,
                      orders: dict[str, Sequence[Any]] | None = None) -> sns.FacetGrid:
    """15th / 50th / 85th percentile traces of one unit's input over training, one run per facet.

    Plain lines, nothing averaged (Ioffe & Szegedy 2015, Fig. 1(b, c)). Facets by ``col`` (wrapped
    three to a row when there is no ``row``) and ``row``; row titles stand at the right margin.
    """
    _require(data, [x, y, hue, col, row], "percentile_traces")
    g = _grid(data, hue=hue, col=col, row=row, orders=orders, col_wrap=3)
    g.map_dataframe(lambda data, color=None, label=None, **_: plt.gca().plot(
        data.sort_values(x)[x], data.sort_values(x)[y], color=color, label=label))
    if row is not None:
        g.set_titles(col_template="{col_var} = {col_name}", row_template="{row_name}")
    return _finish(g, hue=hue, xlabel=x, ylabel="pre-activation")


def weight_quantiles(data: pd.DataFrame, *, x: str = "quantile", hue: str | None = None,
                     orders: dict[str, Sequence[Any]] | None = None, n_boot: int = stats.N_BOOT,
                     names: Mapping[str, str] | None = None) -> sns.FacetGrid:
    """Quantiles of |w| of the first layer (log y): the weight histogram as a curve."""
    return band_lines(data, x=x, hue=hue, orders=orders, xlabel="quantile of |w| (%)", ylabel="|w|",
                      logy=True, n_boot=n_boot, names=names)


def horizontal_errorbars(summary: pd.DataFrame, *, y: str = "point", xlabel: str = "seconds per epoch",
                         order: Sequence[Any] | None = None) -> plt.Axes:
    """One mean with its 95% CI per ``y`` level, as horizontal error bars (e.g. time per epoch)."""
    _require(summary, [y, "mean", "ci_lo", "ci_hi"], "horizontal_errorbars")
    order = _order(summary, y, {y: order or []})
    data = summary.set_index(y).loc[order].reset_index()
    fig, ax = plt.subplots(figsize=(6.5, 0.8 + 0.35 * len(order)))
    lo = (data["mean"] - data["ci_lo"]).clip(lower=0).fillna(0)
    hi = (data["ci_hi"] - data["mean"]).clip(lower=0).fillna(0)
    ax.errorbar(data["mean"], range(len(order)), xerr=[lo, hi], fmt="o", color=hue_styles(1)[0][0], capsize=0)
    ax.set_yticks(range(len(order)), [str(v) for v in order])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_xlim(left=0)
    sns.despine(ax=ax)
    return ax


def mc_dropout(data: pd.DataFrame, *, reference: pd.DataFrame | None = None, x: str = "k", y: str = "value",
               hue: str | None = None, orders: dict[str, Sequence[Any]] | None = None,
               n_boot: int = stats.N_BOOT, names: Mapping[str, str] | None = None) -> sns.FacetGrid:
    """Test error vs the number k of Monte-Carlo dropout passes (log x), with the weight-scaling line.

    ``reference`` is a :func:`stats.summarize` table of the weight-scaled net's error (per ``hue``
    level when ``hue`` is given): drawn as a dashed horizontal line with its CI (Srivastava et al.
    2014, Fig. 11).
    """
    g = band_lines(data, x=x, y=y, hue=hue, orders=orders, xlabel="k (Monte-Carlo passes)", ylabel="test error",
                   logx=True, n_boot=n_boot, names=names)
    if reference is not None and len(reference):
        palette = dict(zip(g.hue_names or [None], hue_styles(max(1, len(g.hue_names or [0])))[0]))
        for _, ref in reference.iterrows():
            color = palette.get(ref[hue] if hue else None, "black")
            lo, hi = value_range("test error")
            for ax in g.axes.flat:
                ax.axhline(ref["mean"], color=color, linestyle="--", linewidth=1)
                if np.isfinite(ref["ci_lo"]):
                    ax.axhspan(max(ref["ci_lo"], lo), min(ref["ci_hi"], hi), color=color, alpha=0.08, linewidth=0)
    return g


# --------------------------------------------------------------------------- output

def to_data_uri(obj: Any, dpi: int = 96) -> str:
    """Render a FacetGrid / Axes / Figure to a ``data:image/png;base64,...`` URI and close it."""
    fig = obj.figure if hasattr(obj, "figure") else obj
    if isinstance(fig, plt.Axes):
        fig = fig.figure
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- which figures a run gets
