"""keras-ablation: a Keras 3 model zoo and ablation suite.

Submodules are imported lazily so that ``import ablation`` stays cheap; TensorFlow is
only loaded by the modules that need it (``zoo``, ``train``, ``trials``, ``engine``).
The folders are the pipeline's stages, lowest first: ``base``, ``zoo``, ``data``, ``train``, ``spec``,
``trials``, ``stats``, ``report``, ``engine``; ``cli`` is the command line (docs/internals.md).
``ablation.Study(...)`` and ``ablation.run(study)`` run a study from Python (``ablation.engine.study``).
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any

try:  # the one place the version is written is pyproject.toml; an installed package knows it
    __version__ = metadata.version("keras-ablation")
except metadata.PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

_SUBMODULES = ("base", "zoo", "data", "train", "spec", "trials", "stats", "report", "engine", "cli")  # the stages

_MOVED = {"records": "ablation.stats.records"}  # documented before the stage folders: still importable
_API = ("Study", "run", "Result")  # from ablation.engine.study


def __getattr__(name: str) -> Any:
    if name == "ablate":  # ablation.ablate(model_fn, data, ...): a generated component ablation study
        return importlib.import_module("ablation.engine.autostudy").ablate
    if name in _API:
        return getattr(importlib.import_module("ablation.engine.study"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"ablation.{name}")
    if name in _MOVED:
        return importlib.import_module(_MOVED[name])
    raise AttributeError(f"module 'ablation' has no attribute {name!r}")
