"""Which Keras backend a study trains on, and who chose it: the user, or a rule measured here.

A user's choice always wins: ``--backend``, ``KERAS_BACKEND``, or ``[study] backend`` in the study file.
When there is none, ``ablation run`` picks the backend per study by :func:`rule`, and starts its worker
processes with it (``ablation worker ... --backend B``: each worker is its own process, so the chief's
own backend does not matter). Deciding costs no model build of its own: what the rule reads of a zoo
model (:class:`Traits`: convolutions, per-example sampling) comes from the registry and the recipes'
arguments, a user's function's from the models the checks before the run built anyway
(:class:`ablation.engine.preflight.Checked`).

The choice is recorded in ``run.json`` (``backend_choice``: backend, chosen_by, reason), shown in the
run's opening line and in the report's run section.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import Any

from ablation.base import backend as backend_module

CHOSEN_BY = tuple(backend_module.CHOSEN_BY)

# benchmarks/bench_models.py, 2-core Intel Xeon, quiet machine (benchmarks/results/bench_models_cpu2.txt):
# ms per step through the runner, JAX / TensorFlow.
CONV_REASON = ("convolution layers on a CPU-only machine: TensorFlow trains them about 3x faster than JAX here "
               "(benchmarks/bench_models.py: the keras.io convnet 33.6 vs 98.3 ms/step, the zoo CNN 78.8 vs 241)")
DENSE_REASON = ("no convolution or per-example sampling layers: JAX trains MLPs faster here "
                "(benchmarks/bench_models.py: 784-1024x3-10 16.6 vs 31.1 ms/step, the quickstart MLP 0.32 vs 1.00)")
SAMPLING_REASON = ("per-example sampling layers on a CPU-only machine (DropConnect with a mask per example, "
                   "stochastic pooling): JAX draws their masks 3.5x slower than TensorFlow here "
                   "(benchmarks/bench_random.py), and trains them slower (benchmarks/bench_models.py: DropConnect "
                   "2x256 283 vs 716 ms/step)")
GPU_REASON = "a GPU is visible: JAX, the default (the CPU measurements behind the rule do not apply)"


@dataclasses.dataclass(frozen=True)
class Traits:
    """What the backend rule reads of a study's models.

    Attributes:
        convolutional: a model has convolution layers (``training.has_convolutions``).
        sampling: a model draws a random mask per example and weight every step
            (``training.has_per_example_sampling``: DropConnect with ``per_example``, stochastic pooling).
    """

    convolutional: bool = False
    sampling: bool = False

    def __or__(self, other: "Traits") -> "Traits":
        return Traits(self.convolutional or other.convolutional, self.sampling or other.sampling)

    @classmethod
    def of(cls, models: Sequence[Any]) -> "Traits":
        """The traits of built Keras models."""
        from ablation.train import training

        return cls(training.has_convolutions(models), training.has_per_example_sampling(models))


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    """The backend a run's trials train on: ``backend``, ``chosen_by`` (one of CHOSEN_BY) and ``reason``."""

    backend: str
    chosen_by: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    def text(self) -> str:
        """One line: ``tensorflow (chosen by the rule: convolution layers ...)``."""
        return f"{self.backend} ({backend_module.chosen_text(self.chosen_by, self.reason)})"


def rule(traits: Traits, gpu: bool, installed: Sequence[str]) -> BackendChoice:
    """The backend for a study nobody chose one for.

    Convolution layers or per-example sampling layers in the model on a CPU-only machine -> TensorFlow
    (when installed), otherwise JAX (when installed). Measured with ``benchmarks/bench_models.py`` on this
    project's 2-core Intel Xeon, quiet, ms per training step through the runner (JAX / TensorFlow): the
    keras.io "Simple MNIST convnet" 98.3 / 33.6 and the zoo's CNN with max pooling 241 / 78.8 (about 3x
    for TensorFlow); DropConnect 2x256 with a mask per example 716 / 283 (2.5x: JAX's random draws on
    this CPU, 339 ms for the step's 25.7 million uniform numbers against TensorFlow's 96 in
    ``benchmarks/bench_random.py``, cost JAX's hand-written whole-epoch loop as much: 731 ms); while the
    MLPs are faster under JAX: the quickstart MLP 0.32 / 1.00, 784-1024x3-10 with dropout 16.6 / 31.1, the
    12-layer residual MLP with BN 3.24 / 6.62. No GPU was measured, so with a GPU the default (JAX) stays.

    Args:
        traits: what the study's models have (:class:`Traits`).
        gpu: whether a GPU is visible.
        installed: the installed backends (``ablation.base.backend.available()``).

    Returns:
        A :class:`BackendChoice` chosen by "rule".
    """
    if not installed:
        raise ValueError("Invalid value for argument 'backend': expected an installed backend (jax or tensorflow). "
                         "Received: none installed")
    faster_on_tf = traits.convolutional or traits.sampling
    if faster_on_tf and not gpu and "tensorflow" in installed:
        return BackendChoice("tensorflow", "rule", CONV_REASON if traits.convolutional else SAMPLING_REASON)
    if "jax" not in installed:
        return BackendChoice(installed[0], "rule", "JAX is not installed")
    if faster_on_tf and not gpu:
        what = "convolution layers" if traits.convolutional else "per-example sampling layers"
        return BackendChoice("jax", "rule", f"{what} on a CPU-only machine, but TensorFlow is not installed")
    return BackendChoice("jax", "rule", GPU_REASON if gpu else DENSE_REASON)


def gpu_visible() -> bool:
    """Whether this machine shows a GPU to its processes, without importing a backend (``nvidia-smi -L``,
    and ``CUDA_VISIBLE_DEVICES`` not hiding them)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "unset").strip() in ("", "-1"):
        return False
    if not shutil.which("nvidia-smi"):
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return any(line.startswith("GPU") for line in out.splitlines())


def decide(running: str, *, pinned: str | None, by_rule: bool, traits: Traits,
           where_not: str | None = None, gpu: bool | None = None, installed: Sequence[str] | None = None,
           ) -> BackendChoice:
    """The run's backend choice.

    Args:
        running: the backend Keras runs on in this process.
        pinned: the backend the user named (``--backend``, the study file), if any.
        by_rule: whether the user named no backend anywhere (the command line says so; ``KERAS_BACKEND``
            counts as a choice) and the run may start its workers on another backend than its own.
        traits: what the study's models have (:class:`Traits`, from :class:`~ablation.engine.preflight.Checked`).
        where_not: why the rule cannot apply to this run (e.g. remote workers join it), if so.
        gpu, installed: for tests; by default :func:`gpu_visible` and the installed backends.

    Returns:
        A :class:`BackendChoice`.
    """
    if pinned is not None:
        return BackendChoice(pinned, "user", "--backend, KERAS_BACKEND or [study] backend")
    if not by_rule:
        return BackendChoice(running, "user", "the backend Keras runs on in the process that runs the study "
                                              "(KERAS_BACKEND, or the caller of ablation.run)")
    if where_not is not None:
        return BackendChoice(running, "default", f"{where_not}, so the rule does not choose")
    if installed is None:
        from ablation.base import backend

        installed = backend.available()
    return rule(traits, gpu_visible() if gpu is None else gpu, installed)

