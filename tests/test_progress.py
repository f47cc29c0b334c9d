"""ablation.engine.progress: the opening line, the time left from the measured pace, a line every few seconds
when not on a terminal, "best so far" across a resume, and the line about failed trials."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ablation.engine import progress
from ablation.base import rundir
from ablation import spec

from conftest import TINY_STUDY as TINY  # noqa: E402  (the shared tiny study)


def finished(run_dir: Path, trial: str, status: str = "completed", error: float | None = None,
             dropout: str = "0.0", reason: str | None = None) -> None:
    folder = run_dir / f"trial_{trial}"
    folder.mkdir(parents=True, exist_ok=True)
    result = {"status": status, "point": {"activation": "relu", "dropout": dropout}, "seed": 0,
              "metrics": {} if error is None else {"val_error": error}, "reason": reason}
    (folder / rundir.RESULT).write_text(json.dumps(result))


def note(run_dir: Path, epoch: int, trials=("0001", "0002")) -> None:
    members = [{"trial": t, "status": "running", "loss": 0.9, "val": 0.25 / (i + 1)} for i, t in enumerate(trials)]
    rundir.write_progress(run_dir, "worker0/0", {"epoch": epoch, "epochs": 10, "time": time.time(),
                                                "metric": "val_error", "members": members})


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    s = spec.loads(TINY)
    return s, tmp_path / s.run_name


def test_the_opening_line_names_the_run(tiny):
    s, run_dir = tiny
    lines: list[str] = []
    progress.Progress(s.__class__(**{**s.__dict__, "backend": "jax"}), run_dir, progress.Console(lines.append),
                      workers=2, pack_size=4)
    assert lines == [f"study tiny: 8 trials (2 seeds), backend jax, 2 workers, packs of up to 4; run folder {run_dir}"]


def test_a_resumed_run_says_what_is_done_and_keeps_the_best_so_far(tiny):
    s, run_dir = tiny
    finished(run_dir, "0000", error=0.25)
    finished(run_dir, "0001", error=0.125, dropout="0.5")
    finished(run_dir, "0002", status="diverged")
    lines: list[str] = []
    watcher = progress.Progress(s, run_dir, progress.Console(lines.append), workers=1)
    assert lines[0] == (f"study tiny: 8 trials (2 seeds, 3 already done, 5 to run), 1 worker; run folder {run_dir}; "
                        f"best so far: val_error 0.1250 (activation=relu, dropout=0.5, seed=0)")
    finished(run_dir, "0003", error=0.5)
    watcher.poll()
    trial_line = next(line for line in lines if line.startswith("trial "))
    assert trial_line.startswith("trial 4/8 [completed: activation=relu, dropout=0.0, seed=0]")
    assert trial_line.endswith("best so far: val_error 0.1250 (activation=relu, dropout=0.5, seed=0)")


def test_time_left_comes_from_the_pace_after_the_first_progress(tiny):
    s, run_dir = tiny
    finished(run_dir, "0003")
    lines: list[str] = []
    watcher = progress.Progress(s, run_dir, progress.Console(lines.append))
    watcher.start -= 600.0  # ten minutes of start-up and compilation must not count in the pace
    note(run_dir, 3)
    watcher.poll()
    assert lines[-1].startswith("  training: 2 trials at epoch 3/10 (best val_error 0.1250)  [1/8 done, elapsed "
                                "0:10:00, left ~? (measuring the pace)]"), lines[-1]
    note(run_dir, 6)  # 2 trials x 3 epochs of their 11 units of work (10 epochs, then the evaluation)
    t0, d0 = watcher._paced
    watcher._paced = (t0 - 6.0, d0)  # ... took 6 s: 6/11 of a trial in 6 s; 7 - 12/11 trials left take 65 s
    watcher.poll()
    assert lines[-1].endswith("left ~0:01:05]"), lines[-1]


def test_a_trial_trained_again_elsewhere_counts_once_from_its_newest_note(tiny):
    # a worker presumed dead leaves its note (trial 0001 at epoch 8) while a new worker trains 0001 again
    s, run_dir = tiny
    lines: list[str] = []
    watcher = progress.Progress(s, run_dir, progress.Console(lines.append))
    members = [{"trial": "0001", "status": "running", "loss": 0.9, "val": 0.5}]
    rundir.write_progress(run_dir, "worker0", {"epoch": 8, "epochs": 10, "time": time.time(),
                                               "metric": "val_error", "members": members})
    rundir.write_progress(run_dir, "worker1", {"epoch": 2, "epochs": 10, "time": time.time() + 1, "metric": "val_error",
                                               "members": [*members, {**members[0], "trial": "0002"}]})
    watcher.poll()
    assert lines[-1].startswith("  training: 2 trials at epoch 2/10 (best val_error 0.5000)  [0/8 done"), lines[-1]
    assert watcher._in_flight() == pytest.approx(2 * 2 / 11)


def test_a_line_at_least_every_few_seconds_off_a_terminal(tiny):
    s, run_dir = tiny
    lines: list[str] = []
    watcher = progress.Progress(s, run_dir, progress.Console(lines.append))
    watcher.poll()  # nothing trains yet: still a line, so that a log file shows the run is alive
    assert lines[-1] == "  waiting: 0/8 done, elapsed 0:00:00, left ~? (measuring the pace)"
    watcher.poll()
    assert len(lines) == 3  # every poll past the period


def test_off_a_terminal_the_period_is_ten_seconds():
    assert progress.PLAIN_EVERY_S == 10.0 and progress.Console(lambda line: None).every == 10.0
    assert progress.Console(True).every in (progress.TTY_EVERY_S, 10.0)  # a terminal rewrites its line more often


def test_failure_line_counts_failures_and_names_the_first(tiny):
    s, run_dir = tiny
    finished(run_dir, "0000", error=0.25)
    assert progress.failure_line(run_dir) is None
    finished(run_dir, "0002", status="failed", dropout="0.5", reason="ValueError: bad shape\nmore")
    finished(run_dir, "0001", status="failed", reason="TypeError: no")
    assert progress.failure_line(run_dir) == (
        f"2 of 3 trials failed; the first, trial_0001 (activation=relu, dropout=0.0, seed=0), raised TypeError: no "
        f"(traceback in {run_dir / 'trial_0001' / rundir.RESULT})")
