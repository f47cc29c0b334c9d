"""Training recipes: the optimizer, its learning-rate schedule, the precision policy, and XLA.

The names a study file may use (``OPTIMIZERS``, ``PRECISIONS``, ``SCHEDULES``) are defined here,
once. The training loop itself is ``ablation.trials.pack`` (every trial trains as a member of a pack,
alone or with others); this module turns a trial's ``TrainSpec`` into the Keras objects it needs.
Mixed precision: ``mixed_bfloat16`` (CPUs with bf16 instructions: AVX-512 BF16 or AMX; GPUs) or
``mixed_float16`` (GPUs; Keras wraps the optimizer in a loss-scale optimizer, whose skipped steps
couple the members of a pack, so such trials train alone).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import keras

from ablation.base import checks

if TYPE_CHECKING:
    from ablation.spec import TrainSpec

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


# A member's training step of at least this much arithmetic (FLOP, see step_flops) trains without XLA
# under TensorFlow on a CPU in mixed_bfloat16: XLA's CPU code does not use the CPU's bf16 dot-product
# instructions (AVX-512 BF16 here), TensorFlow's oneDNN kernels do. Measured on this project's 2-core
# machine through the runner (784-W-W-W-10 ReLU, batch 100, SGD with momentum; ms per step, XLA / no
# XLA): W=256 (0.2 GFLOP) 1.5 / 2.5; W=1024 (1.8 GFLOP) 9.9-12.0 / 6.9-11.0; W=1536 (3.5 GFLOP)
# 27.5 / 11.2; W=2048 (6.0 GFLOP) 55.3 / 23.1. In float32 XLA stays ahead (W=2048: 27.9 / 43.0).
# benchmarks/bench_training.py measures both paths on the W=2048 net.
BF16_ONEDNN_FLOPS = 1e9


def step_flops(params: int, batch_size: int) -> float:
    """Training arithmetic of one member's step: about 6 FLOP per parameter and example (forward 2, backward 4)."""
    return 6.0 * params * batch_size


def scan_suits(models: Sequence[keras.Model]) -> bool:
    """Whether a chunk of steps should run as one scanned program (``scan_train_function``) for these models.

    Not for convolutional models on a CPU: inside a compiled loop (a ``while`` of ``jax.lax.scan``)
    XLA:CPU loses its fast convolution kernels. Measured on this project's 2-core machine
    (benchmarks/bench_conv_scan.py, AMD EPYC, JAX, the keras.io "Simple MNIST convnet", batch 128,
    16-step chunks): 545 ms/step scanned against 101 ms/step for the same step jitted alone and called
    from Python (5.4x; fully unrolled 1.6x, and unrolling a 40-step MLP chunk costs 20 s of compiling),
    while the MLP's scan is the fast path (0.74x its jitted step). Such models take Keras' own per-step
    loop; on a GPU, and for everything else, the scan stays.
    """
    from ablation.base import backend

    if backend.current().gpus():
        return True
    return not has_convolutions(models)


CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv2D,
                keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose)


def has_convolutions(models: Sequence[keras.Model]) -> bool:
    """Whether any of ``models`` has a convolution layer (:data:`CONVOLUTIONS`), nested models included."""
    return any(isinstance(layer, CONVOLUTIONS) for model in models for layer in _all_layers(model))


def has_per_example_sampling(models: Sequence[keras.Model]) -> bool:
    """Whether any of ``models`` draws a random mask per example and weight each step: ``DropConnectDense``
    with ``per_example`` (a batch x in x out mask) or ``StochasticPooling2D``, nested models included."""
    from ablation.zoo import DropConnectDense, StochasticPooling2D

    return any(isinstance(layer, StochasticPooling2D) or (isinstance(layer, DropConnectDense) and layer.per_example)
               for model in models for layer in _all_layers(model))


def _all_layers(layer: Any) -> list[Any]:
    """A model's layers, nested models' layers included."""
    out = []
    for child in getattr(layer, "layers", []) or []:
        out.append(child)
        out.extend(_all_layers(child))
    return out


# Layers whose XLA-compiled training step is measured slower than TensorFlow's own kernels on a CPU
# (use_xla): random dropout masks (XLA's CPU random sampling) and convolutions.
XLA_SLOW_ON_TF_CPU = (keras.layers.Dropout, keras.layers.GaussianDropout, keras.layers.AlphaDropout,
                      keras.layers.SpatialDropout1D, keras.layers.SpatialDropout2D, keras.layers.SpatialDropout3D,
                      *CONVOLUTIONS)


def use_xla(models: Sequence[keras.Model], train: TrainSpec) -> bool:
    """Whether the train step is XLA-compiled.

    Under JAX always (JAX compiles with XLA; without it Keras would run op by op). Under TensorFlow
    as the recipe asks (``jit_compile``), except on a CPU where XLA is measured to lose:

    - sampling layers: XLA's CPU code for random sampling is slow (this project's 2-core machine,
      batch 100: a 40-128-128-10 net with per-example DropConnect masks took 1013 ms/step with XLA
      against 15 ms/step without, and a small CNN with stochastic pooling 29 ms/step against 8);
    - ``mixed_bfloat16`` steps of at least :data:`BF16_ONEDNN_FLOPS` per member: oneDNN's bf16
      kernels beat XLA's there (numbers at the constant);
    - dropout and convolution layers (:data:`XLA_SLOW_ON_TF_CPU`): benchmarks/bench_models.py, 2-core
      Intel Xeon, ms per step through the runner with XLA / without: 784-1024x3-10 with dropout 255 / 71,
      the zoo's CNN 406 / 187, the keras.io convnet 417 / 93 (and 387 against plain ``fit``'s 36 in one
      process: Keras' own default turns XLA off on CPU-only TensorFlow).
    """
    from ablation.base import backend

    if backend.name() == "jax":
        return True
    if not train.jit_compile:
        return False
    if backend.current().gpus():
        return True
    from ablation.zoo import DropConnectDense, StochasticPooling2D

    sampling = (DropConnectDense, StochasticPooling2D)
    if any(isinstance(layer, sampling) for model in models for layer in model.layers):
        return False
    if any(isinstance(layer, XLA_SLOW_ON_TF_CPU) for model in models for layer in _all_layers(model)):
        return False
    big = max((step_flops(m.count_params(), train.batch_size) for m in models), default=0.0)
    return not (train.precision == "mixed_bfloat16" and big >= BF16_ONEDNN_FLOPS)


# ----------------------------------------------------------------------------- the training path
# How a pack's epoch runs, chosen per recipe by one rule (choose_path), recorded in every trial's
# result.json ("train_path", "xla", "train_path_reason") and measured by benchmarks/bench_models.py:
#   "scan":  chunks of stacked steps, each chunk one compiled program (backend.scan_train_function);
#   "keras": Keras' own fit loop, one compiled step per batch, ``steps_per_execution`` batches a call.
# XLA on or off is the other half of a path (use_xla). Every path trains the same steps on the same
# batches in the same order; records are identical in shape (tests/test_pack.py checks both paths).
TRAIN_PATHS = ("scan", "keras")


@dataclasses.dataclass(frozen=True)
class TrainPath:
    """The path a pack trains on: ``name`` (one of TRAIN_PATHS), ``xla``, and ``reason`` (one line, why)."""

    name: str
    xla: bool
    reason: str


def choose_path(models: Sequence[keras.Model], train: TrainSpec, full_batches: bool,
                force: str | None = None) -> TrainPath:
    """The training path for a pack of ``models`` on recipe ``train``: the rule, in one place.

    1. XLA as :func:`use_xla` says (always under JAX; under TensorFlow as the recipe asks, except
       where XLA is measured to lose on a CPU).
    2. With XLA, chunks of steps are scanned in one compiled program, except for convolutional
       models on a CPU (:func:`scan_suits`: XLA:CPU loses its fast convolution kernels inside a
       compiled loop) and, under TensorFlow, when the batch size does not divide the training set.
    3. Otherwise Keras' own ``fit`` loop (``steps_per_execution``), which is plain ``model.fit``'s.

    Args:
        models: the pack's member models.
        train: the shared recipe.
        full_batches: whether every batch of an epoch is full (the batch size divides the training set).
        force: a path name to take regardless of the rule (benchmarks, tests); XLA stays as ruled.

    Returns:
        The :class:`TrainPath`.
    """
    from ablation.base import backend

    xla = use_xla(models, train)
    if force is not None:
        checks.choice("force", force, TRAIN_PATHS)
        if force == "scan" and not xla:
            raise checks.invalid("force", "'keras' when XLA is off (a scanned chunk is one XLA program)", force)
        if force == "scan" and backend.current().SCAN_NEEDS_FULL_BATCHES and not full_batches:
            raise checks.invalid("force", "'keras' when a batch is not full (this backend scans full batches)", force)
        return TrainPath(force, xla, f"forced: {force}")
    if not xla:
        why = ("the recipe turns XLA off (jit_compile = false)" if not train.jit_compile else
               "XLA is measured slower on a CPU for this model (sampling, dropout or convolution layers, or large "
               "bf16 steps: training.use_xla)")
        return TrainPath("keras", False, f"no XLA: {why}; Keras' own loop")
    if not scan_suits(models):
        return TrainPath("keras", True, "convolutions on a CPU: a scanned chunk loses XLA:CPU's fast convolution "
                                        "kernels (training.scan_suits); Keras' own loop")
    if backend.current().SCAN_NEEDS_FULL_BATCHES and not full_batches:
        return TrainPath("keras", True, "the batch size does not divide the training set and this backend scans "
                                        "full batches only; Keras' own loop")
    return TrainPath("scan", True, "XLA, no convolutions on a CPU: chunks of steps scanned in one compiled program")


def path_summary(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training paths trials took, from their ``result.json`` dicts: one entry per (backend, path,
    XLA, reason) with its number of trials (``run.json`` records it per invocation)."""
    counts: dict[tuple, int] = {}
    for r in results:
        if r.get("train_path"):
            key = (r.get("backend"), r["train_path"], bool(r.get("xla")), r.get("train_path_reason"))
            counts[key] = counts.get(key, 0) + 1
    return [{"backend": b, "path": p, "xla": x, "reason": why, "trials": n} for (b, p, x, why), n in counts.items()]
