"""Probes: Keras callbacks that measure what the studied claims talk about.

`make(names, model=..., probe_x=..., probe_y=...)` returns one callback per probe name. Every
probe measures on a fixed probe batch with dropout off and batch norm normalizing by the probe
batch's own statistics — what the training step sees, without its noise (Ioffe & Szegedy's
Fig. 1 shows those training-time distributions; moving averages would lag for the first ~1,000
steps) — and never changes the model (moving statistics are not updated), at initialization (``on_train_begin``,
epoch 0) and at the end of every epoch. ``covariate_shift`` and ``speed`` also sample every
``every_steps`` optimizer steps. The true step is ``model.optimizer.iterations``: with
``steps_per_execution > 1`` Keras calls batch hooks once per execution chunk, so a sample falls
on the first chunk end at or after each multiple of ``every_steps``.

The probes share one `_ProbeNet`: a sub-model of the zoo MLP (layer names in docs/internals.md
section 1) returning every ``dense_i`` input, ``act_i`` input (the pre-activation) and output,
the ``logits`` input and the model output. One ``tf.function`` runs it (with the gradients when
the ``gradients`` probe is on), computes every probe's statistics inside the graph
and returns them packed in one vector; results are cached per step. All probes measuring at one
step therefore cost one forward (and backward) pass on the probe batch and one small copy to the
host (benchmarks/bench_probes.py measures the overhead).

Each callback has ``.rows``: dicts with keys probe, layer, depth, step, epoch, stat, value (the
``probes`` frame of docs/internals.md section 4). ``layer`` is a layer name (``"model"`` with
depth 0 for whole-model rows, ``"act_3/unit_7"`` for a single unit); ``depth`` is i for
``dense_i``/``act_i`` and L + 1 for ``logits``; ``epoch`` is the 1-based epoch a step belongs to
(0 = before training). Stats per probe:

- gradients: ``kernel_grad_norm`` (dense_i, logits) and ``input_grad_norm`` (dense_i, act_i,
  logits): L2 norms of the gradient of the data loss (regularization penalties excluded) with
  respect to the kernel and to the layer's input, over the probe batch (claim A1).
- activations (per act_i): ``sparsity`` (fraction of exact zeros, A4), ``dead_fraction`` (units
  zero on every probe example, A6), ``inactive_fraction`` (units whose pre-activation is <= 0
  on every example: the leaky-ReLU analogue of dead), ``saturation`` (sigmoid: output < 0.01 or
  > 0.99; tanh: |output| > 0.99; only for those two activations, A2), ``preact_mean``,
  ``preact_std``.
- covariate_shift: ``p15``, ``p50``, ``p85`` of single units' pre-activations in the last
  hidden layer over the probe examples (Ioffe & Szegedy 2015, Fig. 1b,c; claim D2).
- weights (dense_i, logits): ``unit_norm_max``, ``unit_norm_mean`` (per-unit incoming-weight L2
  norms, B3), ``small_fraction`` (|w| < 1e-3, B2); dense_1 also ``abs_q05``, ``abs_q25``,
  ``abs_q50``, ``abs_q75``, ``abs_q95``, ``abs_max`` (quantiles of |w|: the histogram summary).
- timing (layer "model"): ``epoch_time_s`` (wall time epoch begin to end), ``train_time_s``
  (the same without validation and probe measurements), ``steps``, ``step_time_s``
  (train_time_s / steps) (A5, C6).
- speed (layer "model"): ``train_error``, ``train_loss`` on the probe batch (pass training
  examples as the probe batch) and ``elapsed_s`` (training time so far, without validation and
  probe measurements) (A5).

``summary()`` gives scalar per-trial metrics (NaN when not measurable); `SUMMARY_KEYS` documents
every key.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ablation.zoo import outputs_probabilities

PROBES = ("gradients", "activations", "covariate_shift", "weights", "timing", "speed")
COVARIATE_UNITS = 3  # units of the last hidden layer followed by covariate_shift
SMALL_WEIGHT = 1e-3  # |w| below this counts as ~0 (claim B2)
SATURATION = 0.01  # sigmoid: < 0.01 or > 0.99; tanh: within 0.01 of +-1 (claim A2)
_QUANTILES = (5, 25, 50, 75, 95)

SUMMARY_KEYS: dict[str, str] = {
    "grad_first_over_last_init": "kernel-gradient norm of dense_1 / of dense_L, at init (A1)",
    "grad_first_over_last_final": "the same after the last epoch",
    "preact_grad_first_over_last_init": "norm of dLoss/d(act_1 input) / of dLoss/d(act_L input), at init",
    "preact_grad_first_over_last_final": "the same after the last epoch",
    "sparsity_init": "fraction of exact zeros over all hidden activations, at init (A4)",
    "sparsity_final": "the same after the last epoch",
    "dead_fraction_init": "fraction of all hidden units zero on every probe example, at init (A6)",
    "dead_fraction_final": "the same after the last epoch",
    "inactive_fraction_final": "fraction of hidden units with pre-activation <= 0 on every example",
    "saturation_init": "fraction of saturated sigmoid/tanh outputs over those layers, at init (A2)",
    "saturation_final": "the same after the last epoch (NaN without sigmoid/tanh layers)",
    "shift_p50_range": "mean over followed units of max - min over time of the median (D2)",
    "shift_spread_range": "mean over followed units of max - min over time of p85 - p15 (D2)",
    "shift_p50_range_late": "shift_p50_range over the second half of the recorded steps (no start-up transient)",
    "shift_spread_range_late": "shift_spread_range over the second half of the recorded steps",
    "unit_norm_max_final": "largest per-unit incoming-weight L2 norm over all layers, at the end (B3)",
    "small_weight_fraction_first_init": "fraction of dense_1 weights with |w| < 1e-3, at init (B2)",
    "small_weight_fraction_first_final": "the same after the last epoch",
    "epoch_time_s": "median train_time_s per epoch, first epoch (tracing) excluded when possible",
    "time_per_step_s": "median step_time_s per epoch, first epoch excluded when possible (A5, C6)",
    "train_time_s": "total training time without validation and probe measurements",
    "train_error_init": "training error on the probe batch at init",
    "train_error_final": "training error on the probe batch at the last sample",
    "steps_to_target": "first sampled step with training error <= target_train_error (A5)",
    "seconds_to_target": "training seconds at that sample (validation and probes excluded)",
}


class _Clock:
    """Training wall time with pauses (validation, probe measurements) taken out."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._paused = 0.0
        self._depth = 0
        self._pause_start = 0.0

    def start(self) -> None:
        if self._start is None:
            self._start = time.perf_counter()

    def stop(self) -> None:
        self._start, self._paused, self._depth = None, 0.0, 0

    def pause(self) -> None:
        self._depth += 1
        if self._depth == 1:
            self._pause_start = time.perf_counter()

    def resume(self) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth == 0:
            self._paused += time.perf_counter() - self._pause_start

    def elapsed(self) -> float:
        if self._start is None:
            return 0.0
        now = self._pause_start if self._depth else time.perf_counter()
        return now - self._start - self._paused


def _hidden_indices(model: keras.Model) -> list[int]:
    """The hidden-layer indices i with an ``act_i`` layer, ascending."""
    found = [int(m.group(1)) for m in (re.match(r"^act_(\d+)$", layer.name) for layer in model.layers) if m]
    return sorted(found)


def _activation_name(layer: keras.layers.Layer) -> str:
    act = layer.get_config().get("activation")
    return act if isinstance(act, str) else type(layer).__name__.lower()


def _resolve_loss(loss: Any, model: keras.Model) -> Any:
    """The loss to differentiate: ``loss``, else the compiled one, else sparse CE on logits."""
    loss = loss if loss is not None else getattr(model, "loss", None)
    if loss is None:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.get(loss) if isinstance(loss, str) else loss


def _f64(t: Any) -> tf.Tensor:
    return tf.cast(t, tf.float64)


def _f32(t: Any) -> tf.Tensor:
    return tf.cast(t, tf.float32)


def _norm(t: Any) -> tf.Tensor:
    return tf.sqrt(tf.reduce_sum(tf.square(_f32(t))))


def _percentiles(v: tf.Tensor, qs: Sequence[float]) -> tf.Tensor:
    """Percentiles over axis 0 of a (n, k) tensor with a static n, as ``np.percentile`` (linear)."""
    n = int(v.shape[0])
    ordered = tf.sort(_f32(v), axis=0)
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        out.append(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))
    return tf.stack(out)


class _BatchStatsNorm(keras.layers.Layer):
    """A batch-norm layer's transform with the statistics of the batch it is given.

    Shares ``gamma``/``beta`` with the wrapped ``BatchNormalization`` and never updates its moving
    statistics, so probing a BN net sees what its training step sees and leaves it unchanged.
    """

    def __init__(self, bn: keras.layers.BatchNormalization) -> None:
        super().__init__(name=bn.name, dtype=bn.dtype_policy)
        self.bn = bn

    def call(self, x: Any, mask: Any = None, training: Any = None) -> Any:
        axes = [a for a in range(len(x.shape)) if a != self.bn.axis % len(x.shape)]
        mean, var = keras.ops.moments(x, axes=axes, keepdims=True)
        out = (x - mean) * keras.ops.rsqrt(var + self.bn.epsilon)
        if self.bn.scale:
            out = out * keras.ops.cast(self.bn.gamma, out.dtype)
        if self.bn.center:
            out = out + keras.ops.cast(self.bn.beta, out.dtype)
        return out


def _with_batch_statistics(sub: keras.Model) -> keras.Model:
    """``sub`` with every BatchNormalization replaced by `_BatchStatsNorm` (shared weights)."""
    if not any(isinstance(layer, keras.layers.BatchNormalization) for layer in sub.layers):
        return sub
    return keras.models.clone_model(sub, clone_function=lambda layer: _BatchStatsNorm(layer)
                                    if isinstance(layer, keras.layers.BatchNormalization) else layer)


class _ProbeNet:
    """One compiled pass over the probe batch computing every registered probe's statistics.

    Probes register a ``_stats(outs)`` function (TensorFlow code on the probe-batch tensors);
    ``run`` executes all of them in one ``tf.function`` and returns NumPy values keyed
    ``"<probe>/<key>"``. Statistics are computed inside the graph (fractions from exact integer
    counts, the rest in float32) and packed into one float64 vector, so a measurement costs one
    call and one device-to-host copy.

    Args:
        model: a zoo MLP (layer names of docs/internals.md section 1) or, with ``hidden=False``,
            any Keras model.
        x, y: the fixed probe batch.
        loss: the loss to differentiate (None: the compiled loss, else sparse CE on logits).
        hidden: expose the hidden layers' tensors (needs ``act_i`` layers).
        grads: compute gradients in full passes.
    """

    def __init__(self, model: keras.Model, x: Any, y: Any, loss: Any, *, hidden: bool, grads: bool) -> None:
        self.model, self.loss, self.grads = model, loss, grads
        self.x = None if x is None else tf.constant(np.asarray(x))
        self.y = None if y is None else tf.constant(np.asarray(y))
        self.labels = None if y is None else tf.constant(_sparse_labels(np.asarray(y)))
        self.hidden = _hidden_indices(model) if hidden else []
        if hidden and not self.hidden:
            raise ValueError(
                "Invalid value for argument 'model': expected a zoo MLP with layers named 'act_1', "
                f"'dense_1', ... (docs/internals.md section 1). Received: model with layers "
                f"{[layer.name for layer in model.layers]}")
        self.layer_names = [layer.name for layer in model.layers]
        self.names, tensors = [], []
        for i in self.hidden:
            for name, tensor in self._layer_tensors(i):
                self.names.append(name)
                tensors.append(tensor)
        if hidden and "logits" in self.layer_names:
            self.names.append("logits_in")
            tensors.append(model.get_layer("logits").input)
        self.sub = _with_batch_statistics(keras.Model(model.inputs[0], [*tensors, model.outputs[0]]))
        self.kernels = [model.get_layer(n) for n in self.kernel_layers()]
        self.probabilities = outputs_probabilities(model)
        self._probes: list[_Probe] = []
        self._fns: dict[bool, Any] = {}
        self._layout: dict[bool, list[tuple[str, tuple[int, ...]]]] = {}
        self._cache: tuple[int, bool, dict[str, np.ndarray]] | None = None

    def _layer_tensors(self, i: int) -> list[tuple[str, Any]]:
        act = self.model.get_layer(f"act_{i}")
        out = [(f"pre_{i}", act.input), (f"act_{i}", act.output)]
        if f"dense_{i}" in self.layer_names:
            out.insert(0, (f"in_{i}", self.model.get_layer(f"dense_{i}").input))
        return out

    def kernel_layers(self) -> list[str]:
        """``dense_i`` (hidden order) and ``logits``: the layers with a kernel."""
        wanted = [f"dense_{i}" for i in self.hidden] + ["logits"]
        return [n for n in wanted if n in self.layer_names and hasattr(self.model.get_layer(n), "kernel")]

    def depth(self, name: str) -> int:
        """i for dense_i / act_i, L + 1 for logits."""
        return max(self.hidden, default=0) + 1 if name == "logits" else int(name.split("_")[-1])

    def register(self, probe: _Probe) -> None:
        self._probes.append(probe)
        self._fns.clear()

    def _forward(self, x: tf.Tensor) -> list[tf.Tensor]:
        outs = self.sub(x, training=False)
        return list(outs) if isinstance(outs, (list, tuple)) else [outs]

    def _outputs(self, x: tf.Tensor, y: tf.Tensor, grads: bool) -> dict[str, tf.Tensor]:
        """The probe-batch tensors by name; with ``grads`` also ``grad_<name>`` and ``kgrad_<layer>``."""
        keys = [*self.names, "output"]
        if not grads:
            return dict(zip(keys, self._forward(x)))
        loss_fn = _resolve_loss(self.loss, self.model)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outs = self._forward(x)
            loss = loss_fn(y, tf.cast(outs[-1], tf.float32))
        zero = tf.UnconnectedGradients.ZERO
        kernels = [layer.kernel for layer in self.kernels]
        grads_ = tape.gradient(loss, [*outs[:-1], *kernels], unconnected_gradients=zero)
        res = dict(zip(keys, outs))
        res.update({f"grad_{n}": g for n, g in zip(self.names, grads_)})
        res.update({f"kgrad_{layer.name}": g for layer, g in zip(self.kernels, grads_[len(self.names):])})
        return res

    def _build(self, full: bool) -> Any:
        probes = [p for p in self._probes if full or p.stepped]
        want_grads = full and self.grads

        def stats(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
            outs = self._outputs(x, y, want_grads)
            layout, parts = [], []
            for probe in probes:
                for key, value in probe._stats(outs).items():
                    value = _f64(value)
                    layout.append((f"{probe.name}/{key}", tuple(value.shape)))
                    parts.append(tf.reshape(value, [-1]))
            self._layout[full] = layout
            return tf.concat(parts, axis=0) if parts else tf.zeros([0], tf.float64)

        return tf.function(stats)

    def run(self, step: int, full: bool = True) -> dict[str, np.ndarray]:
        """Every registered statistic at ``step`` (``full``: all probes, else the stepped ones only).

        Cached per step: the weights only change between steps.
        """
        if self._cache is not None and self._cache[0] == step and (self._cache[1] or not full):
            return self._cache[2]
        if full not in self._fns:
            self._fns[full] = self._build(full)
        x = self.x if self.x is not None else tf.zeros([1, *self.model.inputs[0].shape[1:]])
        y = self.y if self.y is not None else tf.zeros([1], tf.int64)
        flat = self._fns[full](x, y).numpy()
        res, offset = {}, 0
        for key, shape in self._layout[full]:
            size = int(np.prod(shape))
            res[key] = flat[offset:offset + size].reshape(shape)
            offset += size
        self._cache = (step, full, res)
        return res


class _Probe(keras.callbacks.Callback):
    """Base probe: measures at init and at every epoch end, collects ``rows``.

    Subclasses implement ``_stats(outs)`` (TensorFlow statistics of the probe-batch tensors,
    run by the shared `_ProbeNet`), ``_record(values, step, epoch)`` (rows) and ``summary()``.
    """

    name = ""
    stepped = False  # also sampled between epoch ends (forward pass only)

    def __init__(self, net: _ProbeNet | None, clock: _Clock) -> None:
        super().__init__()
        self.net, self.clock = net, clock
        self.rows: list[dict[str, Any]] = []
        self._epoch = 0
        if net is not None:
            net.register(self)

    def _step(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        return 0 if optimizer is None else int(optimizer.iterations.numpy())

    def _add(self, layer: str, depth: int, step: int, epoch: int, stat: str, value: Any) -> None:
        self.rows.append({"probe": self.name, "layer": layer, "depth": int(depth), "step": int(step),
                          "epoch": int(epoch), "stat": stat, "value": float(value)})

    def _stats(self, outs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {}

    def _record(self, values: dict[str, np.ndarray], step: int, epoch: int) -> None:
        """Default: one row per ``"<layer>/<stat>"`` key (probes with other keys override this)."""
        for key, value in values.items():
            layer, stat = key.split("/")
            self._add(layer, self.net.depth(layer), step, epoch, stat, value)

    def _measure(self, step: int, epoch: int, full: bool = True) -> None:
        self.clock.pause()
        try:
            res = self.net.run(step, full)
            prefix = self.name + "/"
            self._record({k[len(prefix):]: v for k, v in res.items() if k.startswith(prefix)}, step, epoch)
        finally:
            self.clock.resume()

    def summary(self) -> dict[str, float]:
        """Scalar per-trial metrics of this probe (see `SUMMARY_KEYS`)."""
        return {}

    def _values(self, stat: str, layer: str | None = None) -> list[tuple[int, float]]:
        """(step, value) pairs of ``stat`` (optionally of one layer), in recording order."""
        return [(r["step"], r["value"]) for r in self.rows
                if r["stat"] == stat and (layer is None or r["layer"] == layer)]

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.clock.start()
        self._epoch = 0
        self._measure(self._step(), 0)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._measure(self._step(), epoch + 1)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.clock.pause()

    def on_test_end(self, logs: dict | None = None) -> None:
        self.clock.resume()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.clock.stop()


class _SampledProbe(_Probe):
    """A probe that may also sample every ``every_steps`` steps; one row set per step."""

    stepped = True

    def __init__(self, net: _ProbeNet, clock: _Clock, every_steps: int | None = None) -> None:
        super().__init__(net, clock)
        self.every_steps = every_steps or 0
        self._last_sampled = -1

    def _measure(self, step: int, epoch: int, full: bool = True) -> None:
        if step != self._last_sampled:
            self._last_sampled = step
            super()._measure(step, epoch, full)


class _EveryStepsHook:
    """Mixin: sample every ``every_steps`` optimizer steps (Keras calls batch hooks per chunk)."""

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        steps = (self.params or {}).get("steps")
        if steps and batch + 1 >= steps:
            return  # the epoch's last chunk: on_epoch_end samples this step (one full pass)
        step = self._step()
        if step // self.every_steps > max(self._last_sampled, 0) // self.every_steps:
            self._measure(step, self._epoch, full=False)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def _at(pairs: list[tuple[int, float]], which: int) -> float:
    return pairs[which][1] if pairs else float("nan")


class GradientProbe(_Probe):
    """Gradient norms per layer, in network order (claim A1: vanishing gradients).

    Rows: ``input_grad_norm`` of dense_i (its input), act_i (the pre-activation) and logits;
    ``kernel_grad_norm`` of dense_i and logits. Gradients of the data loss only, inference mode.
    """

    name = "gradients"

    def _stats(self, outs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        res = {}
        for i in self.net.hidden:
            if f"grad_in_{i}" in outs:
                res[f"dense_{i}/input_grad_norm"] = _norm(outs[f"grad_in_{i}"])
            res[f"act_{i}/input_grad_norm"] = _norm(outs[f"grad_pre_{i}"])
            if f"kgrad_dense_{i}" in outs:
                res[f"dense_{i}/kernel_grad_norm"] = _norm(outs[f"kgrad_dense_{i}"])
        if "grad_logits_in" in outs:
            res["logits/input_grad_norm"] = _norm(outs["grad_logits_in"])
        if "kgrad_logits" in outs:
            res["logits/kernel_grad_norm"] = _norm(outs["kgrad_logits"])
        return res

    def summary(self) -> dict[str, float]:
        first, last = min(self.net.hidden), max(self.net.hidden)
        res = {}
        for key, layer_a, layer_b, stat in (
                ("grad_first_over_last", f"dense_{first}", f"dense_{last}", "kernel_grad_norm"),
                ("preact_grad_first_over_last", f"act_{first}", f"act_{last}", "input_grad_norm")):
            a, b = self._values(stat, layer_a), self._values(stat, layer_b)
            res[f"{key}_init"] = _ratio(_at(a, 0), _at(b, 0)) if a and b else float("nan")
            res[f"{key}_final"] = _ratio(_at(a, -1), _at(b, -1)) if a and b else float("nan")
        return res


def _saturated(activation: str, act: tf.Tensor) -> tf.Tensor | None:
    """Boolean mask of saturated outputs for sigmoid / tanh, None for other activations."""
    if activation == "sigmoid":
        return (act < SATURATION) | (act > 1 - SATURATION)
    if activation == "tanh":
        return tf.abs(act) > 1 - SATURATION
    return None


def _mean(mask: tf.Tensor) -> tf.Tensor:
    """Fraction of True entries (an exact integer count, divided in float64)."""
    count = tf.reduce_sum(tf.cast(mask, tf.int32))
    return tf.cast(count, tf.float64) / float(np.prod(mask.shape))


class ActivationProbe(_Probe):
    """Per hidden layer: sparsity (A4), dead and inactive units (A6), saturation (A2), pre-activation moments."""

    name = "activations"

    def _stats(self, outs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        res = {}
        for i in self.net.hidden:
            pre, act = _f32(outs[f"pre_{i}"]), _f32(outs[f"act_{i}"])
            pre, act = tf.reshape(pre, [pre.shape[0], -1]), tf.reshape(act, [act.shape[0], -1])
            layer = f"act_{i}"
            res[f"{layer}/sparsity"] = _mean(act == 0)
            res[f"{layer}/dead_fraction"] = _mean(tf.reduce_all(act == 0, axis=0))
            res[f"{layer}/inactive_fraction"] = _mean(tf.reduce_all(pre <= 0, axis=0))
            saturated = _saturated(_activation_name(self.net.model.get_layer(layer)), act)
            if saturated is not None:
                res[f"{layer}/saturation"] = _mean(saturated)
            res[f"{layer}/preact_mean"] = tf.reduce_mean(pre)
            res[f"{layer}/preact_std"] = tf.math.reduce_std(pre)
        return res

    def _pooled(self, stat: str, epoch: int) -> float:
        """Width-weighted mean of a per-layer fraction over the hidden layers at one epoch."""
        widths = {f"act_{i}": self.net.model.get_layer(f"act_{i}").output.shape[-1] for i in self.net.hidden}
        rows = [r for r in self.rows if r["stat"] == stat and r["epoch"] == epoch]
        if not rows:
            return float("nan")
        w = np.array([widths[r["layer"]] for r in rows], dtype=float)
        return float(np.sum(w * [r["value"] for r in rows]) / np.sum(w))

    def summary(self) -> dict[str, float]:
        last = max((r["epoch"] for r in self.rows), default=0)
        res = {}
        for stat in ("sparsity", "dead_fraction", "saturation"):
            res[f"{stat}_init"] = self._pooled(stat, 0)
            res[f"{stat}_final"] = self._pooled(stat, last)
        res["inactive_fraction_final"] = self._pooled("inactive_fraction", last)
        return res


class CovariateShiftProbe(_SampledProbe):
    """15th/50th/85th percentiles of chosen last-hidden-layer units' pre-activations (D2).

    Ioffe & Szegedy 2015, Fig. 1(b, c). The units are ``COVARIATE_UNITS`` evenly spaced indices
    of the last hidden layer (first, middle, last for 3); rows are named ``act_L/unit_j``.
    Percentiles interpolate linearly, as ``np.percentile``.
    """

    name = "covariate_shift"

    def __init__(self, net: _ProbeNet, clock: _Clock, every_steps: int | None = None) -> None:
        self.layer = max(net.hidden)
        width = net.model.get_layer(f"act_{self.layer}").output.shape[-1]
        self.units = sorted(set(np.linspace(0, width - 1, COVARIATE_UNITS).round().astype(int).tolist()))
        super().__init__(net, clock, every_steps)

    def _stats(self, outs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        pre = outs[f"pre_{self.layer}"]
        pre = tf.gather(tf.reshape(pre, [pre.shape[0], -1]), self.units, axis=1)
        return {"percentiles": _percentiles(pre, (15, 50, 85))}

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
                series = [self._values(s, layer) for s in ("p15", "p50", "p85")]
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


class _SteppedCovariateShift(_EveryStepsHook, CovariateShiftProbe):
    """`CovariateShiftProbe` that also samples every ``every_steps`` steps."""


class WeightProbe(_Probe):
    """Per-unit incoming-weight norms (B3), near-zero weights and |w| quantiles of dense_1 (B2)."""

    name = "weights"

    def _stats(self, outs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        res = {}
        for j, layer in enumerate(self.net.kernels):
            w = _f32(layer.kernel)
            w = tf.reshape(w, [-1, w.shape[-1]])
            norms = tf.sqrt(tf.reduce_sum(tf.square(w), axis=0))
            res[f"{layer.name}/unit_norm_max"] = tf.reduce_max(norms)
            res[f"{layer.name}/unit_norm_mean"] = tf.reduce_mean(norms)
            res[f"{layer.name}/small_fraction"] = _mean(tf.abs(w) < SMALL_WEIGHT)
            if j == 0:
                flat = tf.reshape(tf.abs(w), [-1, 1])
                quantiles = _percentiles(flat, _QUANTILES)[:, 0]
                for k, q in enumerate(_QUANTILES):
                    res[f"{layer.name}/abs_q{q:02d}"] = quantiles[k]
                res[f"{layer.name}/abs_max"] = tf.reduce_max(flat)
        return res

    def summary(self) -> dict[str, float]:
        first = self.net.kernels[0].name
        small = self._values("small_fraction", first)
        last_epoch = max((r["epoch"] for r in self.rows), default=0)
        maxes = [r["value"] for r in self.rows if r["stat"] == "unit_norm_max" and r["epoch"] == last_epoch]
        return {"unit_norm_max_final": float(max(maxes)) if maxes else float("nan"),
                "small_weight_fraction_first_init": _at(small, 0),
                "small_weight_fraction_first_final": _at(small, -1)}


class TimingProbe(_Probe):
    """Wall time per epoch and per step (A5, C6); needs no probe batch.

    ``train_time_s`` leaves out validation and the other probes' measurements (a shared clock
    pauses for them), so it is comparable with and without probes.
    """

    name = "timing"

    def __init__(self, net: _ProbeNet | None, clock: _Clock) -> None:
        super().__init__(None, clock)
        self._wall0 = self._clock0 = 0.0
        self._step0 = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.clock.start()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch, logs)
        self._wall0, self._clock0, self._step0 = time.perf_counter(), self.clock.elapsed(), self._step()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        wall, train, step = time.perf_counter() - self._wall0, self.clock.elapsed() - self._clock0, self._step()
        steps = step - self._step0
        for stat, val in (("epoch_time_s", wall), ("train_time_s", train), ("steps", steps),
                          ("step_time_s", train / steps if steps else float("nan"))):
            self._add("model", 0, step, epoch + 1, stat, val)

    def summary(self) -> dict[str, float]:
        res = {}
        for stat, key in (("train_time_s", "epoch_time_s"), ("step_time_s", "time_per_step_s")):
            vals = [v for _, v in self._values(stat)]
            res[key] = float(np.median(vals[1:] if len(vals) > 1 else vals)) if vals else float("nan")
        res["train_time_s"] = float(sum(v for _, v in self._values("train_time_s")))
        return res


class SpeedProbe(_SampledProbe):
    """Training error on the probe batch over steps; steps and seconds to a target (A5).

    Krizhevsky et al. 2012, Fig. 1: iterations to reach 25% training error. The error is
    measured in inference mode on the fixed probe batch, which should be training examples.
    """

    name = "speed"

    def __init__(self, net: _ProbeNet, clock: _Clock, every_steps: int | None = None,
                 target_train_error: float | None = None) -> None:
        super().__init__(net, clock, every_steps)
        self.target = target_train_error
        self.reached: tuple[int, float] | None = None

    def _stats(self, outs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = tf.cast(outs["output"], tf.float32)
        out = tf.reshape(out, [out.shape[0], -1])
        labels = self.net.labels
        logp = tf.math.log(tf.maximum(out, 1e-12)) if self.net.probabilities else tf.nn.log_softmax(out)
        wrong = tf.argmax(out, axis=-1, output_type=labels.dtype) != labels
        nll = -tf.gather(logp, labels, axis=1, batch_dims=1)
        return {"train_error": _mean(wrong), "train_loss": tf.reduce_mean(nll)}

    def _record(self, values: dict[str, np.ndarray], step: int, epoch: int) -> None:
        elapsed = self.clock.elapsed()
        error = float(values["train_error"])
        self._add("model", 0, step, epoch, "train_error", error)
        self._add("model", 0, step, epoch, "train_loss", values["train_loss"])
        self._add("model", 0, step, epoch, "elapsed_s", elapsed)
        if self.target is not None and self.reached is None and error <= self.target:
            self.reached = (step, elapsed)

    def summary(self) -> dict[str, float]:
        errors = self._values("train_error")
        nan = float("nan")
        return {"train_error_init": _at(errors, 0), "train_error_final": _at(errors, -1),
                "steps_to_target": float(self.reached[0]) if self.reached else nan,
                "seconds_to_target": float(self.reached[1]) if self.reached else nan}


class _SteppedSpeed(_EveryStepsHook, SpeedProbe):
    """`SpeedProbe` that also samples every ``every_steps`` steps."""


def _sparse_labels(y: np.ndarray) -> np.ndarray:
    """Integer class labels from sparse or one-hot targets."""
    return np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1).astype(np.int64)


def _check_make_args(names: list[str], model: Any, probe_x: Any, probe_y: Any,
                     every_steps: Any, target_train_error: Any) -> None:
    bad = [n for n in names if n not in PROBES]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"Invalid value for argument 'names': expected distinct probe names from {PROBES}. "
                         f"Received: names={names}")
    if not isinstance(model, keras.Model):
        raise ValueError(f"Invalid value for argument 'model': expected a keras.Model. Received: model={model!r}")
    if every_steps is not None and (isinstance(every_steps, bool) or not isinstance(every_steps, int)
                                    or every_steps < 1):
        raise ValueError("Invalid value for argument 'every_steps': expected None or an int >= 1. "
                         f"Received: every_steps={every_steps!r}")
    if target_train_error is not None and not (isinstance(target_train_error, (int, float))
                                               and 0 < target_train_error <= 1):
        raise ValueError("Invalid value for argument 'target_train_error': expected None or a float in (0, 1]. "
                         f"Received: target_train_error={target_train_error!r}")
    if set(names) - {"timing", "weights"}:
        if probe_x is None or probe_y is None or len(probe_x) == 0 or len(probe_x) != len(probe_y):
            raise ValueError("Invalid value for argument 'probe_x'/'probe_y': expected a non-empty batch with as "
                             f"many targets as examples. Received: probe_x with "
                             f"{None if probe_x is None else len(probe_x)} examples, probe_y with "
                             f"{None if probe_y is None else len(probe_y)}")


def make(names: Iterable[str], *, model: keras.Model, probe_x: Any = None, probe_y: Any = None,
         every_steps: int | None = None, target_train_error: float | None = None,
         loss: Any = None) -> list[keras.callbacks.Callback]:
    """Build the probe callbacks named in ``names`` (any of `PROBES`), in that order.

    Args:
        names: probe names; empty means no callbacks at all (probes off cost nothing).
        model: the model that will be trained (a zoo MLP for all but timing and speed).
        probe_x, probe_y: the fixed probe batch (training examples; unused by timing/weights).
        every_steps: covariate_shift / speed sampling period in optimizer steps (None: only at
            init and epoch ends).
        target_train_error: training error for ``steps_to_target`` / ``seconds_to_target``.
        loss: the loss the gradients probe differentiates (None: the model's compiled loss,
            else sparse categorical cross-entropy on logits).

    Returns:
        One callback per name, each with ``.rows`` and ``.summary()``.
    """
    names = list(names) if not isinstance(names, str) else [names]
    if not names:
        return []
    _check_make_args(names, model, probe_x, probe_y, every_steps, target_train_error)
    layered = bool(set(names) & {"gradients", "activations", "covariate_shift", "weights"})
    net = None
    if set(names) - {"timing"}:
        net = _ProbeNet(model, probe_x, probe_y, loss, hidden=layered, grads="gradients" in names)
    clock = _Clock()
    stepped = every_steps is not None
    builders = {
        "gradients": lambda: GradientProbe(net, clock),
        "activations": lambda: ActivationProbe(net, clock),
        "covariate_shift": lambda: (_SteppedCovariateShift if stepped else CovariateShiftProbe)(
            net, clock, every_steps),
        "weights": lambda: WeightProbe(net, clock),
        "timing": lambda: TimingProbe(net, clock),
        "speed": lambda: (_SteppedSpeed if stepped else SpeedProbe)(net, clock, every_steps, target_train_error),
    }
    return [builders[n]() for n in names]


def collect_rows(callbacks: Sequence[Any]) -> list[dict[str, Any]]:
    """All probe rows of ``callbacks`` (non-probe callbacks are skipped), in callback order."""
    return [row for cb in callbacks if isinstance(cb, _Probe) for row in cb.rows]


def collect_summary(callbacks: Sequence[Any]) -> dict[str, float]:
    """The merged ``summary()`` of every probe in ``callbacks`` (keys in `SUMMARY_KEYS`)."""
    out: dict[str, float] = {}
    for cb in callbacks:
        if isinstance(cb, _Probe):
            out.update(cb.summary())
    return out
