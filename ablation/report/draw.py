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
from collections.abc import Sequence
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


# --------------------------------------------------------------------------- drawing helpers

def _line_band(data: pd.DataFrame, x: str, color: Any = None, label: Any = None, **_: Any) -> None:
    """Mean line with its CI band (columns mean, ci_lo, ci_hi) on the current axes."""
    data = data.sort_values(x)
    ax = plt.gca()
    ax.plot(data[x], data["mean"], color=color, label=label, marker="o" if len(data) <= 12 else None, ms=3)
    ax.fill_between(data[x], data["ci_lo"], data["ci_hi"], color=color, alpha=_BAND_ALPHA, linewidth=0)


def _points_errorbars(data: pd.DataFrame, x: str, order: Sequence[Any] | None = None, color: Any = None,
                      label: Any = None, **_: Any) -> None:
    """Means with CI error bars joined by a line; categorical ``x`` goes at positions of ``order``."""
    if order is not None:
        data = data.assign(_pos=data[x].map({v: i for i, v in enumerate(order)})).sort_values("_pos")
        xs = data["_pos"]
    else:
        data = data.sort_values(x)
        xs = data[x]
    lo = (data["mean"] - data["ci_lo"]).clip(lower=0).fillna(0)
    hi = (data["ci_hi"] - data["mean"]).clip(lower=0).fillna(0)
    plt.gca().errorbar(xs, data["mean"], yerr=[lo, hi], color=color, label=label, marker="o", ms=4, capsize=0)


def _grid(data: pd.DataFrame, *, hue: str | None, col: str | None, row: str | None,
          orders: dict[str, Sequence[Any]] | None, sharey: bool = True, col_wrap: int | None = None) -> sns.FacetGrid:
    orders = orders or {}
    return sns.FacetGrid(data, hue=hue, col=col, row=row, hue_order=_order(data, hue, orders),
                         col_order=_order(data, col, orders), row_order=_order(data, row, orders),
                         height=_HEIGHT, aspect=_ASPECT, sharey=sharey, margin_titles=row is not None,
                         col_wrap=col_wrap if row is None else None, despine=True)


def _order(data: pd.DataFrame, column: str | None, orders: dict[str, Sequence[Any]]) -> list | None:
    if column is None:
        return None
    present = list(pd.unique(data[column]))
    wanted = [v for v in orders.get(column, ()) if v in present]
    return wanted + [v for v in present if v not in wanted]


def _finish(g: sns.FacetGrid, *, hue: str | None, xlabel: str, ylabel: str, logx: bool = False,
            logy: bool = False) -> sns.FacetGrid:
    g.set_axis_labels(xlabel, ylabel)
    if logx:
        g.set(xscale="log")
    if logy:
        g.set(yscale="log")
    if hue is not None:
        g.add_legend(title=hue)
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
               n_boot: int = stats.N_BOOT) -> sns.FacetGrid:
    """Mean of ``y`` over the runs (seeds) at each ``x``, with its 95% CI (t interval over seeds) as a band.

    One line per ``hue`` level in each ``col`` x ``row`` facet. The base of every curve figure.

    Args:
        data: long form, one row per run and ``x`` (rows of other statuses than completed are ignored).
        x, y: the time (or depth) and value columns.
        hue, col, row: optional grouping columns; ``orders`` gives their level order.
        xlabel, ylabel, logx, logy, sharey: axes settings.
        n_boot: bootstrap resamples for bands over 30+ seeds.

    Returns:
        The ``seaborn.FacetGrid``.
    """
    _require(data, [x, y, hue, col, row], "band_lines")
    summary = stats.summarize(data, [c for c in (row, col, hue) if c] + [x], metric=y, n_boot=n_boot)
    summary = summary[summary["n"] > 0]
    g = _grid(summary, hue=hue, col=col, row=row, orders=orders, sharey=sharey)
    g.map_dataframe(_line_band, x=x)
    if not logx and pd.api.types.is_integer_dtype(summary[x]):
        for ax in g.axes.flat:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _finish(g, hue=hue, xlabel=xlabel or x, ylabel=ylabel or y, logx=logx, logy=logy)


def learning_curves(data: pd.DataFrame, *, x: str = "epoch", y: str = "value", hue: str | None = None,
                    col: str | None = "split", row: str | None = None, ylabel: str = "error",
                    orders: dict[str, Sequence[Any]] | None = None, n_boot: int = stats.N_BOOT) -> sns.FacetGrid:
    """Learning curves (rows of ``records.curves`` for one metric): mean over seeds with a CI band."""
    return band_lines(data, x=x, y=y, hue=hue, col=col, row=row, orders=orders, ylabel=ylabel, n_boot=n_boot)


def final_metric(summary: pd.DataFrame, *, x: str, hue: str | None = None, col: str | None = None,
                 row: str | None = None, orders: dict[str, Sequence[Any]] | None = None, ylabel: str = "test error",
                 logx: bool | None = None) -> sns.FacetGrid:
    """Final metric per grid point with 95% CI error bars (a :func:`stats.summarize` table).

    A numeric ``x`` (e.g. ``train_size``) is drawn on a continuous axis, logarithmic by default
    when it spans a factor of 10 or more (Srivastava et al. 2014, Fig. 10); any other ``x`` goes
    at evenly spaced positions in ``orders[x]`` order. With two or more axes this is the
    interaction plot: non-parallel lines mean the effect of one axis depends on the other.
    """
    _require(summary, [x, "mean", "ci_lo", "ci_hi", hue, col, row], "final_metric")
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
    return _finish(g, hue=hue, xlabel=x, ylabel=ylabel, logx=bool(logx))


def _numeric(column: pd.Series) -> pd.Series | None:
    """The column as floats when every entry is a number (not a bool), else None."""
    if any(isinstance(v, (bool, np.bool_)) for v in column):
        return None
    values = pd.to_numeric(column, errors="coerce")
    return values.astype(float) if values.notna().all() else None


def gradient_norms(data: pd.DataFrame, *, hue: str | None = None, col: str | None = "when",
                   orders: dict[str, Sequence[Any]] | None = None, n_boot: int = stats.N_BOOT) -> sns.FacetGrid:
    """Per-layer gradient norm vs layer depth on a log scale (rows of the ``gradients`` probe)."""
    return band_lines(data, x="depth", hue=hue, col=col, orders=orders, ylabel="gradient norm", logy=True,
                      n_boot=n_boot)


def unit_fractions(data: pd.DataFrame, *, hue: str | None = None, col: str | None = "stat",
                   orders: dict[str, Sequence[Any]] | None = None, n_boot: int = stats.N_BOOT) -> sns.FacetGrid:
    """Fractions of zero / dead / saturated units over training (rows of the ``activations`` probe)."""
    return band_lines(data, x="epoch", hue=hue, col=col, orders=orders, ylabel="fraction", n_boot=n_boot)


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
                     orders: dict[str, Sequence[Any]] | None = None, n_boot: int = stats.N_BOOT) -> sns.FacetGrid:
    """Quantiles of |w| of the first layer (log y): the weight histogram as a curve."""
    return band_lines(data, x=x, hue=hue, orders=orders, xlabel="quantile of |w| (%)", ylabel="|w|",
                      logy=True, n_boot=n_boot)


def horizontal_errorbars(summary: pd.DataFrame, *, y: str = "point", xlabel: str = "seconds per epoch",
                         order: Sequence[Any] | None = None) -> plt.Axes:
    """One mean with its 95% CI per ``y`` level, as horizontal error bars (e.g. time per epoch)."""
    _require(summary, [y, "mean", "ci_lo", "ci_hi"], "horizontal_errorbars")
    order = _order(summary, y, {y: order or []})
    data = summary.set_index(y).loc[order].reset_index()
    fig, ax = plt.subplots(figsize=(6.5, 0.8 + 0.35 * len(order)))
    lo = (data["mean"] - data["ci_lo"]).clip(lower=0).fillna(0)
    hi = (data["ci_hi"] - data["mean"]).clip(lower=0).fillna(0)
    ax.errorbar(data["mean"], range(len(order)), xerr=[lo, hi], fmt="o", color=sns.color_palette()[0], capsize=0)
    ax.set_yticks(range(len(order)), [str(v) for v in order])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_xlim(left=0)
    sns.despine(ax=ax)
    return ax


def mc_dropout(data: pd.DataFrame, *, reference: pd.DataFrame | None = None, x: str = "k", y: str = "value",
               hue: str | None = None, orders: dict[str, Sequence[Any]] | None = None,
               n_boot: int = stats.N_BOOT) -> sns.FacetGrid:
    """Test error vs the number k of Monte-Carlo dropout passes (log x), with the weight-scaling line.

    ``reference`` is a :func:`stats.summarize` table of the weight-scaled net's error (per ``hue``
    level when ``hue`` is given): drawn as a dashed horizontal line with its CI (Srivastava et al.
    2014, Fig. 11).
    """
    g = band_lines(data, x=x, y=y, hue=hue, orders=orders, xlabel="k (Monte-Carlo passes)", ylabel="test error",
                   logx=True, n_boot=n_boot)
    if reference is not None and len(reference):
        palette = dict(zip(g.hue_names or [None], sns.color_palette(n_colors=max(1, len(g.hue_names or [0])))))
        for _, ref in reference.iterrows():
            color = palette.get(ref[hue] if hue else None, "black")
            for ax in g.axes.flat:
                ax.axhline(ref["mean"], color=color, linestyle="--", linewidth=1)
                if np.isfinite(ref["ci_lo"]):
                    ax.axhspan(ref["ci_lo"], ref["ci_hi"], color=color, alpha=0.08, linewidth=0)
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
