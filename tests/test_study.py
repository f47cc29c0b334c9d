"""Your model and your data end to end: a study file from the CLI and the same study from Python
(``ablation.Study`` / ``ablation.run``), resume, failed trials, and regression with a claim on RMSE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ablation
from ablation.stats import records
from ablation.engine import runner
from ablation import spec

MODEL = '''
import inspect

import keras


def build(input_shape, num_classes, width=16, dropout=0.0):
    """A user's model: the study passes width and dropout; input_shape and num_classes come from the data."""
    if width == 13 and not any(frame.function == "check_recipes" for frame in inspect.stack()):
        raise RuntimeError("thirteen units are unlucky")  # in the trials only: the checks before the run pass
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(width, activation="relu")(x)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
'''

STUDY = """
[study]
name = "own"
seeds = [0, 1]

[[claims]]
id = "O1"
statement = "dropout lowers the test error"
metric = "test_error"
compare = { dropout = 0.5 }
against = { dropout = 0.0 }
expect = "lower"

[data]
path = "digits.npz"
validation_size = 100
train_size = 300

[model]
factory = "mymodel.py:build"

[train]
epochs = 1
batch_size = 50
optimizer = "adam"
learning_rate = 0.01
jit_compile = false

[grid]
dropout = [0.0, 0.5]
width = [16, 13]
"""


def digits_arrays() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.images / 16.0).astype(np.float32)[..., None], d.target
    return {"x_train": x[:1400], "y_train": y[:1400], "x_test": x[1400:], "y_test": y[1400:]}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "ablation.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def own(tmp_path_factory) -> dict:
    """A study folder outside the package (model file, .npz, study file), run once from the CLI."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "mymodel.py").write_text(MODEL)
    np.savez(folder / "digits.npz", **digits_arrays())
    (folder / "study.toml").write_text(STUDY)
    out = tmp_path_factory.mktemp("runs")
    proc = cli("run", str(folder / "study.toml"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = runner.run_dir_of(spec.load(folder / "study.toml"), out)
    return {"folder": folder, "out": out, "run_dir": run_dir, "proc": proc}


def test_cli_run_records_and_reports_your_model_on_your_data(own):
    recs = records.load(own["run_dir"])
    t = recs.trials
    assert len(t) == 8 and sorted(t["status"].value_counts().items()) == [("completed", 4), ("failed", 4)]
    ok = t[t["status"] == "completed"]
    assert set(ok["width"]) == {16} and (ok["train_size"] == 300).all() and (ok["num_classes"] == 10).all()
    assert (ok["test_error"] < 0.9).all() and {"val_error", "train_error"} <= set(t.columns)
    assert (own["run_dir"] / "report.html").is_file() and "O1" in (own["run_dir"] / "report.html").read_text()
    assert recs.spec.model.factory.reference == "mymodel.py:build" and recs.spec.data.path == "digits.npz"


def test_a_function_that_raises_in_a_trial_is_a_failed_trial_with_its_traceback(own):
    t = records.load(own["run_dir"]).trials
    failed = t[t["status"] == "failed"]
    assert set(failed["width"]) == {13}
    assert (failed["reason"] == "RuntimeError: thirteen units are unlucky").all()
    assert "4 of 8 trials failed; the first, trial_" in own["proc"].stdout
    result = json.loads((own["run_dir"] / f"trial_{failed['trial_id'].iloc[0]}" / "result.json").read_text())
    assert "mymodel.py" in result["traceback"] and 'raise RuntimeError("thirteen units are unlucky")' in \
        result["traceback"]


def test_the_same_study_from_python_resumes_the_cli_run(own, monkeypatch):
    monkeypatch.chdir(own["folder"])
    study = ablation.Study("own", model="mymodel.py:build", data="digits.npz", validation_size=100, train_size=300,
                           grid={"dropout": [0.0, 0.5], "width": [16, 13]}, seeds=[0, 1],
                           train={"epochs": 1, "batch_size": 50, "optimizer": "adam", "learning_rate": 0.01,
                                  "jit_compile": False},
                           claims=[{"id": "O1", "statement": "dropout lowers the test error", "metric": "test_error",
                                    "compare": {"dropout": 0.5}, "against": {"dropout": 0.0}, "expect": "lower"}])
    before = {p: p.stat().st_mtime_ns for p in own["run_dir"].glob("trial_*/result.json")}
    result = ablation.run(study, out=own["out"], progress=False, report=False)
    assert result.run_dir == own["run_dir"]  # same hash: nothing retrained
    assert {p: p.stat().st_mtime_ns for p in own["run_dir"].glob("trial_*/result.json")} == before
    v = result.verdicts.iloc[0]
    # every width=13 run failed, so no seed has every run the claim compares (it pools width): n is 0, and the
    # guard names the arms that never trained
    assert (v["id"], v["n"]) == ("O1", 0) and v["verdict"] == "arm did not train"
    assert {"trials", "curves", "probes"} <= {n for n in dir(result) if not n.startswith("_")}
    shown = result._repr_html_()
    assert "<iframe srcdoc=" in shown and "O1" in result.html()
    assert shown.index("<b>O1</b>") < shown.index("<details>")  # the verdicts lead, the report is folded
    assert "dropout=[0.0, 0.5]" not in study._repr_html_() and "dropout" in study._repr_html_()
    assert "<b>O1</b>" in study._repr_html_() and f"{study.n_trials} trials" in study._repr_html_()


def test_a_function_object_and_arrays_give_the_same_records(own, tmp_path):
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("mymodel", own["folder"] / "mymodel.py")
    module = importlib.util.module_from_spec(module_spec)  # the user's module, imported as a notebook would
    module_spec.loader.exec_module(module)
    build = module.build
    a = digits_arrays()
    study = ablation.Study("own", model=build, data=(a["x_train"], a["y_train"], a["x_test"], a["y_test"]),
                           validation_size=100, train_size=300, grid={"dropout": [0.0, 0.5], "width": [16, 13]},
                           seeds=[0, 1], train={"epochs": 1, "batch_size": 50, "optimizer": "adam",
                                                "learning_rate": 0.01, "jit_compile": False})
    assert study.in_memory and "# model: the function mymodel:build given from Python" in study.source_text
    with pytest.raises(spec.SpecError, match=r"^workers: .*exist only in this Python process"):
        ablation.run(study, out=tmp_path, workers=2)
    assert not list(tmp_path.iterdir())  # refused before anything was written
    mine = ablation.run(study, out=tmp_path, progress=False).trials
    theirs = records.load(own["run_dir"]).trials
    key = ["dropout", "width", "seed"]
    mine, theirs = mine.sort_values(key).reset_index(drop=True), theirs.sort_values(key).reset_index(drop=True)
    assert list(mine["status"]) == list(theirs["status"]) and list(mine.columns) == list(theirs.columns)
    ok = mine["status"] == "completed"
    for metric in ("test_error", "test_loss", "val_loss", "train_loss"):
        np.testing.assert_allclose(mine.loc[ok, metric], theirs.loc[ok, metric], rtol=1e-3, err_msg=metric)
    run_dir = runner.run_dir_of(study, tmp_path)
    assert (run_dir / "study.toml").read_text() == study.source_text  # the study as TOML, objects as comments


# ----------------------------------------------------------------------------- regression

REGRESSION = """
[study]
name = "reg"
seeds = [0, 1, 2, 3, 4]
probes = ["gradients"]          # differentiates the mean squared error

[[claims]]
id = "R1"
statement = "a sensible learning rate lowers the test RMSE"
metric = "test_rmse"
compare = { learning_rate = 0.05 }
against = { learning_rate = 1e-7 }
expect = "lower"

[[claims]]
id = "R2"
statement = "the same, knowing the baseline arm does not train"
metric = "test_rmse"
compare = { learning_rate = 0.05 }
against = { learning_rate = 1e-7 }
expect = "lower"
allow_untrained = ["against"]

[data]
path = "houses.csv"
target = "price"
task = "regression"
standardize = true
validation_size = 40

[model]
name = "mlp"
hidden = [16]

[train]
epochs = 4
batch_size = 32
optimizer = "adam"
jit_compile = false

[grid]
learning_rate = [0.05, 1e-7]
"""


def test_regression_end_to_end_with_a_claim_on_rmse(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(size=400)
    pd.DataFrame({"rooms": a, "age": b, "price": 3 * a - 2 * b + 0.1 * rng.normal(size=400)}).to_csv(
        tmp_path / "houses.csv", index=False)
    (tmp_path / "reg.toml").write_text(REGRESSION)
    s = spec.load(tmp_path / "reg.toml")
    assert s.task == "regression" and s.objective == "val_rmse"
    result = ablation.run(s, out=tmp_path / "runs", progress=False)
    t = result.trials
    assert (t["status"] == "completed").all() and (t["task"] == "regression").all()
    for col in ("test_loss", "test_rmse", "test_mae", "train_rmse", "val_rmse", "best_val_rmse", "baseline_test_rmse"):
        assert col in t.columns, col
    assert "test_error" not in t.columns and t["num_classes"].isna().all()
    assert np.allclose(t["test_rmse"], np.sqrt(t["test_loss"]))
    trained = t[t["learning_rate"] == 0.05]
    assert (trained["test_rmse"] < 0.5 * trained["baseline_test_rmse"]).all()
    assert set(result.curves["metric"]) == {"loss", "rmse", "mae"}
    grads = result.probes[result.probes["probe"] == "gradients"]
    assert len(grads) and np.isfinite(grads["value"].astype(float)).all() and (grads["value"].astype(float) > 0).any()
    v = result.verdicts.set_index("id")
    assert v.loc["R1", "verdict"] == "arm did not train" and "learning_rate=1e-07: test RMSE" in v.loc["R1", "reason"]
    assert v.loc["R2", "verdict"] == "supported"
    html = (result.run_dir / "report.html").read_text()
    assert "test_rmse" in html and "R2" in html


def test_python_values_become_study_file_values(tmp_path, monkeypatch):
    x = np.zeros((10, 2), np.float32)
    s = ablation.Study("py", model="mlp", model_args={"hidden": (8,)}, data=(x, np.arange(10) % 2, x, np.arange(10) % 2),
                       grid={"dropout": np.array([0.0, 0.5]), "train_size": range(4, 6)}, seeds=range(2),
                       train={"learning_rate": np.float64(0.1)})
    assert s.axis("dropout").labels == ("0.0", "0.5") and s.axis("train_size").values == (4, 5)
    assert s.seeds == (0, 1) and s.model.args == {"hidden": (8,)} and type(s.train.learning_rate) is float
    with pytest.raises(spec.SpecError, match=r"^grid\.dropuot: unknown key; did you mean grid\.dropout\?$"):
        ablation.Study("py", model="mlp", data="digits", grid={"dropuot": [0.1]})
    with pytest.raises(spec.SpecError, match=r"^data: expected arrays \(x_train, y_train, x_test, y_test\)"):
        ablation.Study("py", model="mlp", data=(x, x), grid={"dropout": [0.1]})
    with pytest.raises(spec.SpecError, match=r"^data\.y_test: required with the other arrays"):
        ablation.Study("py", model="mlp", data={"x_train": x, "y_train": x, "x_test": x}, grid={"dropout": [0.1]})
    _write_csv(tmp_path)
    monkeypatch.chdir(tmp_path)  # a relative path starts at the current folder from Python
    csv = ablation.Study("py", model="mlp", model_args={"hidden": [8]}, data={"path": "t.csv", "target": "y"},
                         grid={"dropout": [0.1]})
    assert csv.data.options == {"target": "y"} and f'path = "{tmp_path / "t.csv"}"' in csv.source_text
    monkeypatch.chdir(tmp_path.parent)
    assert spec.loads(csv.source_text).hash == csv.hash  # the run folder's study.toml is this study, from anywhere
    binary = ablation.run(csv, out=tmp_path / "runs", progress=False, report=False).trials  # 2 classes, 20 epochs
    assert list(binary["status"]) == ["completed"] and list(binary["num_classes"]) == [2]


def _write_csv(folder: Path) -> Path:
    (folder / "t.csv").write_text("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    return folder / "t.csv"


def test_layer_probes_watch_a_convolutional_model_of_your_own(tmp_path):
    """The example's CNN names its layers like the zoo's: the layer probes see 4-D conv activations too."""
    import importlib.util

    example = Path(__file__).resolve().parents[1] / "examples" / "own_model" / "model.py"
    module_spec = importlib.util.spec_from_file_location("own_model_example", example)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    a = digits_arrays()
    study = ablation.Study("conv", model=module.small_cnn, data=a, train_size=100, grid={"batchnorm": [False, True]},
                           probes=["activations", "gradients", "weights", "covariate_shift"], probe_size=64,
                           train={"epochs": 1, "batch_size": 50, "optimizer": "adam", "jit_compile": False})
    result = ablation.run(study, out=tmp_path, progress=False, report=False)
    assert (result.trials["status"] == "completed").all(), result.trials["reason"].tolist()
    layers = result.probes.groupby("probe")["layer"].unique().to_dict()
    assert {"act_1", "act_2"} <= set(layers["activations"]) and {"act_1", "logits"} <= set(layers["gradients"])
    assert {"dense_2", "logits"} <= set(layers["weights"]) and len(layers["covariate_shift"])


def test_the_python_api_starts_the_backend_the_command_line_would(monkeypatch):
    """In a fresh process with no KERAS_BACKEND, ablation.run chooses as the CLI does (JAX when installed)
    and starts it quietly."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = ("from ablation.engine import study; from ablation.base import backend; "
            "name = study.start_backend(None); import keras; "
            "print(name, keras.backend.backend(), backend.default())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, running, default = proc.stdout.split()
    assert name == running == default
    assert "cuInit" not in proc.stderr and "oneDNN" not in proc.stderr
