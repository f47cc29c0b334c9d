"""Scale-out across "hosts": a chief and workers as separate processes, each with its own working
directory and environment (HOME, TMPDIR, token), over loopback addresses only (127.0.0.x), sharing
one run folder as machines share an NFS export.

One worker is killed mid-trial (after its process froze itself at a progress note, so the kill lands
inside a trial), another is paused (SIGSTOP) for longer than the heartbeat grace period and then
resumed; a third has no token. The study must end with exactly its grid, no trial twice, the paused
worker's late result ignored and logged, and the worker without the token refused.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ablation.stats import records
from ablation.engine import runner
from ablation import spec

from conftest import TINY_STUDY, edit_study  # noqa: E402

TINY = edit_study(TINY_STUDY, ("epochs = 2", "epochs = 1"))   # 8 trials, one epoch each (one progress note)
GRID = sorted((a, d, s) for a in ("relu", "tanh") for d in (0.0, 0.5) for s in (0, 1))
CHIEF_HOST = "127.0.0.2"   # loopback only, never another address
TOKEN = "test-token-0123456789abcdef"
GRACE_S = 4.0
DEADLINE_S = 240

# A worker whose ABLATION_TEST_STOP_AT is n freezes itself (SIGSTOP, every thread: its heartbeats stop
# too) at its n-th progress note, i.e. inside its n-th trial, after training, before its record.
SITECUSTOMIZE = '''
import os

_STOP = os.environ.get("ABLATION_TEST_STOP_AT")
if _STOP:
    import signal
    import ablation.base.rundir as _rundir

    _real, _count = _rundir.write_progress, [0]

    def _stopping(*args, **kwargs):
        who = os.environ.get("ABLATION_TEST_STOP_WHO")  # a local worker: only the one of this id
        if who and who != os.environ.get("KERASTUNER_TUNER_ID"):
            return _real(*args, **kwargs)
        _count[0] += 1
        if _count[0] == int(_STOP):
            os.kill(os.getpid(), signal.SIGSTOP)
        return _real(*args, **kwargs)

    _rundir.write_progress = _stopping
'''


class Host:
    """One "machine": a process with its own working directory and environment, its output collected."""

    def __init__(self, root: Path, name: str, faults: Path, **env: str) -> None:
        self.name, self.cwd = name, root / name
        (self.cwd / "tmp").mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("KERASTUNER_", "ABLATION_"))}
        self.env.update(HOME=str(self.cwd), TMPDIR=str(self.cwd / "tmp"), TF_CPP_MIN_LOG_LEVEL="2",
                        PYTHONPATH=os.pathsep.join([str(faults), os.environ.get("PYTHONPATH", "")]), **env)
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self, *args: str) -> Host:
        self.proc = subprocess.Popen([sys.executable, "-m", "ablation.cli", *args], cwd=self.cwd, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def state(self) -> str:
        """The process's state letter (R, S, T for stopped, Z) from /proc."""
        assert self.proc is not None
        try:
            return Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return "gone"

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        rc = self.proc.wait(timeout=timeout)
        time.sleep(0.2)  # the reader thread takes the last lines
        return rc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def wait_until(condition, what: str, hosts: list[Host], timeout: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            dump = "\n".join(f"--- {h.name} ---\n{h.output[-3000:]}" for h in hosts)
            raise AssertionError(f"timed out waiting for {what}\n{dump}")
        time.sleep(0.05)


def test_chief_and_workers_on_separate_hosts_survive_a_kill_and_a_pause(tmp_path):
    began = time.monotonic()
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "sitecustomize.py").write_text(SITECUSTOMIZE)
    shared = tmp_path / "nfs" / "runs"   # the folder every host mounts at the same path
    chief = Host(tmp_path, "chief", faults, ABLATION_TOKEN=TOKEN)
    (chief.cwd / "tiny.toml").write_text(TINY)
    hosts = [chief]
    try:
        chief.start("chief", "tiny.toml", "--out", str(shared), "--host", CHIEF_HOST,
                    "--heartbeat-grace", f"{GRACE_S:g}")
        port_of = lambda: re.search(rf"chief listening on {re.escape(CHIEF_HOST)}:(\d+)", chief.output)  # noqa: E731
        wait_until(lambda: port_of() is not None or chief.proc.poll() is not None, "the chief", hosts)
        assert port_of() is not None, chief.output
        address = f"{CHIEF_HOST}:{port_of().group(1)}"
        run_dir = next(shared.iterdir())
        study = str(run_dir / "study.toml")  # the run folder's copy, as the chief's line says
        worker = ["worker", study, "--out", str(shared), "--chief", address, "--no-pack", "--chief-timeout", "20"]

        a = Host(tmp_path, "hosta", faults, ABLATION_TOKEN=TOKEN, ABLATION_TEST_STOP_AT="1")
        b = Host(tmp_path, "hostb", faults, ABLATION_TOKEN=TOKEN, ABLATION_TEST_STOP_AT="2")
        c = Host(tmp_path, "hostc", faults)  # no token anywhere
        hosts += [a, b, c]
        for host in (a, b, c):
            host.start(*worker, "--tuner-id", host.name)

        # hostc is refused: one line, exit 1, and the chief logs the refusal
        assert c.wait(DEADLINE_S) == 1
        errors = [line for line in c.lines if line.startswith("error: ")]
        assert len(errors) == 1 and "refused this worker" in errors[0], c.output

        # hosta freezes inside its first trial; it is then killed there, and the machine comes back as hosta2
        wait_until(lambda: a.state() == "T", "hosta to freeze mid-trial", hosts)
        os.killpg(a.proc.pid, signal.SIGKILL)
        a.wait(30)
        a2 = Host(tmp_path, "hosta2", faults, ABLATION_TOKEN=TOKEN)
        hosts.append(a2)
        a2.start(*worker, "--tuner-id", "hosta2")

        # hostb freezes inside its second trial; once the chief has presumed it dead, it is resumed
        wait_until(lambda: b.state() == "T", "hostb to freeze mid-trial", hosts)
        wait_until(lambda: "hostb has been silent for" in chief.output, "the chief to presume hostb dead", hosts)
        os.kill(b.proc.pid, signal.SIGCONT)

        assert chief.wait(DEADLINE_S) == 0, chief.output[-3000:]
        assert a2.wait(60) == 0, a2.output[-3000:]
        assert b.wait(60) == 0, b.output[-3000:]
    finally:
        for host in hosts:
            host.stop()
    took = time.monotonic() - began

    out = chief.output
    assert "refused a call to" in out and "(worker 'hostc'): no token" in out, out
    lost_a = re.search(r"hosta has been silent for \d+ s \(grace 4 s\): presumed dead; trial\(s\) (\d+) run again",
                       out)
    lost_b = re.search(r"hostb has been silent for \d+ s \(grace 4 s\): presumed dead; trial\(s\) (\d+) run again",
                       out)
    assert lost_a and lost_b, out
    late = lost_b.group(1)
    assert f"late result of trial {late} from hostb ignored: it was handed back when the worker was presumed dead" \
        in out, out
    assert f"trial(s) {late} run elsewhere, and their results here are not written" in b.output, b.output

    # exactly the grid, each trial once, every record whole
    s = runner.with_backend(spec.load(chief.cwd / "tiny.toml"))
    assert run_dir == runner.run_dir_of(s, shared)
    t = records.load(run_dir).trials
    assert sorted(zip(t["activation"], t["dropout"], t["seed"])) == GRID
    assert t["trial_id"].is_unique and set(t["status"]) == {"completed"} and t["damaged"].isna().all()
    assert len(list(run_dir.glob("trial_*"))) == len(GRID) and not list(run_dir.glob("trial_*/*.tmp"))
    oracle = json.loads((run_dir / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == sorted(t["trial_id"]) and len(oracle["end_order"]) == len(GRID)
    meta = json.loads((run_dir / "run.json").read_text())
    assert TOKEN not in json.dumps(meta) and meta["invocations"][-1]["exit"] == "completed"
    print(f"multi-host study: {took:.1f} s")


def test_a_paused_local_worker_is_presumed_dead_killed_and_replaced(tmp_path):
    faults = tmp_path / "faults"
    faults.mkdir()
    (faults / "sitecustomize.py").write_text(SITECUSTOMIZE)
    chief = Host(tmp_path, "chief", faults, ABLATION_TEST_STOP_AT="1", ABLATION_TEST_STOP_WHO="worker0")
    (chief.cwd / "tiny.toml").write_text(TINY.replace("seeds = [0, 1]", "seeds = [0]"))   # 4 trials
    try:
        chief.start("run", "tiny.toml", "--out", "runs", "--no-report", "--no-pack", "--heartbeat-grace", "3")
        rc = chief.wait(DEADLINE_S)
    finally:
        chief.stop()
    out = chief.output
    assert rc == 0, out[-3000:]
    assert re.search(r"worker0 has been silent for \d+ s \(grace 3 s\): presumed dead; trial\(s\) \d+ run again", out)
    assert "worker0 was killed by SIGKILL" in out, out
    run_dir = next((chief.cwd / "runs").iterdir())
    t = records.load(run_dir).trials
    assert sorted(zip(t["activation"], t["dropout"], t["seed"])) == [g for g in GRID if g[2] == 0]
    assert t["trial_id"].is_unique and set(t["status"]) == {"completed"}


def test_one_local_worker_is_the_spare_started_before_the_checks_and_an_unused_spare_ends(tmp_path, monkeypatch):
    """The first local worker is a spare process that imported while the chief checked the study, then took
    its `ablation worker` arguments on stdin; a spare the run does not use (its checks failed) exits."""
    from ablation.engine import cluster

    spares: list = []

    class Recording(cluster.Spare):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.started, self.handed = self.proc, None
            spares.append(self)

        def hand(self, args, env):
            self.handed = (args, super().hand(args, env))
            return self.handed[1]

    monkeypatch.setattr(cluster, "Spare", Recording)
    run_dir = runner.run(spec.loads(TINY), out_dir=tmp_path / "runs", progress=False)
    (used,) = spares
    args, proc = used.handed
    assert args[:2] == ["worker", str(run_dir / "study.toml")] and proc is used.started and proc.returncode == 0
    assert sorted(records.load(run_dir).trials["status"]) == ["completed"] * 8
    log = (run_dir / "workers.log").read_text()
    assert log.count(" started (pid ") == 1 and f"(pid {proc.pid}, all cores)" in log  # no other worker
    phases = json.loads((run_dir / "run.json").read_text())["invocations"][-1]["phases"]
    assert 0 <= phases["worker_start_s"] < phases["trials_s"]  # counted from the hand-over, not the process start

    (tmp_path / "m.py").write_text(BREAKS_MODEL)
    np = __import__("numpy")
    x = np.random.default_rng(0).random((20, 3), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(20) % 2, x_test=x[:4], y_test=np.arange(4) % 2)
    (tmp_path / "s.toml").write_text('[study]\nname = "b"\nseeds = [0]\n[data]\npath = "d.npz"\n[model]\n'
                                     'factory = "m.py:breaks"\n[train]\nepochs = 1\n[grid]\nlearning_rate = [0.01, 0.1]\n')
    with __import__("pytest").raises(spec.SpecError, match="this layer breaks in training"):  # the checks' step
        runner.run(spec.load(tmp_path / "s.toml"), out_dir=tmp_path / "bad", progress=False)
    unused = spares[-1]
    assert unused is not used and unused.handed is None  # discarded: ended, by its own exit or by SIGTERM
    assert unused.started.poll() in (0, -signal.SIGTERM)
    assert not (tmp_path / "bad").exists()


BREAKS_MODEL = """
import keras

class TrainingOnly(keras.layers.Layer):
    def call(self, x, training=None):
        if training:
            raise ValueError("this layer breaks in training")
        return x

def breaks(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes)(TrainingOnly()(inputs)))
"""


def test_a_worker_that_ends_leaves_no_progress_note_for_the_progress_line(tmp_path):
    """A worker that exits (recycled, killed, done) has its note removed: the progress line would otherwise
    show its last epoch beside its successor's until the run ends. Other workers' notes stay."""
    import io
    import types

    from ablation.base import rundir
    from ablation.engine import cluster

    rundir.write_progress(tmp_path, "worker0", {"epoch": 78, "epochs": 100, "members": []})
    rundir.write_progress(tmp_path, "worker1", {"epoch": 7, "epochs": 100, "members": []})
    chief = types.SimpleNamespace(token=None, say=None)
    oracle = types.SimpleNamespace(release=lambda tuner_id: [], done=lambda: True)
    local = cluster.LocalCluster(chief, oracle, "127.0.0.1:1", [], 1, io.BytesIO(), lambda line: None,
                                 run_dir=tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    worker = cluster._Worker("worker0", proc, (None, None))
    local.live.append(worker)
    local._ended(worker)
    assert [note["epoch"] for note in rundir.read_progress(tmp_path)] == [7]
    assert not local.live
