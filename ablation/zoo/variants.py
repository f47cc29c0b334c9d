"""Registered paper variants: a docstring with the reference, the arguments, a call to the builder.

Shapes are the papers'; drop rates are ``1 - keep probability`` (papers write the keep
probability p: hidden p = 0.5 -> ``dropout=0.5``, input p = 0.8 -> ``input_dropout=0.2``).
Where a paper (as summarized in docs/claims.md) gives no number, the value is this suite's choice
and the docstring says so. MNIST variants default to ``input_shape=(784,)``, ``num_classes=10``;
every argument can be overridden: ``create("hinton2012_mnist", input_shape=(40,))``.
"""

from __future__ import annotations

from typing import Any

import keras

from ablation.zoo.registry import build_variant, register

MNIST: dict[str, Any] = {"input_shape": (784,), "num_classes": 10}
_SRIVASTAVA = {**MNIST, "activation": "relu", "dropout": 0.5, "input_dropout": 0.2}


@register("mlp", **_SRIVASTAVA, hidden=(2048, 2048, 2048), max_norm=2.0)
def srivastava2014_mnist(**overrides: Any) -> keras.Model:
    """784-2048-2048-2048-10 ReLU, dropout (p = 0.5 hidden, 0.8 input) + max-norm c = 2.

    Srivastava et al. (2014), JMLR 15, Fig. 4 / Table 2 ("3 layers, 2048 units"). 10,020,874 parameters.
    """
    return build_variant("srivastava2014_mnist", overrides)


@register("mlp", **_SRIVASTAVA, hidden=(1024, 1024, 2048))
def srivastava2014_size(**overrides: Any) -> keras.Model:
    """784-1024-1024-2048-10 ReLU with dropout (p = 0.5 hidden, 0.8 input).

    Srivastava et al. (2014), Fig. 10 (training-set size) and Table 9 (regularizer comparison).
    """
    return build_variant("srivastava2014_size", overrides)


@register("mlp", **{**_SRIVASTAVA, "activation": "sigmoid"}, hidden=(1024,) * 3)
def srivastava2014_logistic_3x1024(**overrides: Any) -> keras.Model:
    """Dropout NN, logistic units, 3 x 1024 (Srivastava et al. 2014, Table 2: 1.35% on MNIST)."""
    return build_variant("srivastava2014_logistic_3x1024", overrides)


@register("mlp", **_SRIVASTAVA, hidden=(1024,) * 3)
def srivastava2014_relu_3x1024(**overrides: Any) -> keras.Model:
    """Dropout NN, ReLU, 3 x 1024 (Srivastava et al. 2014, Table 2: 1.25%)."""
    return build_variant("srivastava2014_relu_3x1024", overrides)


@register("mlp", **_SRIVASTAVA, hidden=(1024,) * 3, max_norm=2.0)
def srivastava2014_relu_3x1024_maxnorm(**overrides: Any) -> keras.Model:
    """Dropout NN + max-norm (c = 2), ReLU, 3 x 1024 (Srivastava et al. 2014, Table 2: 1.06%)."""
    return build_variant("srivastava2014_relu_3x1024_maxnorm", overrides)


@register("mlp", **_SRIVASTAVA, hidden=(4096,) * 2, max_norm=2.0)
def srivastava2014_relu_2x4096_maxnorm(**overrides: Any) -> keras.Model:
    """Dropout NN + max-norm (c = 2), ReLU, 2 x 4096 (Srivastava et al. 2014, Table 2: 1.01%)."""
    return build_variant("srivastava2014_relu_2x4096_maxnorm", overrides)


@register("mlp", **_SRIVASTAVA, hidden=(8192,) * 2, max_norm=2.0)
def srivastava2014_relu_2x8192_maxnorm(**overrides: Any) -> keras.Model:
    """Dropout NN + max-norm (c = 2), ReLU, 2 x 8192 (Srivastava et al. 2014, Table 2: 0.95%)."""
    return build_variant("srivastava2014_relu_2x8192_maxnorm", overrides)


@register("mlp", **MNIST, hidden=(800, 800), activation="sigmoid")
def srivastava2014_standard_2x800(**overrides: Any) -> keras.Model:
    """Standard neural net without dropout, 2 x 800 (Simard et al. 2003, as listed in Srivastava
    et al. 2014, Table 2: 1.60%). Table 2 lists its units as logistic, hence ``sigmoid``."""
    return build_variant("srivastava2014_standard_2x800", overrides)


@register("mlp", **MNIST, hidden=(800, 800), activation="relu", dropout=0.5, input_dropout=0.2, max_norm=2.0)
def hinton2012_mnist(**overrides: Any) -> keras.Model:
    """784-800-800-10 with 50% dropout, 20% input dropout and a per-unit weight-norm bound.

    Hinton et al. (2012), arXiv:1207.0580 (~110 test errors on MNIST). docs/claims.md gives neither the
    unit type nor the bound: ReLU and ``max_norm=2.0`` (Srivastava's MNIST c) are this suite's
    choices; override ``max_norm=None`` for the plain dropout net.
    """
    return build_variant("hinton2012_mnist", overrides)


_IOFFE = {**MNIST, "hidden": (100, 100, 100), "activation": "sigmoid", "kernel_initializer": 0.01}


@register("mlp", **_IOFFE)
def ioffe2015_mnist(**overrides: Any) -> keras.Model:
    """3 x 100 sigmoid MLP with small random Gaussian initialization, no batch norm.

    Ioffe & Szegedy (2015), Fig. 1(a) baseline. The paper says "small random Gaussian values";
    the stddev 0.01 is this suite's choice (override ``kernel_initializer``).
    """
    return build_variant("ioffe2015_mnist", overrides)


@register("mlp", **_IOFFE, batchnorm="before")
def ioffe2015_mnist_bn(**overrides: Any) -> keras.Model:
    """:func:`ioffe2015_mnist` with batch normalization of every hidden layer's pre-activation
    (BN between the affine map and the sigmoid, as in Ioffe & Szegedy 2015, Fig. 1(a))."""
    return build_variant("ioffe2015_mnist_bn", overrides)


@register("mlp", **MNIST, hidden=(800, 800), activation="relu")
def wan2013_mnist(**overrides: Any) -> keras.Model:
    """2 x 800 ReLU MLP without dropping (Wan et al. 2013, MNIST baseline: ~1.62%, approx.)."""
    return build_variant("wan2013_mnist", overrides)


@register("mlp", **MNIST, hidden=(800, 800), activation="relu", dropconnect=0.5)
def wan2013_mnist_dropconnect(**overrides: Any) -> keras.Model:
    """2 x 800 ReLU MLP whose hidden layers are DropConnect with keep p = 0.5 (Wan et al. 2013;
    ~1.20%, approx.). Masks are drawn per example and cover the biases, as in the paper."""
    return build_variant("wan2013_mnist_dropconnect", overrides)


@register("mlp", **MNIST, hidden=(1000, 1000, 1000), activation="relu", activity_l1=1e-4)
def glorot2011_mnist(**overrides: Any) -> keras.Model:
    """3 x 1000 ReLU MLP with an L1 penalty on the hidden activations (Glorot, Bordes & Bengio 2011,
    "Deep Sparse Rectifier Neural Networks"). The strength 1e-4 is this suite's choice."""
    return build_variant("glorot2011_mnist", overrides)


@register("mlp", input_shape=(40,), num_classes=10, hidden=(100, 100), activation="relu")
def mnist1d_mlp(**overrides: Any) -> keras.Model:
    """40-100-100-10 ReLU MLP, the MNIST-1D reference MLP (greydanus/mnist1d: ~68% test accuracy)."""
    return build_variant("mnist1d_mlp", overrides)


@register("mlp", **MNIST, hidden=(128,) * 8, activation="selu", kernel_initializer="lecun_normal",
          dropout=0.05, dropout_kind="alpha")
def snn_selu(**overrides: Any) -> keras.Model:
    """Self-normalizing network: deep SELU MLP, LeCun-normal init, alpha dropout (Klambauer et al.
    2017). Depth x width 8 x 128 (as Hendrycks & Gimpel's MNIST MLP) and the alpha-dropout rate
    0.05 are this suite's choices."""
    return build_variant("snn_selu", overrides)


@register("cnn", input_shape=(28, 28, 1), num_classes=10, pooling="stochastic")
def zeiler2013_cnn(**overrides: Any) -> keras.Model:
    """Small CNN with stochastic pooling (Zeiler & Fergus 2013; MNIST ~0.47%, approx.). The
    architecture is this suite's ``cnn()`` default (2 conv layers 32/64 of 5x5, 2x2 pooling,
    128-unit dense layer), not the paper's; override ``pooling`` for the max/average baselines."""
    return build_variant("zeiler2013_cnn", overrides)
