"""Your model function: find it without running it, import it when the study runs, check and call it.

A study's ``[model] factory`` names a function that returns a Keras model:

- ``"package.module:function"``: a module on the import path, which is the study file's folder,
  then the current folder, then ``sys.path`` (the way Python runs a script);
- ``"path/to/file.py:function"``: a Python file (relative to the study file's folder), imported
  with its own folder on the import path.

From Python, ``ablation.Study(model=function)`` takes the function object itself.

Finding the function (:func:`locate`) reads files and runs nothing: ``ablation run --dry-run``
shows which file and function a study would import before anything is imported, and the
study's hash holds the SHA-256 of that source file (editing it starts a new run). The import
(:func:`load`) happens when the study runs, before any trial: ``ablation.engine.preflight`` checks the fixed
``[model]`` keys, the grid axes and the config recipes against the function's signature (an
unknown argument is a one-line error naming the function and its parameters) and builds one model
to see that it has the outputs the task needs and the layer names the probes need. Naming a factory
runs its Python code, like running a script.

The function is called with keyword arguments only: the fixed ``[model]`` keys, then the trial's
axis values and recipe overrides, plus ``input_shape`` (one example's shape, e.g. ``(8, 8, 1)``)
and ``num_classes`` (the output units the task needs: the number of classes, or of regression
targets) when its signature names them. It must return a functional or Sequential
``keras.Model`` with one input and one output of ``num_classes`` units (logits, or a softmax, for
classification; linear for regression). A function that raises, or returns something else, makes
that trial ``failed`` with its traceback in the trial's record; the study goes on.
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ablation.zoo.parts import variants
from ablation.spec.errors import SpecError
from ablation.spec.factory import FORMS, INJECTED, describe, digest_file, locate, of_function, parse, search_path
from ablation.spec.schema import TRAIN_KEYS, Factory

__all__ = ["FORMS", "INJECTED", "call", "check_arguments", "check_reserved", "describe", "digest_file", "given_arguments", "load",
           "locate", "of_function", "parameters", "parse", "search_path"]

_LOADED: dict[tuple, Callable[..., Any]] = {}
_IMPORTED: dict[str, str] = {}  # module name -> digest of the source it was imported from here


# --------------------------------------------------------------------------- importing


def load(f: Factory) -> Callable[..., Any]:
    """The function a factory names, imported (once per process and digest).

    Raises:
        SpecError: at ``model.factory``: the import raised, the name is missing or not callable, or
            the module imported is not the file the study named.
    """
    if f.function is not None:
        return f.function
    key = (f.reference, f.source, f.digest)
    if key in _LOADED:
        return _LOADED[key]
    target, function = parse(f.reference)
    source = Path(f.source) if f.source else None
    try:
        if target.endswith(".py"):
            module = _import_file(source)
        else:
            _on_path([_root_of(source, target) if source is not None else None])
            known = sys.modules.get(target)
            stale = known is not None and _IMPORTED.get(target, _digest_of(known)) != f.digest
            module = importlib.reload(sys.modules[target]) if stale else importlib.import_module(target)
            _IMPORTED[target] = f.digest  # an edited file is imported again (its digest made a new run)
            got = getattr(module, "__file__", None)
            if source is not None and got and Path(got).resolve() != source:
                raise SpecError("model.factory", f"importing {target!r} gave {got}, not {source} (found first on the "
                                f"import path when the study was read); rename one of them")
    except SpecError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the user's module failed to import: one line
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise SpecError("model.factory", f"importing {f.source or target} raised {type(exc).__name__}: "
                        f"{_line(exc)}") from exc
    fn: Any = module
    for part in function.split("."):
        owner, fn = fn, getattr(fn, part, None)
        if fn is None:
            close = difflib.get_close_matches(part, [n for n in dir(owner) if not n.startswith("_")], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SpecError("model.factory", f"{f.source or target} has no {function!r}{hint}")
    if not callable(fn):
        raise SpecError("model.factory", f"{function} in {f.source or target} is not a function: {type(fn).__name__}")
    _LOADED[key] = fn
    return fn


def _digest_of(module: Any) -> str | None:
    """The digest of the file a module was imported from (a module imported before the study, such as
    ``ablation.zoo.variants``, is not imported again when its file is the one the study named)."""
    path = getattr(module, "__file__", None)
    return digest_file(path) if path and Path(path).is_file() else None


def _root_of(source: Path, module: str) -> Path:
    """The import-path folder that holds module ``module`` whose file is ``source``."""
    depth = module.count(".") + (1 if source.name == "__init__.py" else 0)
    return source.parents[depth]


def _on_path(folders: Iterable[Any]) -> None:
    """Put folders at the front of sys.path (the import path of a script), each once."""
    for folder in reversed([str(Path(p).resolve()) for p in folders if p is not None]):
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)


def _import_file(source: Path) -> Any:
    name = f"_ablation_factory_{source.stem}_{digest_file(source)[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    _on_path([source.parent])
    spec = importlib.util.spec_from_file_location(name, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# --------------------------------------------------------------------------- arguments


def parameters(fn: Callable[..., Any]) -> tuple[list[str], bool, list[str]]:
    """``(keyword parameter names, takes **kwargs, required names)`` of a function."""
    sig = inspect.signature(fn)
    names, required, var = [], [], False
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var = True
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.append(p.name)
            if p.default is p.empty:
                required.append(p.name)
        elif p.kind is p.POSITIONAL_ONLY and p.default is p.empty:
            required.append(p.name)
    return names, var, required


def check_arguments(fn: Callable[..., Any], f: Factory, given: Mapping[str, str]) -> None:
    """Every argument a study passes is a parameter of ``fn``, and every required parameter gets a value.

    Args:
        fn: the imported function.
        f: its factory (names it in errors).
        given: argument name -> the key path that sets it (``model.width``, ``grid.dropout``, ...).
    """
    names, var, required = parameters(fn)
    who, params = _who(f), _params_text(names, var) or "(none)"
    if variants.AXIS in given:
        check_reserved(fn, f)
    for arg, where in given.items():
        if arg == variants.AXIS:  # the component-ablation axis (ablation.zoo.parts.variants), applied by call()
            continue
        if arg in INJECTED:
            raise SpecError(where, f"{arg} is passed by the runner (from the data set); do not set it")
        if arg not in names and not var:
            raise SpecError(where, f"unknown argument of {who}; its parameters: {params}")
    missing = [r for r in required if r not in given and r not in INJECTED]
    if missing:
        raise SpecError("model.factory", f"{who} needs {', '.join(missing)} (no default); set "
                        f"{'it' if len(missing) == 1 else 'them'} in [model] or as grid axes")
    clash = [n for n in names if n in TRAIN_KEYS and n in given]
    if clash:  # never: train keys go to the training recipe; kept as a guard for direct callers
        raise SpecError(given[clash[0]], f"{clash[0]} is a [train] key, not an argument of {who}")


def check_reserved(fn: Callable[..., Any], f: Factory) -> None:
    """A function to ablate must not take an argument named ``ablate``: that name is the axis of a
    generated component-ablation study (``ablation.zoo.parts.variants.AXIS``), which the runner takes
    for itself and never passes on.

    Raises:
        SpecError: at ``model.factory``, naming the function and its parameters.
    """
    names, var, _ = parameters(fn)
    if variants.AXIS in names:
        raise SpecError("model.factory", f"expected a function without a parameter named {variants.AXIS!r} (the "
                        f"reserved axis of a component-ablation study, never passed to it); rename that parameter of "
                        f"{_who(f)}. Received: parameters {_params_text(names, var)}")


def _who(f: Factory) -> str:
    """The function in errors: ``build() of model.py``."""
    return f"{f.function_name}() of {Path(f.source).name}" if f.source else f"{f.function_name}()"


def _params_text(names: Sequence[str], var: bool) -> str:
    return ", ".join(names) + (", **kwargs" if var else "")


def given_arguments(spec: Any) -> dict[str, str]:
    """Every model argument a study passes to its factory, with the key path that sets it."""
    out = {k: f"model.{k}" for k in spec.model.args}
    for axis in spec.grid:
        if axis.section == "model":
            out.setdefault(axis.name, f"grid.{axis.name}")
        elif axis.section == "config":
            for lab, recipe in zip(axis.labels, axis.values):
                for k in recipe:
                    if k not in TRAIN_KEYS and k != "train_size":
                        out.setdefault(k, f"grid.config.{lab}.{k}")
    return out


def call(f: Factory, args: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int) -> Any:
    """Import (once) and call the function with a trial's arguments; returns what it returned, checked.

    Raises:
        TypeError / ValueError: it did not return a usable ``keras.Model`` (the trial fails with this).
    """
    import keras

    fn = load(f)
    names, var, _ = parameters(fn)
    kwargs = dict(args)
    variant = kwargs.pop(variants.AXIS, None)  # a generated ablation study: the model less some components
    for key, value in (("input_shape", tuple(input_shape)), ("num_classes", int(num_classes))):
        if key in names:
            kwargs[key] = value
    model = fn(**kwargs)
    who = f"{f.function_name}()"
    if not isinstance(model, keras.Model):
        raise TypeError(f"{who} returned {type(model).__name__}; expected a keras.Model")
    if isinstance(model, keras.Sequential) and not model.built:
        model.build((None, *input_shape))
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise TypeError(f"{who} returned a subclassed keras.Model; return a functional or Sequential model "
                        f"(start from keras.Input(shape=input_shape))")
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(f"{who} returned a model with {len(inputs)} inputs and {len(outputs)} outputs; expected "
                         f"one of each")
    got = tuple(inputs[0].shape[1:])
    if len(got) != len(input_shape) or any(g is not None and g != w for g, w in zip(got, input_shape)):
        raise ValueError(f"{who} returned a model whose input has shape {got}; the data's examples have shape "
                         f"{tuple(input_shape)} (build it with keras.Input(shape=input_shape))")
    width = outputs[0].shape[-1]
    if len(outputs[0].shape) != 2 or width != num_classes:
        raise ValueError(f"{who} returned a model whose output has shape {tuple(outputs[0].shape)}; this study needs "
                         f"(batch, {num_classes}): one unit per class (logits or softmax), or per regression target")
    return model if variant is None else variants.apply(model, variant)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
