"""Reading study files: TOML, profiles merged over the file, the whole document validated.

``load(path, profile)`` reads a file, deep-merges ``[profiles.<name>]`` over it, validates every
key and value and returns a frozen ``StudySpec``. The file itself must be valid whatever the
profile; an error the profile caused is reported at the profile's key.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import sys
from pathlib import Path
from typing import Any

from ablation.spec import values as v
from ablation.spec.claims import parse_claims
from ablation.spec.errors import SpecError
from ablation.spec.grid import check_early_stopping_needs_validation, parse_grid
from ablation.spec.schema import StudySpec
from ablation.spec.sections import parse_data, parse_evaluate, parse_model, parse_study, parse_train

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

STUDIES_DIR = Path(__file__).resolve().parents[2] / "studies"
SECTIONS = ("study", "claims", "data", "model", "train", "evaluate", "grid", "profiles")


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
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(path), f"cannot be read ({type(exc).__name__}: {exc})") from None
    return dataclasses.replace(loads(text, profile=profile, source=str(path), base_dir=path.resolve().parent),
                               path=path)


def loads(text: str, profile: str | None = None, source: str = "<string>",
          base_dir: str | Path | None = None) -> StudySpec:
    """Parse and validate study-file text (see ``load``); ``source`` names it in TOML errors; relative
    paths (``data.path``, a ``model.factory`` file) start at ``base_dir`` (default: the current folder)."""
    base_dir = str(Path(base_dir).resolve()) if base_dir is not None else str(Path.cwd())
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
    base = parse_document(doc, None, base_dir=base_dir)  # the file itself must be valid, whatever the profile
    if profile is None:
        return dataclasses.replace(base, source_text=text)
    try:  # a profile may shrink an axis: inherited claims may then name values it no longer has
        spec = parse_document(_deep_merge(doc, profiles[profile]), profile,
                              strict_claims="claims" in profiles[profile], base_dir=base_dir)
    except SpecError as exc:
        if _in_table(exc.key, profiles[profile]):  # the profile set the bad value: blame it
            raise SpecError(f"profiles.{profile}.{exc.key}", exc.problem) from None
        raise SpecError(exc.key, f"{exc.problem} (with profile {profile})") from None
    return dataclasses.replace(spec, source_text=text)


def pinned_backend(path: str | Path, profile: str | None = None) -> str | None:
    """The ``[study] backend`` a study file (with its profile merged) asks for, read without Keras.

    The command line must choose the Keras backend before anything imports Keras, so it peeks at
    the file; a file that cannot be read or parsed gives None (the full parse reports its errors).
    """
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    over = doc.get("profiles", {}).get(profile, {}) if profile else {}
    study = _deep_merge(doc, over).get("study", {}) if isinstance(over, dict) else doc.get("study", {})
    backend = study.get("backend") if isinstance(study, dict) else None
    return backend if isinstance(backend, str) else None


def parse_document(doc: dict, profile: str | None, strict_claims: bool = True,
                   base_dir: str | None = None) -> StudySpec:
    """A parsed TOML document (profile already merged) as a ``StudySpec``; relative paths start at ``base_dir``."""
    v.check_keys(doc, "", set(SECTIONS) - {"profiles"})
    if "study" not in doc:
        raise SpecError("study", "required table is missing")
    study = parse_study(v.table(doc["study"], "study"))
    data = parse_data(v.table(doc.get("data", {}), "data"), base_dir)
    model = parse_model(v.table(doc.get("model", {}), "model"), base_dir)
    train = parse_train(v.table(doc.get("train", {}), "train"))
    evaluate = parse_evaluate(v.table(doc.get("evaluate", {}), "evaluate"))
    grid = parse_grid(v.table(doc.get("grid", {}), "grid"), model)
    check_early_stopping_needs_validation(train, grid, data)
    check_task(data.task, study["probes"], evaluate)
    unchecked = [a.name for a in grid if a.section == "model"] if model.factory is not None else []
    claims = parse_claims(doc.get("claims", []), grid, strict_claims, unchecked)
    return StudySpec(**study, claims=claims, data=data, model=model, train=train, evaluate=evaluate,
                     grid=grid, profile=profile, base_dir=base_dir)


def check_task(task: str, probes: tuple[str, ...], evaluate: Any) -> None:
    """What only classification measures is refused for regression, naming the key that asks for it."""
    if task != "regression":
        return
    because = 'measures a classification error; not available with data.task = "regression"'
    if "speed" in probes:
        raise SpecError("study.probes", f"the speed probe {because}")
    for key in ("mc_dropout_k", "dropconnect_inference"):
        if getattr(evaluate, key):
            raise SpecError(f"evaluate.{key}", f"this evaluation {because}")
    if evaluate.target_train_error is not None:
        raise SpecError("evaluate.target_train_error", f"the target training error {because}")


def find_study(name_or_path: str | Path) -> Path:
    """Return the path of a study file, or of the bundled study ``studies/<name>.toml``."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.is_dir():
        raise SpecError(str(name_or_path), "is a folder; expected a study file (.toml) or the name of a "
                        "bundled study")
    bundled = STUDIES_DIR / f"{path.name}.toml"
    if path.suffix == "" and len(path.parts) == 1 and bundled.is_file():
        return bundled
    raise SpecError(str(name_or_path), "no such study file or bundled study; bundled studies: "
                    f"{', '.join(list_studies()) or '(none)'}")


def list_studies() -> list[str]:
    """Names of the bundled studies (``studies/*.toml``), sorted."""
    return sorted(p.stem for p in STUDIES_DIR.glob("*.toml")) if STUDIES_DIR.is_dir() else []


# The bundled studies whose committed report is not their `cpu` profile: the quickstart as README runs it, and
# studies whose paper-scale recipe fits 2 CPU cores in hours: batchnorm's `full` is Ioffe & Szegedy's
# own 50,000 steps of batch 60 (60 epochs, ~50 minutes), so its evidence needs no stand-in; activations_depth's
# `long` is Glorot & Bengio's MNIST setting at the depth where its sigmoid net trains (~30 minutes); and
# dropout_mnist's `long`, the papers' widths and drop rates for 100 epochs (~5 hours: the scale rule's minimum);
# dropout_architectures' `long`, Fig. 4's 2 x 1024 and 3 x 1024 nets for 100 epochs (~2.5 hours).
REPORT_PROFILES: dict[str, str | None] = {"quickstart": None, "batchnorm": "full", "activations_depth": "long",
                                         "dropout_mnist": "long", "dropout_architectures": "long"}


def report_profile(name: str) -> str | None:
    """The profile the committed report of a bundled study is rendered with (``reports/regenerate.sh``,
    ``reports/gallery.py`` and the tests read it here): ``REPORT_PROFILES``, else ``cpu``, its evidence at
    CPU scale."""
    return REPORT_PROFILES.get(name, "cpu")


def describe_grid(spec: StudySpec) -> str:
    """A human-readable table of the axes, their values and the trial count (for ``--dry-run``, which then
    names the run folder: its name depends on the backend, which the checks may still choose)."""
    rows = [("axis", "target", "values")]
    rows += [(a.name, a.section, ", ".join(a.labels)) for a in spec.grid]
    rows.append(("seeds", "", ", ".join(str(s) for s in spec.seeds)))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"study {spec.name}" + (f", profile {spec.profile}" if spec.profile else "")]
    lines += [f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}".rstrip() for r in rows]
    sizes = " x ".join(str(len(a.values)) for a in spec.grid)
    n_points = math.prod(len(a.values) for a in spec.grid)
    seeds = f"{len(spec.seeds)} seed" + ("s" if len(spec.seeds) > 1 else "")
    lines.append(f"{sizes} = {n_points} points x {seeds} = {spec.n_trials} trials")
    if spec.data.name in ("file", "arrays") or spec.data.task != "classification":
        lines.append(f"data: {_data_line(spec)}")
    if spec.model.factory is not None:
        from ablation.spec import factory

        lines.append(factory.describe(spec.model.factory))
    return "\n".join(lines)


def _data_line(spec: StudySpec) -> str:
    d = spec.data
    what = f"{d.file} ({d.path})" if d.file else d.label
    task = f"{d.task}" + (", its own validation set" if d.given_validation else
                          f", {d.validation_size} held out for validation" if d.validation_size else "")
    return f"{what}; {task}"


# ----------------------------------------------------------------------------- helpers

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
    profiles = v.table(raw, "profiles")
    for name, t in profiles.items():
        v.check_keys(v.table(t, f"profiles.{name}"), f"profiles.{name}", set(SECTIONS) - {"profiles"})
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
