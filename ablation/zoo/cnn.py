"""``cnn()``: the small convolutional net used by the pooling study (Zeiler & Fergus 2013).

Layers, with i counting every hidden layer (convolutional first, then dense) so that ``act_i``
has depth i as in the MLP contract::

    input -> [reshape] -> (conv_i -> act_i -> pool_i) x len(filters) -> flatten
          -> (dense_i -> act_i -> [dropout_i]) x len(dense) -> logits

Convolutions use "same" padding and stride 1; pooling regions are ``pool_size`` x ``pool_size``
with stride ``pool_size``. A flat input whose length is a perfect square (784, 64) is reshaped
to ``(s, s, 1)`` inside the model, an ``(h, w)`` input to ``(h, w, 1)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import keras

from ablation.zoo import checks
from ablation.zoo.layers import StochasticPooling2D
from ablation.zoo.mlp import activation_layer, logits_head, make_initializer


def _image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 1:
        side = math.isqrt(shape[0])
        return (side, side, 1)
    return (*shape, 1) if len(shape) == 2 else shape  # type: ignore[return-value]


def _pool(pooling: str, size: int, name: str) -> keras.layers.Layer:
    if pooling == "stochastic":
        return StochasticPooling2D(pool_size=size, name=name)
    layer = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D
    return layer(pool_size=size, name=name)


def cnn(*, input_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10, filters: Sequence[int] = (32, 64),
        kernel_size: int | Sequence[int] = 5, pooling: str = "max", pool_size: int = 2,
        dense: Sequence[int] = (128,), activation: str = "relu", dropout: float = 0.0,
        name: str = "cnn") -> keras.Model:
    """Build a small CNN that outputs logits.

    Args:
        input_shape: ``(h, w, c)``, ``(h, w)`` or a flat perfect-square length such as ``(784,)``.
        num_classes: width of the ``logits`` layer.
        filters: channels of each conv layer (each followed by its activation and a pooling layer).
        kernel_size: conv kernel size (int or pair).
        pooling: "max", "average" or "stochastic" (``StochasticPooling2D``; needs a non-negative
            activation: relu, sigmoid or softplus).
        pool_size: side of the pooling regions (also their stride).
        dense: widths of the hidden dense layers after flattening (may be empty).
        activation: one of ``ACTIVATIONS``; kernels use the "auto" initializer rule of ``mlp()``.
        dropout: DROP rate after each hidden dense layer (keep probability p gives ``1 - p``).
        name: model name.

    Returns:
        An uncompiled functional ``keras.Model``.
    """
    checks.validate("cnn", dict(locals()))
    input_shape, num_classes, pool_size = tuple(map(int, input_shape)), int(num_classes), int(pool_size)
    filters, dense = tuple(map(int, filters)), tuple(map(int, dense))
    kernel_size = int(kernel_size) if isinstance(kernel_size, numbers.Integral) else tuple(map(int, kernel_size))
    image = _image_shape(input_shape)
    opts = {"kernel_initializer": "auto", "activation": activation,
            "kernel_regularizer": None, "kernel_constraint": None}
    inputs = keras.Input(shape=tuple(input_shape), name="input")
    x = inputs if tuple(input_shape) == image else keras.layers.Reshape(image, name="reshape")(inputs)
    for i, channels in enumerate(filters, start=1):
        x = keras.layers.Conv2D(channels, kernel_size, padding="same", name=f"conv_{i}",
                                kernel_initializer=make_initializer("auto", activation, i))(x)
        x = activation_layer(activation, 0.01, 0.0, f"act_{i}")(x)
        x = _pool(pooling, pool_size, f"pool_{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(dense, start=len(filters) + 1):
        x = keras.layers.Dense(units, name=f"dense_{i}",
                               kernel_initializer=make_initializer("auto", activation, i))(x)
        x = activation_layer(activation, 0.01, 0.0, f"act_{i}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(float(dropout), name=f"dropout_{i}")(x)
    depth = len(filters) + len(dense) + 1
    return keras.Model(inputs, logits_head(x, num_classes, None, opts, depth), name=name)
