"""Early stopping: Prechelt's GL, PQ and UP criteria, patience, and a Keras callback.

Prechelt, L. (1998), "Early stopping — but when?", in Neural Networks: Tricks of the Trade.
Epochs are numbered t = 1, 2, ... (``val_loss[t - 1]`` is the validation loss after epoch t).
Each pure function returns the first epoch after which training stops, or None.

- Generalization loss ``GL(t) = 100 * (E_va(t) / E_opt(t) - 1)``, ``E_opt(t)`` the lowest
  validation loss up to t. **GL_alpha**: stop after the first epoch with ``GL(t) > alpha``.
- Training strip of length k: epochs n+1 .. n+k with n divisible by k. Training progress
  ``P_k(t) = 1000 * (sum of E_tr over the strip ending at t / (k * min of it) - 1)``.
  **PQ_alpha**: stop after the first end-of-strip epoch with ``GL(t) / P_k(t) > alpha``.
- **UP_s**: stop after the first end-of-strip epoch t at which the validation loss rose in s
  successive strips: ``E_va(t - j k) > E_va(t - (j + 1) k)`` for j = 0 .. s - 1 (the recursive
  definition UP_s(t) = UP_{s-1}(t - k) and E_va(t) > E_va(t - k)).
- **patience** (as ``keras.callbacks.EarlyStopping``): stop after the first epoch that does not
  improve on the best validation loss by more than ``min_delta`` and comes ``patience`` or more
  epochs after the last improvement.

A NaN validation loss counts as +inf (a diverged run stops under every criterion).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from ablation.base import checks

CRITERIA: dict[str, dict[str, Any]] = {  # criterion -> its parameters and their defaults (the one source)
    "patience": {"patience": 5, "min_delta": 0.0},
    "gl": {"alpha": 2.0},  # GL_alpha: percent generalization loss (Prechelt tried alpha = 1..5)
    "pq": {"alpha": 0.5, "strip": 5},  # PQ_alpha: GL / training progress, at strip ends (alpha = 0.5..3)
    "up": {"s": 3, "strip": 5},  # UP_s: s successive strips with rising validation loss (s = 2..4)
}


def _clean(losses: Sequence[float]) -> np.ndarray:
    arr = np.asarray(losses, dtype=np.float64).reshape(-1)
    return np.where(np.isnan(arr), np.inf, arr)


def generalization_loss(val_loss: Sequence[float]) -> np.ndarray:
    """``GL(t) = 100 * (E_va(t) / min_{t' <= t} E_va(t') - 1)`` for t = 1..T (percent)."""
    val = _clean(val_loss)
    best = np.minimum.accumulate(val)
    with np.errstate(divide="ignore", invalid="ignore"):
        gl = 100.0 * (val / best - 1.0)
    gl[val == best] = 0.0
    return np.where(np.isnan(gl), np.inf, gl)


def training_progress(train_loss: Sequence[float], strip: int = 5) -> np.ndarray:
    """``P_k(t) = 1000 * (sum(strip) / (k * min(strip)) - 1)`` over the k epochs ending at t; NaN for t < k."""
    tr = np.asarray(train_loss, dtype=np.float64).reshape(-1)
    out = np.full(len(tr), np.nan)
    for t in range(strip, len(tr) + 1):
        window = tr[t - strip:t]
        lowest = window.min()
        out[t - 1] = 1000.0 * (window.sum() / (strip * lowest) - 1.0) if lowest > 0 else 0.0
    return out


def gl_stop(val_loss: Sequence[float], alpha: float = CRITERIA["gl"]["alpha"]) -> int | None:
    """GL_alpha: the first epoch t with ``GL(t) > alpha``, or None."""
    hits = np.flatnonzero(generalization_loss(val_loss) > alpha)
    return int(hits[0]) + 1 if len(hits) else None


def pq_stop(val_loss: Sequence[float], train_loss: Sequence[float], alpha: float = CRITERIA["pq"]["alpha"],
            strip: int = CRITERIA["pq"]["strip"]) -> int | None:
    """PQ_alpha: the first end-of-strip epoch t with ``GL(t) / P_k(t) > alpha``, or None."""
    if len(train_loss) != len(val_loss):
        raise ValueError(f"Invalid value for argument 'train_loss': expected as many epochs as val_loss "
                         f"({len(val_loss)}). Received: {len(train_loss)} epochs")
    gl, progress = generalization_loss(val_loss), training_progress(train_loss, strip)
    for t in range(strip, len(gl) + 1, strip):
        g, p = gl[t - 1], progress[t - 1]
        quotient = g / p if p > 0 else (math.inf if g > 0 else 0.0)
        if quotient > alpha:
            return t
    return None


def up_stop(val_loss: Sequence[float], s: int = CRITERIA["up"]["s"], strip: int = CRITERIA["up"]["strip"]) -> int | None:
    """UP_s: the first end-of-strip epoch t after s successive strips of rising validation loss, or None."""
    val = _clean(val_loss)
    for t in range(strip * (s + 1), len(val) + 1, strip):
        if all(val[t - j * strip - 1] > val[t - (j + 1) * strip - 1] for j in range(s)):
            return t
    return None


def patience_stop(val_loss: Sequence[float], patience: int = CRITERIA["patience"]["patience"],
                  min_delta: float = CRITERIA["patience"]["min_delta"]) -> int | None:
    """Keras-style patience: the first epoch t >= 2 that does not improve on the best loss by more
    than ``min_delta`` and comes ``patience`` or more epochs after the last improvement, or None."""
    val = _clean(val_loss)
    best, best_t = math.inf, 0
    for t, v in enumerate(val, start=1):
        if v < best - min_delta:
            best, best_t = v, t
        elif t > 1 and t - best_t >= patience:
            return t
    return None


def best_epoch(val_loss: Sequence[float]) -> int:
    """The epoch (1-based) of the lowest validation loss; the earliest one on ties."""
    return int(np.argmin(_clean(val_loss))) + 1


def check_params(criterion: str, **params: Any) -> dict[str, Any]:
    """Validate a criterion and its parameters; returns them with defaults filled in.

    Raises:
        ValueError: unknown criterion, unknown parameter, or a value out of range.
    """
    checks.choice("criterion", criterion, tuple(CRITERIA))
    for key, value in params.items():
        if key not in CRITERIA[criterion]:
            raise checks.invalid("params", f"parameters of criterion {criterion!r}: {', '.join(CRITERIA[criterion])}",
                                 key)
    full = {**CRITERIA[criterion], **params}
    rules = {"strip": lambda k, v: checks.integer(k, v, 1), "s": lambda k, v: checks.integer(k, v, 1),
             "patience": lambda k, v: checks.integer(k, v, 0), "alpha": checks.positive,
             "min_delta": checks.non_negative}
    return {key: rules[key](key, value) for key, value in full.items()}


def stop_epoch(criterion: str, val_loss: Sequence[float], train_loss: Sequence[float] | None = None,
               **params: Any) -> int | None:
    """The stopping epoch of ``criterion`` ("patience", "gl", "pq", "up") on these curves, or None.

    Args:
        criterion: one of `CRITERIA`.
        val_loss: validation loss after each epoch.
        train_loss: training loss of each epoch (PQ only).
        **params: the criterion's parameters (`CRITERIA` lists them with their defaults).
    """
    p = check_params(criterion, **params)
    if criterion == "gl":
        return gl_stop(val_loss, p["alpha"])
    if criterion == "pq":
        if train_loss is None:
            raise ValueError("Invalid value for argument 'train_loss': criterion 'pq' needs the training "
                             "loss of every epoch. Received: train_loss=None")
        return pq_stop(val_loss, train_loss, p["alpha"], p["strip"])
    if criterion == "up":
        return up_stop(val_loss, p["s"], p["strip"])
    return patience_stop(val_loss, p["patience"], p["min_delta"])


class Stopper:
    """One run's early-stopping state: feed it each epoch's losses, it says when to stop.

    Attributes: ``stopped_epoch`` (1-based epoch after which the criterion fired, None until then),
    ``best_epoch`` (1-based epoch of the lowest validation loss), ``best_value``, ``best_weights``
    (the weights at ``best_epoch``, as ``get_weights`` returned them), ``val_losses`` and
    ``train_losses`` (per epoch).

    Args:
        criterion: "patience", "gl", "pq" or "up".
        **params: the criterion's parameters (`CRITERIA`): patience/min_delta, alpha, strip, s.
    """

    def __init__(self, criterion: str = "patience", **params: Any) -> None:
        self.params = check_params(criterion, **params)
        self.criterion = criterion
        self.reset()

    def reset(self) -> None:
        self.val_losses: list[float] = []
        self.train_losses: list[float] = []
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self.best_value = math.inf
        self.best_weights: list[np.ndarray] | None = None

    def update(self, val_loss: float, train_loss: float | None = None,
               get_weights: Callable[[], list[np.ndarray]] | None = None) -> bool:
        """Record one epoch; True when training should stop after it.

        ``get_weights`` is called (and its result kept as ``best_weights``) when the epoch is the best so far.
        """
        self.val_losses.append(math.inf if math.isnan(val_loss) else float(val_loss))
        if train_loss is not None:
            self.train_losses.append(float(train_loss))
        elif self.criterion == "pq":
            raise checks.invalid("train_loss", "the training loss of every epoch for criterion 'pq'", train_loss)
        t = len(self.val_losses)
        if self.best_epoch is None or self.val_losses[-1] < self.best_value:
            self.best_epoch, self.best_value = t, self.val_losses[-1]
            if get_weights is not None:
                self.best_weights = [np.array(w, copy=True) for w in get_weights()]
        train = self.train_losses if self.criterion == "pq" else None
        if self.stopped_epoch is None and stop_epoch(self.criterion, self.val_losses, train, **self.params) is not None:
            self.stopped_epoch = t
            return True
        return False


class EarlyStopping(keras.callbacks.Callback):
    """Stop ``model.fit`` by a Prechelt criterion or by patience; remember the best epoch's weights.

    Attributes (set during fit): ``stopped_epoch`` (1-based epoch after which training stopped,
    None if the criterion never fired), ``best_epoch`` (1-based epoch of the lowest validation
    loss), ``best_value``, ``best_weights`` (a copy of ``model.get_weights()`` at
    ``best_epoch``), ``val_losses`` and ``train_losses`` (per epoch). The runner evaluates the
    test error at the stopping epoch (the model as left by fit) and at the best epoch
    (``model.set_weights(callback.best_weights)``).

    Args:
        criterion: "patience", "gl", "pq" or "up".
        monitor: the validation-loss key of the epoch logs.
        train_monitor: the training-loss key (PQ uses it).
        restore_best_weights: load ``best_weights`` into the model when training ends.
        **params: the criterion's parameters (`CRITERIA`): patience/min_delta, alpha, strip, s.
    """

    def __init__(self, criterion: str = "patience", *, monitor: str = "val_loss", train_monitor: str = "loss",
                 restore_best_weights: bool = False, **params: Any) -> None:
        super().__init__()
        self.stopper = Stopper(criterion, **params)
        self.criterion, self.monitor, self.train_monitor = criterion, monitor, train_monitor
        self.restore_best_weights = bool(restore_best_weights)

    stopped_epoch = property(lambda self: self.stopper.stopped_epoch)
    best_epoch = property(lambda self: self.stopper.best_epoch)
    best_value = property(lambda self: self.stopper.best_value)
    best_weights = property(lambda self: self.stopper.best_weights)
    val_losses = property(lambda self: self.stopper.val_losses)
    train_losses = property(lambda self: self.stopper.train_losses)

    @property
    def criterion_params(self) -> dict[str, Any]:
        return self.stopper.params

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.stopper.reset()

    def _get(self, logs: dict | None, key: str) -> float:
        if not logs or key not in logs:
            raise ValueError(f"EarlyStopping(criterion={self.criterion!r}) needs {key!r} in the epoch logs "
                             f"(pass validation data to fit()). Received logs with keys {sorted(logs or {})}")
        value = float(logs[key])
        return math.inf if math.isnan(value) else value

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        val = self._get(logs, self.monitor)
        train = self._get(logs, self.train_monitor) if self.criterion == "pq" else (
            float(logs[self.train_monitor]) if logs and self.train_monitor in logs else None)
        if self.stopper.update(val, train, self.model.get_weights):
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
