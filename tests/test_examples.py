"""The examples run: examples/own_model (your CNN on your .npz), on a tiny setting (its smoke profile)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ablation.stats import records
from ablation.engine import runner
from ablation import spec

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "own_model"


def test_own_model_example_runs_with_overrides(tmp_path):
    folder = tmp_path / "own_model"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("digits.npz", "__pycache__", "runs"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, str(folder / "make_data.py")], check=True, env=env, timeout=120)
    full = spec.load(folder / "study.toml")
    assert (len(full.seeds), full.n_trials) == (5, 2 * 2 * 3 * 5)  # dropout x batch norm x train_size, 5 seeds
    proc = subprocess.run([sys.executable, "-m", "ablation.cli", "run", str(folder / "study.toml"), "--profile",
                           "smoke", "--out", str(tmp_path / "runs")], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    smoke = spec.load(folder / "study.toml", profile="smoke")
    assert (smoke.seeds, smoke.train.epochs, smoke.axis("train_size").values) == ((0,), 1, (100, 200))
    run_dir = runner.run_dir_of(smoke, tmp_path / "runs")
    t = records.load(run_dir).trials
    assert len(t) == 8 and (t["status"] == "completed").all()
    assert set(zip(t["dropout"], t["batchnorm"], t["train_size"])) == {
        (d, b, n) for d in (0.0, 0.3) for b in (False, True) for n in (100, 200)}
    report = (run_dir / "report.html").read_text()
    assert "own-dropout" in report and "own-batchnorm" in report
