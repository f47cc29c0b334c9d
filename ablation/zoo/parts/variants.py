"""A model without some of its components, rebuilt from the model itself (no change to the user's code).

A variant is named by one string, the value of a generated study's ``ablate`` axis:

- ``"full"``: every component kept;
- ``"-<id>"``: component ``<id>`` removed (a leave-one-component-out arm);
- ``"bare"``: every component of the default kinds removed;
- ``"+<id>"``: the bare model with component ``<id>`` put back (an add-one arm).

:func:`apply` clones the model layer by layer (``keras.models.clone_model``): a removed Dropout or
normalization layer is skipped (its input flows on; in a Sequential model it becomes
``keras.layers.Identity``), a removed kernel regularizer or constraint is set to None in the
layer's config, a removed residual ``Add`` passes its main branch only, a swapped activation
becomes linear, a halved width sets the layer's ``units`` / ``filters`` to half (rounded up); the
layers after it are built anew for their new input shapes. Every variant, ``"full"`` included, is a
clone, so its weights are freshly initialized from the trial's seed like any trial's model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ablation.zoo.parts.components import (DEFAULT_KINDS, KINDS, WIDTH_LAYERS, Component, by_id, check_rebuildable,
                                           discover, halved)

FULL = "full"
BARE = "bare"
AXIS = "ablate"  # the model argument (grid axis) that names a variant; ablation.trials.factory applies it


def name_of(removed: str | None = None, added: str | None = None) -> str:
    """The variant string of one arm: ``-<id>``, ``+<id>``, or ``full`` / ``bare``."""
    return f"-{removed}" if removed else f"+{added}" if added else FULL


def parse(variant: Any) -> tuple[str, str | None]:
    """``(mode, id)`` of a variant string: ``("full", None)``, ``("bare", None)``, ``("-", id)``, ``("+", id)``.

    Raises:
        ValueError: not one of those forms.
    """
    if isinstance(variant, str):
        if variant in (FULL, BARE):
            return variant, None
        if len(variant) > 1 and variant[0] in "-+":
            return variant[0], variant[1:]
    raise ValueError(f"Invalid value for argument '{AXIS}': expected \"full\", \"bare\", \"-<component id>\" or "
                     f"\"+<component id>\". Received: {AXIS}={variant!r}")


def removed_by(variant: str, components: Sequence[Component]) -> list[Component]:
    """The components a variant removes (an unknown id is a ValueError naming the valid ones)."""
    mode, cid = parse(variant)
    if mode == FULL:
        return []
    if mode == "-":
        return by_id(components, [cid])
    everything = [c for c in components if c.kind in DEFAULT_KINDS]
    if mode == BARE:
        return everything
    kept = by_id(components, [cid])[0]
    return [c for c in everything if c.id != kept.id]


def apply(model: Any, variant: str) -> Any:
    """A freshly initialized copy of ``model`` with the components ``variant`` names removed.

    Args:
        model: a built functional or Sequential ``keras.Model`` (from the user's function or a file).
        variant: see the module docstring.

    Raises:
        NotRebuildable: a subclassed model.
        ValueError: a malformed variant or an unknown component id.
    """
    check_rebuildable(model)
    components = discover(model, KINDS)
    return without(model, removed_by(variant, components))


def rebuildable(model: Any, components: Sequence[Component]) -> list[Component]:
    """The components whose removal alone leaves a model that builds (a halved layer whose output must
    match another branch's width, as one input of a residual ``Add``, does not)."""
    out = []
    for c in components:
        try:
            without(model, [c])
        except (ValueError, TypeError):  # Keras' shape errors: "Inputs have incompatible shapes ..."
            continue
        out.append(c)
    return out


def without(model: Any, removed: Sequence[Component]) -> Any:
    """A clone of ``model`` (fresh weights) without the given components."""
    import keras

    skip = {c.layer for c in removed if c.kind in ("dropout", "normalization") or
            (c.kind == "activation" and "." not in c.id)}
    main = {c.layer: c.main for c in removed if c.kind == "residual"}
    edits: dict[str, dict[str, Any]] = {}
    for c in removed:
        if c.kind in ("regularizer", "constraint"):
            edits.setdefault(c.layer, {})[c.id.rpartition(".")[2]] = None
        elif c.kind == "activation" and "." in c.id:
            edits.setdefault(c.layer, {})["activation"] = "linear"
    halve = {c.layer for c in removed if c.kind == "width"}
    sequential = isinstance(model, keras.Sequential)

    def clone_layer(layer: Any) -> Any:
        if sequential and layer.name in skip:
            return keras.layers.Identity(name=layer.name)
        config = layer.get_config()
        config.update(edits.get(layer.name, {}))
        if layer.name in halve:
            key = WIDTH_LAYERS[type(layer).__name__]
            config[key] = halved(config[key])
        return layer.__class__.from_config(config)

    def call_layer(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if layer.name in skip:
            return args[0]
        if layer.name in main:
            return args[0][main[layer.name]]
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=clone_layer,
                                    call_function=None if sequential else call_layer)
