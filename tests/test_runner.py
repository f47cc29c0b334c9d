"""The study runner end to end, through the CLI: grid, records, resume, kill, divergence, workers."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablation.engine import progress, runner
from ablation.stats import records
from ablation.base import rundir
from ablation import spec

from conftest import TINY_STUDY as TINY  # noqa: E402  (the shared tiny study)

EXPECTED = {(a, d, s) for a in ("relu", "tanh") for d in (0.0, 0.5) for s in (0, 1)}


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "ablation.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def keras_backend() -> str:
    import keras

    return keras.backend.backend()


def trial_set(run_dir: Path) -> list[tuple]:
    t = records.load(run_dir).trials
    return sorted(zip(t["activation"], t["dropout"], t["seed"]))


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("study") / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def tiny_run(tiny_file, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("runs")
    proc = cli("run", str(tiny_file), "--out", str(out), "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return runner.run_dir_of(spec.load(tiny_file), out), proc


@pytest.mark.backends
def test_run_records_every_trial_and_epoch(tiny_run):
    run_dir, proc = tiny_run
    recs = records.load(run_dir)
    t = recs.trials
    assert len(t) == 8 and set(t["status"]) == {"completed"}
    assert set(zip(t["activation"], t["dropout"], t["seed"])) == EXPECTED
    for col in ("trial_id", "status", "seed", "point", "activation", "dropout", "train_size", "test_loss",
                "test_accuracy", "test_error", "val_error", "wall_time_s", "time_per_epoch_s"):
        assert col in t.columns, col
    assert (t["test_error"] - (1 - t["test_accuracy"])).abs().max() < 1e-9
    assert t["xla"].all() if keras_backend() == "jax" else not t["xla"].any()  # the study: jit_compile = false
    assert (t["train_size"] == 1437 - 100).all()  # digits' training split minus the validation set
    c = recs.curves
    # 8 trials x 2 epochs x 2 splits x 3 metrics (loss, accuracy, error)
    assert len(c) == 8 * 2 * 2 * 3
    assert set(c["split"]) == {"train", "val"} and set(c["metric"]) == {"loss", "accuracy", "error"}
    assert sorted(c["epoch"].unique()) == [1, 2]
    for name in ("trials.csv", "curves.csv", "study.toml", "spec.json", "run.json"):
        assert (run_dir / name).exists(), name
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["hash"] == runner.with_backend(spec.load(run_dir / "study.toml")).hash
    assert meta["overrides"]["backend"] == t["backend"].iloc[0] == keras_backend()
    assert meta["versions"]["tensorflow"] and meta["hardware"]["cores"] >= 1
    assert "trial 8/8" in proc.stdout
    # TensorFlow's, absl's and JAX's start-up lines do not reach the user (workers' stderr included)
    for noise in ("absl::InitializeLog", "cuda", "oneDNN", "cpu_feature_guard"):
        assert noise not in proc.stderr and noise not in (run_dir / "workers.log").read_text(), noise


def test_run_reports_epochs_inside_trials_and_leaves_no_notes(tmp_path, monkeypatch):
    from ablation.engine import tuner

    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    monkeypatch.setattr(tuner, "NOTE_EVERY_S", 0.0)
    text = TINY.replace('activation = ["relu", "tanh"]', 'activation = ["relu"]').replace(
        "seeds = [0, 1]", "seeds = [0]").replace("epochs = 2", "epochs = 3")
    lines: list[str] = []
    run_dir = runner.run(spec.loads(text), out_dir=tmp_path, in_process=True, progress=lines.append)
    inside = [line for line in lines if line.startswith("  training: ")]
    assert any(" at epoch 1/3 (best val_error " in line for line in inside), lines
    assert any(" at epoch 2/3 (best val_error " in line for line in inside), lines
    assert sum(line.startswith("trial ") for line in lines) == 2 and lines[-1].startswith("done: 2 trials")
    assert not (run_dir / rundir.PROGRESS).exists()


def test_same_command_again_runs_nothing_new(tiny_run, tiny_file):
    run_dir, _ = tiny_run
    before = {p: p.stat().st_mtime_ns for p in run_dir.glob("trial_*/result.json")}
    proc = cli("run", str(tiny_file), "--out", str(run_dir.parent), "--no-report")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = {p: p.stat().st_mtime_ns for p in run_dir.glob("trial_*/result.json")}
    assert before == after
    assert "trial " not in proc.stdout  # no trial ran
    assert trial_set(run_dir) == sorted(EXPECTED)


def test_killed_run_resumes_to_the_uninterrupted_set(tiny_file, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "ablation.cli", "run", str(tiny_file), "--out", str(tmp_path),
                             "--no-report", "--quiet", "--no-pack"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    run_dir = runner.run_dir_of(spec.load(tiny_file), tmp_path)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(run_dir.glob("trial_*/result.json"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(run_dir.glob("trial_*/result.json")))
    assert 2 <= done_before < 8, "the kill should land mid-way"
    again = cli("run", str(tiny_file), "--out", str(tmp_path), "--no-report")
    assert again.returncode == 0, again.stderr[-3000:]
    got = trial_set(run_dir)
    assert got == sorted(EXPECTED)  # exactly the uninterrupted set: no duplicates, none missing
    assert len(list(run_dir.glob("trial_*"))) == 8


def test_diverging_trial_is_recorded_and_others_finish(tmp_path):
    text = TINY.replace('dropout = [0.0, 0.5]', 'learning_rate = [0.05, 1e30]').replace(
        'activation = ["relu", "tanh"]', 'activation = ["relu"]').replace("seeds = [0, 1]", "seeds = [0]")
    text = text.replace("compare = { dropout = 0.5 }", "compare = { learning_rate = 1e30 }").replace(
        "against = { dropout = 0.0 }", "against = { learning_rate = 0.05 }")
    s = spec.loads(text)
    from ablation.engine import runner

    run_dir = runner.run(s, out_dir=tmp_path)
    t = records.load(run_dir).trials.set_index("learning_rate")
    assert t.loc[0.05, "status"] == "completed"
    assert t.loc[1e30, "status"] == "diverged"
    assert "loss became" in t.loc[1e30, "reason"] and t.loc[1e30, "failed_epoch"] == 1


@pytest.mark.parametrize("edit, key", [
    (("dropout = [0.0, 0.5]", "dropuot = [0.0, 0.5]"), "grid.dropuot: unknown key; did you mean grid.dropout?"),
    (("epochs = 2", 'epochs = "ten"'), "train.epochs"),
    (("dropout = [0.0, 0.5]", "dropout = []"), "grid.dropout"),
    (('name = "mlp"', 'name = "mlpx"'), "model.name"),
    (("dropout = [0.0, 0.5]", "dropout = [0.0, 1.5]"), "grid.dropout"),
])
def test_bad_study_exits_2_with_key_path_and_writes_nothing(tmp_path, capsys, edit, key):
    from ablation.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace(*edit))
    out = tmp_path / "runs"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and key in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_workers_2_gives_the_same_trial_set(tiny_run, tiny_file, tmp_path):
    run_dir, _ = tiny_run
    proc = cli("run", str(tiny_file), "--out", str(tmp_path), "--no-report", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    parallel = tmp_path / run_dir.name
    assert trial_set(parallel) == trial_set(run_dir) == sorted(EXPECTED)
    assert len(list(parallel.glob("trial_*"))) == 8


def test_command_line_precision_override_is_its_own_run(tmp_path):
    from ablation.engine import runner

    s = spec.loads(TINY.replace("seeds = [0, 1]", "seeds = [0]").replace('dropout = [0.0, 0.5]', 'dropout = [0.0]')
                   .replace('activation = ["relu", "tanh"]', 'activation = ["relu"]')
                   .replace("compare = { dropout = 0.5 }", "compare = { dropout = 0.0 }"))
    bf16 = runner.with_backend(runner.apply_overrides(s, {"precision": "mixed_bfloat16"}))
    assert bf16.train.precision == "mixed_bfloat16" and bf16.hash != s.hash
    with pytest.raises(spec.SpecError, match="train.precision: expected one of"):
        runner.apply_overrides(s, {"precision": "float8"})
    run_dir = runner.run(s, out_dir=tmp_path, overrides={"precision": "mixed_bfloat16"})
    assert run_dir.name == bf16.run_name
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["overrides"] == {"precision": "mixed_bfloat16", "backend": keras_backend()}
    recs = records.load(run_dir)
    assert recs.spec.train.precision == "mixed_bfloat16" and recs.spec.hash == bf16.hash
    t = recs.trials
    assert list(t["status"]) == ["completed"] and t["test_error"].iloc[0] < 0.9


def test_edited_claims_reach_the_existing_run(tiny_run, tiny_file, tmp_path):
    """Claims are not hashed: editing one resumes the same run (nothing retrains) and updates its copy."""
    run_dir, _ = tiny_run
    edited = tmp_path / "tiny.toml"
    edited.write_text(tiny_file.read_text().replace('statement = "dropout lowers test error"',
                                                    'statement = "dropout lowers the test error"'))
    from ablation.engine import runner

    before = {p: p.stat().st_mtime_ns for p in run_dir.glob("trial_*/result.json")}
    assert runner.run(spec.load(edited), out_dir=run_dir.parent) == run_dir
    assert {p: p.stat().st_mtime_ns for p in run_dir.glob("trial_*/result.json")} == before
    assert records.load(run_dir).spec.claims[0].statement == "dropout lowers the test error"


def test_the_other_backend_gives_an_equivalent_run(tmp_path):
    """The same study through ``--backend`` on the other backend: its own run folder (the backend is
    hashed), the same trials, every one completed, and test errors that agree arm by arm. Seeds draw
    other random streams on each backend, so the nets differ: arms are compared as samples (Welch's t,
    three seeds each, trained 15 epochs so that the arms without dropout converge)."""
    pytest.importorskip("jax")
    from scipy import stats

    text = TINY.replace("epochs = 2", "epochs = 15").replace(
        "seeds = [0, 1]", 'seeds = [0, 1, 2]\nprobes = ["gradients", "activations", "weights"]')
    study = tmp_path / "tiny.toml"
    study.write_text(text)
    ours_dir = runner.run(spec.loads(text), out_dir=tmp_path / "ours", in_process=True)
    other = "jax" if keras_backend() == "tensorflow" else "tensorflow"
    proc = cli("run", str(study), "--out", str(tmp_path / "theirs"), "--no-report", "--backend", other)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (theirs_dir,) = (tmp_path / "theirs").iterdir()
    assert theirs_dir.name != ours_dir.name
    assert json.loads((theirs_dir / "run.json").read_text())["overrides"]["backend"] == other
    ours, theirs = records.load(ours_dir).trials, records.load(theirs_dir).trials
    assert sorted(theirs.columns) == sorted(ours.columns)
    assert set(theirs["status"]) == set(ours["status"]) == {"completed"} and set(theirs["backend"]) == {other}
    arms = ["activation", "dropout"]
    assert sorted(map(tuple, theirs[[*arms, "seed"]].values)) == sorted(map(tuple, ours[[*arms, "seed"]].values))
    # the test error and one probe metric of each kind: at initialization, and after training
    compared = ["test_error", "grad_first_over_last_init", "sparsity_final", "unit_norm_max_final"]
    for arm, mine in ours.groupby(arms):
        yours = theirs.set_index(arms).loc[arm]
        if arm[1] == 0.0:  # the arms without dropout train on both backends
            assert mine["test_error"].mean() < 0.1 and yours["test_error"].mean() < 0.1, (arm, mine, yours)
        for metric in compared:
            if mine[metric].nunique() == yours[metric].nunique() == 1 and mine[metric].iloc[0] == yours[metric].iloc[0]:
                continue  # the same constant on both (tanh has no exact zeros): nothing to test
            p = stats.ttest_ind(mine[metric], yours[metric], equal_var=False).pvalue
            assert p > 0.01 / (4 * len(compared)), (arm, metric, list(mine[metric]), list(yours[metric]))

def test_tensorboard_logs_hold_every_trial_and_the_grid(tiny_run):
    """Each trial writes its curves and HParams session; the run writes the HParams configuration."""
    from tensorboard.backend.event_processing import event_accumulator

    run_dir, _ = tiny_run
    logs = run_dir / "tensorboard"
    assert sorted(p.name for p in logs.glob("trial_*")) == sorted(p.name for p in run_dir.glob("trial_*"))
    config = event_accumulator.EventAccumulator(str(logs)).Reload()
    assert "_hparams_/experiment" in config.summary_metadata
    trial = event_accumulator.EventAccumulator(str(next(logs.glob("trial_*")))).Reload()
    assert "_hparams_/session_start_info" in trial.summary_metadata
    assert {"train/loss", "val/error", "test_error"} <= set(trial.Tags()["tensors"])
    assert [e.step for e in trial.Tensors("val/error")] == [1, 2]


def test_a_worker_that_grows_is_replaced_by_a_fresh_one(tmp_path):
    text = TINY.replace('activation = ["relu", "tanh"]', 'activation = ["relu"]').replace(
        "dropout = [0.0, 0.5]", "dropout = [0.0]").replace("seeds = [0, 1]", "seeds = [0, 1, 2]").replace(
        "compare = { dropout = 0.5 }", "compare = { dropout = 0.0 }")
    s = spec.loads(text)
    run_dir = runner.run(s, out_dir=tmp_path, pack_size=1, recycle_mib=1e-9)  # any growth at all: recycle
    log = (run_dir / "workers.log").read_text()
    assert "[worker0] memory grew by more than 1e-09 MiB: this worker ends, a fresh one takes over" in log
    assert "[chief] worker1 started (pid " in log
    assert sorted(records.load(run_dir).trials["seed"]) == [0, 1, 2]
    assert json.loads((run_dir / "run.json").read_text())["invocations"][-1]["exit"] == "completed"


# ----------------------------------------------------------------------------- failed trials and the exit status

COUNTED = '''
import keras
from pathlib import Path

def build(input_shape, num_classes, dropout=0.0):
    # the preflight builds each recipe once; later calls raise once the budget of successes is spent
    calls = Path(__file__).with_name("calls")
    n = int(calls.read_text()) + 1 if calls.exists() else 1
    calls.write_text(str(n))
    if n > BUDGET:
        raise RuntimeError(f"call {n} fails")
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Dropout(dropout)(inputs)))
'''

COUNTED_STUDY = """
[study]
name = "counted"
seeds = [0, 1]

[data]
path = "d.npz"

[model]
factory = "m.py:build"

[train]
epochs = 1

[grid]
dropout = [0.0, 0.5]
"""


def counted(tmp_path: Path, budget: int) -> spec.StudySpec:
    import numpy as np

    (tmp_path / "m.py").write_text(COUNTED + f"\nBUDGET = {budget}\n")  # its own source: its own module
    x = np.random.default_rng(0).random((16, 3), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(16) % 2, x_test=x[:4], y_test=np.arange(4) % 2)
    (tmp_path / "s.toml").write_text(COUNTED_STUDY)
    return spec.load(tmp_path / "s.toml")


def test_a_study_whose_every_trial_failed_raises_with_the_first_failure(tmp_path):
    s = counted(tmp_path, budget=2)  # the two preflight builds pass; every trial's build raises
    lines: list[str] = []
    with pytest.raises(progress.StudyFailed) as exc:
        runner.run(s, out_dir=tmp_path / "runs", in_process=True, progress=lines.append, pack_size=1)
    run_dir = runner.run_dir_of(s, tmp_path / "runs")
    first = sorted(rundir.trial_dirs(run_dir))[0]
    assert str(exc.value) == (f"all 4 trials failed; the first, {first.name} (dropout=0.0, seed=0), raised "
                              f"RuntimeError: call 3 fails (traceback in {first / rundir.RESULT})")
    assert "call 3 fails" in json.loads((first / rundir.RESULT).read_text())["traceback"]
    assert lines[-1].startswith("done: 4 trials (4 failed)")


def test_a_study_with_some_failed_trials_names_them_and_returns(tmp_path):
    s = counted(tmp_path, budget=4)  # preflight 2, then two trials build, two raise
    lines: list[str] = []
    run_dir = runner.run(s, out_dir=tmp_path / "runs", in_process=True, progress=lines.append, pack_size=1)
    assert lines[-2].startswith("done: 4 trials (")
    failed = [d for d in rundir.trial_dirs(run_dir) if rundir.read_trial(d).result["status"] == "failed"]
    assert len(failed) == 2
    assert lines[-1] == (f"2 of 4 trials failed; the first, {failed[0].name} (dropout=0.5, seed=0), raised "
                         f"RuntimeError: call 5 fails (traceback in {failed[0] / rundir.RESULT})")


CHOICE = """
[study]
name = "choice"
seeds = [0]
[data]
name = "digits"
flatten = false
validation_size = 100
[model]
MODEL
[train]
epochs = 1
batch_size = 64
[grid]
dropout = [0.0]
"""


CONV_FUNCTION = """
import keras

def conv(input_shape, num_classes, dropout=0.0):
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Dropout(dropout)(keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(inputs)))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""


@pytest.mark.parametrize("model, expected", [('name = "cnn"\nfilters = [2]\ndense = []', "tensorflow"),
                                             ('factory = "conv.py:conv"', "tensorflow"),
                                             ('name = "mlp"\nhidden = [8]', "jax"),
                                             ('name = "mlp"\nhidden = [8]\ndropconnect = 0.5', "tensorflow")])
def test_with_no_backend_named_the_rule_picks_the_workers_backend_and_run_json_says_why(tmp_path, model, expected,
                                                                                         monkeypatch):
    from ablation.base import backend
    from ablation.engine import backend_choice, cluster
    from ablation.engine.options import RunOptions

    if expected not in backend.available():
        pytest.skip(f"{expected} is not installed")
    (tmp_path / "conv.py").write_text(CONV_FUNCTION)
    (tmp_path / "s.toml").write_text(CHOICE.replace("MODEL", model))
    s = spec.load(tmp_path / "s.toml")
    spares: list = []

    class Recording(cluster.Spare):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            spares.append(self)

    monkeypatch.setattr(cluster, "Spare", Recording)
    lines: list[str] = []
    run_dir = runner.run(s, out_dir=tmp_path / "runs", options=RunOptions(workers=1, backend_rule=True,
                                                                         progress=lines.append))
    # the one worker was started on the rule's backend while the chief checked (a zoo model: from the registry;
    # a model function: once its first model was built), and it trained every trial
    assert [sp.backend for sp in spares] == [expected]
    assert (run_dir / "workers.log").read_text().count(" started (pid ") == 1
    meta = json.loads((run_dir / rundir.RUN).read_text())
    reason = (backend_choice.DENSE_REASON if expected == "jax" else backend_choice.SAMPLING_REASON
              if "dropconnect" in model else backend_choice.CONV_REASON)
    assert meta["backend_choice"] == {"backend": expected, "chosen_by": "rule", "reason": reason}
    assert meta["invocations"][-1]["backend_choice"] == meta["backend_choice"]
    assert run_dir.name == dataclasses.replace(s, backend=expected).run_name  # the chosen backend's run folder
    assert set(records.load(run_dir).trials["backend"]) == {expected}  # the worker trained on it
    assert lines[0].startswith(f"study {s.name}: {s.n_trials} trials; checking the data set and the model")
    assert f"backend {expected} (chosen by the rule: " in lines[1]  # the opening line, after the checks
    import pandas as pd

    paths = set(pd.read_csv(run_dir / "trials.csv")["train_path"])  # each trial's training path, as a column
    assert paths == ({"keras"} if expected == "tensorflow" else {"scan+xla"})  # TF: no XLA for convolutions on a CPU


def test_a_backend_the_user_names_wins_over_the_rule(tmp_path):
    from ablation.engine.options import RunOptions

    s = spec.loads(CHOICE.replace("MODEL", 'name = "cnn"\nfilters = [2]\ndense = []'))
    ours = keras_backend()
    run_dir = runner.run(s, out_dir=tmp_path, options=RunOptions(in_process=True, backend_rule=True,
                                                                 overrides={"backend": ours}))
    choice = json.loads((run_dir / rundir.RUN).read_text())["backend_choice"]
    assert (choice["backend"], choice["chosen_by"]) == (ours, "user")
