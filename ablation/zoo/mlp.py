"""``mlp()``: the one MLP builder of the zoo; every paper variant is a call to it.

Layer names follow docs/internals.md section 1 (probes rely on them): ``input``,
``input_dropout``, ``dense_i``, ``bn_i``, ``act_i``, ``dropout_i``, ``add_i``, ``logits``,
``output``. A hidden layer i is built in this order::

    dense_i -> [bn_i if batchnorm="before"] -> act_i -> [bn_i if "after"] -> [dropout_i] -> [add_i]

where ``add_i`` (residual=True) sums the block's input and its output when their widths match
(i >= 2). An input of rank > 1 is flattened first by a layer named ``flatten`` (an addition to
the contract; flat inputs have none).
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Sequence
from typing import Any

import keras

from ablation.zoo import checks
from ablation.zoo.layers import DropConnectDense, ScaledWSDense, activation_gain

ACTIVATIONS = checks.ACTIVATIONS

_AUTO_INIT = {"relu": "he_normal", "leaky_relu": "he_normal", "elu": "he_normal", "gelu": "he_normal",
              "swish": "he_normal", "selu": "lecun_normal"}
# Glorot & Bengio's (2010, eq. 1) "standard" initialization W ~ U[-1/sqrt(n), 1/sqrt(n)], n the fan-in:
# variance 1/(3n), so VarianceScaling with scale 1/3 over the fan-in, uniform.
STANDARD_INIT = {"class_name": "VarianceScaling",
                 "config": {"scale": 1 / 3, "mode": "fan_in", "distribution": "uniform"}}
_KERAS_ACTIVATION = {"swish": "silu"}
_DROPOUT_LAYERS = {"standard": keras.layers.Dropout, "gaussian": keras.layers.GaussianDropout,
                   "alpha": keras.layers.AlphaDropout}


def make_initializer(spec: Any, activation: str, index: int) -> keras.initializers.Initializer:
    """A fresh initializer for layer ``index`` (so layers never share random draws).

    ``spec`` is "auto" (He normal for the ReLU family, LeCun normal for SELU, Glorot uniform
    otherwise), "auto_standard" (the same, but Glorot & Bengio's 2010 "standard" initialization
    ``STANDARD_INIT`` where "auto" gives Glorot uniform: sigmoid, tanh, ...), a positive float ``s``
    (``RandomNormal(0, s)``), a Keras initializer name, a config dict, or an ``Initializer`` instance
    (copied from its config; an integer seed is offset by ``index`` so that layers differ). Unseeded
    initializers draw their seed from Python's ``random``, which ``keras.utils.set_random_seed`` seeds.
    """
    if isinstance(spec, str) and spec in checks.AUTO_INITIALIZERS:
        fallback = "glorot_uniform" if spec == "auto" else copy.deepcopy(STANDARD_INIT)
        return keras.initializers.get(_AUTO_INIT.get(activation, fallback))
    if isinstance(spec, str):
        return keras.initializers.get(spec)
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return keras.initializers.RandomNormal(mean=0.0, stddev=float(spec))
    if isinstance(spec, keras.initializers.Initializer):
        spec = keras.initializers.serialize(spec)
    elif callable(spec):
        return spec
    config = copy.deepcopy(dict(spec))
    inner = config.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("seed"), int):
        inner["seed"] += index
    return keras.initializers.get(config)


def activation_layer(activation: str, slope: float, activity_l1: float, name: str) -> keras.layers.Layer:
    """The separate activation layer ``name`` (its input is the pre-activation), optionally L1-penalized."""
    reg = keras.regularizers.L1(l1=activity_l1) if activity_l1 > 0 else None
    if activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=slope, activity_regularizer=reg, name=name)
    return keras.layers.Activation(_KERAS_ACTIVATION.get(activation, activation), activity_regularizer=reg,
                                   name=name)


def _dense(units: int, index: int, use_bias: bool, opts: dict[str, Any], kind: str, **extra: Any) -> Any:
    """One hidden layer ``dense_{index}`` of the requested kind (plain, DropConnect, scaled WS)."""
    common = {"use_bias": use_bias, "name": f"dense_{index}",
              "kernel_initializer": make_initializer(opts["kernel_initializer"], opts["activation"], index),
              "kernel_regularizer": opts["kernel_regularizer"], "kernel_constraint": opts["kernel_constraint"]}
    if kind == "dropconnect":
        return DropConnectDense(units, rate=extra["rate"], per_example=extra["per_example"], **common)
    if kind == "ws":
        return ScaledWSDense(units, gain=extra["gain"], **common)
    return keras.layers.Dense(units, **common)


def mlp(*, input_shape: Sequence[int], num_classes: int, hidden: Sequence[int], activation: str = "relu",
        output_activation: str | None = None, kernel_initializer: Any = "auto", dropout: float = 0.0,
        input_dropout: float = 0.0, dropout_kind: str = "standard", dropconnect: float = 0.0,
        dropconnect_per_example: bool = True, l1: float = 0.0, l2: float = 0.0, activity_l1: float = 0.0, max_norm: float | None = None,
        batchnorm: bool | str = False, weight_standardization: bool = False, residual: bool = False,
        residual_scale: float = 1.0, leaky_slope: float = 0.01, name: str = "mlp") -> keras.Model:
    """Build a multilayer perceptron that outputs logits (unless ``output_activation`` is given).

    Args:
        input_shape: shape of one example, e.g. ``(784,)``; rank > 1 is flattened.
        num_classes: width of the ``logits`` layer.
        hidden: widths of the hidden layers, e.g. ``(1024, 1024, 2048)``.
        activation: one of ``ACTIVATIONS``; always its own layer ``act_i``.
        output_activation: None (logits) or one of "softmax", "log_softmax", "sigmoid", "linear".
        kernel_initializer: "auto" (He normal for relu/leaky_relu/elu/gelu/swish, LeCun normal for
            selu, Glorot uniform otherwise), "auto_standard" (the same, but Glorot & Bengio's 2010
            standard init U[-1/sqrt(fan_in), 1/sqrt(fan_in)] in place of Glorot uniform), a Keras
            initializer name/config/instance, or a positive float s meaning ``RandomNormal(stddev=s)``.
            Used for every Dense kernel, logits included.
        dropout: DROP rate after each hidden layer, in [0, 1). Srivastava et al. (2014) write the
            keep probability p: ``dropout = 1 - p`` (p = 0.5 gives 0.5).
        input_dropout: drop rate on the inputs (Srivastava's input p = 0.8 gives 0.2).
        dropout_kind: "standard" (Bernoulli, inverted scaling), "gaussian" (multiplicative
            N(1, rate/(1-rate)) noise) or "alpha" (AlphaDropout, for SELU); used for both rates.
        dropconnect: if > 0, hidden layers are ``DropConnectDense`` with this drop rate (Wan 2013).
        dropconnect_per_example: a DropConnect mask per example (True, as Wan et al.; it materializes a
            batch x in x out mask, far too slow for MNIST widths on a CPU) or one mask per batch (False).
        l1, l2: kernel penalty ``l1 * sum(|w|) + l2 * sum(w**2)`` (no 1/2) on every Dense kernel,
            logits included, via ``keras.regularizers.L1L2``; biases are not penalized.
        activity_l1: L1 penalty on the hidden activations (outputs of ``act_i``; Glorot, Bordes &
            Bengio 2011). Keras adds ``activity_l1 * sum(|h|) / batch_size`` per layer.
        max_norm: None or 0 for none, else the bound c on the L2 norm of each unit's incoming
            weight vector (``MaxNorm(c, axis=0)`` on every kernel, logits included; Srivastava 2014).
        batchnorm: False, "before" or "after" the activation (True means "before"); the Dense
            right before a BN has no bias (BN's offset replaces it).
        weight_standardization: hidden layers are ``ScaledWSDense`` (Brock et al. 2021) with gain 1
            for layer 1 and ``activation_gain(activation)`` for layers 2..L.
        residual: add ``add_i`` skip connections between consecutive hidden layers of equal width.
        residual_scale: alpha in ``x + alpha * f(x)`` (a ``scale_i`` layer on the branch; 1 = none): NF-ResNets
            scale their residual branches so that a deep net without normalization trains (Brock et al. 2021
            use alpha = 0.2).
        leaky_slope: negative slope of "leaky_relu".
        name: model name.

    Returns:
        An uncompiled functional ``keras.Model``.

    Raises:
        ValueError: for any invalid argument (see ``ablation.zoo.checks``).
    """
    args = {k: v for k, v in locals().items()}
    checks.validate("mlp", args)
    input_shape, hidden, num_classes = tuple(map(int, input_shape)), tuple(map(int, hidden)), int(num_classes)
    norm = keras.constraints.MaxNorm(max_value=float(max_norm), axis=0) if max_norm else None
    opts = {"kernel_initializer": kernel_initializer, "activation": activation, "kernel_constraint": norm,
            "kernel_regularizer": keras.regularizers.L1L2(l1=float(l1), l2=float(l2)) if l1 or l2 else None}
    bn = "before" if batchnorm is True else batchnorm
    drop_layer = _DROPOUT_LAYERS[dropout_kind]
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = keras.layers.Flatten(name="flatten")(inputs) if len(input_shape) > 1 else inputs
    if input_dropout > 0:
        x = drop_layer(float(input_dropout), name="input_dropout")(x)
    gain = activation_gain(activation, leaky_slope) if weight_standardization else 1.0
    kind = "ws" if weight_standardization else "dropconnect" if dropconnect > 0 else "dense"
    for i, units in enumerate(hidden, start=1):
        block_in = x
        extra = {"rate": float(dropconnect), "gain": gain if i > 1 else 1.0,
                 "per_example": bool(dropconnect_per_example)}
        x = _dense(units, i, bn != "before", opts, kind, **extra)(x)
        if bn == "before":
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = activation_layer(activation, float(leaky_slope), float(activity_l1), f"act_{i}")(x)
        if bn == "after":
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        if dropout > 0:
            x = drop_layer(float(dropout), name=f"dropout_{i}")(x)
        if residual and i > 1 and hidden[i - 2] == units:
            if residual_scale != 1.0:
                x = keras.layers.Rescaling(float(residual_scale), name=f"scale_{i}")(x)
            x = keras.layers.Add(name=f"add_{i}")([block_in, x])
    return keras.Model(inputs, logits_head(x, num_classes, output_activation, opts, len(hidden) + 1), name=name)


def outputs_probabilities(model: keras.Model) -> bool:
    """True when ``model`` ends in a softmax, i.e. it outputs class probabilities, not logits.

    ``log_softmax`` and ``linear`` outputs are still logits for a softmax cross-entropy.
    """
    return model.layers[-1].get_config().get("activation") == "softmax"


def logits_head(x: Any, num_classes: int, output_activation: str | None, opts: dict[str, Any], depth: int) -> Any:
    """The ``logits`` Dense (float32 under a mixed policy) and the optional ``output`` activation."""
    mixed = keras.mixed_precision.global_policy().name.startswith("mixed")
    dtype = {"dtype": "float32"} if mixed else {}
    init = make_initializer(opts["kernel_initializer"], opts["activation"], depth)
    x = keras.layers.Dense(num_classes, name="logits", kernel_initializer=init,
                           kernel_regularizer=opts["kernel_regularizer"],
                           kernel_constraint=opts["kernel_constraint"], **dtype)(x)
    if output_activation is not None:
        x = keras.layers.Activation(output_activation, name="output", **dtype)(x)
    return x
