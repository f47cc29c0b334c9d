"""The little that differs between Keras backends: choosing one, gradients, compiled functions, devices.

Training, evaluation and the probes use Keras' backend-neutral APIs (``keras.ops``,
``keras.random``, ``model.fit`` / ``predict``, ``stateless_call``). What cannot be neutral lives in
one small module per backend (``tensorflow.py``, ``jax.py``) with the same functions:

- ``compile_probe(model, loss_fn, grad_variables, stats_fn, want_grads)``: a compiled function
  ``(x, y) -> stats`` that runs ``model`` in inference mode, optionally takes the gradient of the
  loss with respect to ``grad_variables``, and returns ``stats_fn(outputs, grads)``;
- ``scan_train_function(model)``: a ``train_function`` for ``fit`` that runs a chunk of stacked steps
  in one compiled program; ``SCAN_NEEDS_FULL_BATCHES``: whether every batch of the epoch must be full;
- ``gpus()``: the visible GPUs;
- ``set_threads(n)``: intra-op threads of this process (workers pinned to a share of the cores);
- ``sync(model)``: make a model's variables current inside ``fit`` (JAX keeps them apart during an epoch).

:func:`choose` sets ``KERAS_BACKEND`` before Keras is imported (the command line does this);
:func:`current` returns the module of the backend Keras runs on.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any

BACKENDS = ("tensorflow", "jax")
# Who chose a run's backend (run.json ``backend_choice.chosen_by``, ablation.engine.backend_choice), in words.
CHOSEN_BY = {"user": "chosen by the user", "rule": "chosen by the rule", "default": "the default"}


def chosen_text(chosen_by: str, reason: str | None) -> str:
    """``chosen by the rule: convolution layers ...``: who chose a run's backend, and why."""
    return f"{CHOSEN_BY.get(str(chosen_by), CHOSEN_BY['default'])}: {reason or 'no reason recorded'}"

# What TensorFlow, absl, XLA and JAX print on start-up that says nothing to a user of this tool
# (no GPU here, CPU instructions, oneDNN's rounding note): start() keeps it off the terminal.
START_NOISE = re.compile("|".join((
    r"All log messages before absl::InitializeLog\(\) is called",
    r"oneDNN custom operations are on",
    r"cudart_stub\.cc|cuda_platform\.cc|cuda_executor|cuda_dnn|cuda_fft|cuda_blas|failed call to cuInit",
    r"Could not find cuda drivers|Unable to register cu(DNN|FFT|BLAS) factory",
    r"computation_placer|TF-TRT Warning|cpu_feature_guard\.cc",
    r"To enable the following instructions|rebuild TensorFlow with the appropriate compiler flags",
    r"This TensorFlow binary is optimized to use available CPU instructions",
    r"An NVIDIA GPU may be present on this machine|CUDA-enabled jaxlib is not installed|Falling back to cpu",
    r"^\s*$",
)))


def available() -> list[str]:
    """The supported backends installed in this environment."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def default() -> str:
    """The backend used when none is asked for: ``KERAS_BACKEND`` if set, else JAX when installed
    (faster on CPUs and GPUs for these models: benchmarks/bench_training.py), else TensorFlow."""
    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    return "jax" if "jax" in available() else "tensorflow"


def choose(name: str | None = None) -> str:
    """Make ``name`` (default: :func:`default`) the backend of this process; call before importing Keras.

    Raises:
        ValueError: an unknown or uninstalled backend, or Keras already imported with another one.
    """
    from ablation.base import checks

    if name is None and "keras" in sys.modules:  # nothing asked for, and Keras already chose
        return sys.modules["keras"].backend.backend()
    name = name or default()
    checks.choice("backend", name, BACKENDS)
    if name not in available():
        hint = "pip install 'keras-ablation[jax]'" if name == "jax" else "pip install tensorflow"
        raise checks.invalid("backend", f"an installed backend ({', '.join(available())}; {hint})", name)
    if "keras" in sys.modules:
        running = sys.modules["keras"].backend.backend()
        if running != name:
            raise checks.invalid("backend", f"{running!r}: Keras was already imported with it in this process",
                                 name)
        return name
    os.environ["KERAS_BACKEND"] = name
    return name


def jax_threads(n: int) -> None:
    """Before JAX starts: one thread makes XLA's CPU code single-threaded; more threads are bounded
    by the cores the process is pinned to (XLA sizes its pool from them)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1 and "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()


def jax_compilation_cache() -> None:
    """Before JAX starts: keep compiled programs on disk between processes (JAX's persistent cache).

    Every ``ablation run`` starts fresh worker processes, which under JAX compile each program again
    (train steps, probes, evaluation, even the initializers' random draws): on this project's 2-core
    machine 4.6 s of a 17.5 s one-epoch quickstart, and 29 s of a 62 s one with ``--no-pack``, go
    when the programs are already on disk; within one run, trials of the same grid point share
    theirs. JAX's own variables rule: ``JAX_COMPILATION_CACHE_DIR`` moves the cache (default
    ``$XDG_CACHE_HOME/keras-ablation/jax``, i.e. ``~/.cache/...``), ``JAX_ENABLE_COMPILATION_CACHE=false``
    turns it off. Programs that compile fast are kept too (JAX's default keeps those over 1 s). A
    folder that cannot be written turns the cache off, with one line saying so (JAX would warn at
    every program instead).
    """
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(base, "keras-ablation", "jax"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if os.environ.get("JAX_ENABLE_COMPILATION_CACHE", "").lower() in ("0", "false"):
        return
    try:
        os.makedirs(folder, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        os.environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"
        print(f"warning: JAX_COMPILATION_CACHE_DIR={folder}: expected a folder this process can write; "
              "compiled programs are not kept on disk", file=sys.stderr)


def current() -> ModuleType:
    """The module of the backend Keras runs on (``ablation.base.backend.tensorflow`` or ``.jax``)."""
    import keras

    name = keras.backend.backend()
    if name not in BACKENDS:
        raise RuntimeError(f"keras-ablation runs on {', '.join(BACKENDS)}; Keras runs on {name!r}")
    return importlib.import_module(f"ablation.base.backend.{name}")


def name() -> str:
    """The name of the backend Keras runs on."""
    import keras

    return keras.backend.backend()


def keras_without_tensorflow() -> None:
    """Under JAX, keep Keras from importing TensorFlow.

    Keras imports TensorFlow whenever it is installed, whatever the backend, the first time it asks
    whether it is there: to seed it (``set_random_seed``) and in every ``get_config`` (serialization
    checks for ``tf.TensorShape``). On this project's 2-core machine the import costs about 2 s and
    a few hundred MiB per process, and sends TensorFlow's start-up lines to the terminal; a JAX
    process of this tool needs nothing from it (data is fed from NumPy, TensorBoard files are
    written without it). So Keras' lazy handle on TensorFlow is told it is absent (a Keras internal:
    ``keras.src.utils.module_utils.tensorflow``), unless TensorFlow is already imported.
    """
    if "tensorflow" in sys.modules:
        return
    try:
        from keras.src.utils import module_utils
    except ImportError:  # a Keras without it: nothing to keep out
        return
    lazy = module_utils.tensorflow
    if getattr(lazy, "module", None) is None and hasattr(lazy, "_available"):
        lazy._available = False


# What Keras imports when installed, for parts of it this tool never uses (keras_without_extras).
KERAS_EXTRAS = ("sklearn", "matplotlib")


# What keras-tuner imports when installed, for its Bayesian and scikit-learn tuners (keras_tuner()).
KERAS_TUNER_EXTRAS = (*KERAS_EXTRAS, "scipy.optimize")


@contextlib.contextmanager
def keras_without_extras(names: tuple[str, ...] = KERAS_EXTRAS) -> Iterator[None]:
    """While the backend and Keras are imported, make ``import sklearn`` and ``import matplotlib`` fail (or
    each module of ``names``), so that Keras does not import them.

    Keras imports scikit-learn whenever it is installed, for ``keras.wrappers`` (SKLearnClassifier and
    friends; scikit-learn pulls in SciPy's ``stats``), and ``matplotlib.pyplot`` for
    ``keras.visualization``: on this project's 2-core machine (shared), starting JAX and Keras took
    3.91 s with them and 2.57 s without (benchmarks/bench_fixed_costs.py --against, median of 3). This tool uses neither part; afterwards both import again as usual (the ``digits`` data set,
    the report's figures, a user's model file), only those two parts of Keras stay without them in this
    process. A package already imported is left alone.
    """
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import name -> ImportError
    try:
        yield
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def keras_tuner() -> Any:
    """The ``keras_tuner`` module, imported without scikit-learn, matplotlib and ``scipy.optimize``
    (:data:`KERAS_TUNER_EXTRAS`, as in :func:`keras_without_extras`): keras-tuner imports them whenever they
    are installed, for its Bayesian and scikit-learn tuners, which this tool does not use (it runs a grid). On
    this project's 2-core machine they cost 1.0-1.4 s of every run's and every worker's start-up. Import
    keras-tuner through this function (``kt = backend.keras_tuner()``), after :func:`start`.
    """
    if "keras_tuner" not in sys.modules:
        with keras_without_extras(KERAS_TUNER_EXTRAS):
            import keras_tuner  # noqa: F401
    return sys.modules["keras_tuner"]


def start() -> str:
    """Import the chosen backend and let it find its devices with file descriptor 2 caught: the lines
    of :data:`START_NOISE` are dropped, anything else (a real error) is written to stderr as it came.

    Returns the backend's name. Call after :func:`choose`, before anything imports Keras.
    """
    name = os.environ.get("KERAS_BACKEND") or default()
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    sys.stderr.flush()
    saved = os.dup(2)
    caught = tempfile.TemporaryFile()
    try:
        os.dup2(caught.fileno(), 2)
        try:
            with keras_without_extras():  # TensorFlow imports Keras too
                if name == "tensorflow":
                    import tensorflow as tf

                    tf.config.list_physical_devices()
                elif name == "jax":
                    if "jax" not in sys.modules:
                        jax_compilation_cache()
                    import jax

                    jax.devices()
                import keras  # noqa: F401 - Keras settles its backend while the noise is caught

            if name == "jax":
                keras_without_tensorflow()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    finally:
        caught.seek(0)
        text = caught.read().decode("utf-8", "replace")
        caught.close()
        kept = [line for line in text.splitlines() if not START_NOISE.search(line)]
        if kept:
            sys.stderr.write("\n".join(kept) + "\n")
            sys.stderr.flush()
    return name
