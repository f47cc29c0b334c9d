"""Probes of training speed: wall time per epoch and step (A5, C6), training error over steps (A5).

- timing (layer "model"): ``epoch_time_s`` (wall time epoch begin to end), ``train_time_s``
  (the same without validation and probe measurements), ``steps``, ``step_time_s``
  (train_time_s / steps).
- speed (layer "model"): ``train_error``, ``train_loss`` on the probe batch (training examples)
  and ``elapsed_s`` (training time so far, without validation and probe measurements); steps
  and seconds to reach ``target_train_error`` (Krizhevsky et al. 2012, Fig. 1: iterations to 25%
  training error).

Both measure wall time, so a trial with either probe trains alone, never in a pack.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from keras import ops

from ablation.train.probes.base import Clock, Probe, at, fraction


class TimingProbe(Probe):
    """Wall time per epoch and per step (A5, C6); needs no probe batch.

    ``train_time_s`` leaves out validation and the other probes' measurements (a shared clock
    pauses for them), so it is comparable with and without probes.
    """

    name = "timing"

    def __init__(self, net: Any, index: int, clock: Clock) -> None:
        super().__init__(None, index, clock)
        self._wall0 = self._clock0 = 0.0
        self._step0 = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.clock.start()

    def begin_epoch(self, step: int) -> None:
        self._wall0, self._clock0, self._step0 = time.perf_counter(), self.clock.elapsed(), step

    def end_epoch(self, step: int, epoch: int) -> None:
        wall, train = time.perf_counter() - self._wall0, self.clock.elapsed() - self._clock0
        steps = step - self._step0
        for stat, val in (("epoch_time_s", wall), ("train_time_s", train), ("steps", steps),
                          ("step_time_s", train / steps if steps else float("nan"))):
            self._add("model", 0, step, epoch, stat, val)

    def measure(self, step: int, epoch: int, full: bool = True) -> None:
        """Timing has nothing to measure on the probe batch; epochs are timed by begin/end_epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_begin(epoch, logs)
        self.begin_epoch(self._step())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.end_epoch(self._step(), epoch + 1)

    def summary(self) -> dict[str, float]:
        res = {}
        for stat, key in (("train_time_s", "epoch_time_s"), ("step_time_s", "time_per_step_s")):
            vals = [v for _, v in self.values(stat)]
            res[key] = float(np.median(vals[1:] if len(vals) > 1 else vals)) if vals else float("nan")
        res["train_time_s"] = float(sum(v for _, v in self.values("train_time_s")))
        return res


class SpeedProbe(Probe):
    """Training error on the probe batch over steps; steps and seconds to a target (A5).

    The error is measured in inference mode on the fixed probe batch, which should be training
    examples. Samples every ``every_steps`` steps when given, besides at init and epoch ends.
    """

    name = "speed"
    stepped = True

    def __init__(self, net: Any, index: int, clock: Clock, every_steps: int | None = None,
                 target_train_error: float | None = None) -> None:
        super().__init__(net, index, clock)
        self.every_steps = every_steps or 0
        self.target = target_train_error
        self.reached: tuple[int, float] | None = None

    def stats(self, t: dict[str, Any]) -> dict[str, Any]:
        out = ops.cast(t["output"], "float32")
        out = ops.reshape(out, (out.shape[0], -1))
        labels = ops.cast(t["labels"], "int32")
        logp = ops.log(ops.maximum(out, 1e-12)) if self.member.probabilities else ops.log_softmax(out, axis=-1)
        wrong = ops.cast(ops.argmax(out, axis=-1), "int32") != labels
        nll = -ops.take_along_axis(logp, ops.expand_dims(labels, -1), axis=1)
        return {"train_error": fraction(wrong), "train_loss": ops.mean(nll)}

    def _record(self, values: dict[str, np.ndarray], step: int, epoch: int) -> None:
        elapsed = self.clock.elapsed()
        error = float(values["train_error"])
        self._add("model", 0, step, epoch, "train_error", error)
        self._add("model", 0, step, epoch, "train_loss", values["train_loss"])
        self._add("model", 0, step, epoch, "elapsed_s", elapsed)
        if self.target is not None and self.reached is None and error <= self.target:
            self.reached = (step, elapsed)

    def summary(self) -> dict[str, float]:
        """A run that never reaches the target is censored: its steps and seconds are those of its last
        sample plus one sampling period (a lower bound), and ``target_reached`` is 0."""
        errors = self.values("train_error")
        nan = float("nan")
        out = {"train_error_init": at(errors, 0), "train_error_final": at(errors, -1)}
        if self.target is None:
            return {**out, "steps_to_target": nan, "seconds_to_target": nan, "target_reached": nan}
        if self.reached:
            return {**out, "steps_to_target": float(self.reached[0]), "seconds_to_target": float(self.reached[1]),
                    "target_reached": 1.0}
        last_step = errors[-1][0] if errors else 0
        elapsed = [v for _, v in self.values("elapsed_s")]
        return {**out, "steps_to_target": float(last_step + max(self.every_steps, 1)),
                "seconds_to_target": float(elapsed[-1]) if elapsed else nan, "target_reached": 0.0}
