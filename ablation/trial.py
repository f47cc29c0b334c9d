"""Execute trials: train, probe, stop early, evaluate; return the records in memory (no disk).

``execute(spec, cfg, model, dataset)`` runs one trial of a study and returns a
:class:`TrialRecord` (its ``result``, per-epoch ``history`` and ``probe`` rows). The tuner writes
the record to the trial's folder (:func:`ablation.rundir.write_trial`); the keras-tuner HyperModel
returns its metrics. A trial that diverges (NaN or infinite loss) or raises is a record with
status ``diverged`` / ``failed``, never an exception.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from ablation import data as data_module
from ablation import probes as probes_module
from ablation import training
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


def new_result(cfg: TrialConfig, trial_id: str) -> dict[str, Any]:
    """The ``result.json`` skeleton of a trial (status completed until something says otherwise)."""
    return {"trial_id": trial_id, "status": "completed", "reason": None, "failed_epoch": None,
            "point": cfg.point, "seed": cfg.seed, "train_size": cfg.train_size, "metrics": {}, "evaluations": [],
            "wall_time_s": 0.0, "epochs_run": 0, "steps_run": 0}


def failed(cfg: TrialConfig, trial_id: str, exc: BaseException) -> TrialRecord:
    """The record of a trial that raised before or while training."""
    result = new_result(cfg, trial_id)
    result.update(status="failed", reason=f"{type(exc).__name__}: {exc}",
                  traceback="".join(traceback.format_exception(exc)))
    return TrialRecord(result)


def every_steps(spec: StudySpec) -> int | None:
    """The probes' sampling period when a probe samples between epochs, else None."""
    stepped = {"covariate_shift", "speed"} & set(spec.probes)
    return spec.probe_every_steps if stepped else None


def execute(spec: StudySpec, cfg: TrialConfig, model: keras.Model, ds: data_module.Dataset,
            trial_id: str = "") -> TrialRecord:
    """Train one trial's compiled model, evaluate it, and return its record.

    Args:
        spec: the study (probes, evaluations).
        cfg: the trial's configuration.
        model: the compiled model (``AblationHyperModel.build``).
        ds: the trial's data (validation held out, training subset drawn).
        trial_id: keras-tuner's trial id.
    """
    start = time.perf_counter()
    result = new_result(cfg, trial_id)
    log, guard, probes, stopper = training.EpochLog(), training.Divergence(), [], None
    try:
        result["train_size"] = int(len(ds.x_train))
        probes = _probes(spec, model, ds, cfg)
        stopper = _early_stopping(cfg)
        callbacks = [guard, log, *probes] + ([stopper] if stopper is not None else [])
        validation = (ds.x_val, ds.y_val) if ds.x_val is not None else None
        training.fit(model, ds.x_train, ds.y_train, train=cfg.train, seed=cfg.seed,
                     validation=validation, callbacks=callbacks)
        result["xla"] = bool(model.jit_compile)  # may differ from the recipe (training.use_xla)
        result["epochs_run"] = len(log.history["epoch"])
        result["steps_run"] = int(model.optimizer.iterations.numpy())
        if guard.reason is not None:
            result.update(status="diverged", reason=guard.reason, failed_epoch=guard.epoch)
        else:
            result["metrics"] = _metrics(model, ds, log.history, stopper)
            result["metrics"].update(probes_module.collect_summary(probes))
            result["evaluations"] = _evaluations(spec, model, ds, cfg)
    except Exception as exc:  # a broken trial is recorded (with its traceback), and the study goes on
        result.update(status="failed", reason=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    result["wall_time_s"] = time.perf_counter() - start
    return TrialRecord(result, log.history, probes_module.collect_rows(probes))


def _probes(spec: StudySpec, model: keras.Model, ds: data_module.Dataset, cfg: TrialConfig) -> list:
    if not spec.probes:
        return []
    rng = np.random.default_rng(cfg.seed)
    idx = rng.permutation(len(ds.x_train))[: spec.probe_size]
    return probes_module.make(spec.probes, model=model, probe_x=ds.x_train[idx], probe_y=ds.y_train[idx],
                              every_steps=every_steps(spec), target_train_error=spec.evaluate.target_train_error)


def _early_stopping(cfg: TrialConfig) -> keras.callbacks.Callback | None:
    if not cfg.train.early_stopping:
        return None
    from ablation import stopping

    params = dict(cfg.train.early_stopping)
    return stopping.EarlyStopping(criterion=params.pop("criterion"), **params)


def _metrics(model: keras.Model, ds: data_module.Dataset, history: dict, stopper: Any) -> dict[str, float]:
    metrics: dict[str, float] = {}
    if stopper is not None and getattr(stopper, "best_weights", None) is not None:
        at_stop = training.evaluate(model, ds.x_test, ds.y_test)
        metrics.update({f"test_{k}_at_stop": v for k, v in at_stop.items()})
        metrics["early_stopped"] = float(stopper.stopped_epoch is not None)
        metrics["stopped_epoch"] = float(stopper.stopped_epoch or len(history["epoch"]))
        metrics["best_epoch"] = float(stopper.best_epoch)
        model.set_weights(stopper.best_weights)
    test = training.evaluate(model, ds.x_test, ds.y_test)
    metrics.update({f"test_{k}": v for k, v in test.items()})
    if history.get("accuracy"):
        metrics["train_loss"] = history["loss"][-1]
        metrics["train_error"] = 1.0 - history["accuracy"][-1]
    if history.get("val_accuracy"):
        val_err = [1.0 - a for a in history["val_accuracy"]]
        metrics["val_loss"] = history["val_loss"][-1]
        metrics["val_error"] = val_err[-1]
        metrics["best_val_error"] = min(val_err)
        metrics["best_val_epoch"] = float(int(np.argmin(val_err)) + 1)
    times = history["epoch_time_s"]
    if times:
        metrics["first_epoch_time_s"] = times[0]
        metrics["time_per_epoch_s"] = float(np.median(times[1:] if len(times) > 1 else times))
    return metrics


def _evaluations(spec: StudySpec, model: keras.Model, ds: data_module.Dataset, cfg: TrialConfig) -> list[dict]:
    ev = spec.evaluate
    if not (ev.mc_dropout_k or ev.dropconnect_inference):
        return []
    from ablation import evaluation

    rows: list[dict] = []
    if ev.mc_dropout_k:
        rows += evaluation.weight_scaling(model, ds.x_test, ds.y_test)
        rows += evaluation.mc_dropout(model, ds.x_test, ds.y_test, ks=ev.mc_dropout_k, seed=cfg.seed)
    if ev.dropconnect_inference:
        rows += evaluation.dropconnect(model, ds.x_test, ds.y_test, modes=ev.dropconnect_inference, seed=cfg.seed)
    return rows
