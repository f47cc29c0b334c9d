"""Custom Keras layers of the zoo: DropConnect, stochastic pooling, scaled weight standardization.

Each layer is registered under ``package="ablation"`` so that a model using it saves to and loads
from a ``.keras`` file without ``custom_objects``.

* :class:`DropConnectDense` -- Wan, Zeiler, Zhang, LeCun & Fergus (2013), "Regularization of
  Neural Networks using DropConnect", ICML.
* :class:`StochasticPooling2D` -- Zeiler & Fergus (2013), "Stochastic Pooling for Regularization
  of Deep Convolutional Neural Networks", ICLR.
* :class:`ScaledWSDense` and :func:`activation_gain` -- Brock, De, Smith & Simonyan (2021),
  "Characterizing signal propagation to close the performance gap in unnormalized ResNets"
  (NF-ResNets, ICLR) and "High-Performance Large-Scale Image Recognition Without Normalization"
  (NFNets, ICML).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from ablation.zoo import checks


def _serialize(obj: Any) -> Any:
    return keras.saving.serialize_keras_object(obj)


class _DenseLike(keras.layers.Layer):
    """What the dense-like layers here share with ``keras.layers.Dense``: arguments, weights, config."""

    def __init__(self, units: int, activation: Any, use_bias: bool, kernel_initializer: Any,
                 bias_initializer: Any, kernel_regularizer: Any, bias_regularizer: Any,
                 kernel_constraint: Any, bias_constraint: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        checks.positive_int("units", units)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], self.units), initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias", shape=(self.units,), initializer=self.bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*input_shape[:-1], self.units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "units": self.units,
            "activation": keras.activations.serialize(self.activation) if self.activation else None,
            "use_bias": self.use_bias,
            "kernel_initializer": _serialize(self.kernel_initializer),
            "bias_initializer": _serialize(self.bias_initializer),
            "kernel_regularizer": _serialize(self.kernel_regularizer),
            "bias_regularizer": _serialize(self.bias_regularizer),
            "kernel_constraint": _serialize(self.kernel_constraint),
            "bias_constraint": _serialize(self.bias_constraint),
        })
        return config


@keras.saving.register_keras_serializable(package="ablation")
class DropConnectDense(_DenseLike):
    """A dense layer whose weights (not units) are dropped at random while training.

    Wan et al. (2013): every weight ``W_ij`` is kept with probability ``p`` (``M_ij ~ Bernoulli(p)``)
    and the layer computes ``u = (M * W) x``. Here ``rate`` is the DROP rate, ``p = 1 - rate``.

    Training (``training=True``): this layer uses *inverted* scaling, as Keras ``Dropout`` does::

        u = x (M * W) / p + (m_b * b) / p        # m_b: the bias mask, only when mask_bias=True

    so ``E[u] = x W + b`` and the weights need no rescaling at inference. Each example draws its
    own mask when ``per_example=True`` (as in the paper, which also masks the biases); this
    materializes a ``(batch, in, out)`` mask, so ``per_example=False`` (one mask per batch) is
    offered for wide layers. Inference (``training=False``): the mean network ``u = x W + b``
    (weight scaling; with inverted scaling it is the expectation of the training-time ``u``).
    Wan's own, unscaled weights ``W_wan`` relate to these by ``W_wan = W / p``.

    :meth:`moments` gives the mean and variance of ``u`` under the mask distribution, which Wan's
    Gaussian moment-matched inference samples from.

    Args:
        units: output width.
        rate: drop rate of each weight, in [0, 1) (paper: keep probability ``p = 1 - rate``).
        activation: optional activation applied after the (masked) affine map.
        use_bias: add a bias.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as for ``keras.layers.Dense``.
        per_example: one mask per example (True) or one per batch (False).
        mask_bias: drop bias entries too (True, as Wan et al.) or always keep the bias.
        seed: seed of the mask generator (None: drawn from the global Keras seed).
    """

    def __init__(self, units: int, rate: float, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None,
                 per_example: bool = True, mask_bias: bool = True, seed: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, kernel_constraint, bias_constraint, **kwargs)
        checks.rate("rate", rate)
        self.rate = float(rate)
        self.per_example, self.mask_bias, self.seed = per_example, mask_bias, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _keep_mask(self, shape: tuple[Any, ...]) -> Any:
        """A float mask of 1/p (kept) and 0 (dropped) entries."""
        keep = 1.0 - self.rate
        draw = keras.random.uniform(shape, seed=self.seed_generator, dtype="float32")
        return ops.cast(draw >= self.rate, self.compute_dtype) / keep

    def _masked(self, x: Any) -> Any:
        fan_in = self.kernel.shape[0]
        if self.per_example:
            mask = self._keep_mask((ops.shape(x)[0], fan_in, self.units))
            out = ops.einsum("bi,bio->bo", x, mask * self.kernel)
            bias_shape = (ops.shape(x)[0], self.units)
        else:
            out = ops.matmul(x, self._keep_mask((fan_in, self.units)) * self.kernel)
            bias_shape = (self.units,)
        if self.bias is not None:
            out = out + (self._keep_mask(bias_shape) * self.bias if self.mask_bias else self.bias)
        return out

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        lead = ops.shape(inputs)[:-1]
        x = ops.reshape(inputs, (-1, self.kernel.shape[0]))
        if training and self.rate > 0.0:
            out = self._masked(x)
        else:
            out = ops.matmul(x, self.kernel)
            if self.bias is not None:
                out = out + self.bias
        out = ops.reshape(out, (*lead, self.units))
        return self.activation(out) if self.activation is not None else out

    def moments(self, inputs: Any) -> tuple[Any, Any]:
        """Mean and variance of the training-time pre-activation ``u`` under the mask distribution.

        With keep probability ``p = 1 - rate`` and the inverted scaling of :meth:`call`, the entries
        of ``u_j = sum_i x_i W_ij M_ij / p (+ b_j m_j / p)`` are sums of independent terms, so::

            mean_j = sum_i x_i W_ij + b_j                      = (x @ W + b)_j
            var_j  = (1 - p) / p * (sum_i x_i**2 W_ij**2 + [b_j**2 if mask_bias])

        (Wan et al. write ``p W v`` and ``p (1 - p) (W*W)(v*v)`` for unscaled weights ``W_wan = W/p``;
        it is the same distribution.) Wan's inference draws ``u ~ N(mean, var)`` per unit, applies
        the activation and averages over draws. The layer's own ``activation`` is NOT applied here.

        Args:
            inputs: a batch ``(..., in)``; the layer must be built.

        Returns:
            ``(mean, variance)``, each of shape ``(..., units)``.
        """
        x = ops.convert_to_tensor(inputs, dtype=self.compute_dtype)
        kernel = ops.cast(self.kernel, self.compute_dtype)
        mean = ops.matmul(x, kernel)
        spread = ops.matmul(ops.square(x), ops.square(kernel))
        if self.bias is not None:
            bias = ops.cast(self.bias, self.compute_dtype)
            mean = mean + bias
            if self.mask_bias:
                spread = spread + ops.square(bias)
        keep = 1.0 - self.rate
        return mean, spread * ((1.0 - keep) / keep)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "rate": self.rate, "per_example": self.per_example, "mask_bias": self.mask_bias, "seed": self.seed,
        })
        return config


def _pair(value: int | tuple[int, int], arg: str) -> tuple[int, int]:
    checks.kernel_size(arg, value)
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@keras.saving.register_keras_serializable(package="ablation")
class StochasticPooling2D(keras.layers.Layer):
    """Stochastic pooling (Zeiler & Fergus 2013) over 2-D regions, channels last.

    In each pooling region with activations ``a_1..a_n`` (assumed non-negative, e.g. after a ReLU),
    let ``p_i = a_i / sum_k a_k``.

    * Training: output one activation ``a_i`` of the region, drawn with probability ``p_i``
      (independently per example, region and channel). An all-zero region outputs 0. The
      gradient flows to the drawn element only, as for max pooling.
    * Inference: the probability-weighted average ``sum_i p_i a_i = sum a_i**2 / sum a_i``
      (0 for an all-zero region).

    Negative inputs make ``p_i`` meaningless; the zoo only builds this layer after non-negative
    activations. Spatial dimensions must be static.

    Args:
        pool_size: region size, an int or a pair.
        strides: step between regions (default: ``pool_size``, non-overlapping).
        padding: "valid" or "same" (zero padding; zeros are never drawn).
        seed: seed of the sampler (None: drawn from the global Keras seed).
    """

    def __init__(self, pool_size: int | tuple[int, int] = 2, strides: int | tuple[int, int] | None = None,
                 padding: str = "valid", seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        checks.one_of(("valid", "same"))("padding", padding)
        self.padding, self.seed = padding, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _regions(self, inputs: Any) -> Any:
        """Shape (batch, rows, cols, region_size, channels)."""
        patches = ops.image.extract_patches(inputs, self.pool_size, strides=self.strides, padding=self.padding)
        rows, cols = patches.shape[1], patches.shape[2]
        region = self.pool_size[0] * self.pool_size[1]
        return ops.reshape(patches, (-1, rows, cols, region, inputs.shape[-1]))

    def _sample(self, regions: Any) -> Any:
        cumulative = ops.cumsum(regions, axis=-2)
        total = cumulative[..., -1:, :]
        draw = keras.random.uniform(ops.shape(total), seed=self.seed_generator, dtype="float32")
        threshold = ops.cast(draw, regions.dtype) * total
        passed = ops.cast(cumulative > threshold, regions.dtype)   # 0...0 1...1 along the region
        before = ops.pad(passed[..., :-1, :], [(0, 0), (0, 0), (0, 0), (1, 0), (0, 0)])
        return ops.sum(regions * (passed - before), axis=-2)       # the first element past the draw

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        regions = self._regions(inputs)
        if training:
            return self._sample(regions)
        return ops.divide_no_nan(ops.sum(ops.square(regions), axis=-2), ops.sum(regions, axis=-2))

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        dims = []
        for size, pool, step in zip(input_shape[1:3], self.pool_size, self.strides):
            if size is None:
                dims.append(None)
            elif self.padding == "same":
                dims.append(-(-size // step))
            else:
                dims.append((size - pool) // step + 1)
        return (input_shape[0], *dims, input_shape[-1])

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "strides": self.strides,
                       "padding": self.padding, "seed": self.seed})
        return config


_SELU_SCALE, _SELU_ALPHA = 1.0507009873554805, 1.6732632423543772   # Klambauer et al. 2017
_NUMPY_ACTIVATIONS = {
    "sigmoid": lambda z, s: 1.0 / (1.0 + np.exp(-z)),
    "tanh": lambda z, s: np.tanh(z),
    "relu": lambda z, s: np.maximum(z, 0.0),
    "leaky_relu": lambda z, s: np.where(z > 0, z, s * z),
    "elu": lambda z, s: np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))),
    "selu": lambda z, s: _SELU_SCALE * np.where(z > 0, z, _SELU_ALPHA * np.expm1(np.minimum(z, 0.0))),
    "gelu": lambda z, s: 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0))),
    "swish": lambda z, s: z / (1.0 + np.exp(-z)),
    "softplus": lambda z, s: np.logaddexp(0.0, z),
    "linear": lambda z, s: z,
}


def activation_gain(activation: str, leaky_slope: float = 0.01) -> float:
    """The gain ``gamma = 1 / sqrt(Var[f(z)])``, ``z ~ N(0, 1)``, of a nonlinearity ``f``.

    Brock et al. (2021) multiply by this constant so that a unit-variance signal passed through
    ``f`` has unit variance again; for ReLU it is ``sqrt(2 / (1 - 1/pi)) ~ 1.7139``. Computed here
    by numerical integration (trapezoid rule on [-12, 12], step 1e-3), not copied from a table.

    Args:
        activation: one of ``checks.ACTIVATIONS``.
        leaky_slope: negative slope used for "leaky_relu".

    Returns:
        gamma as a Python float ("linear" gives 1.0).
    """
    checks.one_of(checks.ACTIVATIONS)("activation", activation)
    z = np.linspace(-12.0, 12.0, 24001)
    weights = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    f = _NUMPY_ACTIVATIONS[activation](z, leaky_slope)
    mean = np.trapezoid(f * weights, z)
    var = np.trapezoid(f**2 * weights, z) - mean**2
    return float(1.0 / math.sqrt(var))


@keras.saving.register_keras_serializable(package="ablation")
class ScaledWSDense(_DenseLike):
    """Dense layer with scaled weight standardization (Brock et al. 2021, NF-ResNets / NFNets).

    The raw ``kernel`` (shape ``(fan_in, units)``) is standardized per output unit ``j`` over its
    fan-in before every use::

        W_hat[:, j] = gain * unit_gain[j] * (W[:, j] - mean_j) / sqrt(max(fan_in * var_j, eps))

    so each column of ``W_hat`` has mean 0 and standard deviation ``gain * unit_gain[j] / sqrt(fan_in)``
    (population statistics). ``unit_gain`` is a learnable per-unit gain initialized to 1.

    ``gain`` is the fixed, activation-specific constant ``gamma = 1/sqrt(Var[f(z)])``,
    ``z ~ N(0, 1)`` (see :func:`activation_gain`; ReLU: ``sqrt(2/(1 - 1/pi)) ~ 1.7139``): it undoes
    the variance change of the nonlinearity ``f`` that FEEDS this layer. ``zoo.mlp`` passes 1.0 to
    the first hidden layer (its input is the data) and ``activation_gain(activation)`` to the others.
    ``eps = 1e-4`` guards against a zero-variance column (this suite's choice).

    Args:
        units: output width.
        gain: the fixed gain constant gamma.
        activation: optional activation applied after the affine map.
        use_bias: add a bias.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as for ``keras.layers.Dense`` (they act on the raw kernel).
        eps: floor of ``fan_in * var`` in the standardization.
    """

    def __init__(self, units: int, gain: float = 1.0, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "lecun_normal", bias_initializer: Any = "zeros",
                 kernel_regularizer: Any = None, bias_regularizer: Any = None,
                 kernel_constraint: Any = None, bias_constraint: Any = None, eps: float = 1e-4,
                 **kwargs: Any) -> None:
        super().__init__(units, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                         bias_regularizer, kernel_constraint, bias_constraint, **kwargs)
        if not (isinstance(gain, (int, float)) and not isinstance(gain, bool) and gain > 0):
            raise checks.invalid("gain", "a positive float", gain)
        self.gain, self.eps = float(gain), float(eps)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        self.unit_gain = self.add_weight(name="unit_gain", shape=(self.units,), initializer="ones")

    def standardized_kernel(self) -> Any:
        """The kernel actually used in the forward pass, ``W_hat`` above."""
        kernel = ops.cast(self.kernel, "float32")      # statistics in float32 under mixed precision
        fan_in = kernel.shape[0]
        mean = ops.mean(kernel, axis=0, keepdims=True)
        var = ops.var(kernel, axis=0, keepdims=True)
        scale = ops.rsqrt(ops.maximum(var * fan_in, self.eps)) * (self.gain * ops.cast(self.unit_gain, "float32"))
        return (kernel - mean) * scale

    def call(self, inputs: Any) -> Any:
        out = ops.matmul(inputs, ops.cast(self.standardized_kernel(), self.compute_dtype))
        if self.bias is not None:
            out = out + self.bias
        return self.activation(out) if self.activation is not None else out

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "gain": self.gain, "eps": self.eps,
        })
        return config
