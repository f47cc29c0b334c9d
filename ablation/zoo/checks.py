"""Argument validation for the zoo builders: the one source of truth.

``mlp()`` and ``cnn()`` call :func:`validate` on their arguments, and the study-file parser calls
it (through ``zoo.check_args``) without building anything, so a bad study file fails before any
trial starts. Every failure is one ``ValueError`` in the Keras style, naming the argument, the
expectation and the received value::

    Invalid value for argument 'dropout': expected a float in [0, 1). Received: dropout=1.5

This module does not import Keras at import time; only initializer configs are checked with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ablation.base import checks as _checks
from ablation.base.checks import invalid

ACTIVATIONS: tuple[str, ...] = (
    "sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish", "softplus", "linear",
)
"""Hidden-layer activations the builders accept."""

OUTPUT_ACTIVATIONS: tuple[str, ...] = ("softmax", "log_softmax", "sigmoid", "linear")
"""Values of ``output_activation`` other than ``None`` (logits)."""

DROPOUT_KINDS: tuple[str, ...] = ("standard", "gaussian", "alpha")
POOLINGS: tuple[str, ...] = ("max", "average", "stochastic")
BATCHNORM_MODES: tuple[Any, ...] = (False, True, "before", "after")
NONNEGATIVE_ACTIVATIONS: tuple[str, ...] = ("relu", "sigmoid", "softplus")
"""Activations whose outputs are >= 0: the ones stochastic pooling can sample from."""


_is_real = _checks.is_real
_is_int = _checks.is_int


def _positive_ints(value: Any, allow_empty: bool) -> bool:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return False
    return (allow_empty or len(value) > 0) and all(_is_int(v) and v > 0 for v in value)


# ---- single-value checkers: each raises invalid(...) or returns None ----

def rate(arg: str, value: Any) -> None:
    """A drop rate in [0, 1)."""
    if not (_is_real(value) and 0.0 <= value < 1.0):
        raise invalid(arg, "a float in [0, 1)", value)


def nonnegative(arg: str, value: Any) -> None:
    """A finite float >= 0 (penalty strengths)."""
    if not (_is_real(value) and value >= 0.0):
        raise invalid(arg, "a finite float >= 0", value)


def positive_int(arg: str, value: Any) -> None:
    if not (_is_int(value) and value > 0):
        raise invalid(arg, "a positive integer", value)


def boolean(arg: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise invalid(arg, "True or False", value)


def name(arg: str, value: Any) -> None:
    if not (isinstance(value, str) and value.strip()):
        raise invalid(arg, "a non-empty string", value)


def one_of(options: tuple[Any, ...]) -> Callable[[str, Any], None]:
    """A checker accepting exactly the given options."""
    def same(option: Any, value: Any) -> bool:  # True must not match 1, nor False match 0
        if isinstance(option, bool) or isinstance(value, bool):
            return option is value
        return type(option) is type(value) and option == value

    def check(arg: str, value: Any) -> None:
        if not any(same(o, value) for o in options):
            raise invalid(arg, f"one of {options}", value)
    return check


def input_shape(arg: str, value: Any) -> None:
    if not _positive_ints(value, allow_empty=False):
        raise invalid(arg, "a non-empty tuple of positive integers", value)


def layer_sizes(allow_empty: bool) -> Callable[[str, Any], None]:
    """A checker for a sequence of layer widths / filter counts."""
    what = "a sequence of positive integers" if allow_empty else "a non-empty sequence of positive integers"

    def check(arg: str, value: Any) -> None:
        if not _positive_ints(value, allow_empty):
            raise invalid(arg, what, value)
    return check


def max_norm(arg: str, value: Any) -> None:
    """None or 0 (no constraint) or a positive float bound."""
    if value is not None and not (_is_real(value) and value >= 0.0):
        raise invalid(arg, "None, 0 (off) or a positive float", value)


def residual_scale(arg: str, value: Any) -> None:
    if not (_is_real(value) and 0.0 < value <= 1.0):
        raise invalid(arg, "a float in (0, 1]", value)


def leaky_slope(arg: str, value: Any) -> None:
    if not (_is_real(value) and 0.0 <= value < 1.0):
        raise invalid(arg, "a float in [0, 1)", value)


def output_activation(arg: str, value: Any) -> None:
    if value is not None and value not in OUTPUT_ACTIVATIONS:
        raise invalid(arg, f"None (logits) or one of {OUTPUT_ACTIVATIONS}", value)


def kernel_size(arg: str, value: Any) -> None:
    if _is_int(value) and value > 0:
        return
    if not (_positive_ints(value, allow_empty=False) and len(value) == 2):
        raise invalid(arg, "a positive integer or a pair of positive integers", value)


AUTO_INITIALIZERS = ("auto", "auto_standard")
"""The kernel_initializer rules that follow the activation (``zoo.mlp.make_initializer`` says what each gives)."""

_INIT_EXPECTED = ("'auto', 'auto_standard', a Keras initializer name, config dict or instance, "
                  "or a positive float (stddev of a zero-mean Gaussian)")


def kernel_initializer(arg: str, value: Any) -> None:
    """'auto' / 'auto_standard', a positive float, or anything keras.initializers.get accepts."""
    if isinstance(value, str) and value in AUTO_INITIALIZERS:
        return
    if _is_real(value):
        if value > 0:
            return
        raise invalid(arg, _INIT_EXPECTED, value)
    if not isinstance(value, (str, Mapping)) and not callable(value):
        raise invalid(arg, _INIT_EXPECTED, value)
    import keras

    try:
        keras.initializers.get(dict(value) if isinstance(value, Mapping) else value)
    except (ValueError, TypeError, KeyError) as err:
        raise invalid(arg, _INIT_EXPECTED, value) from err


MLP_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "input_shape": input_shape, "num_classes": positive_int, "hidden": layer_sizes(allow_empty=False),
    "activation": one_of(ACTIVATIONS), "output_activation": output_activation,
    "kernel_initializer": kernel_initializer, "dropout": rate, "input_dropout": rate,
    "dropout_kind": one_of(DROPOUT_KINDS), "dropconnect": rate, "dropconnect_per_example": boolean,
    "l1": nonnegative, "l2": nonnegative,
    "activity_l1": nonnegative, "max_norm": max_norm, "batchnorm": one_of(BATCHNORM_MODES),
    "weight_standardization": boolean, "residual": boolean, "residual_scale": residual_scale,
    "leaky_slope": leaky_slope, "name": name,
}
"""Every keyword argument of ``mlp()`` and its checker (a test keeps this equal to the signature)."""

CNN_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "input_shape": input_shape, "num_classes": positive_int, "filters": layer_sizes(allow_empty=False),
    "kernel_size": kernel_size, "pooling": one_of(POOLINGS), "pool_size": positive_int,
    "dense": layer_sizes(allow_empty=True), "activation": one_of(ACTIVATIONS), "dropout": rate, "name": name,
}
"""Every keyword argument of ``cnn()`` and its checker."""

BUILDER_CHECKS: dict[str, dict[str, Callable[[str, Any], None]]] = {"mlp": MLP_CHECKS, "cnn": CNN_CHECKS}


def _check_combinations(builder: str, args: Mapping[str, Any]) -> None:
    """Checks that involve two arguments."""
    if builder == "mlp" and args.get("dropconnect", 0.0) > 0 and args.get("weight_standardization", False):
        raise ValueError(
            "Invalid value for argument 'dropconnect': expected 0 when weight_standardization=True "
            "(a hidden layer is either DropConnectDense or ScaledWSDense). "
            f"Received: dropconnect={args['dropconnect']!r}")
    if builder == "cnn" and args.get("pooling") == "stochastic":
        act = args.get("activation", "relu")
        if act not in NONNEGATIVE_ACTIVATIONS:
            raise ValueError(
                "Invalid value for argument 'activation': stochastic pooling samples with p_i = a_i / sum(a) "
                f"and needs a non-negative activation, one of {NONNEGATIVE_ACTIVATIONS}. "
                f"Received: activation={act!r}")
    if builder == "cnn" and "input_shape" in args:
        _check_image_shape(args["input_shape"], args.get("filters", ()), args.get("pool_size", 1))


def _check_image_shape(shape: Sequence[int], filters: Sequence[int], pool_size: int) -> None:
    """A CNN input must be an image (or a flat square) that survives every pooling stage."""
    dims = tuple(shape)
    if len(dims) > 3 or len(dims) == 1 and math.isqrt(dims[0]) ** 2 != dims[0]:
        raise invalid("input_shape", "(height, width, channels), (height, width), or a flat length "
                      "that is a perfect square", shape)
    side = math.isqrt(dims[0]) if len(dims) == 1 else min(dims[:2])
    if side < pool_size ** len(filters):
        raise invalid("input_shape", f"height and width >= pool_size**len(filters) = "
                      f"{pool_size ** len(filters)}", shape)


def validate(builder: str, args: Mapping[str, Any], model: str | None = None,
             defaults: Mapping[str, Any] | None = None) -> None:
    """Check every given argument of ``builder`` ('mlp' or 'cnn'); absent ones are not required here.

    Args:
        builder: "mlp" or "cnn".
        args: keyword arguments as they would be passed to the builder.
        model: the model name to quote in the unknown-argument error (defaults to ``builder``).
        defaults: the builder's defaults, filled in for the checks that combine arguments
            (the builders pass every argument, so they need none).

    Raises:
        ValueError: for an unknown argument or a value the builder would reject.
    """
    checks = BUILDER_CHECKS[builder]
    for key, value in args.items():
        if key not in checks:
            raise ValueError(
                f"Unrecognized argument '{key}' for model '{model or builder}': expected one of "
                f"{tuple(checks)}. Received: {key}={value!r}")
        checks[key](key, value)
    _check_combinations(builder, {**(defaults or {}), **args})
