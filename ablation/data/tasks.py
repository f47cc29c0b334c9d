"""Tasks: what a study's targets are, how a model is trained on them and how its outputs are scored.

==============  ==========================================  ==============================  ====================
task            targets                                     the model outputs               recorded metrics
==============  ==========================================  ==============================  ====================
classification  int labels ``0..k-1``, any k >= 2 (binary:  k units per example: logits,     loss (cross-entropy),
                k = 2)                                      or a softmax                    accuracy, error
regression      floats, ``(n,)`` or ``(n, t)``              t linear units per example      loss (mean squared
                                                                                            error), rmse, mae
==============  ==========================================  ==============================  ====================

A study's task is ``[data] task`` (``ablation.spec.DataSpec.task``). Every trial records its
metrics under these names: ``test_<m>``, ``train_<m>`` (a clean pass over its training set),
``val_<m>`` and ``best_val_<primary>`` when there is a validation set, ``test_<m>_at_stop`` with
early stopping. The primary metric (lower is better: ``error`` or ``rmse``) is what the tuner's
objective, the progress line and the report's tables use. A regression trial also records
``baseline_test_rmse`` and ``baseline_train_rmse``: the RMSE of predicting the training set's
mean, which the untrained-arm guard of the claim verdicts compares against
(:mod:`ablation.stats.claims`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ablation.base import checks

CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)
# Per-epoch metrics in history.json besides "loss" (the data loss), per task.
CURVE_METRICS: dict[str, tuple[str, ...]] = {CLASSIFICATION: ("accuracy",), REGRESSION: ("rmse", "mae")}
# The scores of a pass over labelled data, per task ("loss" first).
SCORES: dict[str, tuple[str, ...]] = {CLASSIFICATION: ("loss", "accuracy", "error"),
                                      REGRESSION: ("loss", "rmse", "mae")}
# The metric a lower value of which is better, per task.
PRIMARY: dict[str, str] = {CLASSIFICATION: "error", REGRESSION: "rmse"}
DATA_LOSS = "data_loss"  # the compiled metric that tracks the loss without weight penalties


def check(task: Any) -> str:
    """``task`` if it is one of ``TASKS`` (else the package's ValueError)."""
    return checks.choice("task", task, TASKS)


def primary(task: str) -> str:
    """The score a lower value of which is better: "error" (classification) or "rmse" (regression)."""
    return PRIMARY[check(task)]


def objective(task: str, validation: bool) -> str:
    """The metric a study's trials are ranked by: ``val_<primary>`` with a validation set, else ``test_<primary>``."""
    return f"{'val' if validation else 'test'}_{primary(task)}"


def compiled(task: str, probabilities: bool) -> tuple[Any, list[Any]]:
    """The Keras loss and metrics one member of a pack is compiled with.

    The metric named ``DATA_LOSS`` tracks the loss without weight penalties (what history.json
    records as "loss"); the others are ``CURVE_METRICS[task]``.
    """
    import keras

    if check(task) == REGRESSION:
        return keras.losses.MeanSquaredError(), [keras.metrics.MeanSquaredError(name=DATA_LOSS),
                                                 keras.metrics.RootMeanSquaredError(name="rmse"),
                                                 keras.metrics.MeanAbsoluteError(name="mae")]
    logits = not probabilities
    return keras.losses.SparseCategoricalCrossentropy(from_logits=logits), [
        keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        keras.metrics.SparseCategoricalCrossentropy(name=DATA_LOSS, from_logits=logits)]


def probe_loss(task: str) -> Any:
    """The loss the gradients probe differentiates (None: sparse categorical cross-entropy)."""
    return "mean_squared_error" if check(task) == REGRESSION else None


def score(task: str, out: np.ndarray, y: np.ndarray, probabilities: bool = False) -> dict[str, float]:
    """The scores (``SCORES[task]``) of one model's outputs on labelled data.

    Args:
        task: one of ``TASKS``.
        out: the model's outputs, ``(n, k)`` logits or probabilities, or ``(n, t)`` predictions.
        y: int labels ``(n,)``, or float targets ``(n,)`` / ``(n, t)``.
        probabilities: classification: the outputs are probabilities (a softmax), not logits.

    Returns:
        classification: mean cross-entropy ("loss"), "accuracy" and "error" (1 - accuracy);
        regression: mean squared error over every target ("loss"), its root ("rmse") and the mean
        absolute error ("mae").
    """
    if check(task) == REGRESSION:
        pred = np.asarray(out, dtype=np.float64).reshape(len(out), -1)
        diff = pred - np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        with np.errstate(invalid="ignore", over="ignore"):
            mse = float(np.mean(diff ** 2)) if diff.size else float("nan")
            return {"loss": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(diff)))}
    from ablation.data.evaluation import log_softmax

    logp = log_softmax(out, probabilities)
    labels = np.asarray(y).reshape(-1).astype(int)
    nll = -logp[np.arange(len(labels)), labels]
    with np.errstate(invalid="ignore"):
        error = float(np.mean(np.argmax(logp, axis=-1) != labels))
        return {"loss": float(np.mean(nll)), "accuracy": 1.0 - error, "error": error}


def mean_baseline_rmse(y_train: np.ndarray, y: np.ndarray) -> float:
    """RMSE on ``y`` of predicting the mean of ``y_train`` (per target): what a model that learnt nothing scores."""
    mean = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1).mean(axis=0)
    diff = np.asarray(y, dtype=np.float64).reshape(len(y), -1) - mean
    return float(np.sqrt(np.mean(diff ** 2))) if diff.size else float("nan")


def epoch_logs(task: str, logs: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """One member's per-epoch running metrics from Keras' logs (``prefix`` "m3_" for member 3 of a pack):
    ``{"loss": ..., "accuracy": ...}`` or ``{"loss": ..., "rmse": ..., "mae": ...}``."""
    out = {"loss": float(logs.get(f"{prefix}{DATA_LOSS}", np.nan))}
    for name in CURVE_METRICS[check(task)]:
        out[name] = float(logs.get(f"{prefix}{name}", np.nan))
    return out
