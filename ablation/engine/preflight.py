"""Everything a run checks before its first trial, so that bad input is one line and nothing is written.

:func:`check` is what ``ablation run`` (and ``ablation.run``, and ``--dry-run``) call: the output
folder, the data set and the sizes the study asks of it, a user's model function (imported, its
signature checked against every argument the study passes), the model of every recipe built and
trained one step on a few examples (:func:`check_recipes`), every claim's metric, and the address
a chief listens on.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ablation.base import checks, rundir
from ablation.engine import backend_choice, cluster
from ablation import data
from ablation.trials import factory, metrics, trial
from ablation.spec import SpecError, StudySpec


@dataclasses.dataclass
class Checked:
    """What the checks learned on the way, so that the run does not build a model again to learn it.

    Attributes:
        traits: what the backend rule reads of the recipes' models (:class:`~ablation.engine.backend_choice.
            Traits`: convolution layers, per-example sampling layers; a zoo model's from the registry and the
            recipes' arguments, without building (:func:`zoo_traits`); a user's function's from the models
            :func:`check_recipes` built).
        builds: how many times the checks called the model's builder or function: once per recipe, and once
            in all for a generated ablation study's recipes (each is a clone of that model less its
            ``ablate`` components, as ``factory.call`` makes it).
    """

    traits: backend_choice.Traits = dataclasses.field(default_factory=backend_choice.Traits)
    builds: int = 0
    first_model: Any = dataclasses.field(default=None, repr=False)  # the first recipe's model, as built
    base_model: Any = dataclasses.field(default=None, repr=False)  # check_variants' model without ``ablate``


def check(spec: StudySpec, out_dir: str | os.PathLike, address: tuple[str, int] | None = None,
          workers: int = 1, on_model: Callable[[backend_choice.Traits], None] | None = None) -> Checked:
    """Everything that can be checked before the first trial; raises a one-line error, writes nothing.

    Checks the output folder (a folder, writable, not inside a run folder), the data set (it loads;
    ``validation_size`` and every training-set size fit its training split), a user's model
    function (:func:`check_factory`: it imports, takes the study's arguments), every recipe's model
    (:func:`check_recipes`: it builds and trains one step; the layer names a probe needs),
    every claim's metric (:func:`ablation.trials.metrics.check_claims`) and, for a chief, ``address``
    (this machine can listen there). Each recipe's model is built once, shared among the checks.
    ``on_model`` is called once with the traits of a model function's first model (:class:`~ablation.engine.
    backend_choice.Traits`), as soon as it is built (the runner then starts its first worker on the backend
    that fits, while the checks go on).

    Returns:
        What the checks learned (:class:`Checked`).
    """
    check_out_dir(out_dir, spec.run_name)
    check_data(spec)
    seen = Checked()
    check_factory(spec, workers, seen)
    check_recipes(spec, seen, on_model)
    check_layer_names(spec, seen)
    metrics.check_claims(spec)
    if address is not None:
        cluster.check_address(*address)
    seen.first_model = seen.base_model = None  # nothing keeps the models alive past the checks
    return seen


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


def check_factory(spec: Any, workers: int = 1, seen: Checked | None = None) -> None:
    """A user's model function, before anything is written: raises a one-line SpecError.

    A study with in-memory objects (a function object, arrays) runs in this process only; a
    factory's function is imported and its signature checked against every argument the study
    passes. (Building and training every recipe is :func:`check_recipes`; the layer names a probe
    needs, :func:`check_layer_names`.)
    """
    held = spec.in_memory
    if workers > 1 and held:
        raise SpecError("workers", f"{' and '.join(held)} exist only in this Python process, so the study runs "
                        f"in it (workers=1); for worker processes name a function in a file (\"file.py:function\") "
                        f"and save the arrays as a .npz file (data path)")
    if spec.model.factory is None:
        return
    fn = factory.load(spec.model.factory)
    factory.check_arguments(fn, spec.model.factory, factory.given_arguments(spec))
    check_variants(spec, seen)


def check_layer_names(spec: Any, seen: Checked | None = None) -> None:
    """A user's model has the zoo's layer names when a layer probe needs them (the first recipe's model:
    the one :func:`check_recipes` built when ``seen`` holds it)."""
    from ablation.train.probes import LAYER_PROBES

    layered = [p for p in spec.probes if p in LAYER_PROBES]
    if spec.model.factory is None or not layered:
        return
    model = seen.first_model if seen is not None and seen.first_model is not None else _first_model(spec)
    from ablation.train.probes.net import hidden_indices

    if not hidden_indices(model):
        names = ", ".join(layer.name for layer in model.layers)
        raise SpecError("study.probes", f"the {layered[0]} probe needs the zoo's layer names (act_1, dense_1, ... "
                        f"and logits; docs/internals.md section 1), and {spec.model.factory.function_name}() builds "
                        f"layers named {names}; name your layers so, or drop the probe")


def check_variants(spec: Any, seen: Checked | None = None) -> None:
    """A generated ablation study's ``ablate`` values (``ablation.zoo.parts.variants``) name components the
    model has: the model is built once without them and searched; a SpecError otherwise. The model is
    built as the first trial's (its seed and precision) and kept in ``seen``: :func:`check_recipes` makes
    the first recipe's model from it instead of calling the function again."""
    import keras

    from ablation.train import training
    from ablation.zoo import parts

    where = {"model." + parts.AXIS: [spec.model.args[parts.AXIS]]} if parts.AXIS in spec.model.args else {}
    where.update({f"grid.{a.name}": list(a.values) for a in spec.grid if a.name == parts.AXIS})
    if not where:
        return
    point, seed = spec.trials()[0]
    cfg = spec.resolve(point, seed)
    ds = data.load_spec(spec.data)
    args = {k: v for k, v in cfg.model_args.items() if k != parts.AXIS}
    try:
        keras.utils.set_random_seed(cfg.seed)
        with training.precision_policy(cfg.train.precision):
            model = factory.call(spec.model.factory, args, ds.input_shape, ds.num_outputs)
        if seen is not None:
            seen.builds += 1
        found = parts.discover(model, parts.KINDS)
        if seen is not None:
            seen.base_model = (_model_key(cfg), model)
    except parts.NotRebuildable as exc:
        raise SpecError("model.factory", f"{spec.model.factory.function_name}() returned a model that cannot be "
                        f"ablated: {exc}") from None
    except Exception:  # noqa: BLE001 - the function raised: its trials record it
        return
    finally:
        keras.backend.clear_session()
    for path, values in where.items():
        for value in values:
            try:
                parts.removed_by(value, found)
            except ValueError:
                ids = ", ".join(c.id for c in found) or "(none)"
                raise SpecError(path, f"expected \"full\", \"bare\", or - / + one of the components of "
                                f"{spec.model.factory.function_name}()'s model ({ids}). Received: {value!r}") from None


def _first_model(spec: Any) -> Any:
    """The first trial's model (its errors are :func:`check_recipes`' to report)."""
    import keras

    point, seed = spec.trials()[0]
    try:
        return trial.build_model(spec.resolve(point, seed), data.load_spec(spec.data))
    finally:
        keras.backend.clear_session()


STEP_EXAMPLES = 8  # the examples of the one training step each recipe takes before the run


def recipes(spec: Any) -> list[Any]:
    """One trial configuration per recipe: per distinct model (its builder and arguments) and training
    recipe, the first seed's. Trials that differ only in seed or training-set size share one."""
    import dataclasses

    from ablation.spec import canonical_json

    seen, out = set(), []
    for point, seed in spec.trials():
        cfg = spec.resolve(point, seed)
        key = canonical_json([cfg.model_name, cfg.model_args, dataclasses.asdict(cfg.train)])
        if key not in seen:
            seen.add(key)
            out.append(cfg)
    return out


def _model_key(cfg: Any) -> str:
    """What a recipe's model is built from, less the ``ablate`` value (its builder, arguments, precision)."""
    from ablation.spec import canonical_json
    from ablation.zoo import parts

    return canonical_json([cfg.model_name, {k: v for k, v in cfg.model_args.items() if k != parts.AXIS},
                           cfg.train.precision])


def _build(cfg: Any, ds: Any, seen: Checked | None) -> Any:
    """A recipe's model: made from :func:`check_variants`' build when it is the same model less its
    ``ablate`` value (what ``factory.call`` would do after calling the function), else built."""
    from ablation.zoo import parts

    base = seen.base_model if seen is not None else None
    if base is not None and parts.AXIS in cfg.model_args and base[0] == _model_key(cfg):
        from ablation.train import training

        with training.precision_policy(cfg.train.precision):
            return parts.apply(base[1], cfg.model_args[parts.AXIS])
    if seen is not None:
        seen.builds += 1
    return trial.build_model(cfg, ds)


def zoo_traits(spec: Any, every: list[Any] | None = None) -> backend_choice.Traits:
    """What the backend rule reads of a study's zoo models, without building them: convolution layers (the
    builder is the CNN's), per-example sampling layers (stochastic pooling, DropConnect with a mask per
    example), from the registry and each recipe's arguments; nothing for a model function
    (:func:`check_recipes` learns it by building). ``every``: the study's :func:`recipes`, when the caller has
    them."""
    from ablation.zoo import registry

    traits = backend_choice.Traits()
    if spec.model.factory is not None:
        return traits
    for cfg in recipes(spec) if every is None else every:
        args = registry.effective_args(cfg.model_name, cfg.model_args)
        cnn = registry.builder_of(cfg.model_name) == "cnn"
        sampling = (args.get("pooling") == "stochastic" if cnn
                    else bool(args.get("dropconnect")) and bool(args.get("dropconnect_per_example")))
        traits = traits | backend_choice.Traits(cnn, sampling)
    return traits


def check_recipes(spec: Any, seen: Checked | None = None,
                  on_model: Callable[[backend_choice.Traits], None] | None = None) -> None:
    """Build the model of every recipe (:func:`recipes`) and train it one step on a few training examples.

    What a trial would fail on at its start (a model function that raises for some grid value, a
    convolution given flat inputs, a loss the outputs do not fit) is then a one-line SpecError
    naming the grid point, before any trial runs; it costs one small eager step per recipe. A zoo
    model (built from arguments the study file's checks already validated) is tried on its first
    recipe only: that checks the data against the model and the loss. ``seen`` (:class:`Checked`)
    receives the models' traits for the backend rule (a zoo model's from :func:`zoo_traits`) and the first
    recipe's model.
    """
    import keras

    ds = data.load_spec(spec.data)
    every = recipes(spec)
    if seen is not None and spec.model.factory is None:
        seen.traits = zoo_traits(spec, every)
    for i, cfg in enumerate(every if spec.model.factory is not None else every[:1]):
        try:
            stage = "building the model"
            model = _build(cfg, ds, seen)
            if spec.model.factory is not None:
                traits = backend_choice.Traits.of([model])
                if seen is not None:
                    seen.traits = seen.traits | traits
                if i == 0 and on_model is not None:
                    on_model(traits)
            if seen is not None:
                seen.first_model = seen.first_model if seen.first_model is not None else model
            stage = f"one training step on {min(STEP_EXAMPLES, len(ds.x_train))} examples"
            _one_step(model, cfg, ds)
        except KeyboardInterrupt:
            raise
        except SpecError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's function or the model: one line, exit 2
            raise _recipe_error(spec, cfg, ds, stage, exc) from exc
        finally:
            keras.backend.clear_session(free_memory=False)  # a full garbage collection per recipe costs ~0.1 s


def _one_step(model: Any, cfg: Any, ds: Any) -> None:
    """Compile ``model`` as a trial does (the task's loss, the recipe's optimizer) and train one batch.

    Under TensorFlow the step runs eagerly (no tracing); under JAX it is one compiled program, since JAX's
    eager ops each compile on their first call: the 10-trial tiny study's two recipes took 6.3-6.6 s
    eagerly and 3.2-3.5 s compiled from an empty compilation cache (warm: 1.4 vs 0.7 s of CPU for the
    quickstart's six), on this project's 2-core machine.
    """
    from ablation.base import backend
    from ablation.data import tasks
    from ablation.train import training
    from ablation import zoo

    loss, member_metrics = tasks.compiled(cfg.task, zoo.outputs_probabilities(model))
    with training.precision_policy(cfg.train.precision):
        model.compile(optimizer=training.make_optimizer(cfg.train), loss=loss, metrics=member_metrics,
                      run_eagerly=backend.name() != "jax")
        model.train_on_batch(ds.x_train[:STEP_EXAMPLES], ds.y_train[:STEP_EXAMPLES])


def _recipe_error(spec: Any, cfg: Any, ds: Any, stage: str, exc: BaseException) -> SpecError:
    """The one-line error of a recipe that cannot build or train: the grid point, the exception, a hint."""
    from ablation.spec.errors import show

    if spec.model.factory is not None and str(exc).startswith(f"{spec.model.factory.function_name}()"):
        return SpecError("model.factory", str(exc))  # factory.call's check of what the function returned
    text = one_line(str(exc))
    who = f"{spec.model.factory.function_name}()" if spec.model.factory is not None else f"model {cfg.model_name!r}"
    values = {name: cfg.model_args.get(name, label) for name, label in cfg.point.items()}
    where = (" at the grid point " + ", ".join(f"{k}={show(v)}" for k, v in values.items())) if values else ""
    message = f"{stage} with {who}{where} raised {type(exc).__name__}: {text}"
    quoted = [k for k, v in values.items() if isinstance(v, str) and _is_number(v)]
    if quoted:  # a grid of strings where numbers were meant: name the axis and the type
        return SpecError(f"grid.{quoted[0]}", f"{message}; the values of grid.{quoted[0]} are strings (str), "
                         f"e.g. {show(values[quoted[0]])}: write numbers without quotes")
    key = "model.factory" if spec.model.factory is not None else "model"
    flat = _flat_image_hint(spec, ds)
    return SpecError(key, message + (f"; {flat}" if flat else ""))


def one_line(message: str, limit: int = 300) -> str:
    """An exception's message as one line: its first line, or for Keras' "Exception encountered when
    calling X.call()" wrapper the wrapped message; colour codes dropped, cut to ``limit`` characters.
    A leading ``Type: `` (a trial record's reason) is kept."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(message)).strip()
    kind, body = "", text
    match = re.match(r"([A-Za-z_][\w.]*: )(Exception encountered when calling.*)", text, re.S)
    if match:
        kind, body = match.groups()
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        lines = [line for line in lines[1:] if not line.startswith("Arguments received by")] or lines
    text = kind + " ".join(lines[0].split()) if lines else kind.rstrip(": ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _flat_image_hint(spec: Any, ds: Any) -> str | None:
    """For a built-in image set flattened by default: how to keep its image shape."""
    d = spec.data
    if d.name not in data.list_datasets() or "flatten" in d.options or len(ds.input_shape) != 1:
        return None
    shape = data.load(d.name, **{**d.options, "flatten": False}).input_shape
    if len(shape) < 3:
        return None
    return (f"{d.name} gives flat inputs of shape {tuple(ds.input_shape)} by default; for images of shape "
            f"{tuple(shape)} (a convolutional model) set flatten = false in [data]")
