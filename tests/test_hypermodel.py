"""One trial through the HyperModel: probes, early stopping and evaluation modes land in the records."""

from __future__ import annotations

import keras_tuner as kt
import pytest

from ablation.stats import records
from ablation.engine import runner
from ablation import spec
from ablation.engine.hypermodel import AblationHyperModel

pytestmark = pytest.mark.backends  # .ci/run runs this module under TensorFlow and under JAX

STUDY = """
[study]
name = "instruments"
seeds = [0]
probes = ["gradients", "activations", "covariate_shift", "weights", "timing", "speed"]
probe_every_steps = 10
probe_size = 64

[data]
name = "digits"
validation_size = 200

[model]
name = "mlp"
hidden = [16, 16]

[train]
epochs = 3
batch_size = 64
optimizer = "adam"
learning_rate = 0.01
jit_compile = false
early_stopping = { criterion = "patience", patience = 1 }

[evaluate]
mc_dropout_k = [1, 5]
target_train_error = 0.6

[grid]
dropout = [0.3]
"""


def test_search_space_is_one_choice_per_axis_plus_seed():
    s = spec.loads(STUDY.replace("dropout = [0.3]", "dropout = [0.0, 0.3]\nactivation = [\"relu\", \"tanh\"]"))
    hp = kt.HyperParameters()
    AblationHyperModel(s).declare_hyperparameters(hp)
    assert [p.name for p in hp.space] == ["dropout", "activation", "seed"]
    assert list(hp.space[0].values) == ["0.0", "0.3"]


def test_every_instrument_is_recorded(tmp_path):
    run_dir = runner.run(spec.loads(STUDY), out_dir=tmp_path)
    r = records.load(run_dir)
    t = r.trials.iloc[0]
    assert t["status"] == "completed"
    for key in ("stopped_epoch", "best_epoch", "early_stopped", "test_error_at_stop", "sparsity_init",
                "grad_first_over_last_init", "time_per_step_s", "steps_to_target"):
        assert key in r.trials.columns, key
    assert 1 <= t["best_epoch"] <= 3
    assert set(r.probes["probe"]) == {"gradients", "activations", "covariate_shift", "weights", "timing", "speed"}
    # covariate shift sampled at init, every 10 steps and at epoch ends: 20 steps per epoch, 3 epochs
    steps = sorted(r.probes.loc[r.probes["probe"] == "covariate_shift", "step"].unique())
    assert steps[0] == 0 and {10, 20, 30, 40, 50, 60} <= set(steps)
    ev = r.evaluations.set_index(["mode", "k", "metric"])["value"]
    assert ev[("weight_scaling", 0, "test_error")] == pytest.approx(t["test_error"], abs=1e-6)
    assert {("mc_dropout", 1, "test_error"), ("mc_dropout", 5, "test_error")} <= set(ev.index)
    assert (run_dir / "trial_0" / "probes.json").exists()


def test_probes_off_write_no_probe_file(tmp_path):
    text = STUDY.replace('probes = ["gradients", "activations", "covariate_shift", "weights", "timing", "speed"]',
                         "probes = []").replace("target_train_error = 0.6", "")
    run_dir = runner.run(spec.loads(text), out_dir=tmp_path)
    assert not list(run_dir.glob("trial_*/probes.json"))
    assert records.load(run_dir).probes.empty


def test_one_subset_per_trial():
    s = spec.loads(STUDY.replace("dropout = [0.3]", "train_size = [100, 200]"))
    hm = AblationHyperModel(s)
    cfg = s.resolve({"train_size": "100"}, 0)
    first = hm.dataset(cfg)
    assert hm.dataset(cfg) is first and len(first.x_train) == 100  # build() and fit() share it
    other = hm.dataset(s.resolve({"train_size": "200"}, 0))
    assert len(other.x_train) == 200 and set(map(bytes, first.x_train)) <= set(map(bytes, other.x_train))
