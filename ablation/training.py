"""The runner's training path: optimizer, input pipelines, compile settings and the fit call.

Small MLPs spend most of a default ``model.fit`` in per-step overhead, so every trial trains on:

* a cached ``tf.data`` pipeline (arrays go into the graph once; reshuffled each epoch with the
  trial's seed), batched and prefetched;
* ``steps_per_execution`` covering a whole epoch (capped), so Python is entered once per epoch
  rather than once per step;
* a validation pipeline built once and reused by Keras' cached evaluation iterator;
* XLA (``jit_compile``) for the train step when the study asks for it (the default);
* an optional mixed-precision policy: ``mixed_bfloat16`` (CPUs with AMX, GPUs) or
  ``mixed_float16`` (GPUs; Keras wraps the optimizer in a loss-scale optimizer).

``benchmarks/bench_training.py`` compares this path with a default ``model.fit`` and with a
hand-written XLA-compiled loop.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from ablation import checks

if TYPE_CHECKING:
    from ablation.spec import TrainSpec

# Each trial builds a new model, so TensorFlow's "retracing" warnings are expected noise here.
tf.get_logger().setLevel("ERROR")

# Upper bound on steps per execution: callbacks that watch single steps still get called
# at least this often.
MAX_STEPS_PER_EXECUTION = 1000
EVAL_BATCH_SIZE = 2048
OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad", "nadam")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
REQUIRED = object()  # marks a schedule parameter without a default
# Learning-rate schedules (keras.optimizers.schedules) and their parameters: kind -> {param: default}.
SCHEDULES: dict[str, dict[str, Any]] = {
    "exponential": {"decay_steps": REQUIRED, "decay_rate": REQUIRED},
    "cosine": {"decay_steps": REQUIRED, "alpha": 0.0},
    "piecewise": {"boundaries": REQUIRED, "values": REQUIRED},
}


def check_schedule(kind: str, **params: Any) -> dict[str, Any]:
    """Validate a schedule kind and its parameters; returns them with defaults filled in."""
    checks.choice("kind", kind, tuple(SCHEDULES))
    for key in params:
        if key not in SCHEDULES[kind]:
            raise checks.invalid("params", f"parameters of schedule {kind!r}: {', '.join(SCHEDULES[kind])}", key)
    out = {}
    for key, default in SCHEDULES[kind].items():
        if key not in params and default is REQUIRED:
            raise ValueError(f"{checks.PREFIX} '{key}': expected a value (required for schedule {kind!r}). "
                             f"Received: nothing")
        value = params.get(key, default)
        if key == "decay_steps":
            out[key] = checks.integer(key, value, 1)
        elif key == "decay_rate":
            out[key] = checks.positive(key, value)
        elif key == "alpha":
            out[key] = checks.non_negative(key, value)
        elif key == "boundaries":
            out[key] = tuple(checks.int_list(key, value, minimum=1))
            if list(out[key]) != sorted(out[key]):
                raise checks.invalid(key, "strictly increasing steps", value)
        else:
            if not isinstance(value, (list, tuple)) or not value:
                raise checks.invalid(key, "a non-empty list of learning rates", value)
            out[key] = tuple(checks.positive(key, x) for x in value)
    if kind == "piecewise" and len(out["values"]) != len(out["boundaries"]) + 1:
        raise checks.invalid("values", f"{len(out['boundaries']) + 1} learning rates (one more than boundaries)",
                             params["values"])
    return out


def make_optimizer(train: TrainSpec) -> keras.optimizers.Optimizer:
    """Build the optimizer a ``TrainSpec`` names, with its schedule and clipping.

    Args:
        train: the resolved training recipe of a trial.

    Returns:
        A fresh Keras optimizer (wrapped in adaptive gradient clipping when ``train.agc > 0``).
    """
    lr = make_schedule(train)
    common: dict[str, Any] = {"learning_rate": lr}
    if train.clipnorm:
        common["clipnorm"] = train.clipnorm
    if train.weight_decay and train.optimizer not in ("adamw",):
        common["weight_decay"] = train.weight_decay
    name = train.optimizer
    if name in ("sgd", "momentum"):
        opt = keras.optimizers.SGD(momentum=train.momentum or 0.0, nesterov=train.nesterov, **common)
    elif name == "adam":
        opt = keras.optimizers.Adam(**common)
    elif name == "adamw":
        opt = keras.optimizers.AdamW(weight_decay=train.weight_decay or 0.004, **common)
    elif name == "rmsprop":
        opt = keras.optimizers.RMSprop(momentum=train.momentum or 0.0, **common)
    elif name == "adagrad":
        opt = keras.optimizers.Adagrad(**common)
    elif name == "nadam":
        opt = keras.optimizers.Nadam(**common)
    else:  # the spec validates names; this guards direct callers
        raise checks.invalid("optimizer", f"one of {', '.join(OPTIMIZERS)}", name)
    if train.agc:
        from ablation.zoo import AdaptiveGradientClipping

        opt = AdaptiveGradientClipping(opt, clipping=train.agc)
    return opt


def make_schedule(train: TrainSpec) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate, or a Keras schedule when the recipe has one."""
    sched = train.schedule
    if not sched:
        return float(train.learning_rate)
    kind = sched["kind"]
    if kind == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            train.learning_rate, decay_steps=int(sched["decay_steps"]), decay_rate=float(sched["decay_rate"]))
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            train.learning_rate, decay_steps=int(sched["decay_steps"]), alpha=float(sched.get("alpha", 0.0)))
    if kind == "piecewise":
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(b) for b in sched["boundaries"]], [float(v) for v in sched["values"]])
    raise checks.invalid("kind", f"one of {', '.join(SCHEDULES)}", kind)


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Set Keras' global dtype policy for the duration of a trial, then restore it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def train_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Cached, per-epoch reshuffled (seeded), batched and prefetched training data."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def eval_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int = EVAL_BATCH_SIZE) -> tf.data.Dataset:
    """Cached, batched evaluation data (built once, reused every epoch)."""
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)


def steps_per_execution(train: TrainSpec, steps_per_epoch: int, every_steps: int | None = None) -> int:
    """How many steps one call into the compiled function runs.

    ``train.steps_per_execution`` when set; otherwise a whole epoch (capped). Probes that sample
    every N steps need Keras to return to Python at least that often, so N bounds it too.
    """
    if train.steps_per_execution:
        spe = train.steps_per_execution
    else:
        spe = min(steps_per_epoch, MAX_STEPS_PER_EXECUTION)
    if every_steps:
        spe = min(spe, every_steps)
        while every_steps % spe:  # a divisor of N, so sample points land on step multiples of N
            spe -= 1
    return max(1, spe)


def use_xla(model: keras.Model, train: TrainSpec) -> bool:
    """Whether the train step is XLA-compiled: as the recipe asks, except on a CPU for sampling layers.

    XLA's CPU code for random sampling is slow: measured here (2 cores, batch 100), a 40-128-128-10
    net with per-example DropConnect masks took 1013 ms/step with XLA against 15 ms/step without,
    and a small CNN with stochastic pooling 29 ms/step against 8. Such models train without XLA
    unless a GPU is visible.
    """
    if not train.jit_compile:
        return False
    if tf.config.list_physical_devices("GPU"):
        return True
    from ablation.zoo import DropConnectDense, StochasticPooling2D

    return not any(isinstance(layer, (DropConnectDense, StochasticPooling2D)) for layer in model.layers)


def compile_model(model: keras.Model, train: TrainSpec, spe: int) -> None:
    """Compile with sparse cross-entropy on logits, accuracy, the optimizer and the fast-path flags."""
    from ablation.zoo import outputs_probabilities

    model.compile(optimizer=make_optimizer(train),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not outputs_probabilities(model)),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=use_xla(model, train), steps_per_execution=spe)


class Divergence(keras.callbacks.Callback):
    """Stop training as soon as the loss is NaN or infinite, and remember where and why."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch: int | None = None
        self.reason: str | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch + 1

    def _check(self, logs: dict | None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and self.reason is None and not math.isfinite(float(loss)):
            self.epoch = self._epoch
            self.reason = f"training loss became {float(loss)} in epoch {self._epoch}"
            self.model.stop_training = True

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._check(logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check(logs)


class EpochLog(keras.callbacks.Callback):
    """Per-epoch metrics, wall time and optimizer step count (the trial's ``history.json``)."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list] = {"epoch": [], "step": [], "epoch_time_s": []}
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.history["epoch"].append(epoch + 1)
        self.history["step"].append(int(self.model.optimizer.iterations.numpy()))
        self.history["epoch_time_s"].append(time.perf_counter() - self._t0)
        for key, value in (logs or {}).items():
            if key.startswith("val_") or key in ("loss", "accuracy"):
                self.history.setdefault(key, []).append(float(value))


def evaluate(model: keras.Model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Loss (cross-entropy plus any regularization penalty Keras adds), accuracy and error on (x, y)."""
    out = model.evaluate(eval_pipeline(x, y), verbose=0, return_dict=True)
    acc = float(out["accuracy"])
    return {"loss": float(out["loss"]), "accuracy": acc, "error": 1.0 - acc}


def fit(model: keras.Model, x: np.ndarray, y: np.ndarray, *, train: TrainSpec, seed: int,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = ()) -> keras.callbacks.History:
    """Train a compiled model on the fast path.

    Args:
        model: a model compiled by ``compile_model``.
        x, y: training data (NumPy).
        train: the trial's training recipe (epochs, batch size).
        seed: seeds the per-epoch shuffling.
        validation: optional (x_val, y_val).
        callbacks: extra Keras callbacks (probes, early stopping, divergence guard).

    Returns:
        Keras' History.
    """
    batch_size = min(train.batch_size, len(x))
    val = eval_pipeline(*validation) if validation is not None and len(validation[0]) else None
    return model.fit(train_pipeline(x, y, batch_size, seed), epochs=train.epochs, validation_data=val,
                     callbacks=list(callbacks), verbose=0, shuffle=False)
