"""The ablation command: list, dry run, and one-line errors with exit status 2."""

from __future__ import annotations

import os

import pytest

from ablation.cli import main


def test_list(capsys):
    assert main(["list", "models"]) == 0
    models = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "mlp" in models and "srivastava2014_mnist" in models
    assert models["cnn"].split(None, 1)[1] == "Build a small CNN that outputs logits"
    assert main(["list", "datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:4]] == ["digits", "fashion_mnist", "mnist", "mnist1d"]
    assert "(784,) (flattened, for MLPs); (28, 28, 1) with flatten = false in [data]" in lines[2]
    assert any(line.startswith("cifar10 ") and "keras.datasets" in line for line in lines)
    assert lines[-2].startswith("tfds:<name>") and "tensorflow_datasets" in lines[-2]
    assert lines[-1].split(None, 2)[2].startswith('[data] path = "file.npz"')
    assert main(["list", "studies"]) == 0
    studies = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert studies["quickstart"].split(None, 1)[1].startswith("[profiles: cpu, full] The MNIST-1D reference MLP")


def test_list_shapes_are_the_loaders_shapes():
    from ablation import cli, data

    for name in ("digits", "mnist1d"):
        flat, image = cli.BUILTIN_SHAPES[name]
        assert (data.load(name).input_shape, data.load(name, flatten=False).input_shape) == (flat, image)
    assert set(cli.BUILTIN_SHAPES) == set(data.list_datasets())


def test_list_without_what_names_the_choices(capsys):
    assert main(["list"]) == 2
    assert capsys.readouterr().err == ("error: argument what: expected one of models, datasets, studies (e.g. "
                                       "'ablation list studies'). Received: nothing\n")


def test_profile_help_names_the_bundled_profiles(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "the bundled studies have cpu, full" in " ".join(capsys.readouterr().out.split())


def test_dry_run_prints_grid_and_count(capsys, tmp_path):
    assert main(["run", "quickstart", "--dry-run", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "30 trials" in out and "activation" in out and "dropout" in out
    assert not (tmp_path / "runs").exists()
    assert main(["run", "quickstart", "--profile", "full", "--dry-run"]) == 0
    assert "60 trials" in capsys.readouterr().out


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


def test_version_comes_from_the_package_metadata(capsys):
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"ablation {pyproject['project']['version']}"


def test_until_decided_options_need_until_decided(capsys):
    assert main(["run", "quickstart", "--max-seeds", "10"]) == 2
    assert capsys.readouterr().err.strip() == "error: --max-seeds and --seeds-per-look go with --until-decided"
    assert main(["run", "quickstart", "--until-decided", "--seeds-per-look", "0"]) == 2
    assert "--seeds-per-look: expected a positive integer" in capsys.readouterr().err


def test_a_bug_is_not_disguised_as_bad_input(monkeypatch):
    import ablation.spec

    def broken(*args, **kwargs):
        raise ValueError("The truth value of a Series is ambiguous")

    monkeypatch.setattr(ablation.spec, "list_studies", broken)
    with pytest.raises(ValueError, match="ambiguous"):
        main(["list", "studies"])


# ----------------------------------------------------------------------------- bad input, before anything runs
# Every flag and path argument: one line "error: ...", exit status 2, nothing written.

import os  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

from conftest import TINY_STUDY, edit_study, read_only  # noqa: E402


def call(argv: list[str], capsys) -> tuple[int, str]:
    """Exit status and stderr of ``ablation ARGV`` run in this process (argparse errors included)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def tree(folder: Path) -> set[tuple[str, int]]:
    return {(str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture
def study(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_STUDY)
    return path


def assert_refused(capsys, argv: list[str], text: str, folder: Path) -> None:
    before = tree(folder)
    code, err = call(argv, capsys)
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert text in err, err
    assert tree(folder) == before  # nothing written, nothing touched


@pytest.mark.parametrize("args, text", [
    (["--workers", "0"], "argument --workers: expected a positive integer. Received: 0"),
    (["--workers", "two"], "argument --workers: invalid int value: 'two'"),
    (["--pack-size", "0"], "argument --pack-size: expected a positive integer. Received: 0"),
    (["--pack-size", "3", "--no-pack"], "argument --no-pack: not allowed with argument --pack-size"),
    (["--xla", "--no-xla"], "argument --no-xla: not allowed with argument --xla"),
    (["--backend", "torch"], "argument --backend: invalid choice: 'torch'"),
    (["--precision", "float8"], "argument --precision: invalid choice: 'float8'"),
    (["--profile", "nope"], "profiles.nope: unknown profile"),
    (["--report", "r.html", "--no-report"], "argument --no-report: not allowed with argument --report"),
    (["--port", "70000"], "argument --port: expected an integer in [0, 65535]. Received: 70000"),
    (["--host", "no-such-host.invalid", "--token", "t" * 16],
     "Invalid value for argument 'host': expected an address or host name of this machine. "
     "Received: host='no-such-host.invalid'"),
    (["--host", "203.0.113.7", "--token", "t" * 16],
     "Invalid value for argument 'host': expected an address of this machine to listen on. "
     "Received: host='203.0.113.7'"),
    (["--workers", "2", "--quiet", "--dry-run", "--nope"], "unrecognized arguments: --nope"),
])
def test_every_run_flag_refuses_bad_values(capsys, study, tmp_path, args, text):
    assert_refused(capsys, ["run", str(study), "--out", str(tmp_path / "runs"), *args], text, tmp_path)


def test_a_port_in_use_is_refused(capsys, study, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert_refused(capsys, ["run", str(study), "--out", str(tmp_path / "runs"), "--port", str(port)],
                       f"Invalid value for argument 'port': expected a free port on 127.0.0.1. Received: port={port}",
                       tmp_path)


def test_study_paths(capsys, tmp_path):
    assert_refused(capsys, ["run", str(tmp_path / "none.toml"), "--out", str(tmp_path / "r")],
                   "none.toml: no such study file", tmp_path)
    (tmp_path / "dir.toml").mkdir()
    assert_refused(capsys, ["run", str(tmp_path / "dir.toml"), "--out", str(tmp_path / "r")],
                   "dir.toml: is a folder; expected a study file", tmp_path)


def test_out_paths(capsys, study, tmp_path):
    (tmp_path / "afile").write_text("")
    assert_refused(capsys, ["run", str(study), "--out", str(tmp_path / "afile")],
                   "Invalid value for argument 'out': expected a folder for run folders (it is a file)", tmp_path)
    assert_refused(capsys, ["run", str(study), "--out", str(tmp_path / "afile" / "runs")],
                   f"expected a folder for run folders ({tmp_path / 'afile'} is a file)", tmp_path)
    run_dir = tmp_path / "runs" / "other-12345678"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.json").write_text("{}")
    (run_dir / "run.json").write_text("{}")
    assert_refused(capsys, ["run", str(study), "--out", str(run_dir / "inner")],
                   f"expected a folder outside any run folder ({run_dir} is a run folder)", tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    with read_only(locked):
        assert_refused(capsys, ["run", str(study), "--out", str(locked / "runs")],
                       f"expected a folder this process can write ({locked} is not writable)", tmp_path)


def test_report_paths(capsys, study, tmp_path):
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    out = ["run", str(study), "--out", str(tmp_path / "runs")]
    assert_refused(capsys, out + ["--report", str(tmp_path / "adir")],
                   "Invalid value for argument 'report': expected a file path (it is a folder)", tmp_path)
    assert_refused(capsys, out + ["--report", str(tmp_path / "afile" / "r.html")],
                   f"expected a path inside a folder ({tmp_path / 'afile'} is a file)", tmp_path)
    with read_only(tmp_path / "adir"):
        assert_refused(capsys, out + ["--report", str(tmp_path / "adir" / "r.html")],
                       f"expected a path this process can write ({tmp_path / 'adir'} is read-only)", tmp_path)


def test_report_command_paths(capsys, tmp_path):
    (tmp_path / "afile").write_text("")
    assert_refused(capsys, ["report", str(tmp_path / "missing")], "expected a run folder written by 'ablation run'",
                   tmp_path)
    assert_refused(capsys, ["report", str(tmp_path / "afile")], "expected a run folder written by 'ablation run'",
                   tmp_path)
    assert_refused(capsys, ["report", str(tmp_path)], "expected a run folder written by 'ablation run'", tmp_path)


@pytest.mark.parametrize("edit, text", [
    (("validation_size = 100", "validation_size = 99999999"),
     "data.validation_size: expected an integer in [0, 1436] (the digits training split has 1437 examples). "
     "Received: validation_size=99999999"),
    (("validation_size = 100", "validation_size = 100\ntrain_size = 99999999"),
     "data.train_size: expected an integer in [1, 1337] (the digits training split has 1437 examples, 100 held out "
     "for validation). Received: train_size=99999999"),
    (('dropout = [0.0, 0.5]', 'dropout = [0.0, 0.5]\ntrain_size = [100, 2000]'),
     "grid.train_size: expected an integer in [1, 1337]"),
    (('dropout = [0.0, 0.5]', 'dropout = [0.0, 0.5]\n[grid.config]\nsmall = { train_size = 50 }\n'
                              'big = { train_size = 5000 }'), "grid.config.big.train_size: expected an integer in [1, 1337]"),
    (('metric = "test_error"', 'metric = "test_eror"'),
     "claims[0].metric: claim T1: 'test_eror' is not a metric this study records; did you mean 'test_error'? "
     "it records: test_loss, test_accuracy, test_error,"),
    (('name = "tiny"', 'name = "../escape"'), "study.name: expected a name of [a-z0-9_-]+"),
])
def test_impossible_studies_fail_before_the_first_trial(capsys, tmp_path, edit, text):
    path = tmp_path / "bad.toml"
    path.write_text(edit_study(TINY_STUDY, edit))
    assert_refused(capsys, ["run", str(path), "--out", str(tmp_path / "runs")], text, tmp_path)


@pytest.mark.parametrize("args, text", [
    (["--chief", "localhost"], "Invalid value for argument 'chief': expected HOST:PORT. Received: chief='localhost'"),
    (["--chief", "h:0"], "Invalid value for argument 'chief': expected HOST:PORT. Received: chief='h:0'"),
    (["--chief", "h:1", "--threads", "0"], "argument --threads: expected a positive integer. Received: 0"),
    (["--chief", "h:1", "--cpus", "a,b"], "argument --cpus: expected comma-separated distinct CPU core numbers"),
    (["--chief", "h:1", "--cpus", "4096"], "argument --cpus: expected CPU cores this process may use"),
    (["--chief", "h:1", "--chief-timeout", "0"], "argument --chief-timeout: expected a positive number. Received: 0"),
    (["--chief", "h:1", "--chief-timeout", "nan"], "argument --chief-timeout: expected a positive number"),
    (["--chief", "h:1", "--recycle-mib", "-5"], "argument --recycle-mib: expected a positive number. Received: -5"),
    (["--chief", "h:1", "--tuner-id", "my-chief"], "Invalid value for argument 'tuner_id': expected a name of "
                                                   "letters, digits"),
    (["--chief", "h:1", "--tuner-id", "a/b"], "Invalid value for argument 'tuner_id'"),
    (["--chief", "h:1"], "Invalid value for argument 'out': expected the folder that holds the chief's run folder"),
    ([], "the following arguments are required: --chief"),
])
def test_every_worker_flag_refuses_bad_values(capsys, study, tmp_path, args, text):
    assert_refused(capsys, ["worker", str(study), "--out", str(tmp_path / "runs"), *args], text, tmp_path)


@pytest.mark.parametrize("args, text", [
    (["--port", "-1"], "argument --port: expected an integer in [0, 65535]. Received: -1"),
    (["--host", "203.0.113.7", "--token", "t" * 16], "Invalid value for argument 'host'"),
    (["--host", "203.0.113.7"], "Invalid value for argument 'token': expected a token for a chief listening on "
                                "203.0.113.7, which is not a loopback address"),  # refused before any bind
    (["--token", "short"], "Invalid value for argument 'token': expected at least 16 characters of letters, digits "
                           "and '._~+/=-' (or 'generate'). Received: token=<5 characters>"),
    (["--heartbeat-grace", "0"], "argument --heartbeat-grace: expected a positive number. Received: 0"),
])
def test_chief_flags_refuse_bad_values(capsys, study, tmp_path, args, text):
    assert_refused(capsys, ["chief", str(study), "--out", str(tmp_path / "runs"), *args], text, tmp_path)


def test_a_second_run_on_the_same_folder_is_refused_naming_the_holder(capsys, study, tmp_path):
    from ablation.base import files, rundir
    from ablation.engine import runner
    from ablation import spec

    run_dir = runner.run_dir_of(spec.load(study), tmp_path / "runs")
    run_dir.mkdir(parents=True)
    with files.FolderLock(run_dir / rundir.LOCK, command="ablation run tiny.toml"):
        assert_refused(capsys, ["run", str(study), "--out", str(tmp_path / "runs")],
                       f"{run_dir}: another process is running this study here (pid {os.getpid()} on host "
                       f"{socket.gethostname()} since ", tmp_path)


def test_report_output_paths(capsys, study, tmp_path):
    from ablation.base import files
    from ablation.engine import runner
    from ablation import spec

    s = runner.with_backend(spec.load(study))
    run_dir = tmp_path / "runs" / s.run_name  # a run folder as `ablation run` starts it (no trial yet)
    files.atomic_write_json(run_dir / "spec.json", s.to_dict())
    files.atomic_write_json(run_dir / "run.json", {"hash": s.hash})
    (tmp_path / "afile").write_text("")
    (tmp_path / "adir").mkdir()
    assert_refused(capsys, ["report", str(run_dir), "-o", str(tmp_path / "adir")],
                   "Invalid value for argument 'output': expected a file path (it is a folder)", tmp_path)
    assert_refused(capsys, ["report", str(run_dir), "-o", str(tmp_path / "afile" / "r.html")],
                   f"expected a path inside a folder ({tmp_path / 'afile'} is a file)", tmp_path)
    with read_only(tmp_path / "adir"):
        assert_refused(capsys, ["report", str(run_dir), "-o", str(tmp_path / "adir" / "r.html")],
                       f"expected a path this process can write ({tmp_path / 'adir'} is read-only)", tmp_path)
    with read_only(run_dir):
        assert_refused(capsys, ["report", str(run_dir)], f"{run_dir} is read-only: give the report another path "
                       "with -o FILE", tmp_path)
    assert_refused(capsys, ["chief", str(study), "--out", str(tmp_path / "afile")],
                   "Invalid value for argument 'out': expected a folder for run folders (it is a file)", tmp_path)


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


def test_dry_run_names_your_file_and_function_then_checks_it(own, capsys, monkeypatch):
    from ablation.engine import preflight

    (own / "study.toml").write_text(OWN_STUDY)
    printed = []
    monkeypatch.setattr(preflight, "check", lambda *a, **k: printed.append(capsys.readouterr().out) or preflight.Checked())
    assert main(["run", str(own / "study.toml"), "--dry-run", "--out", str(own / "runs")]) == 0
    before = printed[0]  # what the dry run printed before the checks import anything
    assert f"model: function build of {own / 'mymodel.py'} (mymodel.py:build; imported and run when the study runs)" \
        in before and f"data: {own / 'd.npz'} (d.npz); classification" in before
    monkeypatch.undo()
    assert main(["run", str(own / "study.toml"), "--dry-run", "--out", str(own / "runs")]) == 0
    assert capsys.readouterr().out.strip().endswith("checks passed: the data set loads, and 2 model recipes built "
                                                    "and trained one step each; no trial was run")
    assert (own / "mymodel.py.imported").exists() and not (own / "runs").exists()


@pytest.mark.parametrize("edit, message", [
    (('factory = "mymodel.py:build"', 'factory = "mymodel.py:biuld"'),
     f"model.factory: {{own}}{os.sep}mymodel.py has no 'biuld'; did you mean 'build'?"),
    (("dropout = [0.0, 0.5]", "dropuot = [0.0, 0.5]"),
     "grid.dropuot: unknown argument of build() of mymodel.py; its parameters: input_shape, num_classes, width, "
     "dropout"),
    (("dropout = [0.0, 0.5]", "width = [0, 4]"),
     "model.factory: building the model with build() at the grid point width=0 raised "),
])
def test_dry_run_refuses_what_the_run_would_refuse(own, capsys, edit, message):
    (own / "study.toml").write_text(OWN_STUDY.replace(*edit))
    assert main(["run", str(own / "study.toml"), "--dry-run", "--out", str(own / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message.format(own=own)}") and len(err.strip().splitlines()) == 1, err
    assert not (own / "runs").exists()


def test_every_trial_failed_exits_1_with_one_line(own, capsys, monkeypatch):
    from ablation.engine import progress, runner

    def failing(*args, **kwargs):
        raise progress.StudyFailed("all 2 trials failed; the first, trial_0000 (dropout=0.0, seed=0), raised "
                                   "RuntimeError: boom (traceback in runs/x/trial_0000/result.json)")

    monkeypatch.setattr(runner, "run", failing)
    (own / "study.toml").write_text(OWN_STUDY)
    assert main(["run", str(own / "study.toml"), "--out", str(own / "runs")]) == 1
    captured = capsys.readouterr()
    assert captured.err == ("error: all 2 trials failed; the first, trial_0000 (dropout=0.0, seed=0), raised "
                            "RuntimeError: boom (traceback in runs/x/trial_0000/result.json)\n")
    assert "report:" not in captured.out


def test_help_lists_every_exit_status(capsys):
    from ablation import cli

    for argv in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        for code in (cli.EXIT_OK, cli.EXIT_FAILED, cli.EXIT_USAGE, cli.EXIT_INTERRUPTED):
            assert f"\n  {code} " in out


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


def test_run_with_no_backend_named_lets_the_rule_choose(tmp_path):
    """No --backend, no KERAS_BACKEND, none in the study: the dry run names the rule's backend and why."""
    import subprocess
    import sys

    study = tmp_path / "conv.toml"
    study.write_text('[study]\nname = "conv"\nseeds = [0]\n[data]\nname = "digits"\nflatten = false\n'
                     '[model]\nname = "cnn"\nfilters = [2]\ndense = []\n[train]\nepochs = 1\n[grid]\nkernel_size = [3]\n')
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run([sys.executable, "-m", "ablation.cli", "run", str(study), "--dry-run", "--out",
                           str(tmp_path / "runs")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\nbackend: tensorflow (chosen by the rule: convolution layers on a CPU-only machine" in proc.stdout


def test_the_command_s_own_process_skips_the_last_garbage_collection_at_exit(monkeypatch):
    """The console script (argv from the process) freezes the objects at exit, once; a caller's
    main([...]) leaves its process alone."""
    import gc
    import sys

    from ablation import cli

    registered: list = []
    monkeypatch.setattr(cli.atexit, "register", registered.append)
    cli._quick_exit.cache_clear()
    try:
        assert main(["list", "studies"]) == 0
        assert registered == []
        monkeypatch.setattr(sys, "argv", ["ablation", "list", "studies"])
        assert main() == 0 and main() == 0
        assert registered == [gc.freeze]
    finally:
        cli._quick_exit.cache_clear()
