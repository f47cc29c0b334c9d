"""Which figures a run can show, with their titles and captions (:func:`plan`).

:func:`plan` looks at what a run recorded and returns only the figures it can fill, each with a
title, a caption saying what to look for (and the paper figures the study's claims cite), and a
``draw`` function; the drawing itself is :mod:`ablation.report.draw` (seaborn), whose functions are
also importable from here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ablation import spec as spec_module
from ablation import stats
from ablation.stats.records import level_orders
from ablation.report.draw import (PALETTE, _numeric, band_lines, final_metric, gradient_norms,  # noqa: F401
                                  horizontal_errorbars, hue_styles, learning_curves, mc_dropout, percentile_traces,
                                  to_data_uri, unit_fractions, value_range, weight_quantiles)
from ablation.spec import scale

__all__ = ["CAPTIONS", "Figure", "PALETTE", "band_lines", "final_metric", "gradient_norms", "horizontal_errorbars",
           "hue_styles", "learning_curves", "legend_names", "mc_dropout", "paper_figures", "percentile_traces",
           "plan", "to_data_uri", "unit_fractions", "value_range", "weight_quantiles"]


@dataclass(frozen=True)
class Figure:
    """One figure of a report: ``draw()`` builds it (only when the report is rendered)."""

    key: str                       # stable name, e.g. "learning_curves"
    title: str
    caption: str                   # what the figure shows and what to look for
    section: str                   # "effects" (the interaction plot) or "figures"
    draw: Callable[[], Any]        # returns a FacetGrid / Axes


CAPTIONS = {
    "learning_curves": "{metric} per epoch on each split: mean over seeds (line) and 95% CI (band, kept inside "
                       "the metric's range), completed trials only. A line stops at the last epoch at which at "
                       "least half of its seeds still train; where more stopped early, a triangle marks the cut "
                       "with how many seeds went on, and to which epoch. Look for {gap}which configuration gets "
                       "lowest, and how fast.",
    "interaction": "Test error per grid point: mean over seeds with 95% CI. Lines that are not "
                   "parallel mean the effect of {hue} depends on {x} (an interaction).",
    "metric_vs_axis": "Test error per level of {x}: mean over seeds with 95% CI.",
    "gradient_norms": "L2 norm of the loss gradient with respect to each layer's kernel on the probe batch, "
                      "by layer depth (1 = next to the input; log scale), at initialization and after the last "
                      "epoch: mean over seeds with 95% CI. Vanishing gradients show as norms falling towards "
                      "depth 1 (Glorot & Bengio 2010).",
    "unit_fractions": "Hidden units over training (epoch 0 = initialization), averaged over the hidden layers, "
                      "mean over seeds with 95% CI: sparsity = fraction of exact-zero outputs on the probe batch "
                      "(about 0.5 for ReLU at init, Glorot et al. 2011), dead = units zero on every probe "
                      "example, saturation = sigmoid outputs < 0.01 or > 0.99 (tanh |output| > 0.99).",
    "layer_saturation": "Saturated units per hidden layer over training (epoch 0 = initialization): sigmoid outputs "
                        "< 0.01 or > 0.99, tanh |output| > 0.99, on the probe batch, one line per layer depth (1 = "
                        "next to the input), mean over seeds with 95% CI, one panel per configuration with saturating "
                        "units. Glorot & Bengio 2010 (Fig. 2): with the standard initialization the top hidden "
                        "layer of a deep sigmoid net is driven into saturation (towards 0) in the first epochs and "
                        "leaves it slowly.",
    "covariate_shift": "15th, 50th and 85th percentiles over the probe batch of one last-hidden-layer unit's "
                       "input ({layer}, seed {seed}) over training steps, one panel per configuration (Ioffe & "
                       "Szegedy 2015, Fig. 1b,c). Without batch norm the distribution drifts in mean and spread; "
                       "with it, it should stay put.",
    "weight_quantiles": "Quantiles of |w| of the first layer's weights after training (log scale): mean over "
                        "seeds with 95% CI. L1 pushes most weights to ~0 (low quantiles collapse) while L2 "
                        "shrinks all of them evenly.",
    "epoch_time": "Training time per epoch ({source}), mean over seeds with 95% CI, per grid point. "
                  "Timings depend on the machine (see the header) and on what else ran on it.",
    "speed": "Training error on the probe batch over optimizer steps: mean over seeds with 95% CI. "
             "Compare how many steps each configuration needs to reach a given error (Krizhevsky et al. 2012, "
             "Fig. 1).",
    "mc_dropout": "Test error of Monte-Carlo dropout (average of k stochastic passes) against k, mean over seeds "
                  "with 95% CI; the dashed line is the weight-scaled network. Srivastava et al. 2014 (Fig. 11): "
                  "MC matches weight scaling at about k = 50.",
}
_STAT_ORDER = ["sparsity", "dead_fraction", "inactive_fraction", "saturation", "p85", "p50", "p15"]
_FRACTIONS = ("sparsity", "dead_fraction", "saturation")
_MC_MODE, _REFERENCE_MODES = "mc_dropout", ("weight_scaling", "scaling")


def plan(records: Any, *, metric: str = "test_error", n_boot: int = stats.N_BOOT) -> list[Figure]:
    """The figures a run can show, in report order; a figure whose data was not recorded is left out.

    Args:
        records: a ``records.Records`` (or any object with ``trials``, ``curves``, ``probes``,
            ``evaluations``, ``axes`` and optionally ``spec``).
        metric: the trials metric of the interaction / per-axis figure.
        n_boot: bootstrap resamples of bands over 30+ seeds.

    Returns:
        A list of :class:`Figure`.
    """
    ctx = _Context(records, n_boot)
    figures = [_learning_curves(ctx), _final_metric(ctx, metric)]
    figures += [build(ctx) for build in (_gradient_norms, _unit_fractions, _layer_saturation, _covariate_shift, _weight_quantiles,
                                         _epoch_time, _speed, _mc_dropout)]
    cited = paper_figures(getattr(records, "spec", None))
    if cited:  # the study's main figures are what its claims' paper figures show
        note = f" Compare with the paper figure{'s' if len(cited) > 1 else ''} this study's claims cite: " \
               f"{'; '.join(cited)}."
        figures = [dataclasses.replace(f, caption=f.caption + note)
                   if f is not None and f.key in ("learning_curves", "metric_vs_axis", "interaction") else f
                   for f in figures]
    return [f for f in figures if f is not None]


def paper_figures(spec: Any) -> list[str]:
    """The paper figures the study's claims cite in their ``source`` ("Srivastava et al. 2014, Fig. 9"),
    in claim order, each once."""
    found: list[str] = []
    for claim in getattr(spec, "claims", None) or ():
        source = str(getattr(claim, "source", "") or "")
        if re.search(r"\bFigs?\.", source) and source not in found:
            found.append(source)
    return found


class _Context:
    """What the figure planners need: frames, varying axes, level orders, the hue column."""

    def __init__(self, records: Any, n_boot: int):
        self.trials = records.trials
        self.frames = {name: _frame(getattr(records, name, None), name) for name in _SCHEMA}
        self.n_boot = n_boot
        self.axes = [a for a in getattr(records, "axes", ()) if a in self.trials.columns]
        self.vary = [a for a in self.axes if self.trials[a].map(str).nunique() > 1]
        self.orders = level_orders(records.trials, getattr(records, "spec", None), self.axes)
        self.orders["stat"] = _STAT_ORDER
        self.orders["when"] = ["at init", "after training"]
        self.hue = None if not self.vary else self.vary[0] if len(self.vary) == 1 else "point"
        self.names = legend_names(records, self.hue, self.vary)

    def probe(self, probe: str, stats_: Sequence[str] | None = None) -> pd.DataFrame:
        p = self.frames["probes"]
        rows = p[(p["probe"] == probe) & pd.to_numeric(p["value"], errors="coerce").notna()]
        return rows[rows["stat"].isin(stats_)] if stats_ is not None else rows

    def with_trial_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the trial key and axis columns it lacks, joined on ``trial_id``."""
        if frame.empty:
            return frame
        keep = [c for c in ("status", "seed", "point", *self.axes) if c in self.trials.columns
                and c not in frame.columns]
        return frame.merge(self.trials[["trial_id", *keep]], on="trial_id", how="inner") if keep else frame


def legend_names(records: Any, hue: str | None, vary: Sequence[str]) -> dict[str, str]:
    """Legend text for the levels of ``hue`` whose widths at the run's profile differ from the same
    recipe's at paper scale (the ``full`` profile): ``"dropout_relu_3x1024 (3 x 128 at cpu)"``, so a
    legend never names a width that was not run. Levels run at the paper's widths keep their label."""
    spec, trials = getattr(records, "spec", None), records.trials
    if spec is None or hue is None or hue not in trials.columns or not getattr(spec, "profile", None):
        return {}
    paper = scale.paper_spec(spec)
    if paper is None:
        return {}
    axes = [a for a in vary if a in trials.columns] if hue == "point" else [hue]
    names = {}
    for level in pd.unique(trials[hue]):
        row = trials[trials[hue] == level].iloc[0]
        selection = {a: spec_module.label(row[a].item() if hasattr(row[a], "item") else row[a]) for a in axes}
        mine, theirs = scale.representative(spec, selection), scale.representative(paper, selection)
        if mine is None or theirs is None or scale.widths(mine) == scale.widths(theirs):
            continue
        names[str(level)] = f"{level} ({scale._widths_text(scale.widths(mine))} at {spec.profile})"
    return names


_SCHEMA = {"curves": ("epoch", "step", "split", "metric", "value"),
           "probes": ("probe", "layer", "depth", "step", "epoch", "stat", "value"),
           "evaluations": ("mode", "k", "metric", "value")}


def _frame(frame: Any, name: str) -> pd.DataFrame:
    """A records frame with at least its documented columns (an absent or empty frame has no rows)."""
    frame = frame if isinstance(frame, pd.DataFrame) else pd.DataFrame()
    missing = [c for c in ("trial_id", "status", "seed", "point", *_SCHEMA[name]) if c not in frame.columns]
    return frame.assign(**{c: pd.Series(dtype=object) for c in missing}) if missing else frame


def _completed(frame: pd.DataFrame, column: str = "value") -> pd.DataFrame:
    ok = pd.to_numeric(frame[column], errors="coerce").notna()
    if "status" in frame.columns:
        ok &= frame["status"] == "completed"
    return frame[ok]


def _learning_curves(ctx: _Context) -> Figure | None:
    curves = ctx.frames["curves"]
    metric = next((m for m in ("error", "rmse", "loss") if (curves["metric"] == m).any()), None)
    data = _completed(curves[curves["metric"] == metric]) if metric else curves.iloc[0:0]
    if data.empty:
        return None
    hue, row = (ctx.vary[0] if ctx.vary else None), (ctx.vary[1] if len(ctx.vary) == 2 else None)
    if len(ctx.vary) > 2:
        hue = "point"
    gap = "the gap between training and validation curves (overfitting) and for " \
        if set(data["split"]) >= {"train", "val"} else ""
    return Figure("learning_curves", f"Learning curves ({metric})", CAPTIONS["learning_curves"].format(
        metric=metric.capitalize(), gap=gap), "figures", lambda: learning_curves(
        data, hue=hue, row=row, ylabel=metric, orders=ctx.orders, n_boot=ctx.n_boot,
        names=ctx.names if hue == ctx.hue else None))


def _final_metric(ctx: _Context, metric: str) -> Figure | None:
    if metric not in ctx.trials.columns or not 1 <= len(ctx.vary) <= 4 or _completed(ctx.trials, metric).empty:
        return None
    summary = lambda: stats.summarize(ctx.trials, ctx.vary, metric, n_boot=ctx.n_boot)  # noqa: E731
    numeric = [a for a in ctx.vary if a != "config" and _numeric(ctx.trials[a]) is not None
               and ctx.trials[a].nunique() >= 3]
    x = max(numeric, key=lambda a: ctx.trials[a].nunique()) if numeric else ctx.vary[0]
    rest = [a for a in ctx.vary if a != x] + [None, None, None]
    hue, col, row = rest[:3]
    ylabel = metric.replace("_", " ")
    draw = lambda: final_metric(summary(), x=x, hue=hue, col=col, row=row, orders=ctx.orders,  # noqa: E731
                                ylabel=ylabel, names=ctx.names if hue == ctx.hue else None)
    if len(ctx.vary) == 1:
        return Figure("metric_vs_axis", f"{ylabel} vs {x}", CAPTIONS["metric_vs_axis"].format(x=x), "figures", draw)
    return Figure("interaction", f"Interaction: {ylabel} by {x} and {hue}",
                  CAPTIONS["interaction"].format(x=x, hue=hue), "effects", draw)


def _gradient_norms(ctx: _Context) -> Figure | None:
    rows = ctx.probe("gradients", ["kernel_grad_norm"])
    if rows.empty:
        return None
    last = rows["epoch"] == rows.groupby("trial_id")["epoch"].transform("max")
    when = np.where(rows["epoch"] == 0, "at init", np.where(last, "after training", ""))
    data = _completed(ctx.with_trial_columns(rows.assign(when=when)[when != ""]))
    if data.empty:
        return None
    return Figure("gradient_norms", "Gradient norm by layer depth", CAPTIONS["gradient_norms"], "figures",
                  lambda: gradient_norms(data, hue=ctx.hue, orders=ctx.orders, n_boot=ctx.n_boot,
                                         names=ctx.names))


def _unit_fractions(ctx: _Context) -> Figure | None:
    rows = ctx.probe("activations", _FRACTIONS)
    if rows.empty:
        return None
    pooled = rows.groupby(["trial_id", "epoch", "stat"], as_index=False)["value"].mean()
    data = _completed(ctx.with_trial_columns(pooled))
    if data.empty:
        return None
    return Figure("unit_fractions", "Sparse, dead and saturated units", CAPTIONS["unit_fractions"], "figures",
                  lambda: unit_fractions(data, hue=ctx.hue, orders=ctx.orders, n_boot=ctx.n_boot,
                                         names=ctx.names))


def _layer_saturation(ctx: _Context) -> Figure | None:
    """Per-layer saturation over epochs (Glorot & Bengio 2010, Fig. 2), for the arms whose units saturate."""
    rows = ctx.probe("activations", ["saturation"])
    if rows.empty or pd.to_numeric(rows["depth"], errors="coerce").nunique() < 2:
        return None
    data = _completed(ctx.with_trial_columns(rows.assign(depth=pd.to_numeric(rows["depth"]).astype(int))))
    if data.empty:
        return None
    col = ctx.hue if ctx.hue in data.columns else None
    return Figure("layer_saturation", "Saturation per layer over training", CAPTIONS["layer_saturation"], "figures",
                  lambda: band_lines(data, x="epoch", hue="depth", col=col, orders=ctx.orders,
                                     ylabel="saturated fraction", n_boot=ctx.n_boot))


def _covariate_shift(ctx: _Context) -> Figure | None:
    rows = _completed(ctx.with_trial_columns(ctx.probe("covariate_shift", ["p15", "p50", "p85"])))
    if rows.empty:
        return None
    layer, seed = sorted(rows["layer"].unique())[0], sorted(rows["seed"].unique())[0]
    data = rows[(rows["layer"] == layer) & (rows["seed"] == seed)]
    col, row, orders = _facets(data, ctx.vary, ctx.orders)
    caption = CAPTIONS["covariate_shift"].format(layer=layer, seed=seed)
    return Figure("covariate_shift", "Internal covariate shift: input percentiles of one unit", caption,
                  "figures", lambda: percentile_traces(data.assign(**{OTHER_AXES: _other_axes(data, ctx.vary)})
                                                       if row == OTHER_AXES else data,
                                                       col=col, row=row, orders=orders))


OTHER_AXES = "other axes"


def _other_axes(data: pd.DataFrame, vary: Sequence[str]) -> pd.Series:
    """One label per row naming the levels of every varying axis but the first, one axis per line."""
    rest = list(vary[1:])
    return data[rest].apply(lambda r: "\n".join(f"{a}={stats.axis_label(r[a])}" for a in rest), axis=1) \
        if rest else pd.Series("", index=data.index)


def _facets(data: pd.DataFrame, vary: Sequence[str],
            orders: dict[str, Sequence[Any]]) -> tuple[str | None, str | None, dict[str, Sequence[Any]]]:
    """Columns by the first varying axis, rows by the second (or by all the others together, one short
    line per axis), so that no facet title carries a whole grid point."""
    if len(vary) <= 1:
        return (vary[0] if vary else None), None, orders
    if len(vary) == 2:
        return vary[0], vary[1], orders
    rest = list(vary[1:])
    keys = data[rest].drop_duplicates()
    rank = lambda r: tuple(list(map(str, orders.get(a, ()))).index(str(r[a]))  # noqa: E731
                           if str(r[a]) in map(str, orders.get(a, ())) else len(orders.get(a, ())) for a in rest)
    keys = keys.assign(_rank=keys.apply(rank, axis=1)).sort_values("_rank")
    labels = list(pd.unique(_other_axes(keys, vary)))
    return vary[0], OTHER_AXES, {**orders, OTHER_AXES: labels}


def _weight_quantiles(ctx: _Context) -> Figure | None:
    rows = ctx.probe("weights")
    rows = rows[(rows["layer"] == "dense_1") & rows["stat"].astype(str).str.fullmatch(r"abs_q\d+")]
    if rows.empty:
        return None
    rows = rows[rows["epoch"] == rows.groupby("trial_id")["epoch"].transform("max")]
    data = _completed(ctx.with_trial_columns(rows.assign(quantile=rows["stat"].str[5:].astype(int))))
    if data.empty:
        return None
    return Figure("weight_quantiles", "First-layer weight magnitudes", CAPTIONS["weight_quantiles"], "figures",
                  lambda: weight_quantiles(data, hue=ctx.hue, orders=ctx.orders, n_boot=ctx.n_boot,
                                           names=ctx.names))


def _epoch_time(ctx: _Context) -> Figure | None:
    sources = {"epoch_time_s": "timing probe: median over epochs after the first, validation and probes excluded",
               "time_per_epoch_s": "median wall time of the epochs after the first, validation included"}
    metric = next((m for m in sources if m in ctx.trials.columns and not _completed(ctx.trials, m).empty), None)
    if metric is None or "point" not in ctx.trials.columns:
        return None
    return Figure("epoch_time", "Time per epoch", CAPTIONS["epoch_time"].format(source=sources[metric]), "figures",
                  lambda: horizontal_errorbars(stats.summarize(ctx.trials, ["point"], metric, n_boot=ctx.n_boot),
                                               order=ctx.orders.get("point")))


def _speed(ctx: _Context) -> Figure | None:
    data = _completed(ctx.with_trial_columns(ctx.probe("speed", ["train_error"])))
    if data.empty:
        return None
    return Figure("speed", "Training error vs steps", CAPTIONS["speed"], "figures", lambda: band_lines(
        data, x="step", hue=ctx.hue, orders=ctx.orders, ylabel="training error (probe batch)", n_boot=ctx.n_boot,
        names=ctx.names))


def _mc_dropout(ctx: _Context) -> Figure | None:
    ev = ctx.frames["evaluations"]
    ev = _completed(ev[ev["metric"] == "test_error"])
    mc = ev[(ev["mode"] == _MC_MODE) & (pd.to_numeric(ev["k"], errors="coerce") > 0)]
    if mc.empty:
        return None
    mc = ctx.with_trial_columns(mc.assign(k=pd.to_numeric(mc["k"]).astype(float)))
    ref = ev[ev["mode"].isin(_REFERENCE_MODES)]
    ref, ref_metric = (ref, "value") if len(ref) else (
        ctx.trials[ctx.trials["trial_id"].isin(mc["trial_id"])], "test_error")
    hue = ctx.hue
    reference = lambda: (stats.summarize(ref, [hue] if hue else [], ref_metric, n_boot=ctx.n_boot)  # noqa: E731
                         if ref_metric in ref.columns and len(ref) else None)
    return Figure("mc_dropout", "Monte-Carlo dropout vs weight scaling", CAPTIONS["mc_dropout"], "figures",
                  lambda: mc_dropout(mc, reference=reference(), hue=hue, orders=ctx.orders, n_boot=ctx.n_boot,
                                     names=ctx.names))
