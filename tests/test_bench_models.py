"""benchmarks/bench_models.py: every benchmarked model is a valid study, and bad options stop in one line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np

from ablation import spec

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    loader = importlib.util.spec_from_file_location("bench_models", ROOT / "benchmarks" / "bench_models.py")
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module


def test_every_benchmarked_model_is_a_valid_study(tmp_path):
    bench = _bench()
    rng = np.random.default_rng(0)
    npz = tmp_path / "data.npz"
    np.savez(npz, x_train=rng.random((2560, 784), dtype=np.float32), y_train=rng.integers(0, 10, 2560),
             x_test=rng.random((64, 784), dtype=np.float32), y_test=rng.integers(0, 10, 64))
    (tmp_path / "convnet.py").write_text(bench.CONVNET)
    for name in bench.MODELS:
        path = tmp_path / f"{name}.toml"
        path.write_text(bench.study_text(name, 3, f'path = "{npz}"'))
        s = spec.load(path)
        cfg = s.resolve(s.points()[0], s.seeds[0])
        assert cfg.train.epochs == 3 and len(s.trials()) == 1, name


def test_too_few_epochs_is_a_one_line_error():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_models.py"), "--epochs", "2"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --epochs, --skip:")
