"""The backend package: seeding without TensorFlow under JAX, and what a JAX process imports."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ablation import backend, zoo

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX


def _draws() -> list[np.ndarray]:
    model = zoo.create("mlp", input_shape=(6,), num_classes=3, hidden=[5], dropout=0.5)
    out = model(np.ones((4, 6), "float32"), training=True)  # dropout masks: Keras' global seed generator
    return [*(np.asarray(w) for w in model.get_weights()), keras.ops.convert_to_numpy(out),
            keras.ops.convert_to_numpy(keras.random.uniform((3,))), np.random.rand(2)]


def test_set_random_seed_seeds_as_keras_does():
    keras.utils.set_random_seed(7)
    theirs = _draws()
    keras.backend.clear_session()
    backend.set_random_seed(7)
    ours = _draws()
    for a, b in zip(theirs, ours, strict=True):
        np.testing.assert_array_equal(a, b)
    keras.backend.clear_session()
    backend.set_random_seed(8)
    assert not np.array_equal(_draws()[0], ours[0])


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_a_jax_process_that_trains_does_not_import_tensorflow():
    code = """
import sys
from ablation import backend
backend.choose("jax")
backend.start()
from ablation import spec, trial, data
s = spec.loads('''
[study]
name = "t"
seeds = [0]
[data]
name = "digits"
[model]
name = "mlp"
hidden = [8]
[train]
epochs = 1
[grid]
activation = ["relu"]
''')
cfg = s.resolve(s.points()[0], 0)
trial.build_model(cfg, data.load("digits"))
print("tensorflow" in sys.modules)
"""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
