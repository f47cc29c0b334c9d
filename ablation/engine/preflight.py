"""Everything a run checks before its first trial, so that bad input is one line and nothing is written.

:func:`check` is what ``ablation run`` (and ``ablation.run``) call: the output folder, the data set
and the sizes the study asks of it, a user's model function (imported, its signature checked
against every argument the study passes, one model built), every claim's metric, and the address a
chief listens on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ablation.base import checks, rundir
from ablation.engine import cluster
from ablation import data
from ablation.trials import factory, metrics, trial
from ablation.spec import SpecError, StudySpec


def check(spec: StudySpec, out_dir: str | os.PathLike, address: tuple[str, int] | None = None,
          workers: int = 1) -> None:
    """Everything that can be checked before the first trial; raises a one-line error, writes nothing.

    Checks the output folder (a folder, writable, not inside a run folder), the data set (it loads;
    ``validation_size`` and every training-set size fit its training split), a user's model
    function (:func:`check_factory`: it imports, takes the study's arguments, builds one model),
    every claim's metric (:func:`ablation.trials.metrics.check_claims`) and, for a chief, ``address``
    (this machine can listen there).
    """
    check_out_dir(out_dir, spec.run_name)
    check_data(spec)
    check_factory(spec, workers)
    metrics.check_claims(spec)
    if address is not None:
        cluster.check_address(*address)


def check_out_dir(out_dir: str | os.PathLike, run_name: str | None = None) -> None:
    """``out_dir`` can hold run folders: a folder (or a path where one can be made) this process can
    write, not inside a run folder; ``run_name`` never leaves it."""
    out = Path(out_dir)
    shown = str(out_dir)
    if out.exists() and not out.is_dir():
        raise checks.invalid("out", "a folder for run folders (it is a file)", shown)
    existing = out
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise checks.invalid("out", f"a folder for run folders ({existing} is a file)", shown)
    added_seeds = out.resolve().parent if out.name == rundir.MORE else None  # a run's added seeds (--until-decided)
    for folder in [out, *out.resolve().parents]:
        if folder != added_seeds and (folder / rundir.SPEC).is_file() and (folder / rundir.RUN).is_file():
            raise checks.invalid("out", f"a folder outside any run folder ({folder} is a run folder)", shown)
    writable = existing if existing.exists() else None
    if run_name is not None:
        target = (out / run_name).resolve()
        if target.parent != out.resolve():
            raise checks.invalid("out", f"a folder that holds {run_name!r} itself", shown)
        if (out / run_name).is_dir():
            writable = out / run_name
    if writable is not None and not os.access(writable, os.W_OK | os.X_OK):
        raise checks.invalid("out", f"a folder this process can write ({writable} is not writable)", shown)


def check_data(spec: StudySpec) -> None:
    """The data set loads, and the validation and training-set sizes fit its training split."""
    try:
        ds = data.load_spec(spec.data)
    except (OSError, RuntimeError, ValueError) as exc:
        where = "data.path" if spec.data.file else f"data.{spec.data.name}"
        raise SpecError(where, str(exc).splitlines()[0]) from exc
    n, name, held = ds.num_train, spec.data.label, spec.data.validation_size
    if held >= n:
        raise SpecError("data.validation_size", f"expected an integer in [0, {n - 1}] (the {name} training split "
                        f"has {n} examples). Received: validation_size={held}")
    room = n - held
    why = f"the {name} training split has {n} examples" + (f", {held} held out for validation" if held else "")
    for path, size in train_sizes(spec):
        if size > room:
            raise SpecError(path, f"expected an integer in [1, {room}] ({why}). Received: train_size={size}")


def train_sizes(spec: StudySpec) -> list[tuple[str, int]]:
    """Every training-set size the study asks for, with the key path that asks."""
    out = [("data.train_size", spec.data.train_size)] if spec.data.train_size is not None else []
    for axis in spec.grid:
        if axis.name == "train_size":
            out += [("grid.train_size", v) for v in axis.values]
        elif axis.section == "config":
            out += [(f"grid.config.{label}.train_size", v["train_size"]) for label, v in zip(axis.labels, axis.values)
                    if isinstance(v, dict) and v.get("train_size") is not None]
    return out


def check_factory(spec: Any, workers: int = 1) -> None:
    """A user's model function, before anything is written: raises a one-line SpecError.

    A study with in-memory objects (a function object, arrays) runs in this process only; a
    factory's function is imported and its signature checked against every argument the study
    passes; one model is built (the first trial's) to check its outputs and, when a layer probe is
    on, its layer names. A function that raises here is left to fail its trials, with its
    traceback in their records.
    """
    held = spec.in_memory
    if workers > 1 and held:
        raise SpecError("workers", f"{' and '.join(held)} exist only in this Python process, so the study runs "
                        f"in it (workers=1); for worker processes name a function in a file (\"file.py:function\") "
                        f"and save the arrays as a .npz file (data path)")
    from ablation.train.probes import LAYER_PROBES

    layered = [p for p in spec.probes if p in LAYER_PROBES]
    if spec.model.factory is None:
        return
    fn = factory.load(spec.model.factory)
    factory.check_arguments(fn, spec.model.factory, factory.given_arguments(spec))
    model = _first_model(spec)
    if model is None or not layered:
        return
    from ablation.train.probes.net import hidden_indices

    if not hidden_indices(model):
        names = ", ".join(layer.name for layer in model.layers)
        raise SpecError("study.probes", f"the {layered[0]} probe needs the zoo's layer names (act_1, dense_1, ... "
                        f"and logits; docs/internals.md section 1), and {spec.model.factory.function_name}() builds "
                        f"layers named {names}; name your layers so, or drop the probe")


def _first_model(spec: Any) -> Any:
    """The first trial's model, or None when building it raises (that trial then fails on its own)."""
    import keras

    point, seed = spec.trials()[0]
    cfg = spec.resolve(point, seed)
    ds = data.load_spec(spec.data)
    try:
        return trial.build_model(cfg, ds)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(f"{spec.model.factory.function_name}()"):
            raise SpecError("model.factory", str(exc)) from None  # it ran, and returned the wrong thing
        return None
    except Exception:  # noqa: BLE001 - the function raised: its trials record it
        return None
    finally:
        keras.backend.clear_session()
