"""The backend package: what a JAX process of the command line imports, and where JAX keeps its programs."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX

NEEDS_JAX = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")

TRAIN_TWICE = '''
import sys
from ablation.base import backend
backend.choose("jax")
backend.start()
from ablation import spec
from ablation.trials import trial, pack
from ablation.engine.hypermodel import AblationHyperModel
s = spec.loads("""
[study]
name = "t"
seeds = [0, 1]
[data]
name = "digits"
[model]
name = "mlp"
hidden = [8]
[train]
epochs = 2
[grid]
activation = ["relu"]
dropout = [0.5]
""")
hm = AblationHyperModel(s)
losses = []
for _ in range(2):
    cfgs = [s.resolve(s.points()[0], seed) for seed in s.seeds]
    records = pack.train(s, [trial.prepare(c, str(i), hm.dataset(c)) for i, c in enumerate(cfgs)])
    assert all(r.status == "completed" for r in records), [r.result.get("reason") for r in records]
    losses.append([r.history["loss"] for r in records])
assert losses[0] == losses[1] and losses[0][0] != losses[0][1], losses
print("tensorflow" in sys.modules)
'''


@NEEDS_JAX
def test_a_jax_process_that_trains_does_not_import_tensorflow():
    """Keras would import TensorFlow (to seed it, and in every get_config); started by the command
    line it does not, and packs still train seeded: the same seeds give the same losses twice."""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", TRAIN_TWICE], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert "absl::InitializeLog" not in out.stderr and "oneDNN" not in out.stderr


@NEEDS_JAX
@pytest.mark.parametrize("own_dir", [False, True])
def test_jax_keeps_compiled_programs_on_disk(tmp_path, own_dir):
    """Started by the command line, JAX caches its compiled programs under ~/.cache (XDG_CACHE_HOME),
    or where JAX_COMPILATION_CACHE_DIR says."""
    code = """
from ablation.base import backend
backend.choose("jax")
backend.start()
import jax, jax.numpy as jnp
print(float(jax.jit(lambda x: jnp.tanh(x) * 3.0)(jnp.ones(7)).sum()))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(KERAS_BACKEND="jax", XDG_CACHE_HOME=str(tmp_path / "xdg"))
    expected = tmp_path / "xdg" / "keras-ablation" / "jax"
    if own_dir:
        env["JAX_COMPILATION_CACHE_DIR"] = str(tmp_path / "mine")
        expected = tmp_path / "mine"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert expected.is_dir() and any(expected.iterdir())
    assert own_dir != (tmp_path / "xdg" / "keras-ablation").exists()


@NEEDS_JAX
def test_a_cache_folder_that_cannot_be_written_turns_the_cache_off_in_one_line(tmp_path):
    code = """
from ablation.base import backend
backend.choose("jax")
backend.start()
import jax, jax.numpy as jnp
print(float(jax.jit(lambda x: jnp.tanh(x) * 3.0)(jnp.ones(7)).sum()))
print(float(jax.jit(lambda x: jnp.cos(x) + 1.0)(jnp.ones(5)).sum()))
"""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(KERAS_BACKEND="jax", JAX_COMPILATION_CACHE_DIR=str(blocker))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [f"warning: JAX_COMPILATION_CACHE_DIR={blocker}: expected a folder this process can write; "
                     "compiled programs are not kept on disk"], out.stderr
    assert blocker.read_text() == "not a folder"


def test_keras_started_by_the_command_line_leaves_scikit_learn_and_matplotlib_unimported_and_importable():
    """Keras imports scikit-learn (and SciPy's stats) for keras.wrappers and matplotlib for
    keras.visualization, which this tool does not use: backend.start() keeps them out of its import;
    both import afterwards."""
    code = ("import sys\nfrom ablation.base import backend\nbackend.choose()\nbackend.start()\nimport keras\n"
            "print([m in sys.modules for m in ('sklearn', 'scipy.stats', 'matplotlib')])\n"
            "from sklearn.datasets import load_digits\nimport matplotlib.pyplot\nprint(load_digits().data.shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:2] == ["[False, False, False]", "(1797, 64)"]


def test_the_runner_imports_keras_tuner_without_scikit_learn_and_scipy_optimize_which_import_afterwards():
    """keras-tuner imports scikit-learn and scipy.optimize for its Bayesian and scikit-learn tuners, which the
    runner (a grid) does not use: importing the tuner and the worker's module keeps them out; they import later."""
    code = ("import sys\nfrom ablation.base import backend\nbackend.choose()\nbackend.start()\n"
            "from ablation.engine import tuner, cluster, oracle, hypermodel\nimport keras_tuner\n"
            "print([m in sys.modules for m in ('sklearn', 'scipy.optimize', 'matplotlib')])\n"
            "print(keras_tuner.oracles.GridSearchOracle.__name__)\n"
            "import scipy.optimize, sklearn.base\nprint(scipy.optimize.minimize.__name__, sklearn.base.clone.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[:3] == ["[False, False, False]", "GridSearchOracle", "minimize clone"]
