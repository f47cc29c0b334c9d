"""The ``[grid]`` of a study file: one axis per key, plus an optional named-configuration axis.

An axis key is a model argument (checked by ``zoo.check_args``; for a user's function, every key
that is not a ``[train]`` key, checked against its signature when the study runs), a ``[train]``
key, or ``train_size``; ``[grid.config]`` maps recipe names to tables of such overrides. Seeds are
replicates (``study.seeds``), never an axis.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from ablation.spec import values as v
from ablation.spec.errors import SpecError, show, unknown
from ablation.spec.schema import TRAIN_KEYS, Axis, DataSpec, ModelSpec, TrainSpec, freeze, label
from ablation.spec.sections import check_model_args, check_train_value


def override_section(key: str, path: str, model_keys: set[str] | None, allow_config: bool) -> str:
    """Which section an axis / recipe key overrides: "model", "train" or "data" (train_size).

    ``model_keys`` None (a user's function): every key that is not a train key is a model argument.
    """
    if key == "train_size":
        return "data"
    if key in ("seed", "seeds"):
        raise SpecError(path, "seeds are replicates, not an axis; set them with study.seeds")
    if model_keys is None:
        if key == "config" and not allow_config:
            raise SpecError(path, "a recipe cannot hold another config")
        return "train" if key in TRAIN_KEYS else "model"
    in_model, in_train = key in model_keys, key in TRAIN_KEYS
    if in_model and in_train:
        raise SpecError(path, "ambiguous: both a model argument and a train key")
    if in_model or in_train:
        return "model" if in_model else "train"
    allowed = model_keys | set(TRAIN_KEYS) | {"train_size"} | ({"config"} if allow_config else set())
    raise unknown(path.rsplit(".", 1)[0], key, allowed)


def _check_override(section: str, key: str, value: Any, path: str) -> Any:
    """Validate one train / train_size override value (model values go through zoo.check_args)."""
    if section == "train":
        return check_train_value(key, value, path)
    if section == "data":
        return v.integer(value, path)
    return freeze(value)


def _labels(values: tuple, path: str) -> tuple[str, ...]:
    labels = tuple(label(val) for val in values)
    for i, lab in enumerate(labels):
        if lab in labels[:i]:
            raise SpecError(path, f"values {show(values[labels.index(lab)])} and {show(values[i])} "
                            f"share the label {show(lab)}")
    return labels


def parse_grid(t: dict, model: ModelSpec) -> tuple[Axis, ...]:
    """Every axis of ``[grid]``, in file order."""
    from ablation import zoo

    if not t:
        raise SpecError("grid", "expected at least one axis. Received: grid={}")
    model_keys = None if model.factory is not None else set(zoo.argument_names(model.name))
    axes = []
    for name, raw in t.items():
        path = f"grid.{name}"
        if name == "config":
            axes.append(_parse_config_axis(raw, model, model_keys))
            continue
        section = override_section(name, path, model_keys, allow_config=True)
        values = v.items(raw, path, "values", non_empty=True)
        values = tuple(_check_override(section, name, val, path) for val in values)
        v.unique(list(values), path)
        if section == "model":
            for val in values:
                check_model_args(model.name, {**model.args, name: val}, path, model=model)
        axes.append(Axis(name=name, values=values, labels=_labels(values, path), section=section))
    _check_model_combinations(axes, model)
    _check_required(axes, model)
    return tuple(axes)


def _check_required(axes: Sequence[Axis], model: ModelSpec) -> None:
    """Every argument the zoo builder needs is given: in ``[model]``, by an axis, or by every recipe."""
    if model.factory is not None:
        return  # a user's function: its signature is checked when the study runs
    from ablation import zoo

    for name in zoo.required_arguments(model.name):
        if name in model.args or any(a.name == name for a in axes) or any(
                a.section == "config" and all(isinstance(r, dict) and name in r for r in a.values) for a in axes):
            continue
        raise SpecError(f"model.{name}", f"required key is missing: {model.name}() needs {name} (in [model], "
                        f"as a grid axis, or in every [grid.config] recipe)")


def _parse_config_axis(raw: Any, model: ModelSpec, model_keys: set[str] | None) -> Axis:
    """``[grid.config]``: recipe name -> table of model / train / train_size overrides. A recipe set to
    ``false`` is left out (how a profile drops a recipe of the file: ``big_net = false``)."""
    if not isinstance(raw, dict) or not raw:
        raise SpecError("grid.config", f"expected a non-empty table of recipes. Received: config={show(raw)}")
    raw = {recipe: overrides for recipe, overrides in raw.items() if overrides is not False}
    if not raw:
        raise SpecError("grid.config", "every recipe is set to false; keep at least one")
    values = []
    for recipe, overrides in raw.items():
        path = f"grid.config.{recipe}"
        recipe_values, model_over = {}, {}
        for key, value in v.table(overrides, path).items():
            section = override_section(key, f"{path}.{key}", model_keys, allow_config=False)
            recipe_values[key] = _check_override(section, key, value, f"{path}.{key}")
            if section == "model":
                model_over[key] = recipe_values[key]
        check_model_args(model.name, {**model.args, **model_over}, path, model=model)
        values.append(recipe_values)
    return Axis(name="config", values=tuple(values), labels=tuple(raw), section="config")


def _model_overrides(recipe: dict) -> dict:
    return {k: val for k, val in recipe.items() if k not in TRAIN_KEYS and k != "train_size"}


def _check_model_combinations(axes: Sequence[Axis], model: ModelSpec) -> None:
    """zoo.check_args on every combination of the axes that change model arguments."""
    model_axes = [a for a in axes if a.section == "model" or
                  (a.section == "config" and any(_model_overrides(val) for val in a.values))]
    if len(model_axes) < 2 or model.factory is not None:
        return
    from ablation import zoo

    for combo in itertools.product(*(range(len(a.values)) for a in model_axes)):
        args, recipes = dict(model.args), []
        for a, i in zip(model_axes, combo):
            if a.section == "config":
                recipes.append(a.values[i])
            else:
                args[a.name] = a.values[i]
        for recipe in recipes:
            args.update(_model_overrides(recipe))
        try:
            zoo.check_args(model.name, **args)
        except (ValueError, TypeError) as exc:
            at = ", ".join(f"{a.name}={a.labels[i]}" for a, i in zip(model_axes, combo))
            raise SpecError("grid", f"{exc} (at {at})") from None


def check_early_stopping_needs_validation(train: TrainSpec, grid: Sequence[Axis], data: DataSpec) -> None:
    """Early stopping watches the validation loss, so it needs a validation set."""
    if data.has_validation:
        return
    used = [("train.early_stopping", train.early_stopping)]
    for a in grid:
        if a.name == "early_stopping":
            used += [("grid.early_stopping", val) for val in a.values]
        if a.section == "config":
            used += [(f"grid.config.{lab}.early_stopping", val.get("early_stopping"))
                     for lab, val in zip(a.labels, a.values)]
    for path, value in used:
        if value is not None:
            raise SpecError(path, "needs a validation set; set data.validation_size > 0")
