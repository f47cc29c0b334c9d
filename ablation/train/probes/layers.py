"""Probes of a zoo MLP's layers: gradient norms (A1), activations (A2, A4, A6), covariate shift (D2), weights (B2, B3).

Stats per probe (rows of the ``probes`` frame; ``layer`` is a layer name, ``act_3/unit_7`` for one
unit; ``depth`` is i for ``dense_i``/``act_i`` and L + 1 for ``logits``):

- gradients: ``kernel_grad_norm`` (dense_i, logits) and ``input_grad_norm`` (dense_i, act_i,
  logits): L2 norms of the gradient of the data loss (regularization penalties excluded) with
  respect to the kernel and to the layer's input, over the probe batch (Glorot & Bengio 2010).
- activations (per act_i): ``sparsity`` (fraction of exact zeros; Glorot, Bordes & Bengio 2011),
  ``dead_fraction`` (units zero on every probe example), ``inactive_fraction`` (units whose
  pre-activation is <= 0 on every example: the leaky-ReLU analogue of dead), ``saturation``
  (sigmoid: output < 0.01 or > 0.99; tanh: |output| > 0.99; only for those two activations),
  ``preact_mean``, ``preact_std``.
- covariate_shift: ``p15``, ``p50``, ``p85`` of single units' pre-activations in the last hidden
  layer over the probe examples (Ioffe & Szegedy 2015, Fig. 1b,c).
- weights (dense_i, logits): ``unit_norm_max``, ``unit_norm_mean`` (per-unit incoming-weight L2
  norms, max-norm), ``small_fraction`` (|w| < 1e-3); dense_1 also ``abs_q05`` ... ``abs_q95``,
  ``abs_max`` (quantiles of |w|: the histogram summary), ``unit_norm_cv`` (coefficient of
  variation of the per-unit norms: how evenly a penalty shrinks the units).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from ablation.train.probes.base import Probe, at, fraction, norm, percentiles, ratio

COVARIATE_UNITS = 3  # units of the last hidden layer followed by covariate_shift
SMALL_WEIGHT = 1e-3  # |w| below this counts as ~0 (claim B2)
SATURATION = 0.01  # sigmoid: < 0.01 or > 0.99; tanh: within 0.01 of +-1 (claim A2)
QUANTILES = (5, 25, 50, 75, 95)


def _activation_name(layer: keras.layers.Layer) -> str:
    act = layer.get_config().get("activation")
    return act if isinstance(act, str) else type(layer).__name__.lower()


def _flat(t: Any) -> Any:
    t = ops.cast(t, "float32")
    return ops.reshape(t, (t.shape[0], -1))


class GradientProbe(Probe):
    """Gradient norms per layer, in network order (claim A1: vanishing gradients).

    Rows: ``input_grad_norm`` of dense_i (its input), act_i (the pre-activation) and logits;
    ``kernel_grad_norm`` of dense_i and logits. Gradients of the data loss only, inference mode.
    """

    name = "gradients"

    def stats(self, t: dict[str, Any]) -> dict[str, Any]:
        res = {}
        for i in self.member.hidden:
            if f"grad_in_{i}" in t:
                res[f"dense_{i}/input_grad_norm"] = norm(t[f"grad_in_{i}"])
            res[f"act_{i}/input_grad_norm"] = norm(t[f"grad_pre_{i}"])
            if f"kgrad_dense_{i}" in t:
                res[f"dense_{i}/kernel_grad_norm"] = norm(t[f"kgrad_dense_{i}"])
        if "grad_logits_in" in t:
            res["logits/input_grad_norm"] = norm(t["grad_logits_in"])
        if "kgrad_logits" in t:
            res["logits/kernel_grad_norm"] = norm(t["kgrad_logits"])
        return res

    def summary(self) -> dict[str, float]:
        first, last = min(self.member.hidden), max(self.member.hidden)
        res = {}
        for key, layer_a, layer_b, stat in (
                ("grad_first_over_last", f"dense_{first}", f"dense_{last}", "kernel_grad_norm"),
                ("preact_grad_first_over_last", f"act_{first}", f"act_{last}", "input_grad_norm")):
            a, b = self.values(stat, layer_a), self.values(stat, layer_b)
            res[f"{key}_init"] = ratio(at(a, 0), at(b, 0)) if a and b else float("nan")
            res[f"{key}_final"] = ratio(at(a, -1), at(b, -1)) if a and b else float("nan")
        return res


def _saturated(activation: str, act: Any) -> Any | None:
    """Boolean mask of saturated outputs for sigmoid / tanh, None for other activations."""
    if activation == "sigmoid":
        return ops.logical_or(act < SATURATION, act > 1 - SATURATION)
    if activation == "tanh":
        return ops.abs(act) > 1 - SATURATION
    return None


class ActivationProbe(Probe):
    """Per hidden layer: sparsity (A4), dead and inactive units (A6), saturation (A2), pre-activation moments."""

    name = "activations"

    def stats(self, t: dict[str, Any]) -> dict[str, Any]:
        res = {}
        for i in self.member.hidden:
            pre, act = _flat(t[f"pre_{i}"]), _flat(t[f"act_{i}"])
            layer = f"act_{i}"
            res[f"{layer}/sparsity"] = fraction(act == 0)
            res[f"{layer}/dead_fraction"] = fraction(ops.all(act == 0, axis=0))
            res[f"{layer}/inactive_fraction"] = fraction(ops.all(pre <= 0, axis=0))
            saturated = _saturated(_activation_name(self.member.model.get_layer(layer)), act)
            if saturated is not None:
                res[f"{layer}/saturation"] = fraction(saturated)
            res[f"{layer}/preact_mean"] = ops.mean(pre)
            res[f"{layer}/preact_std"] = ops.std(pre)
        return res

    def _pooled(self, stat: str, epoch: int) -> float:
        """Width-weighted mean of a per-layer fraction over the hidden layers at one epoch."""
        model = self.member.model
        widths = {f"act_{i}": model.get_layer(f"act_{i}").output.shape[-1] for i in self.member.hidden}
        rows = [r for r in self.rows if r["stat"] == stat and r["epoch"] == epoch]
        if not rows:
            return float("nan")
        w = np.array([widths[r["layer"]] for r in rows], dtype=float)
        return float(np.sum(w * [r["value"] for r in rows]) / np.sum(w))

    def _layer_value(self, stat: str, layer: str, epoch: int) -> float:
        hit = [r["value"] for r in self.rows if r["stat"] == stat and r["layer"] == layer and r["epoch"] == epoch]
        return hit[0] if hit else float("nan")

    def summary(self) -> dict[str, float]:
        last = max((r["epoch"] for r in self.rows), default=0)
        res = {}
        for stat in ("sparsity", "dead_fraction", "saturation"):
            res[f"{stat}_init"] = self._pooled(stat, 0)
            res[f"{stat}_final"] = self._pooled(stat, last)
        res["inactive_fraction_final"] = self._pooled("inactive_fraction", last)
        hidden = self.member.hidden
        if hidden:  # per-layer saturation: the first and the last hidden layer (A2, per layer)
            for which, i in (("first", min(hidden)), ("last", max(hidden))):
                res[f"saturation_{which}_final"] = self._layer_value("saturation", f"act_{i}", last)
            peaks = [r["value"] for r in self.rows if r["stat"] == "saturation"]
            res["saturation_max"] = float(max(peaks)) if peaks else float("nan")
        else:
            res.update(saturation_first_final=float("nan"), saturation_last_final=float("nan"),
                       saturation_max=float("nan"))
        return res


class CovariateShiftProbe(Probe):
    """15th/50th/85th percentiles of chosen last-hidden-layer units' pre-activations (D2).

    Ioffe & Szegedy 2015, Fig. 1(b, c). The units are ``COVARIATE_UNITS`` evenly spaced indices
    of the last hidden layer (first, middle, last for 3); rows are named ``act_L/unit_j``.
    Percentiles interpolate linearly, as ``np.percentile``. Samples every ``every_steps`` steps
    when given, besides at init and at every epoch end.
    """

    name = "covariate_shift"
    stepped = True

    def __init__(self, net: Any, index: int, clock: Any, every_steps: int | None = None) -> None:
        member = net.member(index)
        self.layer = max(member.hidden)
        width = member.model.get_layer(f"act_{self.layer}").output.shape[-1]
        self.units = sorted(set(np.linspace(0, width - 1, COVARIATE_UNITS).round().astype(int).tolist()))
        super().__init__(net, index, clock)
        self.every_steps = every_steps or 0

    def stats(self, t: dict[str, Any]) -> dict[str, Any]:
        pre = ops.take(_flat(t[f"pre_{self.layer}"]), np.asarray(self.units, dtype="int32"), axis=1)
        return {"percentiles": percentiles(pre, (15, 50, 85))}

    def _record(self, values: dict[str, np.ndarray], step: int, epoch: int) -> None:
        table = values["percentiles"]
        for j, unit in enumerate(self.units):
            for row, stat in enumerate(("p15", "p50", "p85")):
                self._add(f"act_{self.layer}/unit_{unit}", self.layer, step, epoch, stat, table[row, j])

    def summary(self) -> dict[str, float]:
        out = {}
        for suffix, late in (("", False), ("_late", True)):
            p50_ranges, spread_ranges = [], []
            for unit in self.units:
                layer = f"act_{self.layer}/unit_{unit}"
                series = [self.values(s, layer) for s in ("p15", "p50", "p85")]
                steps = np.array([step for step, _ in series[1]])
                keep = steps >= steps.max() / 2 if late and len(steps) else np.ones(len(steps), bool)
                p15, p50, p85 = (np.array([v for _, v in pairs])[keep] for pairs in series)
                if len(p50):
                    p50_ranges.append(np.ptp(p50))
                    spread_ranges.append(np.ptp(p85 - p15))
            nan = float("nan")
            out[f"shift_p50_range{suffix}"] = float(np.mean(p50_ranges)) if p50_ranges else nan
            out[f"shift_spread_range{suffix}"] = float(np.mean(spread_ranges)) if spread_ranges else nan
        return out


class WeightProbe(Probe):
    """Per-unit incoming-weight norms (B3), near-zero weights and |w| quantiles of dense_1 (B2)."""

    name = "weights"

    def stats(self, t: dict[str, Any]) -> dict[str, Any]:
        res = {}
        for j, name in enumerate(self.member.kernel_names):
            w = ops.cast(self.member.model.get_layer(name).kernel, "float32")
            w = ops.reshape(w, (-1, w.shape[-1]))
            norms = ops.sqrt(ops.sum(ops.square(w), axis=0))
            res[f"{name}/unit_norm_max"] = ops.max(norms)
            res[f"{name}/unit_norm_mean"] = ops.mean(norms)
            res[f"{name}/unit_norm_cv"] = ops.std(norms) / ops.maximum(ops.mean(norms), 1e-30)
            res[f"{name}/small_fraction"] = fraction(ops.abs(w) < SMALL_WEIGHT)
            if j == 0:
                flat = ops.reshape(ops.abs(w), (-1, 1))
                quantiles = percentiles(flat, QUANTILES)[:, 0]
                for k, q in enumerate(QUANTILES):
                    res[f"{name}/abs_q{q:02d}"] = quantiles[k]
                res[f"{name}/abs_max"] = ops.max(flat)
        return res

    def summary(self) -> dict[str, float]:
        names = self.member.kernel_names
        first = names[0] if names else ""
        small = self.values("small_fraction", first)
        cv = self.values("unit_norm_cv", first)
        last_epoch = max((r["epoch"] for r in self.rows), default=0)
        maxes = [r["value"] for r in self.rows if r["stat"] == "unit_norm_max" and r["epoch"] == last_epoch]
        return {"unit_norm_max_final": float(max(maxes)) if maxes else float("nan"),
                "small_weight_fraction_first_init": at(small, 0),
                "small_weight_fraction_first_final": at(small, -1),
                "unit_norm_cv_first_init": at(cv, 0),
                "unit_norm_cv_first_final": at(cv, -1)}
