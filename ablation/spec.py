"""Study files: parse and validate a TOML study into a frozen, hashed ``StudySpec``.

A study file (format: ``docs/internals.md`` section 2) names a data set, a model, a training
recipe, a grid of axes and zero or more scientific claims. ``load`` reads it, deep-merges a
profile over it (``[profiles.<name>]``), validates every key and value, and returns a frozen
``StudySpec``. Every error is a ``SpecError`` whose message is one line starting with the key
path, e.g. ``grid.dropuot: unknown key; did you mean grid.dropout?``.

The spec expands into trials (grid point x seed). A grid point maps each axis name to a *label*:
a string (keras-tuner's ``hp.Choice`` cannot hold None or lists), e.g. ``"0.5"``, ``"none"``,
``"100-100"``; ``StudySpec.resolve(point, seed)`` maps labels back to values and returns the full
configuration of one trial. ``StudySpec.hash`` covers the resolved spec (profile applied) except
the description and the claims, which only affect the report. This module never writes to disk.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "SpecError", "StudySpec", "Claim", "DataSpec", "ModelSpec", "TrainSpec", "EvaluateSpec", "Axis",
    "TrialConfig", "load", "loads", "find_study", "list_studies", "describe_grid", "label", "canonical_json",
    "PROBES", "OPTIMIZERS", "PRECISIONS", "EARLY_STOPPING", "SCHEDULES",
]

STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"

PROBES = ("gradients", "activations", "covariate_shift", "weights", "timing", "speed")
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad", "nadam")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
EFFECTS = ("difference", "ratio")
EXPECTS = ("lower", "higher", "near")
DROPCONNECT_INFERENCE = ("scaling", "gaussian")
_REQUIRED = object()  # marks a parameter without a default

# Early-stopping criteria (Prechelt 1998, "Early Stopping - But When?") and their parameters:
# name -> {parameter: default}. GL: generalization loss > alpha; PQ: GL / training progress over a
# strip of `strip` epochs > alpha; UP: validation error went up in `s` successive strips.
EARLY_STOPPING: dict[str, dict[str, Any]] = {
    "patience": {"patience": 5, "min_delta": 0.0},
    "gl": {"alpha": 2.0},
    "pq": {"alpha": 0.5, "strip": 5},
    "up": {"s": 3, "strip": 5},
}
# Learning-rate schedules (keras.optimizers.schedules) and their parameters: name -> {param: default}.
SCHEDULES: dict[str, dict[str, Any]] = {
    "exponential": {"decay_steps": _REQUIRED, "decay_rate": _REQUIRED},
    "cosine": {"decay_steps": _REQUIRED, "alpha": 0.0},
    "piecewise": {"boundaries": _REQUIRED, "values": _REQUIRED},
}
_SECTIONS = ("study", "claims", "data", "model", "train", "evaluate", "grid", "profiles")
_STUDY_KEYS = ("name", "description", "seeds", "probes", "probe_every_steps", "probe_size")
_CLAIM_KEYS = ("id", "statement", "source", "published", "approx", "metric", "compare", "against",
               "against_metric", "where", "effect", "expect", "threshold", "tolerance", "rule")
_DATA_FIELDS = ("name", "validation_size", "train_size")
_NAME_RE = re.compile(r"^[a-z0-9_-]+$")


class SpecError(ValueError):
    """A study file that cannot be run: the message is one line starting with the key path.

    Attributes:
        key: the dotted key path the error is about (``"grid.dropout"``), or the file name.
    """

    def __init__(self, key: str, problem: str):
        self.key = key
        self.problem = re.sub(r"\s*\n\s*", " ", problem).strip()
        super().__init__(f"{key}: {self.problem}")


# ----------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Claim:
    """One scientific claim the report checks against the measurements (labels, not values)."""

    id: str                                   # short unique id, e.g. "C1"
    statement: str                            # the claim in words
    metric: str                               # a column of records.trials, e.g. "test_error"
    expect: str                               # "lower" | "higher" | "near"
    source: str = ""                          # citation
    published: str = ""                       # the published number, free text shown verbatim
    approx: bool = False                      # True: the published number was read off a figure
    compare: dict[str, str] = field(default_factory=dict)   # treatment: axis -> label
    against: dict[str, str] | None = None     # baseline: axis -> label; None tests the metric itself
    where: dict[str, str] = field(default_factory=dict)     # filter on other axes: axis -> label
    against_metric: str = ""                  # baseline metric of the SAME runs (e.g. MC vs weight scaling)
    effect: str = "difference"                # "difference" (compare - against) or "ratio"
    threshold: float = 0.0                    # value the CI must exclude (0 difference, 1 ratio)
    tolerance: float | None = None            # near: |CI - threshold| within tolerance (required there)
    rule: str = ""                            # human text of the test; generated when absent


@dataclass(frozen=True)
class DataSpec:
    """Which data set to load and how to split it."""

    name: str = "mnist1d"                     # a name from data.list_datasets()
    options: dict[str, Any] = field(default_factory=dict)  # passed to data.load(name, **options)
    validation_size: int = 0                  # held out from the training set (0 = none)
    train_size: int | None = None             # fixed training-set size (None = all); an axis may vary it


@dataclass(frozen=True)
class ModelSpec:
    """Which zoo builder or registered variant to build, with fixed arguments."""

    name: str = "mlp"                         # "mlp", "cnn" or a name from zoo.list_models()
    args: dict[str, Any] = field(default_factory=dict)  # keyword arguments (lists become tuples)


@dataclass(frozen=True)
class TrainSpec:
    """The training recipe of every trial (grid axes and config recipes override fields)."""

    epochs: int = 20                          # passes over the training set
    batch_size: int = 100                     # examples per step
    optimizer: str = "sgd"                    # one of OPTIMIZERS
    learning_rate: float = 0.01               # initial learning rate (piecewise: see schedule.values)
    momentum: float | None = None             # None: 0.9 for "momentum", else 0.0 (filled by resolve)
    nesterov: bool = False                    # Nesterov momentum (sgd / momentum)
    weight_decay: float = 0.0                 # optimizer weight decay, 0 = off
    clipnorm: float = 0.0                     # clip each gradient to this norm, 0 = off
    agc: float = 0.0                          # adaptive gradient clipping lambda (Brock et al. 2021), 0 = off
    schedule: dict[str, Any] | None = None    # {"kind": one of SCHEDULES, parameters...}, None = constant
    early_stopping: dict[str, Any] | None = None  # {"criterion": one of EARLY_STOPPING, ...}, None = off
    precision: str = "float32"                # one of PRECISIONS
    jit_compile: bool = True                  # XLA-compile the train step
    steps_per_execution: int = 0              # 0 = automatic (one epoch per call, capped)


@dataclass(frozen=True)
class EvaluateSpec:
    """Extra evaluations after training."""

    mc_dropout_k: tuple[int, ...] = ()        # Monte-Carlo dropout passes to average (Srivastava 2014, Fig. 11)
    dropconnect_inference: tuple[str, ...] = ()  # "scaling" and/or "gaussian" (Wan et al. 2013)
    target_train_error: float | None = None   # steps / seconds to reach this training error (A5)


@dataclass(frozen=True)
class Axis:
    """One grid axis: values and their string labels, in the order of the study file."""

    name: str                                 # a model argument, a train key, "train_size" or "config"
    values: tuple[Any, ...]                   # config: dicts of overrides (model or train keys)
    labels: tuple[str, ...]                   # unique strings; config: the recipe names
    section: str                              # "model" | "train" | "data" | "config"

    def value_of(self, label: str) -> Any:
        """Return the value whose label is ``label`` (SpecError if there is none)."""
        if label in self.labels:
            return self.values[self.labels.index(label)]
        raise SpecError(f"point.{self.name}", f"unknown label {_show(label)}; expected one of "
                        f"{', '.join(self.labels)}")

    def label_of(self, value: Any) -> str:
        """Return the label of ``value`` (or of the value whose label ``value`` is)."""
        for v, lab in zip(self.values, self.labels):
            if _same(v, value) or (isinstance(value, str) and value == lab):
                return lab
        raise SpecError(f"grid.{self.name}", f"expected one of {', '.join(self.labels)}, "
                        f"received {_show(value)}")


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


@dataclass(frozen=True)
class StudySpec:
    """A validated study: build with ``load`` / ``loads``; never mutated."""

    name: str                                 # [a-z0-9_-]+, names the run folder
    description: str = ""                     # free text (not hashed)
    seeds: tuple[int, ...] = (0,)             # replicates: each is its own trial
    probes: tuple[str, ...] = ()              # any of PROBES
    probe_every_steps: int = 50               # covariate_shift / speed sampling period
    probe_size: int = 512                     # examples in the fixed probe batch
    claims: tuple[Claim, ...] = ()            # checked by the report (not hashed)
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    evaluate: EvaluateSpec = field(default_factory=EvaluateSpec)
    grid: tuple[Axis, ...] = ()               # axes in file order
    profile: str | None = None                # the profile merged in, if any (not hashed)
    source_text: str = ""                     # the study file verbatim (not hashed)
    path: Path | None = None                  # where it was read from (not hashed)

    def __hash__(self) -> int:
        return int(self.hash[:16], 16)

    @property
    def axis_names(self) -> tuple[str, ...]:
        """The axis names in grid order."""
        return tuple(a.name for a in self.grid)

    def axis(self, name: str) -> Axis:
        """Return the axis called ``name``."""
        for a in self.grid:
            if a.name == name:
                return a
        raise SpecError(f"grid.{name}", f"no such axis; axes: {', '.join(self.axis_names)}")

    def to_dict(self) -> dict[str, Any]:
        """The resolved spec (profile applied) as JSON-able data; axes keep their order."""
        return {
            "study": {"name": self.name, "description": self.description, "seeds": list(self.seeds),
                      "probes": list(self.probes), "probe_every_steps": self.probe_every_steps,
                      "probe_size": self.probe_size},
            "claims": [_jsonable(dataclasses.asdict(c)) for c in self.claims],
            "data": _jsonable(dataclasses.asdict(self.data)),
            "model": _jsonable(dataclasses.asdict(self.model)),
            "train": _jsonable(dataclasses.asdict(self.train)),
            "evaluate": _jsonable(dataclasses.asdict(self.evaluate)),
            "grid": [_jsonable(dataclasses.asdict(a)) for a in self.grid],
            "profile": self.profile,
        }

    @property
    def hash(self) -> str:
        """sha256 hex of the canonical JSON of the resolved spec, without description, claims, profile."""
        d = self.to_dict()
        del d["claims"], d["profile"], d["study"]["description"]
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
        if not _is_int(seed):
            raise SpecError("seed", f"expected an integer, received {_show(seed)}")
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
                           validation_size=self.data.validation_size)

    def _check_point(self, point: Mapping[str, Any]) -> dict[str, str]:
        if not isinstance(point, Mapping):
            raise SpecError("point", f"expected a mapping axis -> label, received {_show(point)}")
        for key in point:
            if key not in self.axis_names:
                raise SpecError(*_unknown("point", key, self.axis_names, noun="axis"))
        out = {}
        for a in self.grid:
            if a.name not in point:
                raise SpecError(f"point.{a.name}", "missing axis")
            given = point[a.name]
            if isinstance(given, str) and given in a.labels:
                out[a.name] = given
            elif not isinstance(given, str) and any(_same(v, given) for v in a.values):
                out[a.name] = a.label_of(given)
            else:
                raise SpecError(f"point.{a.name}", f"unknown label {_show(given)}; expected one of "
                                f"{', '.join(a.labels)}")
        return out


def _apply(key: str, value: Any, model_args: dict, train_over: dict, train_size: Any) -> tuple:
    """Route one override to the model args, the train recipe or the training-set size."""
    if key == "train_size":
        return model_args, train_over, value
    if key in _TRAIN_KEYS:
        return model_args, {**train_over, key: value}, train_size
    return {**model_args, key: value}, train_over, train_size


# ----------------------------------------------------------------------------- public functions


def load(path: str | Path, profile: str | None = None) -> StudySpec:
    """Read and validate a study file.

    Args:
        path: the TOML file.
        profile: the name of a ``[profiles.<name>]`` table to deep-merge over the file, or None.

    Returns:
        The frozen ``StudySpec``.

    Raises:
        SpecError: missing file, invalid TOML, or any invalid key or value.
    """
    path = Path(path)
    if not path.is_file():
        raise SpecError(str(path), "no such study file")
    text = path.read_text(encoding="utf-8")
    return dataclasses.replace(loads(text, profile=profile, source=str(path)), path=path)


def loads(text: str, profile: str | None = None, source: str = "<string>") -> StudySpec:
    """Parse and validate study-file text (see ``load``); ``source`` names it in TOML errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, text, source) from None
    profiles = _check_profiles(doc.pop("profiles", {}))
    if profile is not None and profile not in profiles:
        close = difflib.get_close_matches(profile, sorted(profiles), n=1)
        hint = f"did you mean profiles.{close[0]}? " if close else ""
        raise SpecError(f"profiles.{profile}", f"unknown profile; {hint}available profiles: "
                        f"{', '.join(sorted(profiles)) or '(none)'}")
    base = _parse_document(doc, None)  # the file itself must be valid, whatever the profile
    if profile is None:
        return dataclasses.replace(base, source_text=text)
    try:  # a profile may shrink an axis: inherited claims may then name values it no longer has
        spec = _parse_document(_deep_merge(doc, profiles[profile]), profile,
                               strict_claims="claims" in profiles[profile])
    except SpecError as exc:
        if _in_table(exc.key, profiles[profile]):  # the profile set the bad value: blame it
            raise SpecError(f"profiles.{profile}.{exc.key}", exc.problem) from None
        raise SpecError(exc.key, f"{exc.problem} (with profile {profile})") from None
    return dataclasses.replace(spec, source_text=text)


def find_study(name_or_path: str | Path) -> Path:
    """Return the path of a study file, or of the bundled study ``studies/<name>.toml``."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = STUDIES_DIR / f"{path.name}.toml"
    if path.suffix == "" and len(path.parts) == 1 and bundled.is_file():
        return bundled
    raise SpecError(str(name_or_path), "no such study file or bundled study; bundled studies: "
                    f"{', '.join(list_studies()) or '(none)'}")


def list_studies() -> list[str]:
    """Names of the bundled studies (``studies/*.toml``), sorted."""
    return sorted(p.stem for p in STUDIES_DIR.glob("*.toml")) if STUDIES_DIR.is_dir() else []


def describe_grid(spec: StudySpec) -> str:
    """A human-readable table of the axes, their values and the trial count (for ``--dry-run``)."""
    rows = [("axis", "target", "values")]
    rows += [(a.name, a.section, ", ".join(a.labels)) for a in spec.grid]
    rows.append(("seeds", "", ", ".join(str(s) for s in spec.seeds)))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"study {spec.name} ({spec.run_name})" + (f", profile {spec.profile}" if spec.profile else "")]
    lines += [f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in rows]
    sizes = " x ".join(str(len(a.values)) for a in spec.grid)
    n_points = math.prod(len(a.values) for a in spec.grid)
    seeds = f"{len(spec.seeds)} seed" + ("s" if len(spec.seeds) > 1 else "")
    lines.append(f"{sizes} = {n_points} points x {seeds} = {spec.n_trials} trials")
    return "\n".join(lines)


def label(value: Any) -> str:
    """The string label of an axis value: ``None`` -> "none", ``[100, 100]`` -> "100-100", 0.5 -> "0.5"."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(label(v) for v in value) if value else "[]"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={label(v)}" for k, v in value.items()) if value else "{}"
    return str(value)


def canonical_json(data: Any) -> str:
    """Sorted-key, compact JSON: the form that is hashed."""
    return json.dumps(_jsonable(data), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# ----------------------------------------------------------------------------- helpers


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _freeze(value: Any) -> Any:
    """Lists become tuples (recursively); tables stay dicts."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    """How a received value is shown in a message (TOML-like: strings quoted, booleans lower-case)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # TOML spells them inf, -inf, nan
    try:
        return json.dumps(_jsonable(value), ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _same(a: Any, b: Any) -> bool:
    """Value equality where 0 == 0.0 but True != 1 and lists equal tuples."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple, Mapping)) or isinstance(b, (list, tuple, Mapping)):
        return False
    return a == b


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown(path: str, key: str, allowed: Any, noun: str = "key") -> tuple[str, str]:
    """(key path, problem) for an unknown key, with a did-you-mean suggestion."""
    allowed = sorted(set(allowed))
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    if close:
        return _join(path, key), f"unknown {noun}; did you mean {_join(path, close[0])}?"
    return _join(path, key), f"unknown {noun}; expected one of {', '.join(allowed) or '(none)'}"


def _check_keys(table: Mapping, path: str, allowed: Any, noun: str = "key") -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(*_unknown(path, key, allowed, noun))


def _table(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(path, f"expected a table, received {_show(value)}")
    return value


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v: Any, path: str, minimum: int = 1) -> int:
    if not _is_int(v) or v < minimum:
        what = "a positive integer" if minimum == 1 else "a non-negative integer"
        raise SpecError(path, f"expected {what}, received {_show(v)}")
    return v


def _float(v: Any, path: str, what: str, ok: Callable[[float], bool]) -> float:
    if not _is_number(v) or not ok(float(v)):
        raise SpecError(path, f"expected {what}, received {_show(v)}")
    return float(v)


def _positive(v: Any, path: str) -> float:
    return _float(v, path, "a positive float", lambda x: x > 0)


def _non_negative(v: Any, path: str) -> float:
    return _float(v, path, "a non-negative float", lambda x: x >= 0)


def _bool(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise SpecError(path, f"expected true or false, received {_show(v)}")
    return v


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise SpecError(path, f"expected a non-empty string, received {_show(v)}")
    return v


def _choice(v: Any, path: str, choices: Any) -> str:
    if not isinstance(v, str) or v not in choices:
        raise SpecError(path, f"expected one of {', '.join(choices)}, received {_show(v)}")
    return v


def _list(v: Any, path: str, what: str, non_empty: bool = False) -> list:
    if not isinstance(v, list) or (non_empty and not v):
        raise SpecError(path, f"expected {'a non-empty' if non_empty else 'a'} list of {what}, "
                        f"received {_show(v)}")
    return v


def _unique(items: list, path: str) -> None:
    for i, item in enumerate(items):
        if any(_same(item, other) for other in items[:i]):
            raise SpecError(path, f"duplicate value {_show(item)}")


def _toml_error(exc: Exception, text: str, source: str) -> SpecError:
    """SpecError naming the file and line of a TOML syntax error."""
    message = str(exc)
    where = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if where:
        line, problem = where.group(1), f"{message[:where.start()]} (column {where.group(2)})"
    else:
        line, problem = str(max(1, len(text.splitlines()))), re.sub(r"\s*\(at end of document\)", "", message)
    return SpecError(f"{source}, line {line}", f"invalid TOML: {problem}")


def _deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged into a copy of ``base``: tables merge recursively, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_profiles(raw: Any) -> dict[str, dict]:
    """The ``[profiles]`` table: name -> table of top-level sections to merge."""
    profiles = _table(raw, "profiles")
    for name, table in profiles.items():
        _check_keys(_table(table, f"profiles.{name}"), f"profiles.{name}", set(_SECTIONS) - {"profiles"})
    return profiles


def _in_table(key: str, table: dict) -> bool:
    """Whether the dotted key path leads into values that ``table`` sets."""
    current: Any = table
    for part in key.split("."):
        name = part.split("[")[0]
        if not isinstance(current, dict):
            return True
        if name not in current:
            return False
        current = current[name]
    return True


# ----------------------------------------------------------------------------- sections


def _zoo() -> Any:
    from ablation import zoo

    return zoo


def _data() -> Any:
    from ablation import data

    return data


def _parse_document(doc: dict, profile: str | None, strict_claims: bool = True) -> StudySpec:
    _check_keys(doc, "", set(_SECTIONS) - {"profiles"})
    if "study" not in doc:
        raise SpecError("study", "required table is missing")
    study = _parse_study(_table(doc["study"], "study"))
    data = _parse_data(_table(doc.get("data", {}), "data"))
    model = _parse_model(_table(doc.get("model", {}), "model"))
    train = _parse_train(_table(doc.get("train", {}), "train"))
    evaluate = _parse_evaluate(_table(doc.get("evaluate", {}), "evaluate"))
    grid = _parse_grid(_table(doc.get("grid", {}), "grid"), model)
    _check_early_stopping(train, grid, data)
    claims = _parse_claims(doc.get("claims", []), grid, strict_claims)
    return StudySpec(**study, claims=claims, data=data, model=model, train=train, evaluate=evaluate,
                     grid=grid, profile=profile)


def _parse_study(t: dict) -> dict[str, Any]:
    _check_keys(t, "study", _STUDY_KEYS)
    if "name" not in t:
        raise SpecError("study.name", "required key is missing")
    name = t["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SpecError("study.name", f"expected a name of [a-z0-9_-]+, received {_show(name)}")
    description = t.get("description", "")
    if not isinstance(description, str):
        raise SpecError("study.description", f"expected a string, received {_show(description)}")
    seeds = _list(t.get("seeds", [0]), "study.seeds", "non-negative integers", non_empty=True)
    for i, s in enumerate(seeds):
        _int(s, f"study.seeds[{i}]", minimum=0)
    _unique(seeds, "study.seeds")
    probes = _list(t.get("probes", []), "study.probes", "probe names")
    for i, p in enumerate(probes):
        _choice(p, f"study.probes[{i}]", PROBES)
    _unique(probes, "study.probes")
    return {"name": name, "description": description, "seeds": tuple(seeds), "probes": tuple(probes),
            "probe_every_steps": _int(t.get("probe_every_steps", 50), "study.probe_every_steps"),
            "probe_size": _int(t.get("probe_size", 512), "study.probe_size")}


def _parse_data(t: dict) -> DataSpec:
    data = _data()
    name = _str(t.get("name", DataSpec.name), "data.name")
    available = tuple(data.list_datasets())
    if name not in available:
        raise SpecError("data.name", f"unknown data set {_show(name)}; available: {', '.join(available)}")
    _check_keys(t, "data", set(_DATA_FIELDS) | set(data.dataset_options(name)))
    train_size = t.get("train_size")
    return DataSpec(name=name, options=_freeze({k: v for k, v in t.items() if k not in _DATA_FIELDS}),
                    validation_size=_int(t.get("validation_size", 0), "data.validation_size", minimum=0),
                    train_size=None if train_size is None else _int(train_size, "data.train_size"))


def _parse_model(t: dict) -> ModelSpec:
    zoo = _zoo()
    name = _str(t.get("name", ModelSpec.name), "model.name")
    available = ["mlp", "cnn"] + [m for m in zoo.list_models() if m not in ("mlp", "cnn")]
    if name not in available:
        close = difflib.get_close_matches(name, available, n=1)
        hint = f"did you mean {_show(close[0])}? " if close else ""
        raise SpecError("model.name", f"unknown model {_show(name)}; {hint}available: {', '.join(available)}")
    args = _freeze({k: v for k, v in t.items() if k != "name"})
    _check_keys(args, "model", set(zoo.argument_names(name)) | {"name"})
    _check_model_args(name, args, "model", blame_argument=True)
    return ModelSpec(name=name, args=args)


def _check_model_args(name: str, args: dict, path: str, blame_argument: bool = False) -> None:
    """Run zoo.check_args; its ValueError becomes a SpecError at ``path`` (``path.arg`` if asked)."""
    try:
        _zoo().check_args(name, **args)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        arg = re.search(r"argument '(\w+)'", message)
        if blame_argument and arg and arg.group(1) in args:
            path = f"{path}.{arg.group(1)}"
        raise SpecError(path, message) from None


def _check_schedule(v: Any, path: str) -> dict[str, Any] | None:
    return _check_kind_table(v, path, "kind", SCHEDULES)


def _check_early_stopping_table(v: Any, path: str) -> dict[str, Any] | None:
    return _check_kind_table(v, path, "criterion", EARLY_STOPPING)


def _check_kind_table(v: Any, path: str, kind_key: str, kinds: dict) -> dict[str, Any] | None:
    """A {kind_key: kind, params...} table with defaults filled; "none" means off."""
    if v == "none":
        return None
    t = _table(v, path)
    if kind_key not in t:
        raise SpecError(f"{path}.{kind_key}", f"required key is missing; expected one of {', '.join(kinds)}")
    kind = _choice(t[kind_key], f"{path}.{kind_key}", tuple(kinds))
    _check_keys(t, path, {kind_key, *kinds[kind]})
    out: dict[str, Any] = {kind_key: kind}
    for param, default in kinds[kind].items():
        if param not in t and default is _REQUIRED:
            raise SpecError(f"{path}.{param}", f"required key is missing for {kind_key} {_show(kind)}")
        out[param] = _check_param(param, t.get(param, default), f"{path}.{param}")
    if kind == "piecewise" and len(out["values"]) != len(out["boundaries"]) + 1:
        raise SpecError(f"{path}.values", f"expected {len(out['boundaries']) + 1} values (one more "
                        f"than boundaries), received {len(out['values'])}")
    return out


def _check_param(param: str, v: Any, path: str) -> Any:
    """Validate one schedule / early-stopping parameter."""
    if param in ("decay_steps", "patience", "strip", "s"):
        return _int(v, path)
    if param in ("min_delta", "alpha"):
        return _non_negative(v, path)
    if param == "decay_rate":
        return _positive(v, path)
    if param == "boundaries":
        items = [_int(b, f"{path}[{i}]") for i, b in enumerate(_list(v, path, "steps", non_empty=True))]
        if any(b >= c for b, c in zip(items, items[1:])):
            raise SpecError(path, f"expected strictly increasing steps, received {_show(items)}")
        return tuple(items)
    values = _list(v, path, "learning rates", non_empty=True)
    return tuple(_positive(x, f"{path}[{i}]") for i, x in enumerate(values))


_TRAIN_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "epochs": _int,
    "batch_size": _int,
    "optimizer": lambda v, p: _choice(v, p, OPTIMIZERS),
    "learning_rate": _positive,
    "momentum": lambda v, p: _float(v, p, "a float in [0, 1)", lambda x: 0 <= x < 1),
    "nesterov": _bool,
    "weight_decay": _non_negative,
    "clipnorm": _non_negative,
    "agc": _non_negative,
    "schedule": _check_schedule,
    "early_stopping": _check_early_stopping_table,
    "precision": lambda v, p: _choice(v, p, PRECISIONS),
    "jit_compile": _bool,
    "steps_per_execution": lambda v, p: _int(v, p, minimum=0),
}
_TRAIN_KEYS = tuple(f.name for f in dataclasses.fields(TrainSpec))
assert set(_TRAIN_KEYS) == set(_TRAIN_CHECKS)


def _parse_train(t: dict) -> TrainSpec:
    _check_keys(t, "train", _TRAIN_KEYS)
    return TrainSpec(**{k: _TRAIN_CHECKS[k](v, f"train.{k}") for k, v in t.items()})


def _parse_evaluate(t: dict) -> EvaluateSpec:
    _check_keys(t, "evaluate", [f.name for f in dataclasses.fields(EvaluateSpec)])
    ks = _list(t.get("mc_dropout_k", []), "evaluate.mc_dropout_k", "positive integers")
    ks = [_int(k, f"evaluate.mc_dropout_k[{i}]") for i, k in enumerate(ks)]
    _unique(ks, "evaluate.mc_dropout_k")
    modes = _list(t.get("dropconnect_inference", []), "evaluate.dropconnect_inference", "modes")
    modes = [_choice(m, f"evaluate.dropconnect_inference[{i}]", DROPCONNECT_INFERENCE) for i, m in enumerate(modes)]
    _unique(modes, "evaluate.dropconnect_inference")
    target = t.get("target_train_error")
    if target is not None:
        target = _float(target, "evaluate.target_train_error", "a float in (0, 1]", lambda x: 0 < x <= 1)
    return EvaluateSpec(mc_dropout_k=tuple(ks), dropconnect_inference=tuple(modes), target_train_error=target)


# ----------------------------------------------------------------------------- grid


def _override_section(key: str, path: str, model_keys: set[str], allow_config: bool) -> str:
    """Which section an axis / recipe key overrides: "model", "train" or "data" (train_size)."""
    if key == "train_size":
        return "data"
    if key in ("seed", "seeds"):
        raise SpecError(path, "seeds are replicates, not an axis; set them with study.seeds")
    in_model, in_train = key in model_keys, key in _TRAIN_KEYS
    if in_model and in_train:
        raise SpecError(path, "ambiguous: both a model argument and a train key")
    if in_model or in_train:
        return "model" if in_model else "train"
    allowed = model_keys | set(_TRAIN_KEYS) | {"train_size"} | ({"config"} if allow_config else set())
    raise SpecError(*_unknown(path.rsplit(".", 1)[0], key, allowed))


def _check_override(section: str, key: str, value: Any, path: str) -> Any:
    """Validate one train / train_size override value (model values go through zoo.check_args)."""
    if section == "train":
        return _TRAIN_CHECKS[key](value, path)
    if section == "data":
        return _int(value, path)
    return _freeze(value)


def _labels(values: tuple, path: str) -> tuple[str, ...]:
    labels = tuple(label(v) for v in values)
    for i, lab in enumerate(labels):
        if lab in labels[:i]:
            raise SpecError(path, f"values {_show(values[labels.index(lab)])} and {_show(values[i])} "
                            f"share the label {_show(lab)}")
    return labels


def _parse_grid(t: dict, model: ModelSpec) -> tuple[Axis, ...]:
    if not t:
        raise SpecError("grid", "expected at least one axis, received an empty table")
    model_keys = set(_zoo().argument_names(model.name))
    axes = []
    for name, raw in t.items():
        path = f"grid.{name}"
        if name == "config":
            axes.append(_parse_config_axis(raw, model, model_keys))
            continue
        section = _override_section(name, path, model_keys, allow_config=True)
        values = _list(raw, path, "values", non_empty=True)
        values = tuple(_check_override(section, name, v, path) for v in values)
        _unique(list(values), path)
        if section == "model":
            for v in values:
                _check_model_args(model.name, {**model.args, name: v}, path)
        axes.append(Axis(name=name, values=values, labels=_labels(values, path), section=section))
    _check_model_combinations(axes, model)
    return tuple(axes)


def _parse_config_axis(raw: Any, model: ModelSpec, model_keys: set[str]) -> Axis:
    """``[grid.config]``: recipe name -> table of model / train / train_size overrides."""
    if not isinstance(raw, dict) or not raw:
        raise SpecError("grid.config", f"expected a non-empty table of recipes, received {_show(raw)}")
    values = []
    for recipe, overrides in raw.items():
        path = f"grid.config.{recipe}"
        recipe_values, model_over = {}, {}
        for key, value in _table(overrides, path).items():
            section = _override_section(key, f"{path}.{key}", model_keys, allow_config=False)
            recipe_values[key] = _check_override(section, key, value, f"{path}.{key}")
            if section == "model":
                model_over[key] = recipe_values[key]
        _check_model_args(model.name, {**model.args, **model_over}, path)
        values.append(recipe_values)
    return Axis(name="config", values=tuple(values), labels=tuple(raw), section="config")


def _check_model_combinations(axes: list[Axis], model: ModelSpec) -> None:
    """zoo.check_args on every combination of the axes that change model arguments."""
    model_axes = [a for a in axes if a.section == "model" or
                  (a.section == "config" and any(k not in _TRAIN_KEYS and k != "train_size"
                                                 for v in a.values for k in v))]
    if len(model_axes) < 2:
        return
    for combo in itertools.product(*(range(len(a.values)) for a in model_axes)):
        args, recipes = dict(model.args), []
        for a, i in zip(model_axes, combo):
            if a.section == "config":
                recipes.append(a.values[i])
            else:
                args[a.name] = a.values[i]
        for recipe in recipes:
            args.update({k: v for k, v in recipe.items() if k not in _TRAIN_KEYS and k != "train_size"})
        try:
            _zoo().check_args(model.name, **args)
        except (ValueError, TypeError) as exc:
            at = ", ".join(f"{a.name}={a.labels[i]}" for a, i in zip(model_axes, combo))
            raise SpecError("grid", f"{exc} (at {at})") from None


def _check_early_stopping(train: TrainSpec, grid: tuple[Axis, ...], data: DataSpec) -> None:
    """Early stopping watches the validation loss, so it needs data.validation_size > 0."""
    if data.validation_size > 0:
        return
    used = [("train.early_stopping", train.early_stopping)]
    for a in grid:
        if a.name == "early_stopping":
            used += [(f"grid.early_stopping", v) for v in a.values]
        if a.section == "config":
            used += [(f"grid.config.{lab}.early_stopping", v.get("early_stopping"))
                     for lab, v in zip(a.labels, a.values)]
    for path, value in used:
        if value is not None:
            raise SpecError(path, "needs a validation set; set data.validation_size > 0")


# ----------------------------------------------------------------------------- claims


def _parse_claims(raw: Any, grid: tuple[Axis, ...], strict: bool = True) -> tuple[Claim, ...]:
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise SpecError("claims", f"expected an array of tables ([[claims]]), received {_show(raw)}")
    claims = []
    for i, t in enumerate(raw):
        claim = _parse_claim(t, f"claims[{i}]", {a.name: a for a in grid}, strict)
        if any(c.id == claim.id for c in claims):
            raise SpecError(f"claims[{i}].id", f"duplicate claim id {_show(claim.id)}")
        claims.append(claim)
    return tuple(claims)


def _parse_claim(t: dict, path: str, axes: dict[str, Axis], strict: bool) -> Claim:
    _check_keys(t, path, _CLAIM_KEYS)
    for key in ("id", "statement", "metric", "expect"):
        if key not in t:
            raise SpecError(f"{path}.{key}", "required key is missing")
    texts = {k: _str(t[k], f"{path}.{k}") for k in ("id", "statement", "metric")}
    for k in ("source", "published", "rule"):
        if k in t and not isinstance(t[k], str):
            raise SpecError(f"{path}.{k}", f"expected a string, received {_show(t[k])}")
    expect = _choice(t["expect"], f"{path}.expect", EXPECTS)
    effect = _choice(t.get("effect", "difference"), f"{path}.effect", EFFECTS)
    compare = _claim_points(t.get("compare", {}), f"{path}.compare", axes, strict)
    against = _claim_points(t["against"], f"{path}.against", axes, strict) if "against" in t else None
    where = _claim_points(t.get("where", {}), f"{path}.where", axes, strict)
    for axis in where:
        if axis in compare or (against and axis in against):
            raise SpecError(f"{path}.where.{axis}", "axis is already fixed by compare / against")
    against_metric = _str(t["against_metric"], f"{path}.against_metric") if "against_metric" in t else ""
    if against_metric and against is not None:
        raise SpecError(f"{path}.against_metric", "set either against (other runs) or against_metric "
                        "(another metric of the same runs), not both")
    if effect == "ratio" and against is None and not against_metric:
        raise SpecError(f"{path}.effect", '"ratio" needs a baseline: set against or against_metric')
    default = 1.0 if effect == "ratio" else 0.0
    threshold = _float(t.get("threshold", default), f"{path}.threshold", "a float", lambda x: True)
    tolerance = t.get("tolerance")
    if expect == "near" and tolerance is None:
        raise SpecError(f"{path}.tolerance", "required when expect = \"near\"")
    if tolerance is not None:
        tolerance = _positive(tolerance, f"{path}.tolerance")
    claim = Claim(**texts, expect=expect, source=t.get("source", ""), published=t.get("published", ""),
                  approx=_bool(t.get("approx", False), f"{path}.approx"), compare=compare,
                  against=against, against_metric=against_metric, where=where, effect=effect,
                  threshold=threshold,
                  tolerance=tolerance, rule=t.get("rule", ""))
    return claim if claim.rule else dataclasses.replace(claim, rule=_rule_text(claim))


def _claim_points(raw: Any, path: str, axes: dict[str, Axis], strict: bool) -> dict[str, str]:
    """axis -> value (or label) in a claim, checked against the grid; returns axis -> label.

    Not ``strict`` (claims inherited by a profile that shrank an axis), a value the axis lacks is
    kept as its label: the report then finds no trials for it.
    """
    t = _table(raw, path)
    _check_keys(t, path, axes, noun="grid axis")
    out = {}
    for name, value in t.items():
        axis = axes[name]
        try:
            out[name] = axis.label_of(value)
        except SpecError:
            if not strict:
                out[name] = value if isinstance(value, str) else label(value)
                continue
            raise SpecError(f"{path}.{name}", f"expected one of {', '.join(axis.labels)}, "
                            f"received {_show(value)}") from None
    return out


def _rule_text(c: Claim) -> str:
    """The generated rule: which CI must lie where for the claim to be supported."""
    def side(point: dict[str, str]) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in point.items())
        return f"{c.metric}({inner})" if inner else c.metric

    quantity = side(c.compare)
    if c.against is not None:
        quantity += (" - " if c.effect == "difference" else " / ") + side(c.against)
    elif c.against_metric:
        quantity += (" - " if c.effect == "difference" else " / ") + c.against_metric + " of the same runs"
    if c.where:
        quantity += " where " + ", ".join(f"{k}={v}" for k, v in c.where.items())
    if c.expect == "near":
        return f"supported if the CI of {quantity} lies within {c.threshold:g} +/- {c.tolerance:g}"
    side_word = "below" if c.expect == "lower" else "above"
    return f"supported if the CI of {quantity} lies entirely {side_word} {c.threshold:g}"
