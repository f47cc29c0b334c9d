"""The parts of a built Keras model that an ablation study can take out, each with a stable id.

A component is one thing whose removal (or replacement) leaves a model that still builds and
trains, so that a leave-one-component-out (LOCO) study can train the model without it:

============== ================================================================ =====================
kind           what is found                                                    removal
============== ================================================================ =====================
dropout        ``Dropout``, ``AlphaDropout``, ``GaussianDropout``,              the layer is skipped
               ``GaussianNoise``, ``SpatialDropout1D/2D/3D`` layers             (identity)
normalization  ``BatchNormalization``, ``LayerNormalization``,                  the layer is skipped
               ``GroupNormalization`` layers                                    (identity)
regularizer    each layer's ``kernel_regularizer``                              set to None
constraint     each layer's ``kernel_constraint``                               set to None
residual       an ``Add`` of two inputs one of which is an ancestor of the      the main branch only
               other (the identity skip path of He et al. 2016)
activation     (only when asked) a hidden layer's activation, or an             linear (identity)
               ``Activation`` / ``ReLU`` / ... layer that is not the output
width          (only when asked) the ``units`` of a ``Dense`` or the ``filters``  halved (rounded up,
               of a ``Conv1D/2D/3D`` layer that is not an output layer          at least 1)
============== ================================================================ =====================

The five kinds above ``activation`` are found by default; activations and widths are asked for by
name, since every hidden layer has them and a LOCO study of them all is rarely what is meant. An
output layer is the last ``Dense`` / ``Conv`` layer on a path to a model output (only layers such as
``Activation``, ``Dropout`` or ``Reshape`` after it): its width is the task's, so it is never offered.
A halved layer's successors are rebuilt for their new input shapes (every variant is freshly
initialized anyway); a layer whose width must match another branch's (one input of a residual
``Add``) cannot be halved alone: ``ablation components`` and ``ablation ablate`` leave it out
(``variants.rebuildable``).

**Ids.** A layer component's id is its layer's name when the name is the user's own; a name
Keras gave (``dropout``, ``dropout_1``, ... from a per-session counter) is replaced by the name
Keras gives that layer in a fresh session (``<class in snake case>`` for the first layer of its
class in the model, ``<class>_<k>`` for the k+1-th), so the id does not depend on what else the
process built before. An attribute component adds the attribute: ``dense_1.kernel_regularizer``.
Only the model's own layers are searched (a nested model is one opaque layer).

Anchor: Maggy's leave-one-component-out trials (Logical Clocks, Sheikholeslami et al. 2021,
"AutoAblation: automated parallel ablation studies for deep learning"), here from a Keras 3
model as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

DROPOUT_LAYERS = ("Dropout", "AlphaDropout", "GaussianDropout", "GaussianNoise", "SpatialDropout1D",
                  "SpatialDropout2D", "SpatialDropout3D")
NORMALIZATION_LAYERS = ("BatchNormalization", "LayerNormalization", "GroupNormalization")
ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax")
ATTRIBUTES = {"regularizer": "kernel_regularizer", "constraint": "kernel_constraint"}
WIDTH_LAYERS = {"Dense": "units", "Conv1D": "filters", "Conv2D": "filters", "Conv3D": "filters"}  # class -> width key
KINDS = ("dropout", "normalization", "regularizer", "constraint", "residual", "activation", "width")
DEFAULT_KINDS = KINDS[:5]  # activation and width only when asked for
REMOVAL = {
    "dropout": "skipped (identity)",
    "normalization": "skipped (identity)",
    "regularizer": "kernel_regularizer set to None",
    "constraint": "kernel_constraint set to None",
    "residual": "skip path dropped: the main branch only",
    "activation": "activation made linear",
    "width": "units/filters halved (rounded up)",
}


@dataclass(frozen=True)
class Component:
    """One removable part of a model."""

    id: str                                   # stable id (see the module docstring)
    kind: str                                 # one of KINDS
    layer: str                                # the layer's name in the model it was found in
    detail: str = ""                          # what it is: "Dropout(rate=0.5)", "L2(0.001)", ...
    main: int = 0                             # residual: the index of the main-branch input of the Add

    @property
    def removal(self) -> str:
        """What removing it does, in words."""
        return REMOVAL[self.kind]


class NotRebuildable(ValueError):
    """The model is not a graph that can be cloned layer by layer (a subclassed keras.Model)."""


def check_rebuildable(model: Any) -> None:
    """Raise :class:`NotRebuildable` unless ``model`` is a functional or Sequential ``keras.Model``."""
    import keras

    if not isinstance(model, keras.Model):
        raise NotRebuildable(f"expected a keras.Model (functional or Sequential). Received: {type(model).__name__}")
    if isinstance(model, keras.Sequential):
        return
    try:
        graph = bool(model.inputs) and bool(model.outputs) and hasattr(model, "_operations")
    except (AttributeError, ValueError):
        graph = False
    if not graph:
        raise NotRebuildable(f"a subclassed keras.Model ({type(model).__name__}) has no layer graph to rebuild; "
                             f"supported: a functional model (keras.Model(inputs, outputs)) or a keras.Sequential")


def snake(name: str) -> str:
    """``BatchNormalization`` -> ``batch_normalization`` (Keras' own rule for default layer names)."""
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(name)


def layer_ids(model: Any) -> dict[str, str]:
    """Layer name -> stable id, for every layer of the model (see the module docstring)."""
    ids: dict[str, str] = {}
    seen: dict[str, int] = {}
    for layer in model.layers:
        base = snake(type(layer).__name__)
        k = seen.get(base, 0)
        seen[base] = k + 1
        auto = re.fullmatch(rf"{re.escape(base)}(_\d+)?", layer.name) is not None
        ids[layer.name] = (base if k == 0 else f"{base}_{k}") if auto else layer.name
    taken: dict[str, int] = {}
    for name, i in list(ids.items()):  # a user's name equal to another layer's fresh-session name
        taken[i] = taken.get(i, 0) + 1
        if taken[i] > 1:
            ids[name] = f"{i}~{taken[i]}"
    return ids


def discover(model: Any, kinds: Iterable[str] = DEFAULT_KINDS) -> list[Component]:
    """The model's components of the given kinds, in layer order.

    Args:
        model: a built functional or Sequential ``keras.Model``.
        kinds: which kinds to look for (a subset of :data:`KINDS`).

    Raises:
        NotRebuildable: a subclassed model.
        ValueError: an unknown kind.
    """
    from ablation.base import checks

    kinds = tuple(kinds)
    for kind in kinds:
        checks.choice("kinds", kind, KINDS)
    check_rebuildable(model)
    ids = layer_ids(model)
    outputs = _output_layers(model)
    heads = _width_heads(model) if "width" in kinds else set()
    found: list[Component] = []
    for layer in model.layers:
        cls = type(layer).__name__
        lid = ids[layer.name]
        config = _config(layer)
        if "dropout" in kinds and cls in DROPOUT_LAYERS:
            found.append(Component(lid, "dropout", layer.name, _describe(cls, config, ("rate", "stddev"))))
        if "normalization" in kinds and cls in NORMALIZATION_LAYERS:
            found.append(Component(lid, "normalization", layer.name, cls))
        for kind, attr in ATTRIBUTES.items():
            if kind in kinds and config.get(attr) is not None:
                found.append(Component(f"{lid}.{attr}", kind, layer.name, _object_name(getattr(layer, attr, None),
                                                                                        config[attr])))
        if "residual" in kinds and cls == "Add":
            main = residual_main(layer)
            if main is not None:
                found.append(Component(lid, "residual", layer.name, f"Add of {_input_names(layer)}", main=main))
        if "activation" in kinds and layer.name not in outputs:
            if cls in ACTIVATION_LAYERS:
                found.append(Component(lid, "activation", layer.name, _describe(cls, config, ("activation",))))
            elif cls not in ACTIVATION_LAYERS and config.get("activation") not in (None, "linear"):
                found.append(Component(f"{lid}.activation", "activation", layer.name, _object_name(None,
                                                                                                  config["activation"])))
        if "width" in kinds and cls in WIDTH_LAYERS and layer.name not in heads:
            key = WIDTH_LAYERS[cls]
            found.append(Component(f"{lid}.width", "width", layer.name, f"{cls}({key}={config.get(key)})"))
    return found


def halved(width: int) -> int:
    """The width of a halved layer: ``ceil(width / 2)``, at least 1."""
    return max(1, -(-int(width) // 2))


def by_id(components: Sequence[Component], wanted: Iterable[str]) -> list[Component]:
    """The components with these ids, in the order asked; an unknown id is a ValueError naming the valid ones."""
    index = {c.id: c for c in components}
    out = []
    for cid in wanted:
        if cid not in index:
            valid = ", ".join(index) or "(none)"
            raise ValueError(f"Invalid value for argument 'components': expected ids of this model's components "
                             f"({valid}). Received: components={cid!r}")
        out.append(index[cid])
    return out


def table(components: Sequence[Component]) -> str:
    """A plain-text table: id, kind, layer, what it is, what removing it does."""
    head = ("id", "kind", "layer", "what", "removal")
    rows = [head] + [(c.id, c.kind, c.layer, c.detail, c.removal) for c in components]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the graph


def residual_main(layer: Any) -> int | None:
    """For an ``Add`` of two inputs where one input is an ancestor of the other (an identity skip
    path), the index of the other (the main branch); else None."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1:
        return None  # a shared Add: not one residual connection
    inputs = list(nodes[0].input_tensors)
    if len(inputs) != 2:
        return None
    for main, skip in ((0, 1), (1, 0)):
        if inputs[main] is not inputs[skip] and _is_ancestor(inputs[skip], inputs[main]):
            return main
    return None


def _is_ancestor(tensor: Any, of: Any) -> bool:
    """Whether ``tensor`` is on a path that computes ``of``."""
    stack, seen = [of], set()
    while stack:
        t = stack.pop()
        if t is tensor:
            return True
        if id(t) in seen:
            continue
        seen.add(id(t))
        history = getattr(t, "_keras_history", None)
        if history is None:
            continue
        op, node_index, _ = history
        nodes = getattr(op, "_inbound_nodes", [])
        if node_index < len(nodes):
            stack.extend(nodes[node_index].input_tensors)
    return False


def _input_names(layer: Any) -> str:
    names = []
    for t in layer._inbound_nodes[0].input_tensors:
        history = getattr(t, "_keras_history", None)
        names.append(history.operation.name if history is not None else "?")
    return " + ".join(names)


def _output_layers(model: Any) -> set[str]:
    import keras

    if isinstance(model, keras.Sequential):
        return {model.layers[-1].name} if model.layers else set()
    return {t._keras_history.operation.name for t in model.outputs}


def _width_heads(model: Any) -> set[str]:
    """The names of the output layers for ``width``: each last ``Dense`` / ``Conv`` layer on a path back
    from a model output (only width-keeping layers, such as Activation, Dropout or Reshape, after it)."""
    import keras

    if isinstance(model, keras.Sequential):
        for layer in reversed(model.layers):
            if type(layer).__name__ in WIDTH_LAYERS:
                return {layer.name}
        return set()
    heads: set[str] = set()
    stack, seen = list(model.outputs), set()
    while stack:
        t = stack.pop()
        history = getattr(t, "_keras_history", None)
        if history is None or id(t) in seen:
            continue
        seen.add(id(t))
        op, node_index, _ = history
        if type(op).__name__ in WIDTH_LAYERS:
            heads.add(op.name)
            continue
        nodes = getattr(op, "_inbound_nodes", [])
        if node_index < len(nodes):
            stack.extend(nodes[node_index].input_tensors)
    return heads


def _config(layer: Any) -> dict[str, Any]:
    try:
        return dict(layer.get_config())
    except (NotImplementedError, TypeError):
        return {}


def _describe(cls: str, config: dict[str, Any], keys: Sequence[str]) -> str:
    args = ", ".join(f"{k}={config[k]}" for k in keys if k in config and not isinstance(config[k], dict))
    return f"{cls}({args})"


def _object_name(obj: Any, config: Any) -> str:
    """``L2(l2=0.001)``, ``MaxNorm(max_value=3)``, ``relu``: a serialized Keras object in a few characters."""
    if isinstance(config, str):
        return config
    if isinstance(config, dict) and "class_name" in config:
        inner = config.get("config") or {}
        args = ", ".join(f"{k}={_short(v)}" for k, v in inner.items() if not isinstance(v, dict))
        return f"{config['class_name']}({args})"
    return type(obj).__name__ if obj is not None else str(config)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
