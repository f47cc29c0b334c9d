"""Shared pytest setup: quiet TensorFlow, deterministic ops, paths to the shared data."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = Path(os.environ.get("ABLATION_TEST_MNIST_DIR", REPO_ROOT.parent / "shared" / "datasets" / "mnist"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder of the four MNIST IDX files; skips the test where it is absent."""
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    if not all((MNIST_DIR / n).exists() or (MNIST_DIR / (n + ".gz")).exists() for n in names):
        pytest.skip(f"MNIST IDX files not found in {MNIST_DIR} (set ABLATION_TEST_MNIST_DIR)")
    return MNIST_DIR


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts from a clean Keras graph state with fixed seeds."""
    yield
    if "keras" in __import__("sys").modules:
        import keras

        keras.backend.clear_session()
