"""Shared pytest setup: quiet TensorFlow, a clean Keras session per test."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One backend for the whole session, the command-line subprocesses included (KERAS_BACKEND=jax runs
# the suite on JAX; .ci/run runs the tests that train on both).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts from a clean Keras graph state with fixed seeds."""
    yield
    if "keras" in __import__("sys").modules:
        import keras

        keras.backend.clear_session()


# The tiny study the runner, report and CLI tests share: a 2 x 2 grid on digits, 2 seeds, 2 epochs.
TINY_STUDY = """
[study]
name = "tiny"
description = "2 x 2 grid, 2 seeds, 2 epochs on digits"
seeds = [0, 1]

[[claims]]
id = "T1"
statement = "dropout lowers test error"
source = "Srivastava et al. 2014, Table 2"
published = "1.25% vs 1.60%"
approx = true
metric = "test_error"
compare = { dropout = 0.5 }
against = { dropout = 0.0 }
expect = "lower"

[data]
name = "digits"
validation_size = 100

[model]
name = "mlp"
hidden = [16, 16]

[train]
epochs = 2
batch_size = 64
optimizer = "momentum"
learning_rate = 0.05
jit_compile = false

[grid]
activation = ["relu", "tanh"]
dropout = [0.0, 0.5]
"""


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make a folder tree unwritable for this process (root too: the immutable attribute), else skip."""
    path = Path(path)
    folders = [path, *(p for p in path.rglob("*") if p.is_dir())]
    modes = {p: p.stat().st_mode for p in folders}
    for p in folders:
        p.chmod(p.stat().st_mode & ~0o222)
    immutable = False
    if _writable(path) and shutil.which("chattr"):  # root ignores permissions
        immutable = subprocess.run(["chattr", "-R", "+i", str(path)], capture_output=True).returncode == 0
    try:
        if _writable(path):
            pytest.skip("cannot make a folder read-only here (root without chattr support)")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-R", "-i", str(path)], capture_output=True)
        for p, mode in modes.items():
            p.chmod(mode)


def _writable(folder: Path) -> bool:
    probe = folder / ".write-probe"
    try:
        probe.write_text("")
    except OSError:
        return False
    probe.unlink()
    return True


def edit_study(text: str, *edits: tuple[str, str]) -> str:
    """``text`` with exact replacements, each of which must match exactly once."""
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
        text = text.replace(old, new)
    return text



def to_numpy(x):
    """A tensor or variable as a NumPy array, whatever the backend."""
    import keras

    return keras.ops.convert_to_numpy(x)


def backend_grads(loss_of, values):
    """Gradients of ``loss_of(*values)`` with respect to ``values`` by the backend's own autodiff."""
    import keras
    import numpy as np

    values = [keras.ops.convert_to_tensor(v) for v in values]
    if keras.backend.backend() == "jax":
        import jax

        return [np.asarray(g) for g in jax.grad(lambda vs: loss_of(*vs))(values)]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(values)
        loss = loss_of(*values)
    return [g.numpy() for g in tape.gradient(loss, values)]
