"""Resuming from damaged, incomplete or inconsistent run folders: the oracle is rebuilt from the trial folders
(ablation.engine.resume, ablation.engine.tuner), damaged files are set aside, and the grid ends with exactly its trials."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ablation.stats import records
from ablation.engine import resume, runner
from ablation import spec
from ablation.engine.tuner import AblationTuner, TrialStatus

from conftest import TINY_STUDY, edit_study  # noqa: E402

TINY = edit_study(TINY_STUDY, ("epochs = 2", "epochs = 1"))
GRID = sorted((a, d, s) for a in ("relu", "tanh") for d in (0.0, 0.5) for s in (0, 1))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished run of the tiny study (trained in this process)."""
    return runner.run(spec.loads(TINY), out_dir=tmp_path_factory.mktemp("runs"), in_process=True)


@pytest.fixture
def copy(finished, tmp_path) -> Path:
    target = tmp_path / "runs" / finished.name
    shutil.copytree(finished, target)
    (target / "run.lock").unlink(missing_ok=True)
    return target


def reload(run_dir: Path) -> AblationTuner:
    return AblationTuner(runner.with_backend(spec.loads(TINY)), run_dir.parent)


def trial_set(run_dir: Path) -> list[tuple]:
    t = records.load(run_dir).trials
    return sorted(zip(t["activation"], t["dropout"], t["seed"]))


def queued(tuner: AblationTuner) -> list[str]:
    return sorted(tuner.oracle._retry_queue)


def test_a_whole_run_reloads_as_it_was(copy):
    oracle = reload(copy).oracle
    assert oracle.done() and queued(reload(copy)) == [] and oracle.repairs == []
    assert {t.status for t in oracle.trials.values()} == {TrialStatus.COMPLETED}


def test_truncated_trial_json_of_a_finished_trial_is_rebuilt_from_its_record(copy):
    path = copy / "trial_3" / "trial.json"
    before = json.loads(path.read_text())
    path.write_text(path.read_text()[:40])
    t = records.load(copy).trials.set_index("trial_id")  # the report's view: the damage is named
    assert "trial_3/trial.json" in t.loc["3", "damaged"] and t.loc["3", "reason"].startswith("damaged file:")
    tuner = reload(copy)
    assert tuner.oracle.done() and queued(tuner) == []
    rebuilt = json.loads(path.read_text())
    assert rebuilt["hyperparameters"]["values"] == before["hyperparameters"]["values"]
    assert rebuilt["status"] == "COMPLETED" and rebuilt["score"] == pytest.approx(before["score"])
    assert (copy / "trial_3" / "trial.json.damaged").exists()
    assert any("trial_3/trial.json: damaged file" in r for r in tuner.oracle.repairs)


def test_damaged_records_run_again(copy):
    (copy / "trial_2" / "result.json").write_text('{"trial_id": "2", "status": "compl')
    (copy / "trial_5" / "history.json").write_text("")
    (copy / "trial_6" / ".result.json.0123456789ab.tmp").write_text("{")
    tuner = reload(copy)
    assert queued(tuner) == ["2", "5"] and not tuner.oracle.done()
    assert (copy / "trial_2" / "result.json.damaged").exists() and not (copy / "trial_2" / "result.json").exists()
    assert (copy / "trial_5" / "history.json.damaged").exists() and not (copy / "trial_5" / "result.json").exists()
    assert not (copy / "trial_6" / ".result.json.0123456789ab.tmp").exists()
    assert json.loads((copy / "trial_2" / "trial.json").read_text())["status"] == "RUNNING"
    tuner.search(verbose=0)  # runs just those two
    assert trial_set(copy) == GRID and len(list(copy.glob("trial_*/result.json"))) == 8


def test_lost_folders_damaged_oracle_and_a_duplicate_still_give_exactly_the_grid(copy):
    lost = json.loads((copy / "trial_4" / "trial.json").read_text())["hyperparameters"]["values"]
    shutil.rmtree(copy / "trial_4")                       # a trial id with no folder
    shutil.rmtree(copy / "trial_7")                       # the last trial lost too
    (copy / "oracle.json").write_text('{"ongoing_trials": {"tuner0/0"')
    dup = json.loads((copy / "trial_1" / "trial.json").read_text())
    values_1 = dup["hyperparameters"]["values"]
    trial_6 = json.loads((copy / "trial_6" / "trial.json").read_text())
    trial_6["hyperparameters"]["values"] = values_1       # trial 6 now claims trial 1's grid point
    (copy / "trial_6" / "trial.json").write_text(json.dumps(trial_6))
    tuner = reload(copy)
    oracle = tuner.oracle
    assert (copy / "oracle.json.damaged").exists()
    assert set(oracle.trials) == {str(i) for i in range(7)}  # up to the largest id left; 7 comes from the grid
    assert oracle.trials["4"].hyperparameters.values == lost  # the smallest missing grid point
    assert queued(tuner) == ["4", "6"]
    values = [json.dumps(t.hyperparameters.values, sort_keys=True) for t in oracle.trials.values()]
    assert len(set(values)) == 7
    assert any("repeats the grid point of trial_1" in r for r in oracle.repairs)
    tuner.search(verbose=0)
    assert trial_set(copy) == GRID and len(list(copy.glob("trial_*/result.json"))) == 8


def test_scan_trial_judges_each_file(copy):
    s = runner.with_backend(spec.loads(TINY))
    scan = resume.scan_trial(copy / "trial_0", s)
    assert scan.finished and scan.values == {"activation": "relu", "dropout": "0.0", "seed": 0}
    result = json.loads((copy / "trial_0" / "result.json").read_text())
    result["seed"] = 1  # a whole record of another trial
    (copy / "trial_0" / "result.json").write_text(json.dumps(result))
    scan = resume.scan_trial(copy / "trial_0", s)
    assert not scan.finished and scan.result_values["seed"] == 1 and scan.kt_values["seed"] == 0
    resume.prepare_rerun(scan)
    assert (copy / "trial_0" / "result.json.stale").exists() and not (copy / "trial_0" / "history.json").exists()
    assert resume.check_values(s, {"activation": "relu", "dropout": "0.3", "seed": 0}) is None


def test_the_keras_tuner_internals_this_relies_on_exist():
    from ablation.engine import oracle

    oracle.check_keras_tuner()
