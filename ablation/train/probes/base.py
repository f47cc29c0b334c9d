"""The probe base class: measurement at init, at every epoch end and (stepped probes) every N steps.

A probe is a Keras callback, so one model trained alone can use it with ``model.fit``; a pack of
models (``ablation.trials.pack``) drives the same probes through :meth:`Probe.measure` instead. Each
probe keeps ``rows``: dicts with keys probe, layer, depth, step, epoch, stat, value (the
``probes`` frame of docs/internals.md section 4), and ``summary()`` gives its per-trial metrics.

The true step is the optimizer's ``iterations``: with ``steps_per_execution > 1`` Keras calls
batch hooks once per execution chunk, so a sample falls on the first chunk end at or after each
multiple of ``every_steps``.
"""

from __future__ import annotations

import time
from typing import Any

import keras
import numpy as np
from keras import ops

from ablation.base import backend
from ablation.train.probes.net import Fraction, ProbeNet


class Clock:
    """Training wall time with pauses (validation, probe measurements) taken out."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._paused = 0.0
        self._depth = 0
        self._pause_start = 0.0

    def start(self) -> None:
        if self._start is None:
            self._start = time.perf_counter()

    def stop(self) -> None:
        self._start, self._paused, self._depth = None, 0.0, 0

    def pause(self) -> None:
        self._depth += 1
        if self._depth == 1:
            self._pause_start = time.perf_counter()

    def resume(self) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth == 0:
            self._paused += time.perf_counter() - self._pause_start

    def elapsed(self) -> float:
        if self._start is None:
            return 0.0
        now = self._pause_start if self._depth else time.perf_counter()
        return now - self._start - self._paused


def norm(t: Any) -> Any:
    """The L2 norm of a tensor (float32)."""
    return ops.sqrt(ops.sum(ops.square(ops.cast(t, "float32"))))


def fraction(mask: Any) -> Fraction:
    """Fraction of True entries: an exact integer count divided (on the host, in float64) by the size."""
    return Fraction(mask)


def percentiles(v: Any, qs: tuple[float, ...]) -> Any:
    """Percentiles over axis 0 of a (n, k) tensor with a static n, as ``np.percentile`` (linear)."""
    n = int(v.shape[0])
    ordered = ops.sort(ops.cast(v, "float32"), axis=0)
    out = []
    for q in qs:
        pos = q / 100.0 * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        out.append(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))
    return ops.stack(out)


def ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def at(pairs: list[tuple[int, float]], which: int) -> float:
    return pairs[which][1] if pairs else float("nan")


class Probe(keras.callbacks.Callback):
    """Base probe: measures at init and at every epoch end, collects ``rows``.

    Subclasses implement ``stats(t)`` (``keras.ops`` statistics of the probe-batch tensors ``t``,
    run by the shared :class:`~ablation.train.probes.net.ProbeNet`), ``_record(values, step, epoch)``
    and ``summary()``.

    Args:
        net: the probe network (None for probes that need no probe batch).
        index: which of the net's models this probe measures.
        clock: the training clock (pauses during measurements).
    """

    name = ""
    stepped = False  # also sampled between epoch ends (forward pass only)

    def __init__(self, net: ProbeNet | None, index: int, clock: Clock) -> None:
        super().__init__()
        self.net, self.index, self.clock = net, index, clock
        self.rows: list[dict[str, Any]] = []
        self.every_steps = 0
        self._epoch = 0
        self._last_sampled = -1
        if net is not None:
            net.register(index, self)

    @property
    def member(self) -> Any:
        return self.net.member(self.index)

    def _step(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None:
            return 0
        backend.current().sync(self.model)
        return int(ops.convert_to_numpy(optimizer.iterations))

    def _add(self, layer: str, depth: int, step: int, epoch: int, stat: str, value: Any) -> None:
        self.rows.append({"probe": self.name, "layer": layer, "depth": int(depth), "step": int(step),
                          "epoch": int(epoch), "stat": stat, "value": float(value)})

    def stats(self, t: dict[str, Any]) -> dict[str, Any]:
        return {}

    def _record(self, values: dict[str, np.ndarray], step: int, epoch: int) -> None:
        """Default: one row per ``"<layer>/<stat>"`` key (probes with other keys override this)."""
        for key, value in values.items():
            layer, stat = key.split("/")
            self._add(layer, self.member.depth(layer), step, epoch, stat, value)

    def measure(self, step: int, epoch: int, full: bool = True) -> None:
        """Record the probe's statistics at ``step`` (of 1-based ``epoch``; 0 = before training)."""
        if self.stepped and step == self._last_sampled:
            return
        self._last_sampled = step
        self.clock.pause()
        try:
            res = self.net.run(step, full)[self.index]
            prefix = self.name + "/"
            self._record({k[len(prefix):]: v for k, v in res.items() if k.startswith(prefix)}, step, epoch)
        finally:
            self.clock.resume()

    def due(self, step: int) -> bool:
        """Whether a stepped probe samples at ``step`` (the first step at or after a multiple of N)."""
        return bool(self.stepped and self.every_steps and
                    step // self.every_steps > max(self._last_sampled, 0) // self.every_steps)

    def truncate(self, epoch: int) -> None:
        """Forget rows after ``epoch`` (a member of a pack that stopped early or diverged)."""
        self.rows = [r for r in self.rows if r["epoch"] <= epoch]

    def summary(self) -> dict[str, float]:
        """Scalar per-trial metrics of this probe (see ``probes.SUMMARY_KEYS``)."""
        return {}

    def values(self, stat: str, layer: str | None = None) -> list[tuple[int, float]]:
        """(step, value) pairs of ``stat`` (optionally of one layer), in recording order."""
        return [(r["step"], r["value"]) for r in self.rows
                if r["stat"] == stat and (layer is None or r["layer"] == layer)]

    # ---- Keras callback hooks (one model trained alone with model.fit)
    def on_train_begin(self, logs: dict | None = None) -> None:
        self.clock.start()
        self._epoch = 0
        self.measure(self._step(), 0)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self.stepped or not self.every_steps:
            return
        steps = (self.params or {}).get("steps")
        if steps and batch + 1 >= steps:
            return  # the epoch's last chunk: on_epoch_end samples this step (one full pass)
        step = self._step()
        if self.due(step):
            self.measure(step, self._epoch, full=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.measure(self._step(), epoch + 1)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.clock.pause()

    def on_test_end(self, logs: dict | None = None) -> None:
        self.clock.resume()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.clock.stop()
