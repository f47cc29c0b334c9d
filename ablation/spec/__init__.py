"""Study files: parse and validate a TOML study into a frozen, hashed ``StudySpec``.

A study file (format: ``docs/internals.md`` section 2) names a data set, a model, a training
recipe, a grid of axes and zero or more scientific claims. ``load`` reads it, deep-merges a
profile over it (``[profiles.<name>]``), validates every key and value, and returns a frozen
``StudySpec``. Every error is a ``SpecError`` whose message is one line starting with the key
path, e.g. ``grid.dropuot: unknown key; did you mean grid.dropout?``. This package never writes
to disk.

Modules: ``schema`` (the dataclasses, grid expansion, trial resolution, hash), ``sections``
(study, data, model, train, evaluate), ``grid``, ``claims``, ``parse`` (TOML, profiles, ``load``), ``values``
and ``errors`` (checks with key paths).
"""

from __future__ import annotations

from ablation.spec.claims import EFFECTS, EXPECTS, Claim, test_text
from ablation.spec.errors import SpecError
from ablation.spec.parse import (STUDIES_DIR, describe_grid, find_study, list_studies, load, loads,
                                 report_profile)
from ablation.spec.schema import (TRAIN_KEYS, Axis, DataSpec, EvaluateSpec, ModelSpec, StudySpec, TrainSpec,
                                  TrialConfig, canonical_json, label)

from_dict = StudySpec.from_dict

__all__ = [
    "SpecError", "StudySpec", "Claim", "DataSpec", "ModelSpec", "TrainSpec", "EvaluateSpec", "Axis",
    "TrialConfig", "load", "loads", "from_dict", "find_study", "list_studies", "report_profile", "describe_grid", "label",
    "canonical_json", "test_text", "EFFECTS", "EXPECTS", "STUDIES_DIR", "TRAIN_KEYS",
]
