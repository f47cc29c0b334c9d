"""Tests for ablation.spec: parsing, profiles, hashing, grid expansion and every validation error."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import pytest

from ablation import spec
from ablation.spec import SpecError

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample_study.toml"
SAMPLE_TEXT = SAMPLE.read_text()
INTERNALS = Path(__file__).resolve().parents[1] / "docs" / "internals.md"


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Overrides conftest's per-test keras.backend.clear_session(): spec builds no model."""
    yield


def doc_example() -> str:
    """The study-file example of docs/internals.md section 2, verbatim."""
    section = INTERNALS.read_text().split("## 2.")[1].split("## 3.")[0]
    return re.search(r"```toml\n(.*?)```", section, re.S).group(1)


def edited(old: str, new: str, text: str = SAMPLE_TEXT) -> str:
    """The sample study with one exact edit (fails loudly when ``old`` is not in it)."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def error_of(text: str, profile: str | None = None) -> str:
    with pytest.raises(SpecError) as info:
        spec.loads(text, profile=profile, source="sample.toml")
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- parsing


def test_sample_study_parses_into_frozen_spec():
    s = spec.load(SAMPLE)
    assert (s.name, s.seeds, s.probes, s.profile) == ("sample", (0, 1, 2), ("timing", "gradients"), None)
    assert (s.probe_every_steps, s.probe_size) == (50, 512)  # defaults
    assert s.path == SAMPLE and s.source_text == SAMPLE_TEXT
    assert s.data == spec.DataSpec(name="mnist1d", options={"num_samples": 1000}, validation_size=100,
                                   train_size=500)
    assert s.model == spec.ModelSpec(name="mlp", args={"hidden": (32, 32), "activation": "relu", "l2": 1e-5})
    assert (s.train.epochs, s.train.batch_size, s.train.learning_rate) == (5, 50, 0.05)
    assert isinstance(s.train.learning_rate, float) and s.train.momentum is None
    assert s.axis_names == ("activation", "dropout", "config")
    assert [a.section for a in s.grid] == ["model", "model", "config"]
    assert s.axis("dropout").labels == ("0.0", "0.5")
    assert s.axis("config").labels == ("plain", "fast", "small")
    assert s.axis("config").values[2] == {"train_size": 200, "hidden": (16,)}
    claim = s.claims[0]
    assert (claim.id, claim.compare, claim.against, claim.where) == ("C1", {"dropout": "0.5"}, {"dropout": "0.0"}, {})
    assert (claim.effect, claim.threshold, claim.tolerance) == ("difference", 0.0, None)
    assert claim.rule == ""  # the test in words is generated where it is shown (spec.test_text)
    assert spec.test_text(claim, s.axis_names) == ("test_error(dropout=0.5) \u2212 test_error(dropout=0.0), paired "
                                                   "by seed within activation, config: 95% CI over seeds must lie below 0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "other"


def test_doc_example_parses_with_every_key():
    s = spec.loads(doc_example())
    assert s.name == "quickstart" and s.axis_names == ("activation", "dropout", "config")
    assert s.train.schedule == {"kind": "exponential", "decay_steps": 1000, "decay_rate": 0.96}
    assert s.train.early_stopping == {"criterion": "patience", "patience": 5, "min_delta": 0.0}
    assert (s.train.momentum, s.train.jit_compile, s.train.precision) == (0.9, True, "float32")
    assert s.evaluate == spec.EvaluateSpec(mc_dropout_k=(1, 2, 5, 10, 20, 50, 100),
                                           dropconnect_inference=("scaling", "gaussian"), target_train_error=0.25)
    assert s.claims[0].rule == "..." and s.claims[0].published == "1.25% vs 1.60% on MNIST"
    assert s.axis("config").values == ({}, {"l2": 1e-4}, {"dropout": 0.5, "max_norm": 2.0})
    assert s.n_trials == 2 * 2 * 3 * 3


def test_profile_deep_merges_over_the_file():
    base, quick = spec.load(SAMPLE), spec.load(SAMPLE, profile="quick")
    assert quick.profile == "quick" and quick.train.epochs == 1 and quick.seeds == (0,)
    # merged, not replaced: the other [train] and [study] keys survive
    assert quick.train == dataclasses.replace(base.train, epochs=1)
    assert quick.probes == base.probes and quick.name == "sample"
    wide = spec.load(SAMPLE, profile="wide")
    assert wide.model.args == {"hidden": (64, 64), "activation": "relu", "l2": 1e-5}


def test_to_dict_is_json_and_keeps_axis_order():
    d = spec.load(SAMPLE).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert [a["name"] for a in d["grid"]] == ["activation", "dropout", "config"]
    assert d["grid"][2]["values"][2] == {"train_size": 200, "hidden": [16]}
    assert d["model"]["args"]["hidden"] == [32, 32] and d["study"]["seeds"] == [0, 1, 2]


# ----------------------------------------------------------------------------- hash


def test_hash_is_sha256_of_canonical_resolved_spec():
    s = spec.load(SAMPLE)
    d = s.to_dict()
    del d["claims"], d["profile"], d["study"]["description"], d["study"]["pack"], d["base_dir"]
    expected = hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert s.hash == expected and len(s.hash) == 64
    assert s.short_hash == expected[:8] and s.run_name == f"sample-{expected[:8]}"
    assert spec.load(SAMPLE).hash == s.hash  # stable across reloads
    assert hash(s) == hash(spec.load(SAMPLE))


@pytest.mark.parametrize("old, new", [
    ('description = "Dropout and activation on a small MLP."', 'description = "Edited."'),
    ('statement = "Dropout lowers the test error"', 'statement = "Reworded"'),
    ('expect = "lower"', 'expect = "higher"'),
    ("# A small valid study", "# An edited comment on a small valid study"),
    ('probes = ["timing", "gradients"]', 'probes = ["timing", "gradients"]\npack = false'),
])
def test_hash_ignores_description_claims_and_comments(old, new):
    assert spec.loads(edited(old, new)).hash == spec.load(SAMPLE).hash


@pytest.mark.parametrize("old, new", [
    ("epochs = 5", "epochs = 6"),
    ('dropout = [0.0, 0.5]', 'dropout = [0.0, 0.4]'),
    ('seeds = [0, 1, 2]', 'seeds = [0, 1]'),
    ('activation = ["relu", "tanh"]', 'activation = ["tanh", "relu"]'),  # trial order changes
    ("plain = {}", "plain = { l1 = 1e-6 }"),
])
def test_hash_changes_with_what_runs(old, new):
    assert spec.loads(edited(old, new).replace("compare = { dropout = 0.5 }", "compare = { }")
                      .replace("against = { dropout = 0.0 }", "")).hash != spec.load(SAMPLE).hash


def test_hash_changes_with_profile():
    hashes = {spec.load(SAMPLE, profile=p).hash for p in (None, "quick", "wide")}
    assert len(hashes) == 3


# ----------------------------------------------------------------------------- grid expansion


def test_points_and_trials_are_the_product_times_seeds():
    s = spec.load(SAMPLE)
    points = s.points()
    assert len(points) == 2 * 2 * 3 and s.n_trials == 2 * 2 * 3 * 3 == len(s.trials())
    assert points[0] == {"activation": "relu", "dropout": "0.0", "config": "plain"}
    assert points[1] == {"activation": "relu", "dropout": "0.0", "config": "fast"}  # last axis fastest
    assert points[-1] == {"activation": "tanh", "dropout": "0.5", "config": "small"}
    assert len({tuple(p.values()) for p in points}) == 12
    assert s.trials()[:4] == [(points[0], 0), (points[0], 1), (points[0], 2), (points[1], 0)]
    assert spec.load(SAMPLE, profile="quick").n_trials == 12


def test_resolve_merges_fixed_args_axis_values_and_recipes():
    s = spec.load(SAMPLE)
    plain = s.resolve({"activation": "tanh", "dropout": "0.5", "config": "plain"}, seed=2)
    assert plain.model_name == "mlp" and plain.seed == 2
    assert plain.model_args == {"hidden": (32, 32), "activation": "tanh", "l2": 1e-5, "dropout": 0.5}
    assert plain.train == dataclasses.replace(s.train, momentum=0.0)  # sgd: no momentum
    assert (plain.data_name, plain.data_options) == ("mnist1d", {"num_samples": 1000})
    assert (plain.train_size, plain.validation_size) == (500, 100)
    fast = s.resolve({"activation": "relu", "dropout": "0.5", "config": "fast"}, seed=0)
    assert fast.model_args["dropout"] == 0.2  # the recipe overrides the axis value
    assert (fast.train.learning_rate, fast.train.optimizer, fast.train.momentum) == (0.2, "momentum", 0.9)
    assert fast.train.epochs == 5
    small = s.resolve({"activation": "relu", "dropout": "0.0", "config": "small"}, seed=1)
    assert small.train_size == 200 and small.model_args["hidden"] == (16,)
    assert s.model.args["hidden"] == (32, 32)  # the spec itself is untouched


def test_train_and_train_size_axes_and_labels():
    text = edited('dropout = [0.0, 0.5]', 'dropout = [0.0, 0.5]\nlearning_rate = [0.1, 1]\n'
                  'train_size = [100, 300]\nhidden = [[100, 100], [8]]\nbatchnorm = [false, "after"]')
    s = spec.loads(text)
    assert [a.section for a in s.grid] == ["model", "model", "train", "data", "model", "model", "config"]
    assert s.axis("learning_rate").labels == ("0.1", "1.0") and s.axis("learning_rate").values == (0.1, 1.0)
    assert s.axis("hidden").labels == ("100-100", "8") and s.axis("batchnorm").labels == ("false", "after")
    point = {"activation": "relu", "dropout": "0.0", "learning_rate": "1.0", "train_size": "300",
             "hidden": "100-100", "batchnorm": "false", "config": "plain"}
    trial = s.resolve(point, seed=0)
    assert (trial.train.learning_rate, trial.train_size, trial.model_args["hidden"]) == (1.0, 300, (100, 100))
    assert trial.model_args["batchnorm"] is False
    assert s.n_trials == 2 * 2 * 2 * 2 * 2 * 2 * 3 * 3


def test_labels():
    assert [spec.label(v) for v in (None, 0.5, 1e-4, 3, True, "relu", [100, 100], (), {"a": 1})] == \
        ["none", "0.5", "0.0001", "3", "true", "relu", "100-100", "[]", "a=1"]


def test_resolve_rejects_bad_points():
    s = spec.load(SAMPLE)
    with pytest.raises(SpecError, match=r'^point\.dropout: expected one of 0\.0, 0\.5\. Received: dropout="0\.7"$'):
        s.resolve({"activation": "relu", "dropout": "0.7", "config": "plain"}, seed=0)
    with pytest.raises(SpecError, match=r"^point\.config: missing axis$"):
        s.resolve({"activation": "relu", "dropout": "0.0"}, seed=0)
    with pytest.raises(SpecError, match=r"^point\.dropuot: unknown axis; did you mean point\.dropout\?"):
        s.resolve({"activation": "relu", "dropuot": "0.0", "config": "plain"}, seed=0)
    assert s.resolve({"activation": "relu", "dropout": 0.5, "config": "plain"}, seed=0).point["dropout"] == "0.5"


def test_describe_grid():
    text = spec.describe_grid(spec.load(SAMPLE, profile="quick"))
    lines = text.splitlines()
    assert lines[0] == "study sample, profile quick"  # no run folder name: --dry-run prints it once the backend is chosen
    assert lines[2].split() == ["activation", "model", "relu,", "tanh"]
    assert lines[4].split() == ["config", "config", "plain,", "fast,", "small"]
    assert lines[-1] == "2 x 2 x 3 = 12 points x 1 seed = 12 trials"


# ----------------------------------------------------------------------------- validation errors


ERRORS = [
    # unknown keys, with a did-you-mean
    ("dropout = [0.0, 0.5]", "dropuot = [0.0, 0.5]", r"^grid\.dropuot: unknown key; did you mean grid\.dropout\?$"),
    ("[train]", "[trian]", r"^trian: unknown key; did you mean train\?$"),
    ("epochs = 5", "epocs = 5", r"^train\.epocs: unknown key; did you mean train\.epochs\?$"),
    ("seeds = [0, 1, 2]", "seed = [0, 1, 2]", r"^study\.seed: unknown key; did you mean study\.seeds\?$"),
    ("num_samples = 1000", "num_sample = 1000", r"^data\.num_sample: unknown key; did you mean data\.num_samples\?$"),
    ("hidden = [32, 32]", "hiden = [32, 32]", r"^model\.hiden: unknown key; did you mean model\.hidden\?$"),
    ('expect = "lower"', 'expct = "lower"', r"^claims\[0\]\.expct: unknown key; did you mean claims\[0\]\.expect\?$"),
    ("plain = {}", "plain = { l22 = 0.1 }",
     r"^grid\.config\.plain\.l22: unknown key; did you mean grid\.config\.plain\.l2\?$"),
    ("dropout = [0.0, 0.5]", "dropout = [0.0, 0.5]\nseed = [1, 2]", r"^grid\.seed: seeds are replicates"),
    ("[profiles.wide]", "[profiles.wide.trian]",
     r"^profiles\.wide\.trian: unknown key; did you mean profiles\.wide\.train\?$"),
    # wrong types and impossible values
    ("epochs = 5", 'epochs = "ten"', r'^train\.epochs: expected a positive integer\. Received: epochs="ten"$'),
    ("epochs = 5", "epochs = 0", r"^train\.epochs: expected a positive integer\. Received: epochs=0$"),
    ("epochs = 5", "epochs = 5.0", r"^train\.epochs: expected a positive integer\. Received: epochs=5\.0$"),
    ("batch_size = 50", "batch_size = -1", r"^train\.batch_size: expected a positive integer\. Received: batch_size=-1$"),
    ("learning_rate = 0.05", "learning_rate = 0", r"^train\.learning_rate: expected a positive float\. Received: learning_rate=0$"),
    ("learning_rate = 0.05", "learning_rate = inf", r"^train\.learning_rate: expected a positive float\. Received: learning_rate=inf$"),
    ("epochs = 5", "epochs = 5\nmomentum = 1.0", r"^train\.momentum: expected a float in \[0, 1\)\. Received: momentum=1\.0$"),
    ("epochs = 5", "epochs = 5\nnesterov = 1", r"^train\.nesterov: expected true or false\. Received: nesterov=1$"),
    ("seeds = [0, 1, 2]", "seeds = []",
     r"^study\.seeds: expected a non-empty list of non-negative integers\. Received: seeds=\[\]$"),
    ("seeds = [0, 1, 2]", "seeds = [0, 1, 0]", r"^study\.seeds: duplicate value 0$"),
    ("seeds = [0, 1, 2]", "seeds = [0, -1]", r"^study\.seeds\[1\]: expected a non-negative integer\. Received: seeds\[1\]=-1$"),
    ('name = "sample"', 'name = "My Study"', r'^study\.name: expected a name of \[a-z0-9_-\]\+\. Received: name="My Study"$'),
    ('name = "sample"\n', "", r"^study\.name: required key is missing$"),
    ("validation_size = 100", "validation_size = -1",
     r"^data\.validation_size: expected a non-negative integer\. Received: validation_size=-1$"),
    ("train_size = 500", "train_size = 0", r"^data\.train_size: expected a positive integer\. Received: train_size=0$"),
    ('optimizer = "sgd"', 'optimizer = "adamm"', r'^train\.optimizer: expected one of sgd, momentum, adam, adamw, '
     r'rmsprop, adagrad, nadam\. Received: optimizer="adamm"$'),
    ("epochs = 5", 'epochs = 5\nprecision = "float16"', r'^train\.precision: expected one of float32, mixed_bfloat16, '
     r'mixed_float16\. Received: precision="float16"$'),
    ("epochs = 5", 'epochs = 5\nearly_stopping = { criterion = "gll" }', r'^train\.early_stopping\.criterion: expected '
     r'one of patience, gl, pq, up\. Received: criterion="gll"$'),
    ("epochs = 5", 'epochs = 5\nearly_stopping = { criterion = "gl", patience = 3 }',
     r"^train\.early_stopping\.patience: unknown key; expected one of alpha$"),
    ("epochs = 5", 'epochs = 5\nearly_stopping = { criterion = "up", s = 0 }',
     r"^train\.early_stopping\.s: expected a positive integer\. Received: s=0$"),
    ("epochs = 5", 'epochs = 5\nschedule = { kind = "linear" }', r'^train\.schedule\.kind: expected one of '
     r'exponential, cosine, piecewise\. Received: kind="linear"$'),
    ("epochs = 5", 'epochs = 5\nschedule = { kind = "cosine" }', r'^train\.schedule\.decay_steps: required key is '
     r'missing for kind "cosine"$'),
    ("epochs = 5", 'epochs = 5\nschedule = { kind = "exponential", decay_steps = 10, decay_rat = 0.5 }',
     r"^train\.schedule\.decay_rat: unknown key; did you mean train\.schedule\.decay_rate\?$"),
    ("epochs = 5", 'epochs = 5\nschedule = { kind = "piecewise", boundaries = [10, 20], values = [0.1, 0.01] }',
     r"^train\.schedule\.values: expected 3 learning rates \(one more than boundaries\)\. Received: values=\[0\.1, 0\.01\]$"),
    ('probes = ["timing", "gradients"]', 'probes = ["timming"]', r'^study\.probes\[0\]: expected one of gradients, '
     r'activations, covariate_shift, weights, timing, speed\. Received: probes\[0\]="timming"$'),
    # grid
    ("dropout = [0.0, 0.5]", "dropout = []", r"^grid\.dropout: expected a non-empty list of values\. Received: dropout=\[\]$"),
    ("dropout = [0.0, 0.5]", "dropout = 0.5", r"^grid\.dropout: expected a non-empty list of values\. Received: dropout=0\.5$"),
    ("dropout = [0.0, 0.5]", "dropout = [0.5, 0.5]", r"^grid\.dropout: duplicate value 0\.5$"),
    ("dropout = [0.0, 0.5]", "dropout = [0.0, 1.5]", r"^grid\.dropout: Invalid value for argument 'dropout': "
     r"expected a float in \[0, 1\)\. Received: dropout=1\.5$"),
    ("dropout = [0.0, 0.5]", "dropout = [0.0, 0.5]\nlearning_rate = [0.1, -1.0]",
     r"^grid\.learning_rate: expected a positive float\. Received: learning_rate=-1\.0$"),
    ("dropout = [0.0, 0.5]", "dropout = [0.0, 0.5]\ntrain_size = [0]", r"^grid\.train_size: expected a positive "
     r"integer\. Received: train_size=0$"),
    ("plain = {}", "plain = { l2 = -1.0 }", r"^grid\.config\.plain: Invalid value for argument 'l2'"),
    ("plain = {}", 'plain = { optimizer = "lbfgs" }', r"^grid\.config\.plain\.optimizer: expected one of sgd"),
    ("dropout = [0.0, 0.5]", "dropout = [0.0, 0.5]\ndropconnect = [0.0, 0.5]\nweight_standardization = [false, true]",
     r"^grid: Invalid value for argument 'dropconnect': expected 0 when weight_standardization=True .* "
     r"\(at activation=relu, dropout=0\.0, dropconnect=0\.5, weight_standardization=true, config=plain\)$"),
    # data set and model names, model arguments
    ('name = "mnist1d"', 'name = "mnsit"', r'^data\.name: expected one of digits, fashion_mnist, mnist, mnist1d, a '
     r'keras\.datasets name \(boston_housing, california_housing, cifar10, cifar100\), "tfds:<name>", or a file in '
     r'data\.path\. Received: name="mnsit"$'),
    ('name = "mlp"', 'name = "mpl"', r'^model\.name: unknown model; did you mean "mlp"\? expected one of mlp, cnn'),
    ('activation = "relu"\nl2', 'activation = "relu"\ndropout = 1.5\nl2', r"^model\.dropout: expected a float in "
     r"\[0, 1\)\. Received: dropout=1\.5$"),
    # claims
    ('expect = "lower"', "", r"^claims\[0\]\.expect: required key is missing$"),
    ('expect = "lower"', 'expect = "less"',
     r'^claims\[0\]\.expect: expected one of lower, higher, near\. Received: expect="less"$'),
    ('expect = "lower"', 'expect = "lower"\nsanity = 1', r"^claims\[0\]\.sanity: expected a non-empty string"),
    ('expect = "lower"', 'expect = "lower"\nweaker_than_paper = ""',
     r"^claims\[0\]\.weaker_than_paper: expected a non-empty string"),
    ("compare = { dropout = 0.5 }", "compare = { dropuot = 0.5 }",
     r"^claims\[0\]\.compare\.dropuot: unknown grid axis; did you mean claims\[0\]\.compare\.dropout\?$"),
    ("compare = { dropout = 0.5 }", "compare = { dropout = 0.3 }",
     r"^claims\[0\]\.compare\.dropout: expected one of 0\.0, 0\.5\. Received: dropout=0\.3$"),
    ("against = { dropout = 0.0 }", "against = { seed = 0 }",
     r"^claims\[0\]\.against\.seed: unknown grid axis; expected one of activation, config, dropout$"),
    ("against = { dropout = 0.0 }", 'where = { config = "turbo" }',
     r'^claims\[0\]\.where\.config: expected one of plain, fast, small\. Received: config="turbo"$'),
    ('expect = "lower"', 'expect = "near"', r'^claims\[0\]\.tolerance: required when expect = "near"$'),
    ('expect = "lower"', 'expect = "lower"\n[[claims]]\nid = "C1"\nstatement = "x"\nmetric = "m"\nexpect = "higher"',
     r'^claims\[1\]\.id: duplicate claim id "C1"$'),
    # claim kinds
    ("against = { dropout = 0.0 }", 'kind = "separation"', r"^claims\[0\]\.against: a claim of kind \"separation\" needs both"),
    ("against = { dropout = 0.0 }", 'kind = "range"', r"^claims\[0\]\.over: required key is missing$"),
    ("against = { dropout = 0.0 }", 'kind = "range"\nover = "dropuot"',
     r"^claims\[0\]\.over: expected a grid axis \(activation, dropout, config\)\. Received: over=\"dropuot\"$"),
    ("compare = { dropout = 0.5 }\nagainst = { dropout = 0.0 }", 'kind = "range"\nover = "dropout"\nlevels = [0.0, 0.3]',
     r"^claims\[0\]\.levels\.dropout: expected one of 0\.0, 0\.5\. Received: dropout=0\.3$"),
    ("compare = { dropout = 0.5 }\nagainst = { dropout = 0.0 }", 'kind = "best"\nover = "dropout"',
     r"^claims\[0\]\.best_in: required key is missing$"),
    ("against = { dropout = 0.0 }", 'kind = "range"\nover = "dropout"',
     r"^claims\[0\]\.over: axis is already fixed by compare / against / where$"),
    ("against = { dropout = 0.0 }", 'against = { dropout = 0.0 }\nkind = "interaction"\nat = { config = "plain" }\n'
     'versus = { activation = "relu" }', r"^claims\[0\]\.versus: expected the same axes as at, with other values$"),
    ("against = { dropout = 0.0 }", 'against = { dropout = 0.0 }\nover = "config"',
     r"^claims\[0\]\.over: not a key of a claim of kind \"effect\"$"),
    ("against = { dropout = 0.0 }", 'against = { dropout = 0.0 }\nallow_untrained = ["baseline"]',
     r"^claims\[0\]\.allow_untrained\[0\]: expected one of compare, against\. Received: allow_untrained\[0\]="),
    ("against = { dropout = 0.0 }", 'kind = "level"\neffect = "ratio"', r"^claims\[0\]\.effect: \"ratio\" needs a baseline"),
    ("against = { dropout = 0.0 }", 'against = { dropout = 0.0 }\nallow_untrained = ["compare", "against"]',
     r"^claims\[0\]\.allow_untrained: expected one side \(compare or against\).*Received: "),
    ("against = { dropout = 0.0 }", 'against = { dropout = 0.0 }\nmargin = 0', r"^claims\[0\]\.margin: expected a "
     r"positive"),
    ("against = { dropout = 0.0 }", 'against = { dropout = 0.0 }\ncheck = { metric = "test_loss", expect = "down", '
     'by = 0.1 }', r"^claims\[0\]\.check\.expect: expected one of lower, higher\. Received: "),
    ("against = { dropout = 0.0 }", 'against = { dropout = 0.0 }\ncheck = { metric = "test_loss", expect = "lower" }',
     r"^claims\[0\]\.check\.by: required key is missing$"),
    ("against = { dropout = 0.0 }", 'kind = "level"\ncheck = { metric = "test_loss", expect = "lower", by = 1 }',
     r"^claims\[0\]\.check: a manipulation check needs a claim comparing two arms"),
    # evaluate
    ("[data]", "[evaluate]\nmc_dropout_k = [1, 0]\n\n[data]", r"^evaluate\.mc_dropout_k\[1\]: expected a positive "
     r"integer\. Received: mc_dropout_k\[1\]=0$"),
    ("[data]", "[evaluate]\nmc_dropout = [1]\n\n[data]", r"^evaluate\.mc_dropout: unknown key; did you mean "
     r"evaluate\.mc_dropout_k\?$"),
    ("[data]", '[evaluate]\ndropconnect_inference = ["sampling"]\n\n[data]', r'^evaluate\.dropconnect_inference\[0\]: '
     r'expected one of scaling, gaussian, mc\. Received: dropconnect_inference\[0\]="sampling"$'),
    ("[data]", "[evaluate]\ntarget_train_error = 1.5\n\n[data]", r"^evaluate\.target_train_error: expected a float in "
     r"\(0, 1\]\. Received: target_train_error=1\.5$"),
    # the rest of [study]
    ('description = "Dropout and activation on a small MLP."', "description = 5",
     r"^study\.description: expected a string\. Received: description=5$"),
    ('probes = ["timing", "gradients"]', 'probes = ["timing", "gradients"]\nprobe_every_steps = 0',
     r"^study\.probe_every_steps: expected a positive integer\. Received: probe_every_steps=0$"),
    ('probes = ["timing", "gradients"]', 'probes = ["timing", "gradients"]\nprobe_size = -3',
     r"^study\.probe_size: expected a positive integer\. Received: probe_size=-3$"),
    ('probes = ["timing", "gradients"]', 'probes = ["timing", "gradients"]\npack = "yes"',
     r'^study\.pack: expected true or false\. Received: pack="yes"$'),
    ('probes = ["timing", "gradients"]', 'probes = ["timing", "gradients"]\nbackend = "torch"',
     r'^study\.backend: expected one of tensorflow, jax\. Received: backend="torch"$'),
    # the rest of a claim
    ('id = "C1"', 'id = ""', r'^claims\[0\]\.id: expected a non-empty string\. Received: id=""$'),
    ('statement = "Dropout lowers the test error"', "statement = 3",
     r"^claims\[0\]\.statement: expected a non-empty string\. Received: statement=3$"),
    ('statement = "Dropout lowers the test error"\n', "", r"^claims\[0\]\.statement: required key is missing$"),
    ('expect = "lower"', 'expect = "lower"\nsource = 1', r"^claims\[0\]\.source: expected a string\. Received: source=1$"),
    ('expect = "lower"', 'expect = "lower"\npublished = 1.5',
     r"^claims\[0\]\.published: expected a string\. Received: published=1\.5$"),
    ('expect = "lower"', 'expect = "lower"\napprox = "yes"',
     r'^claims\[0\]\.approx: expected true or false\. Received: approx="yes"$'),
    ('metric = "test_error"', "metric = 5", r"^claims\[0\]\.metric: expected a non-empty string\. Received: metric=5$"),
    ('expect = "lower"', 'expect = "lower"\neffect = "quotient"',
     r'^claims\[0\]\.effect: expected one of difference, ratio\. Received: effect="quotient"$'),
    ('expect = "lower"', 'expect = "lower"\nthreshold = "zero"',
     r'^claims\[0\]\.threshold: expected a finite float\. Received: threshold="zero"$'),
    ('expect = "lower"', 'expect = "lower"\nrule = 7', r"^claims\[0\]\.rule: expected a string\. Received: rule=7$"),
    ("against = { dropout = 0.0 }", "against_metric = 7",
     r"^claims\[0\]\.against_metric: expected a non-empty string\. Received: against_metric=7$"),
    # data set options (checked by the data module, named by key path)
    ("num_samples = 1000", "num_samples = 1005", r"^data\.num_samples: expected a positive multiple of 10 .*"
     r"Received: num_samples=1005$"),
    ("num_samples = 1000", 'num_samples = 1000\nflatten = "no"',
     r"^data\.flatten: expected True or False\. Received: flatten='no'$"),
    ("num_samples = 1000", "num_samples = 1000\nseed = -1", r"^data\.seed: expected an integer in \[0, 4294967295\]\. "
     r"Received: seed=-1$"),
    ('name = "mnist1d"\nvalidation_size = 100\ntrain_size = 500\nnum_samples = 1000', 'name = "mnist"\ndata_dir = 5',
     r"^data\.data_dir: expected a folder path \(str or os\.PathLike\)\. Received: data_dir=5$"),
    # the rest of [train] and [model]
    ("epochs = 5", "epochs = 5\nweight_decay = -0.1",
     r"^train\.weight_decay: expected a non-negative float\. Received: weight_decay=-0\.1$"),
    ("epochs = 5", "epochs = 5\nclipnorm = -1.0", r"^train\.clipnorm: expected a non-negative float\. Received: clipnorm=-1\.0$"),
    ("epochs = 5", "epochs = 5\nagc = -1.0", r"^train\.agc: expected a non-negative float\. Received: agc=-1\.0$"),
    ("epochs = 5", 'epochs = 5\njit_compile = "auto"', r'^train\.jit_compile: expected true or false\. '
     r'Received: jit_compile="auto"$'),
    ("epochs = 5", "epochs = 5\nsteps_per_execution = -1", r"^train\.steps_per_execution: expected a non-negative "
     r"integer\. Received: steps_per_execution=-1$"),
    ("hidden = [32, 32]", "hidden = [32, 0]", r"^model\.hidden: expected a non-empty sequence of positive integers\. "
     r"Received: hidden=\(32, 0\)$"),
]


@pytest.mark.parametrize("old, new, pattern", ERRORS, ids=[e[2][1:40] for e in ERRORS])
def test_validation_errors_name_the_key_path(old, new, pattern):
    assert re.search(pattern, error_of(edited(old, new))), error_of(edited(old, new))


def test_grid_errors():
    text = SAMPLE_TEXT.split("[grid]")[0]
    text = text.replace("compare = { dropout = 0.5 }\nagainst = { dropout = 0.0 }\n", "")
    assert re.search(r"^grid: expected at least one axis\. Received: grid=\{\}$", error_of(text))
    assert re.search(r"^grid: expected at least one axis", error_of(text + "[grid]\n"))


def test_early_stopping_needs_a_validation_set():
    text = edited("validation_size = 100", "validation_size = 0")
    assert spec.loads(text).data.validation_size == 0
    text = edited("plain = {}", 'plain = { early_stopping = { criterion = "gl" } }', text)
    assert re.search(r"^grid\.config\.plain\.early_stopping: needs a validation set", error_of(text))


def test_axis_that_is_both_a_model_and_a_train_key_is_ambiguous(monkeypatch):
    from ablation import zoo

    names = zoo.argument_names
    monkeypatch.setattr(zoo, "argument_names", lambda name: tuple(names(name)) + ("epochs",))
    message = error_of(edited("dropout = [0.0, 0.5]", "dropout = [0.0, 0.5]\nepochs = [1, 2]"))
    assert message == "grid.epochs: ambiguous: both a model argument and a train key"


def test_invalid_toml_names_file_and_line():
    message = error_of(edited("epochs = 5", "epochs = = 5"))
    line = SAMPLE_TEXT.splitlines().index("epochs = 5") + 1
    assert re.search(rf"^sample\.toml, line {line}: invalid TOML: Invalid value \(column \d+\)$", message)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SpecError, match=rf"^{re.escape(str(tmp_path / 'nope.toml'))}: no such study file$"):
        spec.load(tmp_path / "nope.toml")


def test_unknown_profile_lists_available_ones():
    assert error_of(SAMPLE_TEXT, profile="quik") == \
        "profiles.quik: unknown profile; did you mean profiles.quick? available profiles: quick, wide"


def test_errors_from_a_profile_name_the_profile():
    text = edited("train = { epochs = 1 }", "train = { epochs = 0 }")
    assert spec.loads(text).train.epochs == 5  # not selected: only its keys are checked
    assert error_of(text, profile="quick") == \
        "profiles.quick.train.epochs: expected a positive integer. Received: epochs=0"
    text = edited('model = { hidden = [64, 64] }', 'model = { name = "cnn" }')
    assert error_of(text, profile="wide").startswith("model.hidden: unknown key")
    assert error_of(text, profile="wide").endswith("(with profile wide)")


def test_profile_that_shrinks_an_axis_keeps_inherited_claims():
    text = SAMPLE_TEXT + '\n[profiles.tiny]\ngrid = { dropout = [0.5], activation = ["relu"] }\n'
    s = spec.loads(text, profile="tiny")
    assert s.axis("dropout").values == (0.5,) and s.n_trials == 1 * 1 * 3 * 3
    assert (s.claims[0].compare, s.claims[0].against) == ({"dropout": "0.5"}, {"dropout": "0.0"})
    own = text + '[[profiles.tiny.claims]]\nid = "T"\nstatement = "s"\nmetric = "m"\nexpect = "lower"\n' \
        'compare = { dropout = 0.0 }\n'
    assert error_of(own, profile="tiny") == "profiles.tiny.claims[0].compare.dropout: expected one of 0.5. Received: dropout=0.0"


def test_the_file_itself_must_be_valid_under_a_profile():
    text = edited("epochs = 5", "epochs = 0")  # the quick profile sets epochs = 1
    assert error_of(text, profile="quick") == "train.epochs: expected a positive integer. Received: epochs=0"


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


# ----------------------------------------------------------------------------- files


def test_nothing_is_written_to_disk(tmp_path, monkeypatch):
    path = tmp_path / "study.toml"
    path.write_text(SAMPLE_TEXT)
    monkeypatch.chdir(tmp_path)
    before = {(p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")}
    s = spec.load(path, profile="quick")
    s.hash, s.to_dict(), spec.describe_grid(s), [s.resolve(p, seed) for p, seed in s.trials()]
    with pytest.raises(SpecError):
        spec.load(tmp_path / "missing.toml")
    assert {(p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")} == before


def test_find_study_and_list_studies(tmp_path, monkeypatch):
    monkeypatch.setattr(spec.parse, "STUDIES_DIR", tmp_path)
    (tmp_path / "beta.toml").write_text(SAMPLE_TEXT)
    (tmp_path / "alpha.toml").write_text(SAMPLE_TEXT)
    (tmp_path / "notes.txt").write_text("")
    assert spec.list_studies() == ["alpha", "beta"]
    assert spec.find_study("beta") == tmp_path / "beta.toml"
    assert spec.find_study(SAMPLE) == SAMPLE
    with pytest.raises(SpecError, match=r"^gamma: no such study file or bundled study; bundled studies: alpha, beta$"):
        spec.find_study("gamma")


def test_default_studies_dir_is_repo_studies():
    assert spec.STUDIES_DIR == Path(__file__).resolve().parents[1] / "studies"


@pytest.mark.parametrize("name", spec.list_studies())
def test_bundled_studies_parse_with_every_profile(name):
    import tomllib

    path = spec.find_study(name)
    profiles = tomllib.loads(path.read_text()).get("profiles", {})
    for profile in (None, *profiles):
        s = spec.load(path, profile=profile)
        assert s.name and s.n_trials == len(s.trials()) >= 1


def test_claim_against_metric_rules():
    base = """
[study]
name = "c"
[model]
hidden = [8]
[evaluate]
mc_dropout_k = [50]
[grid]
dropout = [0.0, 0.5]
[[claims]]
id = "C5"
statement = "s"
metric = "test_error@mc_dropout:k=50"
compare = { dropout = 0.5 }
expect = "near"
tolerance = 0.01
"""
    c = spec.loads(base + 'against_metric = "test_error"\n').claims[0]
    assert c.against_metric == "test_error" and "of the same run" in spec.test_text(c)
    with pytest.raises(spec.SpecError, match=r"claims\[0\]\.against_metric: set either against"):
        spec.loads(base + 'against_metric = "test_error"\nagainst = { dropout = 0.0 }\n')


_SELECT = """
[study]
name = "sel"
[model]
hidden = [8]
[grid.config]
mn2 = { max_norm = 2.0 }
mn3 = { max_norm = 3.0 }
l2a = { l2 = 1e-4 }
l2b = { l2 = 1e-3 }
[[claims]]
id = "B1"
statement = "s"
metric = "test_error"
expect = "lower"
"""


def test_a_claim_side_may_name_several_levels_to_select_among_on_validation():
    c = spec.loads(_SELECT + 'compare = { config = ["mn2", "mn3"] }\nagainst = { config = "l2a" }\n'
                   'select = "val_error"\n').claims[0]
    assert c.compare == {"config": ("mn2", "mn3")} and c.against == {"config": "l2a"} and c.select == "val_error"
    assert c.candidates() == {"compare": ("config", ("mn2", "mn3"))}
    assert c.chosen({"compare": "mn3"}).compare == {"config": "mn3"}
    assert spec.Claim.from_dict(json.loads(json.dumps(c.to_dict()))) == c  # survives the run's JSON
    assert "config \u2208 {mn2, mn3}" in spec.test_text(c) and "lowest mean val_error" in spec.test_text(c)


@pytest.mark.parametrize("extra, match", [
    ('compare = { config = ["mn2", "mn3"] }\nagainst = { config = "l2a" }\nselect = "test_error"\n',
     r"claims\[0\]\.select: expected one of val_error, best_val_error, val_loss\. Received: select=\"test_error\""),
    ('compare = { config = ["mn2", "mn3"] }\nagainst = { config = "l2a" }\n',
     r"claims\[0\]\.compare\.config: several levels on one side need select"),
    ('compare = { config = ["mn2"] }\nagainst = { config = "l2a" }\nselect = "val_error"\n',
     r"claims\[0\]\.compare\.config: expected a list of two or more levels"),
    ('compare = { config = ["mn2", "mnx"] }\nagainst = { config = "l2a" }\nselect = "val_error"\n',
     r"claims\[0\]\.compare\.config\[1\]: expected one of mn2, mn3, l2a, l2b"),
    ('compare = { config = "mn2" }\nagainst = { config = "l2a" }\nselect = "val_error"\n',
     r"claims\[0\]\.select: expected compare or against to name several levels"),
    ('compare = { config = ["mn2", "mn3"] }\nselect = "val_error"\n',
     r"claims\[0\]\.select: a selection needs a claim comparing two arms"),
])
def test_select_rules(extra, match):
    with pytest.raises(SpecError, match=match):
        spec.loads(_SELECT + extra)


_TARGET = """
[study]
name = "tgt"
[model]
hidden = [8]
[data]
name = "mnist1d"
validation_size = 100
[grid]
batchnorm = [false, "before"]
[[claims]]
id = "D1-steps"
statement = "s"
expect = "lower"
compare = { batchnorm = "before" }
against = { batchnorm = false }
effect = "ratio"
"""


def test_a_claim_on_steps_to_a_validation_error_names_its_target():
    c = spec.loads(_TARGET + 'metric = "steps_to_val_error"\ntarget = 0.05\n').claims[0]
    assert c.target == 0.05 and c.to_dict()["target"] == 0.05
    assert spec.Claim.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert spec.test_text(c).startswith("geometric mean of steps_to_val_error<=0.05(batchnorm=before) / "
                                        "steps_to_val_error<=0.05(batchnorm=false)")
    plain = spec.loads(_TARGET + 'metric = "test_error"\n').claims[0]
    assert "target" not in plain.to_dict()  # claims registered before the field existed hash as they did


@pytest.mark.parametrize("extra, match", [
    ('metric = "steps_to_val_error"\n',
     r"^claims\[0\]\.target: required with metric 'steps_to_val_error': the validation error to reach"),
    ('metric = "test_error"\ntarget = 0.05\n',
     r"^claims\[0\]\.target: only with metric 'steps_to_val_error'\. Received: metric='test_error'$"),
    ('metric = "steps_to_val_error"\ntarget = 5\n',
     r"^claims\[0\]\.target: expected a float in \(0, 1\)\. Received: target=5$"),
])
def test_target_rules(extra, match):
    with pytest.raises(SpecError, match=match):
        spec.loads(_TARGET + extra)
    with pytest.raises(SpecError, match=r"^claim\.target: "):  # made in Python: checked where it is made
        spec.Claim(id="x", statement="s", metric="steps_to_val_error")


# ----------------------------------------------------------------------------- your model, your data

OWN = """
[study]
name = "own"
seeds = [0, 1]

[data]
path = "d.npz"

[model]
factory = "m.py:build"
width = 8

[train]
epochs = 1

[grid]
dropout = [0.0, 0.5]
"""

MODEL_PY = "def build(input_shape, num_classes, width=8, dropout=0.0):\n    raise RuntimeError('not here')\n"


@pytest.fixture
def own_dir(tmp_path):
    """A study folder with a model file, a package, an .npz, an .npz with its own validation set, a CSV."""
    import numpy as np

    (tmp_path / "m.py").write_text(MODEL_PY)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("raise RuntimeError('a package is never imported to be found')\n")
    (tmp_path / "pkg" / "models.py").write_text(MODEL_PY)
    x, y = np.zeros((20, 3), np.float32), np.arange(20) % 2
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    np.savez(tmp_path / "v.npz", x_train=x, y_train=y, x_test=x, y_test=y, x_val=x, y_val=y)
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=y, x_test=x)
    (tmp_path / "t.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    return tmp_path


def own_error(text: str, folder: Path) -> str:
    with pytest.raises(SpecError) as info:
        spec.loads(text, source="own.toml", base_dir=folder)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_own_model_and_data_are_found_hashed_and_not_imported(own_dir):
    s = spec.load(_write(own_dir / "own.toml", OWN))
    f = s.model.factory
    assert (f.reference, f.source, f.function_name) == ("m.py:build", str(own_dir / "m.py"), "build")
    assert f.digest == hashlib.sha256((own_dir / "m.py").read_bytes()).hexdigest()
    assert s.model.name == "m.py:build" and s.model.args == {"width": 8}
    assert s.axis("dropout").section == "model"  # every key that is not a train key is the function's
    assert (s.data.name, s.data.path, s.data.file, s.data.task) == ("file", "d.npz", str(own_dir / "d.npz"),
                                                                     "classification")
    assert s.objective == "test_error" and s.in_memory == []
    text = spec.describe_grid(s)
    assert f"model: function build of {own_dir / 'm.py'} (m.py:build; imported and run when the study runs)" in text
    assert f"data: {own_dir / 'd.npz'} (d.npz); classification" in text
    module = spec.load(_write(own_dir / "own2.toml", OWN.replace('"m.py:build"', '"pkg.models:build"')))
    assert module.model.factory.source == str(own_dir / "pkg" / "models.py")  # pkg/__init__.py never ran
    assert spec.from_dict(json.loads(json.dumps(s.to_dict()))).hash == s.hash


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_own_inputs_are_hashed_by_content_not_place(own_dir, tmp_path_factory):
    s = spec.load(_write(own_dir / "own.toml", OWN))
    moved = tmp_path_factory.mktemp("moved")
    for name in ("m.py", "d.npz", "own.toml"):
        (moved / name).write_bytes((own_dir / name).read_bytes())
    assert spec.load(moved / "own.toml").hash == s.hash
    (moved / "m.py").write_text(MODEL_PY + "# edited\n")
    assert spec.load(moved / "own.toml").hash != s.hash
    import numpy as np

    np.savez(moved / "d.npz", x_train=np.ones((20, 3)), y_train=np.arange(20) % 2, x_test=np.ones((2, 3)),
             y_test=np.arange(2))
    assert spec.load(moved / "own.toml").data.digest != s.data.digest


def test_own_data_variants(own_dir):
    csv = spec.loads(OWN.replace('path = "d.npz"', 'path = "t.csv"\ntarget = "label"\ntest_fraction = 0.25'),
                     base_dir=own_dir)
    assert csv.data.options == {"target": "label", "test_fraction": 0.25}
    val = spec.loads(OWN.replace('"d.npz"', '"v.npz"'), base_dir=own_dir)
    assert val.data.given_validation and val.data.has_validation and val.objective == "val_error"
    reg = spec.loads(OWN.replace('path = "d.npz"', 'path = "t.csv"\ntarget = "b"\ntask = "regression"'),
                     base_dir=own_dir)
    assert reg.task == "regression" and reg.objective == "test_rmse"
    keras_set = spec.loads(OWN.replace('path = "d.npz"', 'name = "boston_housing"'), base_dir=own_dir)
    assert keras_set.task == "regression"  # keras' housing sets are regression sets


OWN_ERRORS = [
    ('path = "d.npz"', 'path = "nope.npz"', r'^data\.path: no such file .*nope\.npz \(a relative path starts at the '
     r"study file's folder, .*\)\. Received: path=\"nope\.npz\"$"),
    ('path = "d.npz"', 'path = "d.txt"', r'^data\.path: expected a \.npz, \.csv or \.parquet file\. Received: '
     r'path="d\.txt"$'),
    ('path = "d.npz"', 'path = "d.npz"\nname = "digits"', r"^data\.path: set either name \(a data set\) or path"),
    ('path = "d.npz"', 'path = "bad.npz"', r"^data\.path: bad\.npz: missing array\(s\) y_test; a \.npz data set "
     r"holds x_train, y_train, x_test, y_test \(and optionally x_val, y_val\)\. It holds: x_train, y_train, x_test$"),
    ('path = "d.npz"', 'path = "t.csv"', r"^data\.target: required key is missing for a CSV file \(the name of the "
     r"target column\)$"),
    ('path = "d.npz"', 'path = "t.csv"\ntarget = "lable"', r"^data\.target: no column 'lable' in t\.csv; its "
     r"columns: a, b, label$"),
    ('path = "d.npz"', 'path = "t.csv"\ntarget = "label"\nfeatures = ["a", "c"]', r"^data\.features: no column 'c' "
     r"in t\.csv; its columns: a, b, label$"),
    ('path = "d.npz"', 'path = "t.csv"\ntarget = "label"\ntest_fraction = 0', r"^data\.test_fraction: expected a "
     r"float in \(0, 1\)\. Received: test_fraction=0$"),
    ('path = "d.npz"', 'path = "d.npz"\ntest_fraction = 0.2', r"^data\.test_fraction: unknown key; expected one of "),
    ('path = "d.npz"', 'path = "d.npz"\ntask = "ranking"', r'^data\.task: expected one of classification, '
     r'regression\. Received: task="ranking"$'),
    ('path = "d.npz"', 'name = "digits"\ntask = "regression"', r"^data\.task: expected 'classification' \(digits is a "
     r"classification data set\)\. Received: task='regression'$"),
    ('path = "d.npz"', 'path = "v.npz"\nvalidation_size = 5', r"^data\.validation_size: the data brings its own "
     r"validation set \(x_val, y_val\); leave validation_size out\. Received: validation_size=5$"),
    ('path = "d.npz"', 'name = "tfds:beans"', r"^data\.name: tfds:beans needs tensorflow_datasets, which is not "
     r"installed \(pip install tensorflow-datasets\)\. Received: name=\"tfds:beans\"$"),
    ('path = "d.npz"', 'name = "imdb"', r"^data\.name: keras\.datasets\.imdb holds variable-length sequences of word "
     r"indices, not arrays of one shape; save it as arrays in a \.npz file and set data\.path"),
    ('path = "d.npz"', 'name = "d.npz"', r"^data\.name: a file goes in data\.path, not data\.name"),
    ('path = "d.npz"', "arrays = [1, 2]", r"^data\.arrays: expected arrays given from Python"),
    ('path = "d.npz"', 'path = "d.npz"\ntask = "regression"\n[evaluate]\nmc_dropout_k = [5]',
     r'^evaluate\.mc_dropout_k: this evaluation measures a classification error; not available with data\.task = '
     r'"regression"$'),
    ('seeds = [0, 1]', 'seeds = [0, 1]\nprobes = ["speed"]', None),  # classification: fine
    ('path = "d.npz"', 'path = "d.npz"\ntask = "regression"', None),
    ('seeds = [0, 1]\n', 'seeds = [0, 1]\nprobes = ["speed"]\n[data]\npath = "d.npz"\ntask = "regression"\n',
     r"^study\.probes: the speed probe measures a classification error"),
    ('factory = "m.py:build"', 'factory = "build"', r'^model\.factory: expected "package\.module:function" or '
     r'"path/to/file\.py:function"\. Received: factory="build"$'),
    ('factory = "m.py:build"', 'factory = "m.py:1st"', r"^model\.factory: expected a function name after the colon"),
    ('factory = "m.py:build"', 'factory = "nope.py:build"', r"^model\.factory: no such file .*nope\.py \(a relative "
     r"path starts at .*\)\. Received: factory=\"nope\.py:build\"$"),
    ('factory = "m.py:build"', 'factory = "nopkg.models:build"', r"^model\.factory: no module 'nopkg\.models' on the "
     r"import path \(the study's folder and the current folder: "),
    ('factory = "m.py:build"', 'factory = "m.py:build"\nname = "mlp"', r"^model\.name: set either name \(a zoo "
     r"model\) or factory \(your function\), not both$"),
    ("width = 8", "width = 8\ninput_shape = [3]", r"^model\.input_shape: input_shape is passed by the runner"),
    ("factory = ", "factory = 3\nx = ", r"^model\.factory: expected \"package\.module:function\""),
]


@pytest.mark.parametrize("old, new, pattern", OWN_ERRORS, ids=[(e[2] or "ok")[1:40] for e in OWN_ERRORS])
def test_own_inputs_errors_name_the_key_path(own_dir, old, new, pattern):
    text = edited(old, new, OWN)
    if old == 'seeds = [0, 1]\n':  # this edit moves [data] above: drop the old one
        text = text.replace('\n[data]\npath = "d.npz"\n\n', "\n", 1)
    if pattern is None:
        spec.loads(text, base_dir=own_dir)
        return
    message = own_error(text, own_dir)
    assert re.search(pattern, message), message


def test_doc_example_of_your_model_and_data_parses(tmp_path):
    section = INTERNALS.read_text().split("## 2.")[1].split("## 3.")[0]
    text = re.findall(r"```toml\n(.*?)```", section, re.S)[1]
    (tmp_path / "houses.csv").write_text("rooms,age,price\n" + "".join(f"{i},{i % 7},{2.5 * i}\n" for i in range(30)))
    (tmp_path / "my_model.py").write_text("def build(input_shape, num_classes, width=8, dropout=0.0):\n    pass\n")
    s = spec.loads('[study]\nname = "doc"\n' + text, base_dir=tmp_path)
    assert (s.task, s.data.path, s.model.factory.reference) == ("regression", "houses.csv", "my_model.py:build")
    assert s.data.options == {"target": "price", "features": ("rooms", "age"), "test_fraction": 0.2,
                              "standardize": True}
    assert [a.section for a in s.grid] == ["model", "data"] and s.objective == "val_rmse"


def test_a_builder_argument_without_default_is_required():
    from conftest import TINY_STUDY

    text = TINY_STUDY.replace("hidden = [16, 16]\n", "")
    with pytest.raises(spec.SpecError, match=r"^model\.hidden: required key is missing: mlp\(\) needs hidden"):
        spec.loads(text)
    assert spec.loads(text.replace('dropout = [0.0, 0.5]', 'dropout = [0.0, 0.5]\nhidden = [[8], [8, 8]]')).n_trials == 16
    text = text.split("[[claims]]")[0] + "[data]" + text.split("[data]")[1]  # no claim on the dropout axis
    recipes = '\n[grid.config]\na = { hidden = [8] }\nb = { hidden = [8, 8], dropout = 0.5 }\n'
    assert spec.loads(text.replace('dropout = [0.0, 0.5]\n', '') + recipes).n_trials == 8
    with pytest.raises(spec.SpecError, match=r"^model\.hidden: required key is missing"):
        spec.loads(text.replace('dropout = [0.0, 0.5]\n', '') + recipes.replace("a = { hidden = [8] }",
                                                                                "a = { dropout = 0.1 }"))


CLAIM = '\n[[claims]]\nid = "C"\nstatement = "s"\nmetric = "test_error"\nexpect = "lower"\n' \
    'compare = { dropout = 0.5 }\nagainst = { dropout = 0.0 }\n'


def test_a_claim_naming_a_misspelled_model_function_axis_names_the_grid_key_too(own_dir):
    # a model function's arguments are checked when the study runs: the grid key may be the typo
    text = OWN.replace("dropout = [0.0, 0.5]", "dropuot = [0.0, 0.5]") + CLAIM
    assert own_error(text, own_dir) == ("claims[0].compare.dropout: unknown grid axis; the grid has 'dropuot': if "
                                        "grid.dropuot is misspelled, rename it to 'dropout', else rename this key "
                                        "to 'dropuot'")
    # a zoo model's axes are checked names: the claim is the typo (test_validation_errors_name_the_key_path)


def test_a_claim_value_of_another_type_than_the_grid_shows_both_types(own_dir):
    text = OWN.replace("dropout = [0.0, 0.5]", 'dropout = ["0.0", "0.5"]') + CLAIM
    assert own_error(text, own_dir) == ('claims[0].compare.dropout: expected one of "0.0", "0.5" (grid.dropout holds '
                                        'str values). Received: dropout=0.5 (float)')


def test_claim_labels_parse_and_leave_the_claim_registered():
    """``sanity`` and ``weaker_than_paper`` say how far a claim counts, not what it tests: a labelled claim
    equals its unlabelled registration (ablation.spec.preregistration compares claims with ==), and the labels
    survive the JSON round trip of run.json."""
    from ablation.spec import preregistration

    labelled = spec.loads(SAMPLE_TEXT.replace('expect = "lower"', 'expect = "lower"\nsanity = "true by symmetry"\n'
                                              'weaker_than_paper = "tests lower, not small"', 1))
    plain = spec.loads(SAMPLE_TEXT)
    c, p = labelled.claims[0], plain.claims[0]
    assert (c.sanity, c.weaker_than_paper, p.sanity, p.weaker_than_paper) == (
        "true by symmetry", "tests lower, not small", "", "")
    assert c == p and spec.Claim.from_dict(json.loads(json.dumps(c.to_dict()))).sanity == "true by symmetry"
    assert [s.status for s in preregistration.compare([p], [c])] == ["registered"]
    moved = dataclasses.replace(c, threshold=0.5)                        # a changed test is still post hoc
    assert [s.status for s in preregistration.compare([p], [moved])] == ["changed after the run"]
