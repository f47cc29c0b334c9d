"""keras-ablation: a Keras 3 model zoo and ablation suite.

Submodules are imported lazily so that ``import ablation`` stays cheap; TensorFlow is
only loaded by the modules that need it (``zoo``, ``hypermodel``, ``runner``, ``probes``).
``ablation.Study(...)`` and ``ablation.run(study)`` run a study from Python (``ablation.study``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("zoo", "data", "spec", "runner", "records", "report", "stats", "probes", "hypermodel", "cli",
               "evaluation", "stopping", "training", "trial", "tuner", "files", "rundir", "checks", "tasks",
               "sources", "factory", "study")
_API = ("Study", "run", "Result")  # from ablation.study


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("ablation.study"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"ablation.{name}")
    raise AttributeError(f"module 'ablation' has no attribute {name!r}")
