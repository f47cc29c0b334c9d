"""Chaos: kills at random points (inside a write too), dead workers and chiefs, damaged files and a full disk.

Whatever happens, a resumed study ends with exactly its trials: the grid, no trial twice, every finished
trial's records whole. Faults are injected into the ``ablation`` subprocesses by a ``sitecustomize``
module (put first on their PYTHONPATH) that wraps ``ablation.base.files.atomic_write_text``:

- ``torn``: the n-th write of a file half-writes it in place (as a non-atomic writer would) and then
  SIGKILLs the whole run (chief and workers: the test starts it in its own process group);
- ``die``: the n-th write SIGKILLs only the worker that makes it, before anything is written: the
  worker dies mid-trial, after training, before its record exists;
- ``enospc``: the n-th write raises ``OSError(ENOSPC)``.

Kill points are drawn from a seeded random generator (``ABLATION_CHAOS_SEED``, default 0).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ablation.base import files
from ablation.stats import records
from ablation.engine import runner
from ablation import spec

from conftest import TINY_STUDY, edit_study  # noqa: E402

TINY = edit_study(TINY_STUDY, ("epochs = 2", "epochs = 1"))   # 8 trials, one epoch each
GRID = sorted((a, d, s) for a in ("relu", "tanh") for d in (0.0, 0.5) for s in (0, 1))
RNG = random.Random(int(os.environ.get("ABLATION_CHAOS_SEED", "0")))
DEADLINE_S = 60  # workers must be gone this long after their chief

SITECUSTOMIZE = '''
import os

_FAULT = os.environ.get("ABLATION_TEST_FAULT")
if _FAULT:
    import errno, signal
    from pathlib import Path
    import ablation.base.files as _files

    _kind, _who, _name, _nth = _FAULT.split(":")
    _real, _count = _files.atomic_write_text, [0]

    def _faulty(path, text, **kwargs):
        if Path(path).name == _name and _who in ("*", "first", os.environ.get("KERASTUNER_TUNER_ID")):
            _count[0] += 1
            fires = _count[0] == int(_nth)
            if fires and _who == "first":  # only the first worker of the run to get there (a marker in the run folder)
                try:
                    os.close(os.open(Path(path).parent.parent / ".fault-fired", os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    fires = False
            if fires:
                if _kind == "torn":
                    Path(path).write_text(text[: len(text) // 2])
                    os.killpg(os.getpgrp(), signal.SIGKILL)
                if _kind == "die":
                    os.kill(os.getpid(), signal.SIGKILL)
                if _kind == "enospc":
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return _real(path, text, **kwargs)

    _files.atomic_write_text = _faulty
'''


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("chaos")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
    path = folder / "tiny.toml"
    path.write_text(TINY)
    return path


def start(study: Path, out: Path, *args: str, fault: str | None = None) -> subprocess.Popen:
    """``ablation run`` in its own process group (so a fault can kill the whole run)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(study.parent), os.environ.get("PYTHONPATH", "")])}
    env.pop("ABLATION_TEST_FAULT", None)
    if fault:
        env["ABLATION_TEST_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-m", "ablation.cli", "run", str(study), "--out", str(out),
                             "--no-report", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: int = 300) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    return out, err


def results(run_dir: Path) -> int:
    return len(list(run_dir.glob("trial_*/result.json")))


def wait_for(condition, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run did not get there"
        time.sleep(0.05)


def children(pid: int) -> list[int]:
    """The worker processes of a run (children of its chief), from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(files.pid_alive(p) and not _zombie(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if files.pid_alive(p) and not _zombie(p)]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def check_exactly_the_grid(run_dir: Path, grid: list[tuple] = GRID) -> None:
    """The grid, each trial once, each finished trial's records whole."""
    recs = records.load(run_dir)
    t = recs.trials
    assert sorted(zip(t["activation"], t["dropout"], t["seed"])) == grid
    assert set(t["status"]) == {"completed"} and t["damaged"].isna().all()
    assert len(list(run_dir.glob("trial_*"))) == len(grid) and not list(run_dir.glob("trial_*/.*.tmp"))
    for folder in run_dir.glob("trial_*"):
        for name in ("result.json", "history.json", "trial.json"):
            files.read_json(folder / name)  # whole JSON, or DamagedFile
    assert recs.curves.groupby("trial_id").size().eq(1 * 2 * 3).all()  # 1 epoch x 2 splits x 3 metrics


def test_kills_at_random_points_and_any_worker_layout_end_with_exactly_the_grid(study, tmp_path):
    run_dir = runner.run_dir_of(spec.load(study), tmp_path)
    # 1. one worker; the whole run is SIGKILLed half-way through writing the n-th result.json
    n = RNG.randint(2, 4)
    proc = start(study, tmp_path, "--no-pack", fault=f"torn:*:result.json:{n}")
    finish(proc)
    assert proc.returncode == -signal.SIGKILL
    torn = [p for p in run_dir.glob("trial_*/result.json") if p.read_text() and not p.read_text().endswith("}")]
    assert len(torn) == 1 and results(run_dir) == n
    # 2. resumed on two workers; the chief is SIGKILLed after more trials: its workers stop by themselves
    proc = start(study, tmp_path, "--no-pack", "--workers", "2")
    more = n + RNG.randint(1, 2)
    wait_for(lambda: results(run_dir) >= more, proc)
    workers = children(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = finish(proc)
    assert wait_gone(workers, DEADLINE_S) == []
    assert results(run_dir) < 8, "the kill should land before the end"
    assert f"resume: {torn[0].parent.name}/result.json: damaged file, set aside as result.json.damaged" in out
    # 3. resumed on one worker: it ends with exactly the grid
    proc = start(study, tmp_path, "--no-pack")
    out, err = finish(proc)
    assert proc.returncode == 0, err[-3000:]
    check_exactly_the_grid(run_dir)
    assert torn[0].with_name("result.json.damaged").exists()
    meta = json.loads((run_dir / "run.json").read_text())
    assert [(i["exit"], i["workers"]) for i in meta["invocations"]] == [
        ("interrupted", 1), ("interrupted", 2), ("completed", 1)]
    assert not (run_dir / "run.lock").exists()


def test_a_worker_killed_mid_trial_is_replaced_and_its_trial_runs_again(study, tmp_path):
    one_seed = study.with_name("one_seed.toml")  # 4 trials
    one_seed.write_text(TINY.replace("seeds = [0, 1]", "seeds = [0]"))
    run_dir = runner.run_dir_of(spec.load(one_seed), tmp_path)
    # whichever worker writes a trial's result first dies there (on a loaded machine one worker may take every
    # trial before the other has started, so naming worker0 would test nothing)
    proc = start(one_seed, tmp_path, "--no-pack", "--workers", "2", fault="die:first:result.json:1")
    out, err = finish(proc)
    assert proc.returncode == 0, err[-3000:]
    lines = [line for line in out.splitlines() if re.match(r"worker\d was killed by SIGKILL holding trial\(s\)", line)]
    assert len(lines) == 1, out
    again = lines[0].split("trial(s) ")[1].split(";")[0].split(", ")
    check_exactly_the_grid(run_dir, [g for g in GRID if g[2] == 0])
    t = records.load(run_dir).trials.set_index("trial_id")
    assert all(t.loc[i, "status"] == "completed" for i in again)
    log = (run_dir / "workers.log").read_text()
    assert "[chief] worker2 started (pid " in log  # the replacement, under a new id


def test_a_worker_stops_when_its_chief_does_not_answer(study, tmp_path):
    s = runner.with_backend(spec.load(study))
    files.atomic_write_json(tmp_path / s.run_name / "spec.json", s.to_dict())  # as a chief would have
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens there once the socket is closed
    proc = subprocess.Popen([sys.executable, "-m", "ablation.cli", "worker", str(study), "--out", str(tmp_path),
                             "--chief", f"127.0.0.1:{port}", "--chief-timeout", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=DEADLINE_S + 30)
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and f"the chief at 127.0.0.1:{port}" in lines[0] and "2 s" in lines[0]
    assert not list((tmp_path / s.run_name).glob("trial_*"))


def test_disk_full_stops_with_a_clear_error_and_keeps_earlier_trials(study, tmp_path, monkeypatch):
    s = spec.load(study)
    real, count = files.atomic_write_text, [0]

    def full(path, text, **kwargs):
        if Path(path).name == "result.json":
            count[0] += 1
            if count[0] == 3:
                raise OSError(28, "No space left on device", str(path))
        return real(path, text, **kwargs)

    monkeypatch.setattr(files, "atomic_write_text", full)
    with pytest.raises(runner.RunFailed) as info:
        runner.run(s, out_dir=tmp_path, in_process=True, pack_size=1)
    message = str(info.value)
    assert message.startswith("No space left on device writing ") and message.endswith(
        "run the same command again to resume") and "\n" not in message
    monkeypatch.undo()
    run_dir = runner.run_dir_of(s, tmp_path)
    assert results(run_dir) == 2
    t = records.load(run_dir).trials
    assert (t["status"] == "completed").sum() == 2 and t["damaged"].isna().all()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["invocations"][-1]["exit"] == "failed" and "No space left" in meta["invocations"][-1]["error"]
    # through the command line: the worker stops, the chief starts no replacement, one line, exit 1
    proc = start(study, tmp_path, "--no-pack", fault="enospc:*:result.json:1")
    out, err = finish(proc)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: worker0 stopped: No space left on device writing ")
    assert "worker1 started" not in (run_dir / "workers.log").read_text() and results(run_dir) == 2
    runner.run(s, out_dir=tmp_path, in_process=True)  # space again: the same run resumes and ends
    check_exactly_the_grid(run_dir)


def test_a_truncated_trial_json_is_named_in_the_report_of_a_read_only_run(study, tmp_path, capsys):
    from ablation.cli import main

    from conftest import read_only

    run_dir = runner.run(spec.load(study), out_dir=tmp_path / "runs", in_process=True)
    (run_dir / "trial_5" / "result.json").unlink()  # an unfinished trial ...
    path = run_dir / "trial_5" / "trial.json"
    path.write_text(path.read_text()[:60])           # ... whose trial.json was cut short
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    out = tmp_path / "elsewhere" / "report.html"
    with read_only(run_dir):
        assert main(["report", str(run_dir), "-o", str(out)]) == 0
        assert main(["report", str(run_dir)]) == 2  # nowhere to write it: one line, exit 2
    err = capsys.readouterr().err
    assert err == f"error: {run_dir} is read-only: give the report another path with -o FILE\n"
    html = out.read_text()
    assert "damaged file: trial_5/trial.json (not valid JSON" in html
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # the report wrote nothing there
