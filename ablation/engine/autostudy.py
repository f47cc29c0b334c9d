"""Ablate any Keras model: a study generated from the model itself, run by the normal runner.

``ablation ablate model.py:build --data digits.npz`` (or ``ablation.ablate(build, data)``) builds
the model once, finds its removable components (``ablation.zoo.parts.components``), and writes a study
whose one grid axis, ``ablate``, names the variants (``ablation.zoo.parts.variants``):

- ``mode="loco"`` (leave one component out): ``full`` plus one ``-<id>`` arm per component;
- ``mode="add-one"``: ``bare`` (every component removed) plus one ``+<id>`` arm per component.

The study file is plain TOML (it can be read, edited, committed and re-run with ``ablation run``,
which resumes the same run folder); it states one claim per arm, fixed before anything trains:
removing a component raises the test error (LOCO), adding one to the bare model lowers it
(add-one). The run goes through ``ablation.engine.study.run`` (packs, resume, workers, backends), and the
report's first table ranks the components (``ablation.stats.components``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ablation.zoo import parts
from ablation.engine import study
from ablation.data import tasks
from ablation.zoo.parts import saved
from ablation.spec import SpecError

MODES = ("loco", "add-one")
TRAIN = {"epochs": 10, "batch_size": 32, "optimizer": "adam", "learning_rate": 0.001}  # the generated [train]
SEEDS = 5


def source_table(model: Any, base: Path | None = None) -> dict[str, Any]:
    """The ``[model]`` table of a model given as ``"file.py:function"``, ``"package.module:function"``, a
    ``.keras`` file or a function object; file paths relative to ``base`` (None: absolute)."""
    if callable(model) and not isinstance(model, str):
        return {"factory": model}
    if isinstance(model, (str, os.PathLike)) and str(model).endswith(".keras"):
        path = Path(model).resolve()
        if not path.is_file():
            raise SpecError("model", f"no such file {path}. Received: model={str(model)!r}")
        return {"factory": saved.REFERENCE, "path": str(path), "sha256": saved.digest(str(path))}
    if isinstance(model, str) and ":" in model:
        target, _, function = model.partition(":")
        if target.endswith(".py") and base is not None:
            target = os.path.relpath(Path(target).resolve(), base.resolve())
        return {"factory": f"{target}:{function}"}
    raise SpecError("model", f'expected "file.py:function", "package.module:function", a .keras file or a function '
                    f"returning a keras.Model. Received: model={model!r}")


def data_table(data: Any, base: Path | None = None) -> Any:
    """The ``[data]`` table of a data set name or a file path (relative to ``base``); other values as given."""
    if isinstance(data, (str, os.PathLike)):
        from ablation.data import sources

        if sources.file_kind(data):
            path = Path(data).resolve()
            return {"path": os.path.relpath(path, base.resolve()) if base is not None else str(path)}
        return {"name": str(data)}
    return data


def find(model_table: dict[str, Any], data: Any, kinds: Sequence[str]) -> tuple[list[parts.Component], str, str]:
    """Build the full model once: ``(its components of these kinds, the task, the function's name)``.

    Raises:
        SpecError: the model cannot be rebuilt (a subclassed model), or building it raised.
    """
    import keras

    from ablation import data as data_module
    from ablation.trials import factory

    spec = study.Study("probe", model=model_table, data=data, grid={parts.AXIS: [parts.FULL]},
                       seeds=[0])
    cfg = spec.resolve(*spec.trials()[0])
    try:
        ds = data_module.load_spec(spec.data)
    except (OSError, RuntimeError) as exc:  # a data set that cannot load: one line, exit 2, as for `ablation run`
        raise SpecError("data.path" if spec.data.file else f"data.{spec.data.name}", str(exc).splitlines()[0]) from exc
    f = spec.model.factory
    factory.check_reserved(factory.load(f), f)
    try:
        built = factory.call(f, cfg.model_args, ds.input_shape, ds.num_outputs)
        found = parts.discover(built, kinds)
        widths = [c for c in found if c.kind == "width"]
        if widths:  # a width that must match another branch's cannot be halved alone: not offered
            kept = parts.rebuildable(built, widths)
            found = [c for c in found if c.kind != "width" or c in kept]
    except parts.NotRebuildable as exc:
        raise SpecError("model", f"{f.function_name}() returned a model that cannot be ablated: {exc}") from None
    except SpecError:  # the factory's own one-line error (model.factory: ... has no 'biuld'; did you mean 'build'?)
        raise
    except (TypeError, ValueError) as exc:
        raise SpecError("model", f"building {f.function_name}() failed: {exc}") from None
    finally:
        keras.backend.clear_session()
    return found, ds.task, f.function_name


def arms(found: Sequence[parts.Component], mode: str) -> list[str]:
    """The values of the ``ablate`` axis: the reference arm, then one arm per component."""
    if mode == "loco":
        return [parts.FULL, *(parts.name_of(removed=c.id) for c in found)]
    return [parts.BARE, *(parts.name_of(added=c.id) for c in found)]


def claims(found: Sequence[parts.Component], mode: str, metric: str) -> list[dict[str, Any]]:
    """One claim per component, fixed before the run: each component helps."""
    out = []
    for c in found:
        slug = re.sub(r"[^a-z0-9_-]+", "-", c.id.lower()).strip("-")
        if mode == "loco":
            out.append({"id": f"without-{slug}", "statement": f"Removing {c.id} ({c.kind}) raises the {metric}",
                        "metric": metric, "compare": {parts.AXIS: parts.name_of(removed=c.id)},
                        "against": {parts.AXIS: parts.FULL}, "expect": "higher"})
        else:
            out.append({"id": f"with-{slug}", "statement": f"Adding {c.id} ({c.kind}) to the bare model lowers the "
                        f"{metric}", "metric": metric, "compare": {parts.AXIS: parts.name_of(added=c.id)},
                        "against": {parts.AXIS: parts.BARE}, "expect": "lower"})
    return out


def generate(model: Any, data: Any, *, seeds: int | Sequence[int] = SEEDS, epochs: int | None = None,
             components: Sequence[str] | None = None, mode: str = "loco", include: Sequence[str] = (),
             name: str | None = None, base: Path | None = None) -> tuple[dict[str, Any], list[parts.Component]]:
    """The generated study as a document (the tables of a study file) and the components it ablates.

    Args:
        model: ``"file.py:function"``, ``"package.module:function"``, a ``.keras`` file, or a function.
        data: a data set name, a data file, arrays or a ``[data]`` table (as ``ablation.Study``'s ``data``).
        seeds: the number of seeds (0 .. n-1), or the seeds.
        epochs: the training epochs (default ``TRAIN["epochs"]``).
        components: the component ids to ablate (default: all found).
        mode: ``"loco"`` or ``"add-one"``.
        include: optional kinds to search for as well (``"activation"``).
        name: the study's name (default ``ablate-<function>``).
        base: the folder of the study file (relative paths start there); None: absolute paths.

    Raises:
        SpecError / ValueError: bad input (each one line), before anything trains.
    """
    from ablation.base import checks

    checks.choice("mode", mode, MODES)
    for kind in include:
        checks.choice("include", kind, parts.KINDS[len(parts.DEFAULT_KINDS):])
    if include and mode == "add-one":  # "bare" keeps activations and widths: "+<id>" of one would be "bare" again
        raise SpecError("include", f"expected no optional kinds with mode='add-one' (its bare model removes the "
                        f"default kinds only, so adding back an activation or a width would change nothing); "
                        f"ablate them with mode='loco'. Received: include={list(include)!r}")
    seed_list = list(range(checks.integer("seeds", seeds))) if not isinstance(seeds, (list, tuple, range)) \
        else list(seeds)
    model_table = source_table(model, base)
    data_doc = data_table(data, base)
    found, task, function = find(source_table(model), data_table(data), (*parts.DEFAULT_KINDS, *include))
    if not found:
        raise SpecError("model", f"{function}() has no component to ablate; supported: Dropout-like layers "
                        f"({', '.join(parts.components.DROPOUT_LAYERS)}), normalization layers "
                        f"({', '.join(parts.components.NORMALIZATION_LAYERS)}), kernel regularizers and constraints, "
                        f"residual Add layers (and activations or widths with include=['activation', 'width'])")
    if components:
        found = parts.by_id(found, components)
    metric = f"test_{tasks.primary(task)}"
    slug = re.sub(r"[^a-z0-9_-]+", "-", (name or f"ablate-{function}").lower()).strip("-")
    train = {**TRAIN, **({"epochs": checks.integer("epochs", epochs)} if epochs is not None else {})}
    what = "leave-one-component-out" if mode == "loco" else "add-one-component"
    doc = {
        "study": {"name": slug, "seeds": seed_list,
                  "description": f"A {what} ablation of {function}(): {len(found)} components, generated by "
                                 f"ablation ablate."},
        "data": data_doc,
        "model": model_table,
        "train": train,
        "grid": {parts.AXIS: arms(found, mode)},
        "claims": claims(found, mode, metric),
    }
    return doc, found


def header(found: Sequence[parts.Component], command: str | None = None) -> str:
    """The comment block on top of a generated study file: what each arm removes."""
    lines = ["# A study generated by `ablation ablate` from the model itself; edit it and re-run it with",
             "# `ablation run THIS_FILE` (the same file resumes the same run folder).",
             *([f"#   {command}"] if command else []),
             "# The grid axis `ablate` names a variant of the model: full, -<id> (that component removed),",
             "# bare (all removed), +<id> (the bare model with that component). Components:", "#"]
    lines += [f"#   {c.id:<28} {c.kind:<13} layer {c.layer}: {c.detail}; removal: {c.removal}" for c in found]
    return "\n".join(lines) + "\n"


def write(doc: dict[str, Any], found: Sequence[parts.Component], path: str | os.PathLike,
          command: str | None = None) -> Path:
    """Write the study file (refusing to overwrite a different file, e.g. one edited since)."""
    from ablation.base import files

    path = Path(path)
    body = study.to_toml(doc).split("\n", 1)[1]
    text = header(found, command) + body
    if path.exists() and path.read_text() != text:
        raise SpecError("study", f"{path} exists and differs from the study generated now (edited since?); run it "
                        f"with `ablation run {path}`, or write the new one elsewhere (--study-file)")
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write_text(path, text)
    return path


def ablate(model: Any, data: Any, *, seeds: int | Sequence[int] = SEEDS, epochs: int | None = None,
           components: Sequence[str] | None = None, mode: str = "loco", include: Sequence[str] = (),
           name: str | None = None, out: str | os.PathLike = "runs", **options: Any) -> study.Result:
    """Generate a component ablation study of ``model`` and run it; returns the run's ``Result``.

    Args:
        model: your function returning a ``keras.Model`` (functional or Sequential), or
            ``"file.py:function"``, or a ``.keras`` file.
        data: as ``ablation.Study``'s ``data`` (arrays, a name, a file).
        seeds, epochs, components, mode, include, name: see :func:`generate`.
        out: the folder of run folders.
        **options: more arguments of ``ablation.run`` (``workers``, ``report``, ``progress``, ``train``).

    Returns:
        The same :class:`ablation.engine.study.Result` as ``ablation.run(ablation.Study(...))``.
    """
    study.start_backend()
    train = options.pop("train", None)
    doc, _ = generate(model, data, seeds=seeds, epochs=epochs, components=components, mode=mode, include=include,
                      name=name)
    spec = study.Study(doc["study"]["name"], model=doc["model"], data=doc["data"], grid=doc["grid"],
                       seeds=doc["study"]["seeds"], train={**doc["train"], **(train or {})}, claims=doc["claims"],
                       description=doc["study"]["description"])
    return study.run(spec, out=out, **options)
