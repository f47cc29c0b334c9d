"""The probe network: one compiled pass over the probe batches of one model or of a pack's members.

A probe measures on a fixed batch of training examples with dropout off and batch norm
normalizing by the probe batch's own statistics (what the training step sees, without its noise:
Ioffe & Szegedy's Fig. 1 shows those training-time distributions), and never changes the model
(moving statistics are not updated).

For each model the net builds a clone that shares every weight, with three changes: batch norm
uses batch statistics (:class:`BatchStatsNorm`), every ``act_i``, ``dense_i`` and ``logits`` layer
is wrapped in a :class:`Tap` (only when gradients are wanted) that adds a zero variable to its
input, so the gradient of the loss with respect to that variable is the gradient with respect to
the layer's input, and the clone returns every ``dense_i`` input, ``act_i`` input (the
pre-activation) and output, the ``logits`` input and the model output. All the models' clones
run in one compiled function (``ablation.base.backend``), with the gradients of the sum of their data
losses when the ``gradients`` probe is on; every probe's statistics (``keras.ops`` code) are
computed inside it and returned packed in one vector, so a measurement costs one call and one
small copy to the host. Results are cached per step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import keras
import numpy as np
from keras import ops

from ablation.base import backend, checks
from ablation.zoo import outputs_probabilities


class Probe(Protocol):
    """What the probe net needs of a probe (``ablation.train.probes.base.Probe`` is one): a name, whether it
    measures on stepped batches, and its statistics of the traced tensors (no import of base: no circle)."""

    name: str
    stepped: bool

    def stats(self, t: Any) -> dict[str, Any]: ...


class Fraction:
    """A fraction of True entries, kept as an exact count: the host divides it by ``size`` in float64."""

    def __init__(self, mask: Any) -> None:
        self.count = ops.cast(ops.sum(ops.cast(mask, "int32")), "float32")  # exact below 2**24 entries
        self.size = float(np.prod(mask.shape))


def hidden_indices(model: keras.Model) -> list[int]:
    """The hidden-layer indices i with an ``act_i`` layer, ascending."""
    found = [int(m.group(1)) for m in (re.match(r"^act_(\d+)$", layer.name) for layer in model.layers) if m]
    return sorted(found)


def sparse_labels(y: np.ndarray) -> np.ndarray:
    """Integer class labels from sparse or one-hot targets."""
    y = np.asarray(y)
    return np.argmax(y, axis=-1).astype(np.int32) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1).astype(np.int32)


class BatchStatsNorm(keras.layers.Layer):
    """A batch-norm layer's transform with the statistics of the batch it is given.

    Shares ``gamma``/``beta`` with the wrapped ``BatchNormalization`` and never updates its moving
    statistics, so probing a BN net sees what its training step sees and leaves it unchanged.
    """

    def __init__(self, bn: keras.layers.BatchNormalization) -> None:
        super().__init__(name=bn.name, dtype=bn.dtype_policy)
        self.bn = bn

    def call(self, x: Any, mask: Any = None, training: Any = None) -> Any:
        axes = [a for a in range(len(x.shape)) if a != self.bn.axis % len(x.shape)]
        mean, var = ops.moments(x, axes=axes, keepdims=True)
        out = (x - mean) * ops.rsqrt(var + self.bn.epsilon)
        if self.bn.scale:
            out = out * ops.cast(self.bn.gamma, out.dtype)
        if self.bn.center:
            out = out + ops.cast(self.bn.beta, out.dtype)
        return out

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


class Tap(keras.layers.Layer):
    """Calls ``inner`` on ``x + eps``, ``eps`` a zero variable of the probe batch's shape.

    The gradient of a loss with respect to ``eps`` is its gradient with respect to the layer's
    input; both backends take gradients with respect to variables alike.
    """

    def __init__(self, inner: keras.layers.Layer, batch: int) -> None:
        super().__init__(name=inner.name, dtype=inner.dtype_policy)
        self.inner, self.batch = inner, batch

    def build(self, input_shape: Any) -> None:
        self.eps = self.add_weight(name="eps", shape=(self.batch, *input_shape[1:]), initializer="zeros",
                                   trainable=True, dtype="float32")

    def call(self, x: Any, training: Any = None) -> Any:
        return self.inner(x + ops.cast(self.eps, x.dtype), training=training)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.inner.compute_output_shape(input_shape)


class _Member:
    """One probed model: its probe clone, the names of the clone's outputs, its probes and its batch."""

    def __init__(self, model: keras.Model, x: Any, y: Any, index: int, *, hidden: bool, grads: bool,
                 float_targets: bool = False) -> None:
        self.model, self.index = model, index
        self.x = np.asarray(x)
        self.labels = np.asarray(y, dtype=np.float32) if float_targets else sparse_labels(y)
        self.hidden = hidden_indices(model) if hidden else []
        if hidden and not self.hidden:
            raise checks.invalid("model", "a zoo MLP with layers named 'act_1', 'dense_1', ... (docs/internals.md "
                                          "section 1)", f"model with layers {[layer.name for layer in model.layers]}",
                                 shown=str([layer.name for layer in model.layers]))
        self.layer_names = [layer.name for layer in model.layers]
        self.kernel_names = [n for n in [f"dense_{i}" for i in self.hidden] + ["logits"]
                             if n in self.layer_names and hasattr(model.get_layer(n), "kernel")] if hidden else []
        self.probabilities = outputs_probabilities(model)
        self.probes: list[Probe] = []
        batch = len(self.x)
        tapped = ({f"act_{i}" for i in self.hidden} | set(self.kernel_names)) if grads else set()

        def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
            if isinstance(layer, keras.layers.BatchNormalization):
                return BatchStatsNorm(layer)
            if layer.name in tapped:
                return Tap(layer, batch)
            return layer

        # A sub-model of the original graph returns the wanted tensors; its clone (batch-statistics BN,
        # taps) returns the same tensors of the cloned graph. A model that returns its own input cannot
        # be nested in another, so such a tensor passes through an Identity layer.
        self.names, tensors = [], []
        for i in self.hidden:
            for name, tensor in self._layer_tensors(model, i):
                self.names.append(name)
                tensors.append(tensor)
        if hidden and "logits" in self.layer_names:
            self.names.append("logits_in")
            tensors.append(model.get_layer("logits").input)
        self.outputs = [*self.names, "output"]
        tensors = [keras.layers.Identity(name=f"{name}_copy")(t) if t is model.inputs[0] else t
                   for name, t in zip(self.names, tensors)]
        sub = keras.Model(model.inputs[0], [*tensors, model.outputs[0]], name=f"probe_{index}")
        replace = tapped or any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
        self.probe_model = keras.models.clone_model(sub, clone_function=clone_layer) if replace else sub
        taps = {layer.name: layer.eps for layer in self.probe_model.layers if isinstance(layer, Tap)}
        kernels = [model.get_layer(n).kernel for n in self.kernel_names]
        # gradients wanted: every tapped input (by output name), then every kernel
        tapped_names = [n for n in self.names if self._tap_for(n) in taps]
        self.grad_names = [f"grad_{n}" for n in tapped_names] + [f"kgrad_{n}" for n in self.kernel_names] \
            if grads else []
        self.grad_variables = [taps[self._tap_for(n)] for n in tapped_names] + kernels if grads else []

    def _layer_tensors(self, model: keras.Model, i: int) -> list[tuple[str, Any]]:
        act = model.get_layer(f"act_{i}")
        out = [(f"pre_{i}", act.input), (f"act_{i}", act.output)]
        if f"dense_{i}" in self.layer_names:
            out.insert(0, (f"in_{i}", model.get_layer(f"dense_{i}").input))
        return out

    @staticmethod
    def _tap_for(name: str) -> str | None:
        """The tapped layer whose input is the tensor ``name`` (pre_i -> act_i, in_i -> dense_i)."""
        if name.startswith("pre_"):
            return f"act_{name[4:]}"
        if name.startswith("in_"):
            return f"dense_{name[3:]}"
        if name == "logits_in":
            return "logits"
        return None

    def depth(self, name: str) -> int:
        """i for dense_i / act_i, L + 1 for logits."""
        return max(self.hidden, default=0) + 1 if name == "logits" else int(name.split("_")[-1])


class ProbeNet:
    """One compiled pass over the probe batches of one or more models, computing every probe's statistics.

    Args:
        models: the probed models (a pack's members, or one model).
        xs, ys: one fixed probe batch per model.
        loss: the loss to differentiate (None: sparse categorical cross-entropy, on logits unless
            the model outputs probabilities; another loss gets the targets as floats, e.g. a
            regression's mean squared error).
        hidden: expose the hidden layers' tensors (needs zoo layer names ``act_i``).
        grads: compute gradients (the ``gradients`` probe).
    """

    def __init__(self, models: Sequence[keras.Model], xs: Sequence[Any], ys: Sequence[Any], loss: Any = None, *,
                 hidden: bool, grads: bool) -> None:
        self.grads = grads
        self.members = [_Member(m, x, y, r, hidden=hidden, grads=grads, float_targets=loss is not None)
                        for r, (m, x, y) in enumerate(zip(models, xs, ys))]
        self.loss = loss
        self._fns: dict[bool, Any] = {}
        self._layout: dict[bool, list[list[tuple[str, tuple[int, ...], float]]]] = {}
        self._cache: tuple[int, bool, list[dict[str, np.ndarray]]] | None = None
        inputs = [keras.Input(batch_shape=(len(m.x), *m.model.inputs[0].shape[1:]), name=f"probe_x{m.index}")
                  for m in self.members]
        outs = []
        self._offsets = []
        for m, inp in zip(self.members, inputs):
            o = m.probe_model(inp)
            o = list(o) if isinstance(o, (list, tuple)) else [o]
            self._offsets.append(len(outs))
            outs.extend(o)
        self.combined = keras.Model(inputs, outs)

    def member(self, index: int) -> _Member:
        return self.members[index]

    def register(self, index: int, probe: Probe) -> None:
        self.members[index].probes.append(probe)
        self._fns.clear()

    def _loss(self, ys: list, outs: list) -> Any:
        total = 0.0
        for m, y, start in zip(self.members, ys, self._offsets):
            out = ops.cast(outs[start + len(m.outputs) - 1], "float32")
            if self.loss is not None:
                total = total + ops.mean(keras.losses.get(self.loss)(y, out))
            else:
                total = total + ops.mean(ops.sparse_categorical_crossentropy(y, out, from_logits=not m.probabilities))
        return total

    def _build(self, full: bool) -> Any:
        want_grads = full and self.grads
        layout: list[list[tuple[str, tuple[int, ...], float]]] = [[] for _ in self.members]
        grad_vars = [v for m in self.members for v in m.grad_variables] if want_grads else []

        def stats(outs: list, grads: list) -> Any:
            parts, g = [], 0
            for m, start in zip(self.members, self._offsets):
                t = dict(zip(m.outputs, outs[start:start + len(m.outputs)]))
                t["labels"] = ops.convert_to_tensor(m.labels)
                if want_grads:
                    t.update(zip(m.grad_names, grads[g:g + len(m.grad_names)]))
                    g += len(m.grad_names)
                layout[m.index] = []
                for probe in m.probes:
                    if not (full or probe.stepped):
                        continue
                    for key, value in probe.stats(t).items():
                        divisor = 1.0
                        if isinstance(value, Fraction):
                            value, divisor = value.count, value.size
                        value = ops.cast(value, "float32")
                        layout[m.index].append((f"{probe.name}/{key}", tuple(value.shape), divisor))
                        parts.append(ops.reshape(value, (-1,)))
            self._layout[full] = layout
            return ops.concatenate(parts, axis=0) if parts else ops.zeros((0,), "float32")

        fn = backend.current().compile_probe(self.combined, lambda ys, outs: self._loss(ys, outs), grad_vars, stats,
                                             want_grads)
        xs = [ops.convert_to_tensor(m.x) for m in self.members]
        ys = [ops.convert_to_tensor(m.labels) for m in self.members]
        return lambda: fn(xs, ys)

    def run(self, step: int, full: bool = True) -> list[dict[str, np.ndarray]]:
        """Every registered statistic at ``step``, per model (``full``: all probes, else the stepped ones).

        Cached per step: the weights only change between steps.
        """
        if self._cache is not None and self._cache[0] == step and (self._cache[1] or not full):
            return self._cache[2]
        if full not in self._fns:
            self._fns[full] = self._build(full)
        flat = np.asarray(ops.convert_to_numpy(self._fns[full]()), dtype=np.float64)
        res, offset = [], 0
        for entries in self._layout[full]:
            values = {}
            for key, shape, divisor in entries:
                size = int(np.prod(shape))
                values[key] = flat[offset:offset + size].reshape(shape) / divisor
                offset += size
            res.append(values)
        self._cache = (step, full, res)
        return res
