"""Run a study: keras-tuner's grid search, one trial per (grid point, seed), resumable, parallel.

``run(spec)`` makes the run folder ``<out>/<study>-<hash8>`` (the hash covers the resolved spec,
so an edited study never resumes an old run), writes the study file and metadata into it, and
lets keras-tuner's ``GridSearchOracle`` hand out the trials. Running the same study again
resumes: keras-tuner reloads its oracle from disk, skips finished trials and re-queues the one
that was interrupted.

With ``workers > 1`` the trials run in parallel on keras-tuner's own distributed engine: a chief
process serves the oracle over gRPC on 127.0.0.1 and N worker processes (``ablation worker``)
each pull trials from it, pinned to their share of the CPU cores (or one GPU each). Workers on
other machines join the same way, given the chief's address and a shared run folder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ablation import files, records, rundir
from ablation.spec import SpecError, StudySpec

TUNER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
# What the command line may set, and the section of the spec it sets; recorded in run.json.
OVERRIDABLE = {"precision": "train", "jit_compile": "train", "backend": "study"}


def apply_overrides(spec: StudySpec, overrides: dict[str, Any] | None) -> StudySpec:
    """Return ``spec`` with command-line overrides applied (checked like the study file's own values).

    Args:
        spec: a validated study.
        overrides: e.g. ``{"precision": "mixed_bfloat16", "backend": "jax"}``; keys from ``OVERRIDABLE``.

    Returns:
        A new StudySpec (with its own hash) or ``spec`` itself when there is nothing to apply.
    """
    if not overrides:
        return spec
    from ablation.backend import BACKENDS
    from ablation.spec import values as v
    from ablation.spec.sections import check_train_value

    train, study = {}, {}
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise SpecError(key, f"cannot be set from the command line; settable: {', '.join(OVERRIDABLE)}")
        if OVERRIDABLE[key] == "train":
            train[key] = check_train_value(key, value, f"train.{key}")
        else:
            study[key] = v.choice(value, f"study.{key}", BACKENDS)
    return dataclasses.replace(spec, train=dataclasses.replace(spec.train, **train), **study)


def with_backend(spec: StudySpec) -> StudySpec:
    """``spec`` with ``backend`` set to the backend Keras runs on (a SpecError if the study asks for another)."""
    from ablation import backend

    running = backend.name()
    if spec.backend is None:
        return dataclasses.replace(spec, backend=running)
    if spec.backend != running:
        raise SpecError("study.backend", f"the study runs on {spec.backend!r} but Keras runs on {running!r} in this "
                        f"process; run it with 'ablation run --backend {spec.backend}' (or KERAS_BACKEND={spec.backend})")
    return spec


def run_dir_of(spec: StudySpec, out_dir: str | os.PathLike = "runs") -> Path:
    """The folder a study's run lives in (its name holds the hash of the spec on this process's backend)."""
    return Path(out_dir) / with_backend(spec).run_name


def run(spec: StudySpec, out_dir: str | os.PathLike = "runs", workers: int = 1, *,
        overrides: dict[str, Any] | None = None, progress: bool | Callable[[str], None] = False,
        command: str | None = None, pack_size: int | None = None) -> Path:
    """Run (or resume) every trial of a study.

    Args:
        spec: a validated study (``spec.load``); command-line ``overrides`` are applied on top.
        out_dir: where run folders live.
        workers: 1 runs the trials in this process; N > 1 runs a chief oracle and N local worker
            processes through keras-tuner's distributed mode.
        overrides: settings from the command line (``precision``, ``jit_compile``, ``backend``).
        progress: True prints a progress line per finished trial; a callable receives the lines.
        command: the command line to record for the report's "Reproduce" section.
        pack_size: the most trials trained as one pack (1: each alone); None chooses from the
            model's size (``ablation.pack.default_limit``).

    Returns:
        The run folder.
    """
    from ablation import checks

    checks.integer("workers", workers, 1)
    if pack_size is not None:
        checks.integer("pack_size", pack_size, 1)
    spec = with_backend(apply_overrides(spec, overrides))
    overrides = {**(overrides or {}), "backend": spec.backend}
    run_dir = Path(out_dir) / spec.run_name
    fresh = not run_dir.exists()
    _check_data(spec)  # fails before anything is written when the data cannot be loaded
    from ablation import factory

    factory.preflight(spec, workers)  # imports a user's model function and checks its arguments
    try:
        _write_run_files(spec, run_dir, overrides, command, workers)
    except BaseException:
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    say = _sayer(progress)
    start = time.perf_counter()
    watcher = _Progress(spec, run_dir, say)
    if workers == 1:
        tuner = make_tuner(spec, out_dir, on_trial_end=watcher.update, pack_size=pack_size)
        tuner.search(verbose=0)
    else:
        _run_local_cluster(spec, run_dir, workers, overrides, watcher, pack_size)
    _finish_run_files(run_dir, time.perf_counter() - start)
    recs = records.load(run_dir)
    for name in rundir.FRAMES:  # derived copies for reading without Python
        files.atomic_write_text(run_dir / f"{name}.csv", getattr(recs, name).to_csv(index=False), durable=False)
    counts = recs.trials["status"].value_counts().to_dict()
    say(f"done: {len(recs.trials)} trials ({', '.join(f'{v} {k}' for k, v in counts.items())}) in {run_dir}")
    return run_dir


def make_tuner(spec: StudySpec, out_dir: str | os.PathLike, on_trial_end: Callable | None = None,
               pack_size: int | None = None):
    """The keras-tuner tuner of a study (grid search, resumes from the run folder)."""
    from ablation.tuner import AblationTuner

    return AblationTuner(spec, out_dir, on_trial_end=on_trial_end, pack_size=pack_size)


def work(spec: StudySpec, out_dir: str | os.PathLike, chief: str, *, tuner_id: str | None = None,
         threads: int | None = None, cpus: list[int] | None = None, pack_size: int | None = None) -> None:
    """Join a running study as a worker: pull trials from the chief oracle until none are left.

    Args:
        spec: the same study (and profile, and overrides) the chief runs; its run folder must be
            shared with the chief.
        out_dir: the folder that holds the run folder.
        chief: ``HOST:PORT`` of the chief oracle.
        tuner_id: a unique worker name (default: ``worker-<host>-<pid>``).
        threads: intra-op threads for this worker (under JAX set before JAX starts, by the command line).
        cpus: CPU cores to pin this process to.
        pack_size: as for :func:`run`.
    """
    host, _, port = chief.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Invalid value for argument 'chief': expected HOST:PORT. Received: chief={chief!r}")
    if cpus:
        os.sched_setaffinity(0, cpus)
    os.environ.update({"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": port,
                       "KERASTUNER_TUNER_ID": tuner_id or f"worker-{socket.gethostname()}-{os.getpid()}"})
    if threads:
        from ablation import backend

        backend.current().set_threads(threads)
    make_tuner(with_backend(spec), out_dir, pack_size=pack_size).search(verbose=0)


def serve_chief(spec: StudySpec, out_dir: str | os.PathLike, port: int, host: str = "127.0.0.1") -> None:
    """Serve the study's oracle to workers (blocks until every trial has ended)."""
    os.environ.update({"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port),
                       "KERASTUNER_TUNER_ID": "chief"})
    make_tuner(with_backend(spec), out_dir).search(verbose=0)


# ----------------------------------------------------------------------------- local cluster

def _run_local_cluster(spec: StudySpec, run_dir: Path, workers: int, overrides: dict | None,
                       watcher: "_Progress", pack_size: int | None = None) -> None:
    port = _free_port()
    base = [sys.executable, "-m", "ablation.cli"]
    # a study with relative paths (data.path, a factory's file) is read where it lies, so they resolve
    study = str(spec.path.resolve()) if spec.path is not None else str(run_dir / "study.toml")
    common = [study, "--out", str(run_dir.parent)]
    if spec.profile:
        common += ["--profile", spec.profile]
    for key, value in (overrides or {}).items():  # OVERRIDABLE: precision, jit_compile, backend
        if key == "jit_compile":
            common += ["--xla" if value else "--no-xla"]
        else:
            common += [f"--{key}", str(value)]
    env = {k: v for k, v in os.environ.items() if k not in TUNER_ENV}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log = open(run_dir / "workers.log", "ab")
    procs = [subprocess.Popen(base + ["chief", *common, "--port", str(port)], env=env, stdout=log, stderr=log)]
    gpus = _gpus()
    cores = sorted(os.sched_getaffinity(0))
    for i in range(workers):
        wenv = dict(env)
        args = ["worker", *common, "--chief", f"127.0.0.1:{port}", "--tuner-id", f"worker{i}"]
        if pack_size is not None:
            args += ["--pack-size", str(pack_size)]
        if gpus:
            wenv["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
        else:
            share = cores[i::workers] if len(cores) >= workers else cores
            wenv["CUDA_VISIBLE_DEVICES"] = ""
            args += ["--threads", str(len(share)), "--cpus", ",".join(map(str, share))]
        procs.append(subprocess.Popen(base + args, env=wenv, stdout=log, stderr=log))
    try:
        while any(p.poll() is None for p in procs[1:]):
            watcher.poll()
            time.sleep(0.5)
        watcher.poll()
        # Every worker has been told there is nothing left, so the oracle is saved and idle;
        # keras-tuner's chief only notices after a long sleep: end it here.
        try:
            procs[0].wait(timeout=2)
        except subprocess.TimeoutExpired:
            procs[0].terminate()
            procs[0].wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        log.close()
    bad = [p.returncode for p in procs[1:] if p.returncode != 0]
    if bad:
        raise RuntimeError(f"{len(bad)} of {workers} workers exited with an error; see {run_dir / 'workers.log'}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU")]


# ----------------------------------------------------------------------------- run files

def _check_data(spec: StudySpec) -> None:
    from ablation import data

    try:
        data.load_spec(spec.data)
    except (OSError, RuntimeError, ValueError) as exc:
        where = "data.path" if spec.data.file else f"data.{spec.data.name}"
        raise SpecError(where, str(exc).splitlines()[0]) from exc


def _write_run_files(spec: StudySpec, run_dir: Path, overrides: dict | None, command: str | None,
                     workers: int) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    # Same hash, so the same trials; a study file whose claims or description were edited since
    # replaces the copy (and the resolved spec), so the report checks the claims as they are now.
    files.atomic_write_text(run_dir / rundir.STUDY, spec.source_text)
    files.atomic_write_json(run_dir / rundir.SPEC, spec.to_dict())
    meta = files.read_json(run_dir / rundir.RUN, default=None) or {
        "name": spec.name, "hash": spec.hash, "profile": spec.profile, "overrides": overrides or {},
        "created": _now(), "wall_time_s": 0.0, "sessions": []}
    meta.update(command=command or meta.get("command") or _default_command(spec, overrides),
                hardware=hardware(), versions=versions(), workers=workers, finished=None)
    files.atomic_write_json(run_dir / rundir.RUN, meta)


def _finish_run_files(run_dir: Path, seconds: float) -> None:
    meta = files.read_json(run_dir / rundir.RUN, default={})
    meta["wall_time_s"] = float(meta.get("wall_time_s") or 0.0) + seconds
    meta.setdefault("sessions", []).append({"finished": _now(), "seconds": seconds})
    meta["finished"] = _now()
    files.atomic_write_json(run_dir / rundir.RUN, meta)


def _default_command(spec: StudySpec, overrides: dict | None) -> str:
    parts = ["ablation", "run", str(spec.path or spec.name)]
    if spec.profile:
        parts += ["--profile", spec.profile]
    for key, value in (overrides or {}).items():
        parts += (["--xla" if value else "--no-xla"] if key == "jit_compile" else [f"--{key}", str(value)])
    return " ".join(parts)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def hardware() -> dict[str, Any]:
    """CPU model, core count and GPUs of this machine (for the report's header)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = []
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
        gpus = [line.split(" (UUID")[0] for line in out.splitlines() if line.startswith("GPU")]
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "gpu": ", ".join(gpus) or "none",
            "platform": platform.platform()}


def versions() -> dict[str, str]:
    """Versions of Python and the packages a result depends on."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist, key in (("keras-ablation", "ablation"), ("tensorflow", "tensorflow"), ("jax", "jax"),
                      ("jaxlib", "jaxlib"), ("keras", "keras"),
                      ("keras-tuner", "keras_tuner"), ("numpy", "numpy"), ("pandas", "pandas"),
                      ("seaborn", "seaborn"), ("mnist1d", "mnist1d"), ("scikit-learn", "scikit_learn")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


# ----------------------------------------------------------------------------- progress

def _sayer(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, flush=True)
    return lambda line: None


class _Progress:
    """Progress lines from the trial folders: trial i of N, elapsed, time left, best so far."""

    def __init__(self, spec: StudySpec, run_dir: Path, say: Callable[[str], None]) -> None:
        self.total, self.run_dir, self.say = spec.n_trials, run_dir, say
        self.start = time.perf_counter()
        self.seen: set[str] = {p.parent.name for p in run_dir.glob(f"trial_*/{rundir.RESULT}")}
        self.already = len(self.seen)
        self.best: tuple[float, str] | None = None
        self.metric = spec.objective

    def update(self, *_: Any) -> None:
        self.poll()

    def poll(self) -> None:
        for path in sorted(self.run_dir.glob(f"trial_*/{rundir.RESULT}")):
            if path.parent.name in self.seen:
                continue
            self.seen.add(path.parent.name)
            result = rundir.read_trial(path.parent).result or {}
            value = (result.get("metrics") or {}).get(self.metric)
            label = records.point_label(result.get("point", {})) + f", seed={result.get('seed')}"
            if value is not None and (self.best is None or value < self.best[0]):
                self.best = (value, label)
            done = len(self.seen)
            elapsed = time.perf_counter() - self.start
            new = done - self.already
            left = elapsed / new * (self.total - done) if new else float("nan")
            best = f"{self.metric} {self.best[0]:.4f} ({self.best[1]})" if self.best else "none yet"
            status = result.get("status", "?")
            self.say(f"trial {done}/{self.total} [{status}: {label}]  elapsed {_hms(elapsed)}  "
                     f"left ~{_hms(left)}  best so far: {best}")


def _hms(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"

