"""The bundled study files (studies/*.toml): each parses under every profile, its claims name metrics
that the runner and the probes really produce and grid values that the profile really has, its
quick profile is small enough for a CPU, its full profile is paper-scale, and its published
numbers are quoted from the claims catalogue (docs/claims.md). No training runs here: ``ablation run studies/X.toml
--profile quick`` is the end-to-end check.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from ablation import evaluation, probes, spec, zoo

STUDIES = spec.list_studies()
PROFILES = (None, "quick", "full")
CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "claims.md"
MAX_QUICK_TRIALS = 24
QUICK_DATA = ("mnist1d", "digits")  # offline and small; MNIST only as a small subset
MAX_QUICK_MNIST_SIZE = 5000
FULL_MIN_SEEDS = 3
MNIST_VALIDATION = 10_000  # the dropout paper's last-10k validation split

# Per-trial metrics of records.trials that do not come from a probe (ablation/hypermodel.py and
# ablation/records.py), and what each group needs in the study.
ALWAYS = {"test_loss", "test_accuracy", "test_error", "train_loss", "train_error", "first_epoch_time_s",
          "time_per_epoch_s", "train_size", "wall_time_s", "epochs_run", "steps_run"}
NEEDS_VALIDATION = {"val_loss", "val_error", "best_val_error", "best_val_epoch"}
NEEDS_EARLY_STOPPING = {"test_loss_at_stop", "test_accuracy_at_stop", "test_error_at_stop",
                        "stopped_epoch", "best_epoch"}
NEEDS_TARGET = {"steps_to_target", "seconds_to_target"}
EVALUATION_RE = re.compile(r"^(test_error|test_loss)@(mc_dropout|dropconnect_scaling|dropconnect_gaussian)"
                           r"(?::k=(\d+))?$")


@pytest.fixture(scope="module")
def probe_keys() -> dict[str, str]:
    """Summary key -> the probe that produces it, read off the probes themselves (no training)."""
    model = zoo.mlp(input_shape=(4,), num_classes=3, hidden=(5, 5), activation="sigmoid")
    callbacks = probes.make(probes.PROBES, model=model, probe_x=np.zeros((8, 4), "float32"),
                            probe_y=np.zeros(8, "int64"), every_steps=10, target_train_error=0.5)
    return {key: cb.name for cb in callbacks for key in cb.summary()}


def _load(name: str, profile: str | None) -> spec.StudySpec:
    return spec.load(spec.find_study(name), profile=profile)


def _raw(name: str) -> dict:
    return tomllib.loads(spec.find_study(name).read_text(encoding="utf-8"))


def _early_stopping_used(s: spec.StudySpec) -> bool:
    if s.train.early_stopping:
        return True
    for axis in s.grid:
        if axis.name == "early_stopping" and any(v is not None for v in axis.values):
            return True
        if axis.section == "config" and any(v.get("early_stopping") for v in axis.values):
            return True
    return False


def _catalogue_rows() -> dict[str, str]:
    """Catalogue claim id ("A1") -> its table row."""
    rows = {}
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*([A-D]\d+)\s*\|", line)
        if m:
            rows[m.group(1)] = line
    return rows


def metric_problem(metric: str, s: spec.StudySpec, probe_keys: dict[str, str]) -> str | None:
    """Why the runs of ``s`` would not produce the column ``metric`` (None if they would)."""
    if metric in ALWAYS:
        return None
    if metric in NEEDS_VALIDATION:
        return None if s.data.validation_size > 0 else "needs data.validation_size > 0"
    if metric in NEEDS_EARLY_STOPPING:
        return None if _early_stopping_used(s) else "needs train.early_stopping"
    if metric in probe_keys:
        if probe_keys[metric] not in s.probes:
            return f"needs the {probe_keys[metric]!r} probe"
        if metric in NEEDS_TARGET and s.evaluate.target_train_error is None:
            return "needs evaluate.target_train_error"
        return None
    m = EVALUATION_RE.match(metric)
    if m is None:
        return "is neither a runner metric, a probe summary key nor an evaluation column"
    mode, k = m.group(2), m.group(3)
    if mode == "mc_dropout":
        return None if k is not None and int(k) in s.evaluate.mc_dropout_k else "needs k in evaluate.mc_dropout_k"
    kind = mode.removeprefix("dropconnect_")
    if kind not in s.evaluate.dropconnect_inference:
        return f"needs {kind!r} in evaluate.dropconnect_inference"
    samples = inspect.signature(evaluation.dropconnect).parameters["num_samples"].default
    expected_k = None if kind == "scaling" else str(samples)
    return None if k == expected_k else f"the {mode} column has k={expected_k}"


# ----------------------------------------------------------------------------- every study x profile


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("name", STUDIES)
def test_study_profile_parses_and_its_claims_can_be_checked(name, profile, probe_keys):
    s = _load(name, profile)
    assert (s.name, s.profile) == (name, profile)
    assert s.description.strip()
    assert s.n_trials == len(s.trials()) >= 2
    # every claim names a column the runs produce ...
    problems = {(c.id, m): (m, metric_problem(m, s, probe_keys)) for c in s.claims
                for m in (c.metric, c.against_metric) if m}
    assert {k: v for k, v in problems.items() if v[1] is not None} == {}
    # ... and grid values this profile has (else the report finds no trials for it)
    missing = [(c.id, axis, lab) for c in s.claims for part in (c.compare, c.against or {}, c.where)
               for axis, lab in part.items() if lab not in s.axis(axis).labels]
    assert missing == []
    # MNIST: the user supplies the folder (ABLATION_MNIST_DIR) or Keras downloads; last 10k validate
    assert "data_dir" not in s.data.options
    if s.data.name == "mnist" and s.data.train_size is None:
        assert s.data.validation_size == MNIST_VALIDATION


# ----------------------------------------------------------------------------- profiles


@pytest.mark.parametrize("name", STUDIES)
def test_quick_is_small_and_offline_full_is_paper_scale(name):
    assert {"quick", "full"} <= set(_raw(name).get("profiles", {}))
    base, quick, full = _load(name, None), _load(name, "quick"), _load(name, "full")
    assert quick.n_trials <= MAX_QUICK_TRIALS
    if quick.data.name not in QUICK_DATA:
        sizes = [quick.data.train_size] + [v for a in quick.grid if a.name == "train_size" for v in a.values]
        assert quick.data.name == "mnist" and all(n is not None and n <= MAX_QUICK_MNIST_SIZE for n in sizes)
    assert len(full.seeds) >= FULL_MIN_SEEDS
    assert full.train.epochs >= quick.train.epochs and full.n_trials >= quick.n_trials
    ids = [c.id for c in base.claims]
    assert ids, "a bundled study states at least one claim"
    assert [c.id for c in quick.claims] == ids == [c.id for c in full.claims]


# ----------------------------------------------------------------------------- published numbers


@pytest.mark.parametrize("name", STUDIES)
def test_published_numbers_ids_and_approx_follow_the_catalogue(name):
    numbers = set(re.findall(r"\d+(?:\.\d+)?", CATALOGUE.read_text(encoding="utf-8")))
    claims = _load(name, None).claims
    invented = {c.id: n for c in claims for n in re.findall(r"\d+(?:\.\d+)?", c.published) if n not in numbers}
    assert invented == {}
    if name == "quickstart":  # its claims (Q1-Q4) predate the catalogue ids
        return
    rows = _catalogue_rows()
    for c in claims:
        m = re.match(r"^([A-D]\d+)(?:-|$)", c.id)
        assert m and m.group(1) in rows, f"claim {c.id!r} does not start with a catalogue claim id"
        row_is_approx = "approx" in rows[m.group(1)]
        assert c.approx == (row_is_approx and bool(re.search(r"\d", c.published))), c.id


# ----------------------------------------------------------------------------- the checker itself


def test_metric_problem_rejects_what_the_runs_would_not_produce(probe_keys):
    s = spec.loads("""
        [study]
        name = "t"
        probes = ["activations"]
        [data]
        name = "mnist1d"
        [evaluate]
        mc_dropout_k = [1, 10]
        [grid]
        dropout = [0.0, 0.5]
    """)
    assert metric_problem("test_error", s, probe_keys) is None
    assert metric_problem("sparsity_init", s, probe_keys) is None
    assert metric_problem("test_error@mc_dropout:k=10", s, probe_keys) is None
    assert metric_problem("test_eror", s, probe_keys).startswith("is neither")
    assert metric_problem("val_error", s, probe_keys) == "needs data.validation_size > 0"
    assert metric_problem("test_error_at_stop", s, probe_keys) == "needs train.early_stopping"
    assert metric_problem("grad_first_over_last_init", s, probe_keys) == "needs the 'gradients' probe"
    assert metric_problem("test_error@mc_dropout:k=50", s, probe_keys) == "needs k in evaluate.mc_dropout_k"
    assert metric_problem("test_error@dropconnect_gaussian:k=100", s, probe_keys) == (
        "needs 'gaussian' in evaluate.dropconnect_inference")


def test_probe_keys_cover_the_documented_summary_keys(probe_keys):
    assert set(probe_keys) == set(probes.SUMMARY_KEYS)
    assert probe_keys["steps_to_target"] == "speed" and probe_keys["sparsity_init"] == "activations"
