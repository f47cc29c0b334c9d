"""The registry of named models (timm style): the registry IS the list of models.

A variant is registered with its builder ("mlp" or "cnn") and its arguments::

    @register("mlp", hidden=(800, 800), dropout=0.5)
    def hinton2012_mnist(**overrides):
        '''Hinton et al. 2012 ...'''
        return build_variant("hinton2012_mnist", overrides)

``create(name, **overrides)`` builds any variant, or the plain builders under the names "mlp" and
"cnn". ``check_args`` validates a (merged) argument set without building anything, with the same
checks the builders run. A duplicate name warns and replaces; an unknown name raises and lists
what exists.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import keras

from ablation.zoo import checks
from ablation.zoo.cnn import cnn
from ablation.zoo.mlp import mlp

BUILDERS: dict[str, Callable[..., keras.Model]] = {"mlp": mlp, "cnn": cnn}


@dataclass(frozen=True)
class Variant:
    """One registered model: its function, its builder's name and its default arguments."""

    fn: Callable[..., keras.Model]
    builder: str
    args: Mapping[str, Any]


_REGISTRY: dict[str, Variant] = {}


def _defaults(builder: str) -> dict[str, Any]:
    """The builder's default argument values (for the checks that combine arguments)."""
    params = inspect.signature(BUILDERS[builder]).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


def register(builder: str, **args: Any) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator: register the decorated function under its ``__name__``.

    Args:
        builder: "mlp" or "cnn".
        **args: the variant's arguments to the builder (validated now, without building).

    Returns:
        The decorator; the function itself is returned unchanged.
    """
    if builder not in BUILDERS:
        raise checks.invalid("builder", f"one of {tuple(BUILDERS)}", builder)
    checks.validate(builder, args, defaults=_defaults(builder))

    def decorate(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        name = fn.__name__
        if name in BUILDERS:
            raise checks.invalid("name", f"a name other than the builders {tuple(BUILDERS)}", name)
        if name in _REGISTRY:
            warnings.warn(f"Model '{name}' is already registered; the new definition replaces it.", stacklevel=2)
        _REGISTRY[name] = Variant(fn, builder, dict(args))
        return fn
    return decorate


def list_models() -> list[str]:
    """Names of every registered variant, sorted (the plain builders "mlp" and "cnn" excluded)."""
    return sorted(_REGISTRY)


def _variant(name: str) -> Variant:
    if name not in _REGISTRY:
        known = ", ".join(["mlp", "cnn", *list_models()])
        raise ValueError(f"Unknown model '{name}': expected 'mlp', 'cnn' or a registered variant "
                         f"({known}). Received: name={name!r}")
    return _REGISTRY[name]


def variant_args(name: str) -> dict[str, Any]:
    """A copy of the arguments registered for ``name`` ({} for "mlp" and "cnn")."""
    return {} if name in BUILDERS else dict(_variant(name).args)


def effective_args(name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments ``create(name, **args)`` builds with: the builder's defaults, then ``name``'s registered
    arguments, then ``args``."""
    return {**_defaults(builder_of(name)), **variant_args(name), **args}


def builder_of(name: str) -> str:
    """The builder ("mlp" or "cnn") behind a model name."""
    return name if name in BUILDERS else _variant(name).builder


def argument_names(name: str) -> tuple[str, ...]:
    """Keyword arguments accepted by ``create(name, ...)`` (those of its builder)."""
    return tuple(inspect.signature(BUILDERS[builder_of(name)]).parameters)


def required_arguments(name: str) -> tuple[str, ...]:
    """Arguments ``create(name, ...)`` needs besides ``input_shape``/``num_classes`` (which come from
    the data): the builder's parameters without a default that the variant does not set."""
    given = variant_args(name)
    params = inspect.signature(BUILDERS[builder_of(name)]).parameters.values()
    return tuple(p.name for p in params if p.default is inspect.Parameter.empty
                 and p.kind is not inspect.Parameter.VAR_KEYWORD and p.name not in given
                 and p.name not in ("input_shape", "num_classes"))


def check_args(name: str, /, **args: Any) -> dict[str, Any]:
    """Merge ``name``'s registered arguments with ``args`` and validate every value.

    Checks exactly what the builder checks; ``input_shape``/``num_classes`` may be absent (they come
    from the data set at run time). Values are returned as given, not normalized.

    Returns:
        The merged argument dict (variant arguments overridden by ``args``).

    Raises:
        ValueError: unknown model, unknown argument or invalid value.
    """
    merged = {**variant_args(name), **args}
    builder = builder_of(name)
    checks.validate(builder, merged, model=name, defaults=_defaults(builder))
    return merged


def build_variant(name: str, overrides: Mapping[str, Any]) -> keras.Model:
    """Call the builder of variant ``name`` with its arguments, ``name=name`` and ``overrides``."""
    variant = _variant(name)
    checks.validate(variant.builder, overrides, model=name)
    return BUILDERS[variant.builder](**{**variant.args, "name": name, **overrides})


def create(name: str, /, **overrides: Any) -> keras.Model:
    """Build model ``name`` ("mlp", "cnn" or a registered variant) with ``overrides`` applied."""
    if name in BUILDERS:
        checks.validate(name, overrides)
        return BUILDERS[name](**overrides)
    return _variant(name).fn(**overrides)
