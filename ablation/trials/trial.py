"""Trials: one (grid point, seed) of a study, prepared for training, and the record it produces.

:func:`prepare` builds a trial's :class:`Member` (its configuration, its data with the validation
set held out and its training subset drawn, and its model built by the zoo under its seed and
precision); ``ablation.trials.pack.train`` trains one or more members and returns one
:class:`TrialRecord` each (its ``result``, per-epoch ``history`` and ``probes`` rows). The tuner
writes the record into the trial's folder (``ablation.base.rundir.write_trial``). A trial that diverges
(NaN or infinite loss) or raises is a record with status ``diverged`` / ``failed``, never an
exception.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from ablation import data as data_module
from ablation.train import training
from ablation import zoo
from ablation.spec import StudySpec, TrialConfig


@dataclass
class TrialRecord:
    """What one trial produced: ``result`` (status, metrics, evaluations), ``history`` and ``probes`` rows."""

    result: dict[str, Any]
    history: dict[str, list] = field(default_factory=dict)
    probes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.result["status"]

    def metrics(self) -> dict[str, float]:
        """The finite scalar metrics (what keras-tuner's oracle is given)."""
        return {k: v for k, v in self.result["metrics"].items()
                if isinstance(v, (int, float)) and np.isfinite(v)}


@dataclass
class Member:
    """A trial ready to train: its configuration, its data and its freshly built model."""

    trial_id: str
    cfg: TrialConfig
    data: data_module.Dataset
    model: keras.Model

    @property
    def probabilities(self) -> bool:
        """The model ends in a softmax (else it outputs logits)."""
        return zoo.outputs_probabilities(self.model)


def new_result(cfg: TrialConfig, trial_id: str) -> dict[str, Any]:
    """The ``result.json`` skeleton of a trial (status completed until something says otherwise)."""
    return {"trial_id": trial_id, "status": "completed", "reason": None, "failed_epoch": None,
            "point": cfg.point, "seed": cfg.seed, "train_size": cfg.train_size, "task": cfg.task, "metrics": {},
            "evaluations": [], "wall_time_s": 0.0, "epochs_run": 0, "steps_run": 0}


def failed(cfg: TrialConfig, trial_id: str, exc: BaseException) -> TrialRecord:
    """The record of a trial that raised before training."""
    result = new_result(cfg, trial_id)
    result.update(status="failed", reason=f"{type(exc).__name__}: {exc}",
                  traceback="".join(traceback.format_exception(exc)))
    return TrialRecord(result)


def every_steps(spec: StudySpec) -> int | None:
    """The probes' sampling period when a probe samples between epochs, else None."""
    stepped = {"covariate_shift", "speed"} & set(spec.probes)
    return spec.probe_every_steps if stepped else None


def build_model(cfg: TrialConfig, ds: data_module.Dataset) -> keras.Model:
    """The trial's model, built under the trial's seed and precision policy: the zoo's, or the user's
    function's (``ablation.trials.factory``), with ``num_classes`` output units (classes, or regression targets)."""
    keras.utils.set_random_seed(cfg.seed)
    with training.precision_policy(cfg.train.precision):
        if cfg.factory is not None:
            from ablation.trials import factory

            return factory.call(cfg.factory, cfg.model_args, ds.input_shape, ds.num_outputs)
        return zoo.create(cfg.model_name, **{**cfg.model_args, "input_shape": ds.input_shape,
                                             "num_classes": ds.num_outputs})


def prepare(cfg: TrialConfig, trial_id: str, ds: data_module.Dataset) -> Member:
    """A trial's member: ``ds`` is its data (validation held out, training subset drawn)."""
    return Member(trial_id=trial_id, cfg=cfg, data=ds, model=build_model(cfg, ds))
