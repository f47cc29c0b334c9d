"""Finding a user's model function without running it (``[model] factory``; ``ablation.trials.factory``
imports and calls it when the study runs).

A reference is ``"package.module:function"`` (a module on the import path: the study file's folder,
then the current folder, then ``sys.path``) or ``"path/to/file.py:function"`` (relative to the
study file's folder). :func:`locate` reads files and runs nothing: ``ablation run --dry-run`` shows
which file and function a study would import, and the study's hash holds the SHA-256 of that
source file (editing it starts a new run); :func:`of_function` does the same for a function object
given from Python.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import keyword
import marshal
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ablation.spec.errors import SpecError, show
from ablation.spec.schema import Factory

INJECTED = ("input_shape", "num_classes")  # passed when the function's signature names them
FORMS = '"package.module:function" or "path/to/file.py:function"'


# --------------------------------------------------------------------------- finding (nothing runs)


def search_path(base_dir: str | os.PathLike | None) -> list[Path]:
    """Where a module reference is looked for, in order: the study's folder, the current folder, sys.path."""
    out: list[Path] = []
    for entry in [base_dir, os.getcwd(), *sys.path]:
        if entry is None or entry == "":
            continue
        path = Path(entry).resolve()
        if path not in out:
            out.append(path)
    return out


def parse(reference: Any, path: str = "model.factory") -> tuple[str, str]:
    """``(module or file, function)`` of a reference string (a SpecError at ``path`` otherwise)."""
    if not isinstance(reference, str) or reference.count(":") != 1 or reference.startswith(":") \
            or reference.endswith(":"):
        raise SpecError(path, f"expected {FORMS}. Received: factory={show(reference)}")
    target, function = reference.split(":")
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in function.split(".")):
        raise SpecError(path, f"expected a function name after the colon. Received: factory={show(reference)}")
    if not target.endswith(".py") and not all(p.isidentifier() for p in target.split(".")):
        raise SpecError(path, f"expected {FORMS} (a module name, or a path ending in .py). "
                        f"Received: factory={show(reference)}")
    return target, function


def locate(reference: str, base_dir: str | os.PathLike | None, path: str = "model.factory") -> Factory:
    """The factory a reference names, found without importing anything: its source file and its digest.

    Args:
        reference: ``"package.module:function"`` or ``"path/to/file.py:function"``.
        base_dir: the study file's folder (relative paths and the import path start there); None:
            the current folder.
        path: the key path named in errors.

    Raises:
        SpecError: a malformed reference, a missing file, a module not on the import path.
    """
    target, _ = parse(reference, path)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if target.endswith(".py"):
        source = (base / Path(target).expanduser()).resolve()
        if not source.is_file():
            raise SpecError(path, f"no such file {source} (a relative path starts at {base.resolve()}). "
                            f"Received: factory={show(reference)}")
    else:
        source = _find_module(target, search_path(base))
        if source is None:
            where = ", ".join(str(p) for p in search_path(base)[:2])
            raise SpecError(path, f"no module {target!r} on the import path (the study's folder and the current "
                            f"folder: {where}; then sys.path). Received: factory={show(reference)}")
    return Factory(reference=reference, digest=digest_file(source), source=str(source))


def _find_module(name: str, roots: Iterable[Path]) -> Path | None:
    """The source file of module ``name`` in the first root that has it (a .py file or a package's
    ``__init__.py``), found by looking at files; an installed top-level package without a plain
    folder (an editable install) is found by importlib without running it."""
    parts = name.split(".")
    for root in roots:
        found = _walk(root, parts)
        if found is not None:
            return found
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: finds, runs nothing
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if len(parts) == 1:
        return Path(spec.origin) if spec.origin and spec.origin.endswith(".py") else None
    for location in spec.submodule_search_locations or []:
        found = _walk(Path(location), parts[1:])
        if found is not None:
            return found
    return None


def _walk(root: Path, parts: list[str]) -> Path | None:
    folder = root.joinpath(*parts[:-1])
    if parts[:-1] and not folder.is_dir():
        return None
    for candidate in (folder / f"{parts[-1]}.py", folder / parts[-1] / "__init__.py"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def digest_file(path: str | os.PathLike) -> str:
    """SHA-256 hex of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def of_function(fn: Any, path: str = "model.factory") -> Factory:
    """The factory of a function object given from Python: its reference ``module:qualname`` and the
    digest of its source file (of its source text, or of its code, where there is no file)."""
    if not callable(fn) or isinstance(fn, type):
        raise SpecError(path, f"expected a function that returns a keras.Model, or {FORMS}. "
                        f"Received: factory={show(fn)}")
    module, name = getattr(fn, "__module__", None) or "__main__", getattr(fn, "__qualname__", None) or \
        type(fn).__name__
    source = None
    try:
        file = inspect.getsourcefile(fn)
        source = str(Path(file).resolve()) if file and Path(file).is_file() else None
    except TypeError:
        pass
    if source is not None:
        digest = digest_file(source)
    else:
        try:
            text = inspect.getsource(fn).encode()
        except (OSError, TypeError):
            code = getattr(fn, "__code__", None)
            text = marshal.dumps(code) if code is not None else repr(fn).encode()
        digest = hashlib.sha256(text).hexdigest()
    return Factory(reference=f"{module}:{name}", digest=digest, source=source, function=fn)


def describe(f: Factory) -> str:
    """One line for ``--dry-run`` and reports: which function of which file a study imports and calls."""
    if f.function is not None:
        return f"model: your function {f.reference} (given from Python)"
    return f"model: function {f.function_name} of {f.source} ({f.reference}; imported and run when the study runs)"
