"""ablation.trials.metrics: which columns a study records, and the claim check the runner makes before any trial."""

from __future__ import annotations

import numpy as np
import pytest

from ablation.trials import metrics
from ablation.train import probes
from ablation import spec, zoo
from ablation.spec import SpecError


@pytest.fixture(scope="module")
def probe_keys() -> dict[str, str]:
    """Summary key -> the probe that produces it, read off the probes themselves (no training)."""
    model = zoo.mlp(input_shape=(4,), num_classes=3, hidden=(5, 5), activation="sigmoid")
    callbacks = probes.make(probes.PROBES, model=model, probe_x=np.zeros((8, 4), "float32"),
                            probe_y=np.zeros(8, "int64"), every_steps=10, target_train_error=0.5)
    return {key: cb.name for cb in callbacks for key in cb.summary()}


STUDY = """
[study]
name = "t"
probes = ["activations"]
[data]
name = "mnist1d"
[model]
hidden = [8]
[evaluate]
mc_dropout_k = [1, 10]
[grid]
dropout = [0.0, 0.5]
"""


def test_probe_of_is_what_the_probes_record(probe_keys):
    assert metrics.PROBE_OF == probe_keys
    assert set(probe_keys) == set(probes.SUMMARY_KEYS)
    assert probe_keys["steps_to_target"] == "speed" and probe_keys["sparsity_init"] == "activations"


def test_claim_metric_problem_rejects_what_the_runs_would_not_produce():
    s = spec.loads(STUDY)
    problem = metrics.claim_metric_problem
    assert problem(s, "test_error") is None
    assert problem(s, "sparsity_init") is None
    assert problem(s, "test_error@mc_dropout:k=10") is None
    assert problem(s, "test_loss@weight_scaling") is None
    assert problem(s, "test_eror").startswith("is neither")
    assert problem(s, "val_error") == "needs data.validation_size > 0"
    assert problem(s, "test_error_at_stop") == "needs train.early_stopping"
    assert problem(s, "grad_first_over_last_init") == "needs the 'gradients' probe"
    assert problem(s, "test_error@mc_dropout:k=50") == "needs k in evaluate.mc_dropout_k"
    assert problem(s, "test_error@dropconnect_gaussian:k=100") == "needs 'gaussian' in evaluate.dropconnect_inference"
    s2 = spec.loads(STUDY.replace("mc_dropout_k = [1, 10]", 'dropconnect_inference = ["scaling", "gaussian"]\n'
                                  "target_train_error = 0.5").replace('"activations"', '"speed"'))
    assert problem(s2, "test_error@dropconnect_gaussian:k=100") is None
    assert problem(s2, "test_error@dropconnect_scaling") is None
    assert problem(s2, "test_error@dropconnect_gaussian:k=5") == "the dropconnect_gaussian column has k=100"
    assert problem(s2, "test_error@mc_dropout:k=10") == "needs evaluate.mc_dropout_k"
    assert problem(s2, "steps_to_target") is None
    assert problem(spec.loads(STUDY.replace('"activations"', '"speed"')), "steps_to_target") == \
        "needs evaluate.target_train_error"


def test_recorded_lists_exactly_the_columns_without_a_problem(probe_keys):
    s = spec.loads(STUDY)
    names = set(metrics.recorded(s))
    assert {"test_error", "sparsity_init", "test_error@mc_dropout:k=1", "test_loss@weight_scaling"} <= names
    assert "val_error" not in names and "grad_first_over_last_init" not in names
    candidates = (set(metrics.ALWAYS) | set(metrics.NEEDS_VALIDATION) | set(metrics.NEEDS_EARLY_STOPPING)
                  | set(probe_keys) | {"test_error@mc_dropout:k=50", "test_loss@mc_dropout:k=10"})
    assert names & candidates == {m for m in candidates if metrics.claim_metric_problem(s, m) is None}


CLAIM = """
[[claims]]
id = "T1"
statement = "s"
metric = "test_error"
compare = { dropout = 0.5 }
against = { dropout = 0.0 }
expect = "lower"
"""


@pytest.mark.parametrize("old, new, pattern", [
    ('metric = "test_error"', 'metric = "test_eror"',
     r"^claims\[0\]\.metric: claim T1: 'test_eror' is not a metric this study records; did you mean 'test_error'\? "
     r"it records: test_loss, test_accuracy, test_error, .*test_loss@mc_dropout:k=10$"),
    ('metric = "test_error"', 'metric = "val_error"',
     r"^claims\[0\]\.metric: claim T1: 'val_error' needs data\.validation_size > 0$"),
    ("against = { dropout = 0.0 }", 'against_metric = "test_error@mc_dropout:k=50"',
     r"^claims\[0\]\.against_metric: claim T1: 'test_error@mc_dropout:k=50' needs k in evaluate\.mc_dropout_k$"),
    ('expect = "lower"', 'expect = "lower"\ncheck = { metric = "weight_nrom", expect = "lower", by = 0.1 }',
     r"^claims\[0\]\.check\.metric: claim T1: 'weight_nrom' is not a metric this study records"),
])
def test_check_claims_names_the_claim_and_what_exists(old, new, pattern):
    import re

    s = spec.loads((STUDY + CLAIM).replace(old, new))
    with pytest.raises(SpecError) as info:
        metrics.check_claims(s)
    assert re.search(pattern, str(info.value)), str(info.value)
    metrics.check_claims(spec.loads(STUDY + CLAIM))  # a valid claim passes


def test_a_regression_study_records_rmse_not_error(tmp_path):
    import numpy as np

    x = np.random.default_rng(0).random((40, 3), dtype=np.float32)
    np.savez(tmp_path / "r.npz", x_train=x, y_train=x.sum(axis=1), x_test=x[:8], y_test=x[:8].sum(axis=1))
    text = ('[study]\nname = "r"\n[data]\npath = "r.npz"\ntask = "regression"\nvalidation_size = 8\n'
            '[model]\nname = "mlp"\nhidden = [4]\n[train]\nepochs = 1\n[grid]\ndropout = [0.0, 0.5]\n')
    s = spec.loads(text, base_dir=tmp_path)
    names = set(metrics.recorded(s))
    assert {"test_rmse", "test_mae", "train_rmse", "baseline_test_rmse", "val_rmse", "best_val_rmse"} <= names
    assert not names & {"test_error", "test_accuracy", "val_error", "epochs_to_baseline_best"}
    assert metrics.claim_metric_problem(s, "test_rmse") is None
    claim = CLAIM.replace('metric = "test_error"', 'metric = "test_eror"')
    with pytest.raises(spec.SpecError, match=r"'test_eror' is not a metric this study records; .*"
                                             r"it records: test_loss, test_rmse, test_mae, train_loss"):
        metrics.check_claims(spec.loads(text + claim, base_dir=tmp_path))
