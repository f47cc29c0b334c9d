"""The frozen dataclasses of a study, grid expansion, trial resolution, labels and the spec hash.

A grid point maps each axis name to a *label*: a string (keras-tuner's ``hp.Choice`` cannot hold
None or lists), e.g. ``"0.5"``, ``"none"``, ``"100-100"``; ``StudySpec.resolve(point, seed)``
maps labels back to values and returns the full configuration of one trial. ``StudySpec.hash``
covers the resolved spec (profile applied) except the description and the claims, which only
affect the report. A user's files are hashed by content, not by place: the hash holds the SHA-256 of
a data file and, for a model function, its name and the SHA-256 of its source file, not their paths,
so editing a file starts a new run, and moving the project or spelling a path another way does not.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ablation.spec.axis import Axis, freeze, label, same
from ablation.spec.errors import SpecError, invalid, jsonable, show, unknown

if TYPE_CHECKING:
    from ablation.spec.claims import Claim


@dataclass(frozen=True)
class DataSpec:
    """Which data set to load, for which task, and how to split it (``data.load_spec`` loads it)."""

    name: str = "mnist1d"                     # built-in, keras.datasets or "tfds:<name>"; "file" / "arrays"
    options: dict[str, Any] = field(default_factory=dict)  # loader options (data.load(..., **options))
    validation_size: int = 0                  # held out from the training set (0 = none)
    train_size: int | None = None             # fixed training-set size (None = all); an axis may vary it
    task: str = "classification"              # "classification" | "regression" (ablation.data.tasks)
    path: str | None = None                   # a data file, as written in the study (name "file")
    file: str | None = None                   # its absolute path (not hashed: the digest is)
    digest: str | None = None                 # sha256 of the file's bytes, or of the arrays
    given_validation: bool = False            # the file or the arrays bring their own validation set
    arrays: Any = field(default=None, compare=False, repr=False)  # sources.Arrays given from Python (not saved)

    @property
    def has_validation(self) -> bool:
        """Whether the trials have a validation set (held out, or the source's own)."""
        return self.validation_size > 0 or self.given_validation

    @property
    def label(self) -> str:
        """What the report and messages call the data set: its name, or its file as written."""
        return self.path or ("arrays in memory" if self.name == "arrays" else self.name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields; the fields of files, arrays and tasks only when used (so a study of a built-in
        set keeps its hash), in-memory arrays by their digest only."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "arrays" or (f.name in _OPTIONAL_DATA and value == f.default):
                continue
            out[f.name] = jsonable(value)
        return out


@dataclass(frozen=True)
class Factory:
    """A user's function that builds the model (``[model] factory``; ``ablation.trials.factory`` imports and calls it)."""

    reference: str                            # "package.module:function" or "path/to/file.py:function", as written
    digest: str                               # sha256 of the function's source file (or of its source text)
    source: str | None = None                 # absolute path of that file (not hashed: the digest is)
    function: Any = field(default=None, compare=False, repr=False)  # the function object given from Python

    @property
    def function_name(self) -> str:
        """The part after the colon: the function (or ``Class.method``) in its module."""
        return self.reference.rpartition(":")[2]

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "digest": self.digest, "source": self.source}


@dataclass(frozen=True)
class ModelSpec:
    """Which zoo builder or registered variant to build, or a user's function, with fixed arguments."""

    name: str = "mlp"                         # "mlp", "cnn", a name from zoo.list_models(); a factory's reference
    args: dict[str, Any] = field(default_factory=dict)  # keyword arguments (lists become tuples)
    factory: Factory | None = None            # the user's function, when the study names one

    def to_dict(self) -> dict[str, Any]:
        """JSON-able fields (``factory`` only when there is one, so a zoo study keeps its hash)."""
        out = {"name": self.name, "args": jsonable(self.args)}
        if self.factory is not None:
            out["factory"] = self.factory.to_dict()
        return out


_OPTIONAL_DATA = ("task", "path", "file", "digest", "given_validation")


@dataclass(frozen=True)
class TrainSpec:
    """The training recipe of every trial (grid axes and config recipes override fields)."""

    epochs: int = 20                          # passes over the training set
    batch_size: int = 100                     # examples per step
    optimizer: str = "sgd"                    # one of training.OPTIMIZERS
    learning_rate: float = 0.01               # initial learning rate (piecewise: see schedule.values)
    momentum: float | None = None             # None: 0.9 for "momentum", else 0.0 (filled by resolve)
    nesterov: bool = False                    # Nesterov momentum (sgd / momentum)
    weight_decay: float = 0.0                 # optimizer weight decay, 0 = off
    clipnorm: float = 0.0                     # clip each gradient to this norm, 0 = off
    agc: float = 0.0                          # adaptive gradient clipping lambda (Brock et al. 2021), 0 = off
    schedule: dict[str, Any] | None = None    # {"kind": one of training.SCHEDULES, parameters...}, None = constant
    early_stopping: dict[str, Any] | None = None  # {"criterion": one of stopping.CRITERIA, ...}, None = off
    precision: str = "float32"                # one of training.PRECISIONS
    jit_compile: bool = True                  # XLA-compile the train step
    steps_per_execution: int = 0              # 0 = automatic (one epoch per call, capped)


@dataclass(frozen=True)
class EvaluateSpec:
    """Extra evaluations after training."""

    mc_dropout_k: tuple[int, ...] = ()        # Monte-Carlo dropout passes to average (Srivastava 2014, Fig. 11)
    dropconnect_inference: tuple[str, ...] = ()  # of evaluation.DROPCONNECT_MODES (Wan et al. 2013)
    target_train_error: float | None = None   # steps / seconds to reach this training error (A5)


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial needs: model, training recipe, data, seed."""

    point: dict[str, str]                     # axis name -> label
    seed: int                                 # the replicate
    model_name: str                           # builder or variant name
    model_args: dict[str, Any]                # fixed [model] args, then axis values, then recipes
    train: TrainSpec                          # with overrides applied and momentum filled
    data_name: str
    data_options: dict[str, Any]
    train_size: int | None
    validation_size: int
    data: DataSpec = field(default_factory=DataSpec)  # the whole [data] (file, arrays, task)
    factory: Factory | None = None            # the user's model function, if any

    @property
    def task(self) -> str:
        return self.data.task


@dataclass(frozen=True)
class StudySpec:
    """A validated study: build with ``spec.load`` / ``spec.loads`` / ``StudySpec.from_dict``; never mutated."""

    name: str                                 # [a-z0-9_-]+, names the run folder
    description: str = ""                     # free text (not hashed)
    seeds: tuple[int, ...] = (0,)             # replicates: each is its own trial
    probes: tuple[str, ...] = ()              # any of probes.PROBES
    probe_every_steps: int = 50               # covariate_shift / speed sampling period
    probe_size: int = 512                     # examples in the fixed probe batch
    pack: bool = True                         # trials sharing a recipe may train as one pack (not hashed)
    backend: str | None = None                # Keras backend the trials run on; None: the process's (the
                                              # runner fills it in, so a run folder holds one backend)
    claims: tuple[Claim, ...] = ()            # checked by the report (not hashed)
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    evaluate: EvaluateSpec = field(default_factory=EvaluateSpec)
    grid: tuple[Axis, ...] = ()               # axes in file order
    profile: str | None = None                # the profile merged in, if any (not hashed)
    source_text: str = ""                     # the study file verbatim (not hashed)
    path: Path | None = None                  # where it was read from (not hashed)
    base_dir: str | None = None               # the folder relative paths were resolved against (not hashed)

    def __hash__(self) -> int:
        return int(self.hash[:16], 16)

    @property
    def task(self) -> str:
        """The study's task: "classification" or "regression" (``data.task``)."""
        return self.data.task

    @property
    def objective(self) -> str:
        """The metric trials are ranked by: val_error / test_error (classification), val_rmse / test_rmse."""
        from ablation.data import tasks

        return tasks.objective(self.task, self.data.has_validation)

    @property
    def in_memory(self) -> list[str]:
        """What exists only in this Python process (a function object, arrays): such a study runs here only."""
        out = []
        if self.model.factory is not None and self.model.factory.function is not None:
            out.append(f"the model function {self.model.factory.reference}")
        if self.data.arrays is not None:
            out.append("the data arrays")
        return out

    @property
    def axis_names(self) -> tuple[str, ...]:
        """The axis names in grid order."""
        return tuple(a.name for a in self.grid)

    def axis(self, name: str) -> Axis:
        """Return the axis called ``name``."""
        for a in self.grid:
            if a.name == name:
                return a
        raise unknown("grid", name, self.axis_names, noun="axis")

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec (profile applied) as JSON-able data; axes keep their order."""
        return {
            "study": {"name": self.name, "description": self.description, "seeds": list(self.seeds),
                      "probes": list(self.probes), "probe_every_steps": self.probe_every_steps,
                      "probe_size": self.probe_size, "pack": self.pack, "backend": self.backend},
            "claims": [c.to_dict() for c in self.claims],
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "train": jsonable(dataclasses.asdict(self.train)),
            "evaluate": jsonable(dataclasses.asdict(self.evaluate)),
            "grid": [jsonable(dataclasses.asdict(a)) for a in self.grid],
            "profile": self.profile,
            "base_dir": self.base_dir,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source_text: str = "") -> StudySpec:
        """The spec ``to_dict`` wrote (a run folder's ``spec.json``); its hash is the same."""
        from ablation.spec.claims import Claim

        study = d["study"]
        return cls(name=study["name"], description=study.get("description", ""), seeds=tuple(study["seeds"]),
                   probes=tuple(study["probes"]), probe_every_steps=study["probe_every_steps"],
                   probe_size=study["probe_size"], pack=study.get("pack", True),
                   backend=study.get("backend"), claims=tuple(Claim.from_dict(c) for c in d["claims"]),
                   data=DataSpec(**freeze(d["data"])), model=_model_from_dict(d["model"]),
                   train=TrainSpec(**freeze(d["train"])),
                   evaluate=EvaluateSpec(**{k: tuple(v) if isinstance(v, list) else v
                                            for k, v in d["evaluate"].items()}),
                   grid=tuple(Axis(name=a["name"], values=freeze(a["values"]), labels=tuple(a["labels"]),
                                   section=a["section"]) for a in d["grid"]),
                   profile=d.get("profile"), source_text=source_text, base_dir=d.get("base_dir"))

    @property
    def hash(self) -> str:
        """sha256 hex of the canonical JSON of the resolved spec, without description, claims, profile,
        the packing switch (which only decides how trials share compiled steps) and the paths of the
        user's files (their contents are hashed, see the module docstring)."""
        d = self.to_dict()
        del d["claims"], d["profile"], d["study"]["description"], d["study"]["pack"], d["base_dir"]
        d["data"].pop("file", None)
        d["data"].pop("path", None)  # the digest identifies the file, wherever and however it is named
        if "factory" in d["model"]:  # the function's name and its source file's digest
            f = d["model"].pop("factory")
            d["model"]["name"] = f["reference"].rpartition(":")[2]
            d["model"]["factory_digest"] = f["digest"]
        return hashlib.sha256(canonical_json(d).encode("utf-8")).hexdigest()

    @property
    def short_hash(self) -> str:
        """The first 8 hex digits of ``hash``."""
        return self.hash[:8]

    @property
    def run_name(self) -> str:
        """The run folder name: ``<name>-<short_hash>``."""
        return f"{self.name}-{self.short_hash}"

    def points(self) -> list[dict[str, str]]:
        """Every grid point (cartesian product of the axes, first axis slowest): axis -> label."""
        names = self.axis_names
        return [dict(zip(names, combo)) for combo in itertools.product(*(a.labels for a in self.grid))]

    def trials(self) -> list[tuple[dict[str, str], int]]:
        """Every (grid point, seed) pair, point-major."""
        return [(point, seed) for point in self.points() for seed in self.seeds]

    @property
    def n_trials(self) -> int:
        """Number of trials: product of the axis lengths times the number of seeds."""
        return math.prod(len(a.values) for a in self.grid) * len(self.seeds)

    def _repr_html_(self) -> str:
        """In a notebook: what the study runs and what it claims, compactly."""
        import html

        esc = html.escape
        model = self.model.factory.reference if self.model.factory is not None else self.model.name
        axes = "".join(f"<tr><td>{esc(a.name)}</td><td>{esc(', '.join(a.labels))}</td></tr>" for a in self.grid)
        claims = "".join(f"<li><b>{esc(c.id)}</b> {esc(c.statement)}</li>" for c in self.claims)
        return (f"<div><p><b>{esc(self.name)}</b>{' (profile ' + esc(self.profile) + ')' if self.profile else ''}: "
                f"{self.n_trials} trials ({len(self.seeds)} seeds) of {esc(str(model))} on {esc(self.data.label)}, "
                f"{self.train.epochs} epochs</p><table>{axes}</table>"
                + (f"<p>Claims:</p><ul>{claims}</ul>" if claims else "<p>No claims.</p>") + "</div>")

    def resolve(self, point: Mapping[str, Any], seed: int) -> TrialConfig:
        """The full configuration of one trial.

        Args:
            point: axis name -> label (values are accepted too), one entry per axis.
            seed: the replicate seed.

        Returns:
            A ``TrialConfig``: model args are the fixed ``[model]`` args, then the axis values, then
            the config recipe's overrides; the train recipe likewise.
        """
        labels = self._check_point(point)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise invalid("seed", "an integer", seed)
        model_args, train_over, train_size = copy.deepcopy(self.model.args), {}, self.data.train_size
        recipes = []
        for a in self.grid:
            value = copy.deepcopy(a.value_of(labels[a.name]))
            if a.section == "config":
                recipes.append(value)
            else:
                model_args, train_over, train_size = _apply(a.name, value, model_args, train_over, train_size)
        for recipe in recipes:
            for key, value in recipe.items():
                model_args, train_over, train_size = _apply(key, value, model_args, train_over, train_size)
        train = dataclasses.replace(self.train, **train_over)
        if train.momentum is None:
            train = dataclasses.replace(train, momentum=0.9 if train.optimizer == "momentum" else 0.0)
        return TrialConfig(point=labels, seed=seed, model_name=self.model.name, model_args=model_args,
                           train=train, data_name=self.data.name,
                           data_options=copy.deepcopy(self.data.options), train_size=train_size,
                           validation_size=self.data.validation_size, data=self.data, factory=self.model.factory)

    def _check_point(self, point: Mapping[str, Any]) -> dict[str, str]:
        if not isinstance(point, Mapping):
            raise invalid("point", "a mapping axis -> label", point)
        for key in point:
            if key not in self.axis_names:
                raise unknown("point", key, self.axis_names, noun="axis")
        out = {}
        for a in self.grid:
            if a.name not in point:
                raise SpecError(f"point.{a.name}", "missing axis")
            given = point[a.name]
            if isinstance(given, str) and given in a.labels:
                out[a.name] = given
            elif not isinstance(given, str) and any(same(v, given) for v in a.values):
                out[a.name] = a.label_of(given)
            else:
                raise invalid(f"point.{a.name}", f"one of {', '.join(a.labels)}", given)
        return out


TRAIN_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TrainSpec))


def _apply(key: str, value: Any, model_args: dict, train_over: dict, train_size: Any) -> tuple:
    """Route one override to the model args, the train recipe or the training-set size."""
    if key == "train_size":
        return model_args, train_over, value
    if key in TRAIN_KEYS:
        return model_args, {**train_over, key: value}, train_size
    return {**model_args, key: value}, train_over, train_size


def _model_from_dict(d: Mapping[str, Any]) -> ModelSpec:
    factory = d.get("factory")
    return ModelSpec(name=d["name"], args=freeze(d["args"]),
                     factory=None if factory is None else Factory(**factory))


def canonical_json(data: Any) -> str:
    """Sorted-key, compact JSON: the form that is hashed."""
    return json.dumps(jsonable(data), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


__all__ = ["DataSpec", "ModelSpec", "Factory", "TrainSpec", "EvaluateSpec", "Axis", "TrialConfig", "StudySpec", "label",
           "canonical_json", "freeze", "same", "show", "TRAIN_KEYS"]
