"""The ablation command: list, dry run, and one-line errors with exit status 2."""

from __future__ import annotations

import pytest

from ablation.cli import main


def test_list(capsys):
    assert main(["list", "models"]) == 0
    models = capsys.readouterr().out.split()
    assert "mlp" in models and "srivastava2014_mnist" in models
    assert main(["list", "datasets"]) == 0
    assert set(capsys.readouterr().out.split()) == {"mnist", "fashion_mnist", "mnist1d", "digits"}
    assert main(["list", "studies"]) == 0
    assert "quickstart" in capsys.readouterr().out.split()


def test_dry_run_prints_grid_and_count(capsys, tmp_path):
    assert main(["run", "quickstart", "--dry-run", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "18 trials" in out and "activation" in out and "dropout" in out
    assert not (tmp_path / "runs").exists()
    assert main(["run", "quickstart", "--profile", "quick", "--dry-run"]) == 0
    assert "12 trials" in capsys.readouterr().out


@pytest.mark.parametrize("argv, text", [
    (["run", "no_such_study"], "no_such_study"),
    (["run", "quickstart", "--profile", "nope"], "nope"),
    (["report", "/nonexistent/run"], "run_dir"),
    (["run", "quickstart", "--workers", "0"], "workers"),
])
def test_errors_are_one_line_with_exit_2(capsys, tmp_path, argv, text):
    assert main(argv + (["--out", str(tmp_path / "r")] if argv[0] == "run" else [])) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and text in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["list", "widgets"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_a_bug_is_not_disguised_as_bad_input(monkeypatch):
    import ablation.spec

    def broken(*args, **kwargs):
        raise ValueError("The truth value of a Series is ambiguous")

    monkeypatch.setattr(ablation.spec, "list_studies", broken)
    with pytest.raises(ValueError, match="ambiguous"):
        main(["list", "studies"])


# ----------------------------------------------------------------------------- your model, your data

OWN_MODEL = '''
import keras

def build(input_shape, num_classes, width=16, dropout=0.0):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dense(width, activation="relu")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
'''

OWN_STUDY = """
[study]
name = "own"

[data]
path = "d.npz"

[model]
factory = "mymodel.py:build"

[train]
epochs = 1

[grid]
dropout = [0.0, 0.5]
"""


@pytest.fixture
def own(tmp_path):
    import numpy as np

    (tmp_path / "mymodel.py").write_text("open(__file__ + '.imported', 'w').close()\n" + OWN_MODEL)
    x = np.random.default_rng(0).random((30, 4), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(30) % 3, x_test=x[:6], y_test=np.arange(6) % 3)
    (tmp_path / "t.csv").write_text("a,city,label\n" + "".join(f"{i},c{i % 2},{i % 2}\n" for i in range(20)))
    return tmp_path


def test_dry_run_names_your_file_and_function_before_anything_is_imported(own, capsys):
    (own / "study.toml").write_text(OWN_STUDY)
    assert main(["run", str(own / "study.toml"), "--dry-run", "--out", str(own / "runs")]) == 0
    out = capsys.readouterr().out
    assert f"model: function build of {own / 'mymodel.py'} (mymodel.py:build; imported and run when the study runs)" \
        in out and f"data: {own / 'd.npz'} (d.npz); classification" in out
    assert not (own / "mymodel.py.imported").exists() and not (own / "runs").exists()


@pytest.mark.parametrize("edit, message", [
    (("dropout = [0.0, 0.5]", "dropout = [0.0, 0.5]\ncolour = [1, 2]"),
     "grid.colour: unknown argument of build() of mymodel.py; its parameters: input_shape, num_classes, width, dropout"),
    (("[train]", "depth = 3\n[train]"), "model.depth: unknown argument of build() of mymodel.py"),
    (('factory = "mymodel.py:build"', 'factory = "mymodel:biuld"'), "model.factory: "),
    (('factory = "mymodel.py:build"', 'factory = "mymodel.py"'), 'model.factory: expected "package.module:function"'),
    (('path = "d.npz"', 'path = "missing.npz"'), "data.path: no such file"),
    (('path = "d.npz"', 'path = "t.csv"\ntarget = "label"'),
     "data.path: t.csv: feature column(s) 'city'"),
    (('path = "d.npz"', 'name = "tfds:beans"'), "data.name: tfds:beans needs tensorflow_datasets"),
    (('path = "d.npz"', 'name = "cifar10"'), "data.cifar10: Could not load cifar10 with keras.datasets.cifar10"),
])
def test_bad_own_inputs_exit_2_with_one_line_and_write_nothing(own, capsys, monkeypatch, edit, message):
    import keras

    def offline():
        raise OSError("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)  # the suite never downloads
    (own / "study.toml").write_text(OWN_STUDY.replace(*edit))
    out = own / "runs"
    status = main(["run", str(own / "study.toml"), "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
