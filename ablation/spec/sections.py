"""The sections of a study file other than the grid and the claims: study, data, model, train, evaluate.

Name lists and defaults come from the modules that own them (``probes.PROBES``,
``training.OPTIMIZERS`` / ``PRECISIONS`` / ``SCHEDULES``, ``stopping.CRITERIA``,
``evaluation.DROPCONNECT_MODES``, ``data.dataset_options``, ``zoo.check_args``); this module only
routes a study file's values to those checks and puts the key path on their errors.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any

from ablation.base.backend import BACKENDS
from ablation.spec import values as v
from ablation.spec.errors import SpecError, from_value_error, invalid, show
from ablation.spec.schema import TRAIN_KEYS, DataSpec, EvaluateSpec, ModelSpec, StudySpec, TrainSpec, freeze

STUDY_KEYS = ("name", "description", "seeds", "probes", "probe_every_steps", "probe_size", "pack", "backend")
DATA_FIELDS = ("name", "validation_size", "train_size", "task", "path", "arrays")
NAME_RE = re.compile(r"^[a-z0-9_-]+$")


def parse_study(t: dict) -> dict[str, Any]:
    """The ``[study]`` table as keyword arguments of ``StudySpec``."""
    from ablation.train.probes import PROBES

    v.check_keys(t, "study", STUDY_KEYS)
    v.require(t, "study", "name")
    name = t["name"]
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise invalid("study.name", "a name of [a-z0-9_-]+", name)
    description = v.optional_text(t, "description", "study")
    seeds = v.items(t.get("seeds", [0]), "study.seeds", "non-negative integers", non_empty=True)
    for i, s in enumerate(seeds):
        v.integer(s, f"study.seeds[{i}]", minimum=0)
    v.unique(seeds, "study.seeds")
    probes = v.items(t.get("probes", []), "study.probes", "probe names")
    for i, p in enumerate(probes):
        v.choice(p, f"study.probes[{i}]", PROBES)
    v.unique(probes, "study.probes")
    return {"name": name, "description": description, "seeds": tuple(seeds), "probes": tuple(probes),
            "probe_every_steps": v.integer(t.get("probe_every_steps", StudySpec.probe_every_steps),
                                           "study.probe_every_steps"),
            "probe_size": v.integer(t.get("probe_size", StudySpec.probe_size), "study.probe_size"),
            "pack": v.boolean(t.get("pack", StudySpec.pack), "study.pack"),
            "backend": None if t.get("backend") is None else v.choice(t["backend"], "study.backend", BACKENDS)}


def parse_data(t: dict, base_dir: str | None = None) -> DataSpec:
    """The ``[data]`` table: a data set by name (built-in, ``keras.datasets``, ``tfds:<name>``), a file
    (``path``, relative to ``base_dir``) or arrays given from Python, its task and the options its source
    accepts. Files are read only as far as needed to check the keys (an ``.npz``'s array names, a CSV's
    header) and hashed; nothing is loaded."""
    from ablation import data
    from ablation.data import sources, tasks

    if "path" in t and "name" in t:
        raise SpecError("data.path", "set either name (a data set) or path (your file), not both")
    if "arrays" in t and ("path" in t or "name" in t):
        raise SpecError("data.arrays", "set either arrays (from Python), path or name, not several")
    task = v.choice(t["task"], "data.task", tasks.TASKS) if "task" in t else None
    extra: dict[str, Any] = {}
    if "arrays" in t:
        arrays = t["arrays"]
        if not isinstance(arrays, sources.Arrays):
            raise invalid("data.arrays", "arrays given from Python (ablation.Study(data=...))", arrays)
        kind, name, extra = "arrays", "arrays", {"digest": arrays.digest, "given_validation": arrays.has_validation,
                                                 "arrays": arrays}
    elif "path" in t:
        name, kind, extra = "file", "file", _data_file(t["path"], base_dir)
    else:
        name = v.text(t.get("name", DataSpec.name), "data.name")
        if sources.is_tfds(name) and not sources.tfds_installed():
            raise SpecError("data.name", f"{name} needs tensorflow_datasets, which is not installed "
                            f"(pip install tensorflow-datasets). Received: name={show(name)}")
        if sources.file_kind(name):
            raise SpecError("data.name", f"a file goes in data.path, not data.name. Received: name={show(name)}")
        if name in sources.KERAS_UNSUPPORTED:
            raise SpecError("data.name", f"keras.datasets.{name} {sources.KERAS_UNSUPPORTED[name]}; save it as "
                            f"arrays in a .npz file and set data.path. Received: name={show(name)}")
        try:
            kind = data.kind_of(name)
        except ValueError:
            raise invalid("data.name", f"one of {', '.join(data.list_datasets())}, a keras.datasets name "
                          f"({', '.join(data.KERAS_DATASETS)}), \"tfds:<name>\", or a file in data.path",
                          name) from None
    target = extra.get("file") or name
    options = {k: val for k, val in t.items() if k not in DATA_FIELDS}
    allowed = data.dataset_options(target) if kind != "arrays" else tuple(sources.options_of("arrays"))
    v.check_keys(options, "data", set(DATA_FIELDS) | set(allowed))
    if "target" in allowed and "target" not in options:
        raise SpecError("data.target", f"required key is missing for a {kind_of_file(target).upper()} file "
                        "(the name of the target column)")
    try:
        if kind == "arrays":
            sources.check_options("arrays", "arrays", options)
            tasks.check(task or tasks.CLASSIFICATION)
        else:
            data.check_options(target, task, **options)
    except ValueError as exc:
        raise from_value_error("data", exc, True, {**options, "task": task}) from None
    if task is None:
        task = data.natural_task(target) if kind != "arrays" else tasks.CLASSIFICATION
    if "columns" in extra:
        _check_columns(extra.pop("columns"), options, t["path"])
    validation_size = v.integer(t.get("validation_size", 0), "data.validation_size", minimum=0)
    if validation_size and extra.get("given_validation"):
        raise SpecError("data.validation_size", "the data brings its own validation set (x_val, y_val); leave "
                        f"validation_size out. Received: validation_size={validation_size}")
    train_size = t.get("train_size")
    return DataSpec(name=name, options=freeze(options), validation_size=validation_size,
                    train_size=None if train_size is None else v.integer(train_size, "data.train_size"),
                    task=task, **extra)


def kind_of_file(path: str) -> str:
    from ablation.data import sources

    return sources.file_kind(path) or ""


def _data_file(raw: Any, base_dir: str | None) -> dict[str, Any]:
    """``data.path``: the file as written, its absolute path, its digest and what it holds (cheaply)."""
    from pathlib import Path

    from ablation.data import sources

    text = v.text(raw, "data.path")
    if sources.file_kind(text) is None:
        raise invalid("data.path", "a .npz, .csv or .parquet file", text)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    file = (base / Path(text).expanduser()).resolve()
    if not file.is_file():
        raise SpecError("data.path", f"no such file {file} (a relative path starts at the study file's folder, "
                        f"{base.resolve()}). Received: path={show(text)}")
    try:
        info = sources.inspect_file(file)
    except ValueError as exc:
        raise SpecError("data.path", str(exc)) from None
    out = {"path": text, "file": str(file), "digest": sources.digest_file(file)}
    if info["kind"] == "npz":
        out["given_validation"] = "x_val" in info["keys"]
    else:
        out["columns"] = info["columns"]
    return out


def _check_columns(columns: tuple[str, ...] | None, options: dict, path: str) -> None:
    """A table's ``target`` and ``features`` are columns of the file (when its header could be read)."""
    if columns is None:
        return
    for key in ("target", "features"):
        names = [options[key]] if key == "target" else list(options.get(key) or [])
        missing = [n for n in names if n not in columns]
        if missing:
            raise SpecError(f"data.{key}", f"no column {', '.join(map(repr, missing))} in {path}; its columns: "
                            f"{', '.join(columns)}")


def parse_model(t: dict, base_dir: str | None = None) -> ModelSpec:
    """The ``[model]`` table: a builder or registered variant, or your function (``factory``), and its
    fixed arguments. A factory is found and hashed, not imported (``ablation.trials.factory``)."""
    from ablation import zoo

    if "factory" in t:
        from ablation.spec import factory as factory_module

        if "name" in t:
            raise SpecError("model.name", "set either name (a zoo model) or factory (your function), not both")
        raw = t["factory"]
        f = factory_module.of_function(raw) if callable(raw) else factory_module.locate(raw, base_dir)
        args = freeze({k: val for k, val in t.items() if k != "factory"})
        for key in args:
            if key in factory_module.INJECTED:
                raise SpecError(f"model.{key}", f"{key} is passed by the runner (from the data set); do not set it")
        return ModelSpec(name=f.reference, args=args, factory=f)
    name = v.text(t.get("name", ModelSpec.name), "model.name")
    available = ["mlp", "cnn"] + [m for m in zoo.list_models() if m not in ("mlp", "cnn")]
    if name not in available:
        close = difflib.get_close_matches(name, available, n=1)
        hint = f"did you mean {show(close[0])}? " if close else ""
        raise SpecError("model.name", f"unknown model; {hint}expected one of {', '.join(available)}, or set "
                        f"factory to your function. Received: name={show(name)}")
    args = freeze({k: val for k, val in t.items() if k != "name"})
    v.check_keys(args, "model", set(zoo.argument_names(name)) | {"name"})
    check_model_args(name, args, "model", blame_argument=True)
    return ModelSpec(name=name, args=args)


def check_model_args(name: str, args: Mapping[str, Any], path: str, blame_argument: bool = False,
                     model: ModelSpec | None = None) -> None:
    """``zoo.check_args``; its ValueError becomes a SpecError at ``path`` (``path.arg`` if asked). A user's
    function is checked against its signature when the study runs (``ablation.engine.preflight.check_factory``), not here."""
    from ablation import zoo

    if model is not None and model.factory is not None:
        return
    try:
        zoo.check_args(name, **args)
    except (ValueError, TypeError) as exc:
        raise from_value_error(path, exc, blame_argument, args) from None


def _kind_table(value: Any, path: str, kind_key: str, kinds: Mapping[str, Mapping[str, Any]],
                check: Callable[..., dict[str, Any]], required: Any = None) -> dict[str, Any] | None:
    """A ``{kind_key: kind, params...}`` table, checked and filled by its owner's ``check``; "none" = off."""
    if value == "none":
        return None
    t = v.table(value, path)
    if kind_key not in t:
        raise SpecError(f"{path}.{kind_key}", f"required key is missing; expected one of {', '.join(kinds)}")
    kind = v.choice(t[kind_key], f"{path}.{kind_key}", tuple(kinds))
    params = {k: val for k, val in t.items() if k != kind_key}
    v.check_keys(params, path, set(kinds[kind]))
    for key, default in kinds[kind].items():
        if default is required and key not in params:
            raise SpecError(f"{path}.{key}", f"required key is missing for {kind_key} {show(kind)}")
    try:
        full = check(kind, **params)
    except ValueError as exc:
        raise from_value_error(path, exc, True, params) from None
    return {kind_key: kind, **{k: freeze(val) for k, val in full.items()}}


def check_schedule(value: Any, path: str) -> dict[str, Any] | None:
    from ablation.train import training

    return _kind_table(value, path, "kind", training.SCHEDULES, training.check_schedule, training.REQUIRED)


def check_early_stopping(value: Any, path: str) -> dict[str, Any] | None:
    from ablation.train import stopping

    return _kind_table(value, path, "criterion", stopping.CRITERIA, stopping.check_params)


def _train_checks() -> dict[str, Callable[[Any, str], Any]]:
    from ablation.train import training

    return {
        "epochs": v.integer,
        "batch_size": v.integer,
        "optimizer": lambda val, p: v.choice(val, p, training.OPTIMIZERS),
        "learning_rate": v.positive,
        "momentum": lambda val, p: v.real(val, p, "a float in [0, 1)", lambda x: 0 <= x < 1),
        "nesterov": v.boolean,
        "weight_decay": v.non_negative,
        "clipnorm": v.non_negative,
        "agc": v.non_negative,
        "schedule": check_schedule,
        "early_stopping": check_early_stopping,
        "precision": lambda val, p: v.choice(val, p, training.PRECISIONS),
        "jit_compile": v.boolean,
        "steps_per_execution": lambda val, p: v.integer(val, p, minimum=0),
    }


def check_train_value(key: str, value: Any, path: str) -> Any:
    """One ``[train]`` value (also a grid axis value or a config recipe's override)."""
    checks = _train_checks()
    assert set(checks) == {f.name for f in dataclasses.fields(TrainSpec)}, "every TrainSpec field has a check"
    return checks[key](value, path)


def parse_train(t: dict) -> TrainSpec:
    """The ``[train]`` table."""
    v.check_keys(t, "train", TRAIN_KEYS)
    return TrainSpec(**{k: check_train_value(k, val, f"train.{k}") for k, val in t.items()})


def parse_evaluate(t: dict) -> EvaluateSpec:
    """The ``[evaluate]`` table."""
    from ablation.data.evaluation import DROPCONNECT_MODES

    v.check_keys(t, "evaluate", [f.name for f in dataclasses.fields(EvaluateSpec)])
    ks = v.items(t.get("mc_dropout_k", []), "evaluate.mc_dropout_k", "positive integers")
    ks = [v.integer(k, f"evaluate.mc_dropout_k[{i}]") for i, k in enumerate(ks)]
    v.unique(ks, "evaluate.mc_dropout_k")
    modes = v.items(t.get("dropconnect_inference", []), "evaluate.dropconnect_inference", "modes")
    modes = [v.choice(m, f"evaluate.dropconnect_inference[{i}]", DROPCONNECT_MODES) for i, m in enumerate(modes)]
    v.unique(modes, "evaluate.dropconnect_inference")
    target = t.get("target_train_error")
    if target is not None:
        target = v.real(target, "evaluate.target_train_error", "a float in (0, 1]", lambda x: 0 < x <= 1)
    return EvaluateSpec(mc_dropout_k=tuple(ks), dropconnect_inference=tuple(modes), target_train_error=target)
