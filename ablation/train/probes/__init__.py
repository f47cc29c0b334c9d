"""Probes: measure what the studied claims talk about, on a fixed probe batch, while a model trains.

``make(names, model=..., probe_x=..., probe_y=...)`` returns one Keras callback per probe name for a
model trained alone with ``model.fit``; :func:`build` makes the same probes for several models at
once (the members of a pack, ``ablation.trials.pack``), all measured by one compiled function. Every
probe measures at initialization (epoch 0) and at the end of every epoch; ``covariate_shift`` and
``speed`` also every ``every_steps`` optimizer steps. Modules: ``net`` (the probe network),
``base`` (the probe base class, the clock), ``layers`` (gradients, activations, covariate_shift,
weights), ``timing`` (timing, speed). The rows' schema is the ``probes`` frame of
docs/internals.md section 4; ``SUMMARY_KEYS`` documents every per-trial summary metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import keras

from ablation.base import checks
from ablation.train.probes.base import Clock, Probe
from ablation.train.probes.layers import (COVARIATE_UNITS, SATURATION, SMALL_WEIGHT, ActivationProbe,
                                          CovariateShiftProbe, GradientProbe, WeightProbe)
from ablation.train.probes.net import ProbeNet
from ablation.train.probes.timing import SpeedProbe, TimingProbe

PROBES = ("gradients", "activations", "covariate_shift", "weights", "timing", "speed")
WALL_TIME_PROBES = ("timing", "speed")  # they measure wall time: their trials train alone, never in a pack
LAYER_PROBES = ("gradients", "activations", "covariate_shift", "weights")  # need zoo layer names

# Per-trial summary metrics, by the probe that records them: probe -> {key: what it is}.
SUMMARIES: dict[str, dict[str, str]] = {
    "gradients": {
        "grad_first_over_last_init": "kernel-gradient norm of dense_1 / of dense_L, at init (A1)",
        "grad_first_over_last_final": "the same after the last epoch",
        "preact_grad_first_over_last_init": "norm of dLoss/d(act_1 input) / of dLoss/d(act_L input), at init",
        "preact_grad_first_over_last_final": "the same after the last epoch",
    },
    "activations": {
        "sparsity_init": "fraction of exact zeros over all hidden activations, at init (A4)",
        "sparsity_final": "the same after the last epoch",
        "dead_fraction_init": "fraction of all hidden units zero on every probe example, at init (A6)",
        "dead_fraction_final": "the same after the last epoch",
        "inactive_fraction_final": "fraction of hidden units with pre-activation <= 0 on every example",
        "saturation_init": "fraction of saturated sigmoid/tanh outputs over those layers, at init (A2)",
        "saturation_final": "the same after the last epoch (NaN without sigmoid/tanh layers)",
        "saturation_first_final": "saturation of the first hidden layer after the last epoch (A2, per layer)",
        "saturation_last_final": "saturation of the last hidden layer after the last epoch",
        "saturation_max": "the largest saturation of any hidden layer at any measurement",
    },
    "covariate_shift": {
        "shift_p50_range": "mean over followed units of max - min over time of the median (D2)",
        "shift_spread_range": "mean over followed units of max - min over time of p85 - p15 (D2)",
        "shift_p50_range_late": "shift_p50_range over the second half of the recorded steps (no start-up transient)",
        "shift_spread_range_late": "shift_spread_range over the second half of the recorded steps",
    },
    "weights": {
        "unit_norm_max_final": "largest per-unit incoming-weight L2 norm over all layers, at the end (B3)",
        "small_weight_fraction_first_init": "fraction of dense_1 weights with |w| < 1e-3, at init (B2)",
        "small_weight_fraction_first_final": "the same after the last epoch",
        "unit_norm_cv_first_init": "std / mean of dense_1's per-unit weight norms, at init (B2: how evenly L2 shrinks)",
        "unit_norm_cv_first_final": "the same after the last epoch",
    },
    "timing": {
        "epoch_time_s": "median train_time_s per epoch, first epoch (tracing) excluded when possible",
        "time_per_step_s": "median step_time_s per epoch, first epoch excluded when possible (A5, C6)",
        "train_time_s": "total training time without validation and probe measurements",
    },
    "speed": {
        "train_error_init": "training error on the probe batch at init",
        "train_error_final": "training error on the probe batch at the last sample",
        "steps_to_target": "first sampled step with training error <= target_train_error (A5); never reached: "
                           "censored at the last sample + one sampling period",
        "seconds_to_target": "training seconds at that sample (validation and probes excluded); never reached: "
                             "the training seconds of the whole run (censored)",
        "target_reached": "1 if the run reached target_train_error, 0 if not (its steps_to_target is censored)",
    },
}
SUMMARY_KEYS: dict[str, str] = {key: text for keys in SUMMARIES.values() for key, text in keys.items()}
NEEDS_TARGET = ("steps_to_target", "seconds_to_target", "target_reached")  # only with evaluate.target_train_error

__all__ = ["PROBES", "WALL_TIME_PROBES", "SUMMARIES", "SUMMARY_KEYS", "NEEDS_TARGET", "COVARIATE_UNITS", "SATURATION", "SMALL_WEIGHT", "Clock",
           "Probe", "ProbeNet", "GradientProbe", "ActivationProbe", "CovariateShiftProbe", "WeightProbe",
           "TimingProbe", "SpeedProbe", "make", "build", "collect_rows", "collect_summary"]


def _check(names: list[str], models: Sequence[Any], xs: Sequence[Any], ys: Sequence[Any], every_steps: Any,
           target_train_error: Any) -> None:
    if any(n not in PROBES for n in names) or len(set(names)) != len(names):
        raise checks.invalid("names", f"distinct probe names from {', '.join(PROBES)}", names)
    for model in models:
        if not isinstance(model, keras.Model):
            raise checks.invalid("model", "a keras.Model", model)
    if every_steps is not None:
        checks.integer("every_steps", every_steps, 1)
    if target_train_error is not None:
        checks.real("target_train_error", target_train_error, "None or a float in (0, 1]", lambda v: 0 < v <= 1)
    if set(names) - {"timing", "weights"}:
        for x, y in zip(xs, ys):
            if x is None or y is None or len(x) == 0 or len(x) != len(y):
                raise checks.invalid("probe_x", "a non-empty batch with as many targets as examples",
                                     None, shown=f"probe_x with {None if x is None else len(x)} examples, probe_y "
                                                 f"with {None if y is None else len(y)}")


def build(names: Iterable[str], *, models: Sequence[keras.Model], probe_xs: Sequence[Any] | None = None,
          probe_ys: Sequence[Any] | None = None, every_steps: int | None = None,
          target_train_error: float | None = None, loss: Any = None) -> list[list[Probe]]:
    """The probes named in ``names`` for each of ``models``, measured by one shared :class:`ProbeNet`.

    Args:
        names: probe names (any of ``PROBES``); empty means no probes at all (they cost nothing).
        models: the models that will be trained (zoo MLPs for the layer probes).
        probe_xs, probe_ys: one fixed probe batch per model (training examples; unused by timing/weights).
        every_steps: covariate_shift / speed sampling period in optimizer steps (None: only at
            init and epoch ends).
        target_train_error: training error for ``steps_to_target`` / ``seconds_to_target``.
        loss: the loss the gradients probe differentiates (None: sparse categorical cross-entropy).

    Returns:
        One list of probes per model, in the order of ``names``.
    """
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        return [[] for _ in models]
    xs = list(probe_xs) if probe_xs is not None else [None] * len(models)
    ys = list(probe_ys) if probe_ys is not None else [None] * len(models)
    _check(names, models, xs, ys, every_steps, target_train_error)
    layered = bool(set(names) & set(LAYER_PROBES))
    net = None
    if set(names) - {"timing"}:
        import numpy as np

        xs = [x if x is not None else np.zeros((1, *m.inputs[0].shape[1:]), "float32") for x, m in zip(xs, models)]
        ys = [y if y is not None else np.zeros(len(x), "int64") for x, y in zip(xs, ys)]
        net = ProbeNet(models, xs, ys, loss, hidden=layered, grads="gradients" in names)
    clock = Clock()
    builders = {
        "gradients": lambda r: GradientProbe(net, r, clock),
        "activations": lambda r: ActivationProbe(net, r, clock),
        "covariate_shift": lambda r: CovariateShiftProbe(net, r, clock, every_steps),
        "weights": lambda r: WeightProbe(net, r, clock),
        "timing": lambda r: TimingProbe(net, r, clock),
        "speed": lambda r: SpeedProbe(net, r, clock, every_steps, target_train_error),
    }
    return [[builders[n](r) for n in names] for r in range(len(models))]


def make(names: Iterable[str], *, model: keras.Model, probe_x: Any = None, probe_y: Any = None,
         every_steps: int | None = None, target_train_error: float | None = None,
         loss: Any = None) -> list[keras.callbacks.Callback]:
    """The probes named in ``names`` as Keras callbacks for one model trained with ``model.fit``.

    See :func:`build` for the arguments; each callback has ``.rows`` and ``.summary()``.
    """
    names = [names] if isinstance(names, str) else list(names)
    if not names:
        return []
    return build(names, models=[model], probe_xs=[probe_x], probe_ys=[probe_y], every_steps=every_steps,
                 target_train_error=target_train_error, loss=loss)[0]


def collect_rows(callbacks: Sequence[Any]) -> list[dict[str, Any]]:
    """All probe rows of ``callbacks`` (non-probe callbacks are skipped), in callback order."""
    return [row for cb in callbacks if isinstance(cb, Probe) for row in cb.rows]


def collect_summary(callbacks: Sequence[Any]) -> dict[str, float]:
    """The merged ``summary()`` of every probe in ``callbacks`` (keys in ``SUMMARY_KEYS``)."""
    out: dict[str, float] = {}
    for cb in callbacks:
        if isinstance(cb, Probe):
            out.update(cb.summary())
    return out
