"""Run a study: keras-tuner's grid search, one trial per (grid point, seed), resumable, parallel.

``run(spec)`` checks everything it can before any work (the study against its data set, every
claim's metric, the paths and the chief's address), makes the run folder ``<out>/<study>-<hash8>``
(the hash covers the resolved spec, so an edited study never resumes an old run), takes its lock
(``run.lock``: one ``ablation run`` per run folder), records the invocation in ``run.json`` and
lets keras-tuner's ``GridSearchOracle`` hand out the trials. Running the same study again resumes:
the oracle is rebuilt from the trial folders, finished trials are kept and every other one runs
again, whatever killed the last run and whatever its worker layout (:mod:`ablation.engine.resume`).

The trials train in worker processes (:mod:`ablation.engine.cluster`): this process serves the oracle
over gRPC and watches N local workers (``ablation worker``), replacing one that dies or grows;
workers on other machines join the same way, given the chief's address and a shared run folder.
``in_process=True`` trains in this process instead (no chief; for debugging).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from ablation.base import phases as phases_module
from ablation.engine import auth, backend_choice, cluster, heartbeat, preflight
from ablation.base import checks, files, rundir
from ablation.spec import preregistration
from ablation.stats import records
from ablation.engine.options import RunOptions
from ablation.engine.progress import Console, Progress, StudyFailed, failure_line
from ablation.engine.cluster import RunFailed
from ablation.spec import SpecError, StudySpec

TUNER_ENV = cluster.TUNER_ENV
# What the command line may set, and the section of the spec it sets; recorded in run.json.
OVERRIDABLE = {"precision": "train", "jit_compile": "train", "backend": "study"}
EXITS = ("running", "completed", "interrupted", "failed")  # how an invocation in run.json ended


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
    from ablation.base.backend import BACKENDS
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
    from ablation.base import backend

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


def run(spec: StudySpec, out_dir: str | os.PathLike = "runs", workers: int | None = None, *,
        options: RunOptions | None = None, **settings: Any) -> Path:
    """Run (or resume) every trial of a study.

    Args:
        spec: a validated study (``spec.load``); ``overrides`` from the command line are applied on top.
        out_dir: where run folders live.
        workers: local worker processes that train (default 1; also a field of ``options``).
        options: how the run runs (:class:`~ablation.engine.options.RunOptions`: workers, pack size, the
            chief's address, timeouts, recycling, overrides, progress, the claims' registration).
        **settings: fields of ``RunOptions`` given one by one (``pack_size=1, in_process=True``); they
            replace those of ``options``.

    Returns:
        The run folder.

    Raises:
        SpecError, ValueError: bad input, before anything is written.
        files.FolderLocked: another process runs this study in this run folder.
        RunFailed: the run could not go on (workers keep dying, no space left on the device);
            ``StudyFailed`` (a RunFailed) when every trial failed, naming the first failure.
    """
    if workers is not None:
        settings["workers"] = workers
    opts = (options or RunOptions()).replace(**settings)
    checks.integer("workers", opts.workers, 1)
    return _run(spec, out_dir, opts)


def serve_chief(spec: StudySpec, out_dir: str | os.PathLike, port: int = 0, host: str = "127.0.0.1", *,
                overrides: dict[str, Any] | None = None, progress: bool | Callable[[str], None] = True,
                command: str | None = None, token: str | None = None,
                heartbeat_grace: float = heartbeat.HEARTBEAT_GRACE, backend_rule: bool = False) -> Path:
    """Run a study with no local workers: serve its oracle until remote workers have ended every trial
    (``backend_rule``: no backend was named; run.json records that the default stays, remote workers choose)."""
    return _run(spec, out_dir, RunOptions(workers=0, overrides=overrides or {}, progress=progress, command=command,
                                          host=host, port=port, recycle_mib=None, token=token,
                                          backend_rule=backend_rule,
                                          heartbeat_grace=heartbeat_grace))


def work(spec: StudySpec, out_dir: str | os.PathLike, chief: str, *, tuner_id: str | None = None,
         threads: int | None = None, cpus: list[int] | None = None, pack_size: int | None = None,
         chief_timeout: float = cluster.CHIEF_TIMEOUT, recycle_mib: float | None = None,
         token: str | None = None) -> int:
    """Join a running study as a worker (:func:`ablation.engine.cluster.work`); returns the exit status."""
    return cluster.work(with_backend(spec), out_dir, chief, tuner_id=tuner_id, threads=threads, cpus=cpus,
                        pack_size=pack_size, chief_timeout=chief_timeout, recycle_mib=recycle_mib, token=token)


def make_tuner(spec: StudySpec, out_dir: str | os.PathLike, on_trial_end: Callable | None = None,
               pack_size: int | None = None):
    """The keras-tuner tuner of a study (grid search, resumes from the run folder)."""
    from ablation.engine.tuner import AblationTuner

    return AblationTuner(spec, out_dir, on_trial_end=on_trial_end, pack_size=pack_size)


def _run(spec: StudySpec, out_dir: str | os.PathLike, opts: RunOptions) -> Path:
    began, started = time.perf_counter(), phases_module.since_process_start()
    spec = apply_overrides(spec, opts.overrides)
    pinned = spec.backend  # the user's (--backend, [study] backend), or None
    spec = with_backend(spec)  # this process's backend; the rule may start the workers on another
    out_dir = Path(out_dir)
    if spec.in_memory and opts.workers == 1:  # a function object or arrays given from Python exist only here
        opts = opts.replace(in_process=True)
    # one local worker on every core, started as soon as the backend it will run on is known (a zoo model: now;
    # a model function: once the checks have built its first model), so it imports while this process checks
    spares: list[cluster.Spare] = []

    def start_spare(traits: backend_choice.Traits) -> None:
        if not spares:
            spares.append(cluster.Spare(backend_choice.decide(spec.backend, pinned=pinned, by_rule=opts.backend_rule,
                                                               traits=traits).backend))

    early = start_spare if opts.workers == 1 and rule_cannot(opts) is None else None
    if early is not None and spec.model.factory is None:
        early(preflight.zoo_traits(spec))
    try:
        return _run_checked(spec, pinned, out_dir, opts, began, started, early, spares)
    finally:
        for spare in spares:
            spare.discard()  # unused: the checks failed, or the final choice took the other backend (no-op if handed)


def _run_checked(spec: StudySpec, pinned: str | None, out_dir: Path, opts: RunOptions, began: float,
                 started: float, early: Callable[[backend_choice.Traits], None] | None,
                 spares: list[cluster.Spare]) -> Path:
    """:func:`_run` from the checks on (``early``: starts the first worker once a model function's first model
    says which backend it runs on; ``spares``: that worker, already importing, if started)."""
    in_process = opts.in_process
    token, generated = (None, False) if in_process else auth.chief_token(opts.host, opts.token,
                                                                         out_dir / spec.run_name)  # before any bind
    say = Console(opts.progress)
    say(f"study {spec.name}: {spec.n_trials} trials; checking the data set and the model (built, one step "
        f"trained) before the first trial")  # the first line comes before the checks' seconds
    checked = preflight.check(spec, out_dir, None if in_process else (opts.host, opts.port), workers=opts.workers,
                              on_model=early)
    choice = backend_choice.decide(spec.backend, pinned=pinned, by_rule=opts.backend_rule,
                                   traits=checked.traits, where_not=rule_cannot(opts))
    spare = next((s for s in spares if s.backend == choice.backend), None)  # else discarded by _run
    if choice.backend != spec.backend:  # the workers' backend: the run folder is that backend's
        spec = dataclasses.replace(spec, backend=choice.backend)
        preflight.check_out_dir(out_dir, spec.run_name)
        token, generated = auth.chief_token(opts.host, opts.token, out_dir / spec.run_name)
    opts = opts.replace(overrides={**opts.overrides, "backend": spec.backend})
    run_dir = out_dir / spec.run_name
    phases = {"start_s": started, "checks_s": time.perf_counter() - began}
    opts = opts.replace(command=opts.command or _default_command(spec, opts.overrides))
    fresh = not run_dir.exists()
    lock = files.FolderLock(run_dir / rundir.LOCK, command=opts.command)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
        entry = _begin_invocation(spec, run_dir, opts, lock, choice)
        entry["phases"] = phases
        if generated:
            auth.keep(run_dir, token)  # for workers that share the run folder
    except BaseException as exc:
        lock.release()
        if fresh:
            shutil.rmtree(run_dir, ignore_errors=True)
        problem = _write_problem(exc)
        if problem is not None:
            raise RunFailed(problem) from exc
        raise
    start = time.perf_counter()
    watcher = None
    done_before = {d.name for d in rundir.trial_dirs(run_dir) if (d / rundir.RESULT).is_file()}
    try:
        tuner = make_tuner(spec, out_dir, pack_size=opts.pack_size)
        tuner.oracle.verbose = 0  # keras-tuner's own per-trial tables: the progress lines say it
        entry["repairs"] = list(tuner.oracle.repairs)
        for note in tuner.oracle.repairs:
            say(f"resume: {note}")
        watcher = Progress(spec, run_dir, say, workers=1 if in_process else opts.workers, pack_size=opts.pack_size,
                           backend=choice.text())
        if in_process:
            tuner.oracle.on_trial_end = watcher.update
            tuner.on_epoch = watcher.poll
            tuner.search(verbose=0)
        else:
            _run_local_cluster(tuner.oracle, spec, run_dir, opts, watcher, say, token=token, spare=spare)
        phases["trials_s"] = time.perf_counter() - start
        recs = records.load(run_dir)
        for name in rundir.FRAMES:  # derived copies for reading without Python
            files.atomic_write_text(run_dir / f"{name}.csv", getattr(recs, name).to_csv(index=False), durable=False)
        phases["records_s"] = time.perf_counter() - start - phases["trials_s"]
        from ablation.train import training

        results = {d.name: files.read_json(d / rundir.RESULT, default={}) or {} for d in rundir.trial_dirs(run_dir)}
        entry["train_paths"] = training.path_summary(results.values())  # each trial's training path, and why
        phases.update(phases_module.total(r for name, r in results.items() if name not in done_before))
        entry.update(exit="completed")
    except KeyboardInterrupt:
        entry.update(exit="interrupted")
        raise
    except BaseException as exc:
        entry.update(exit="failed", error=_one_line(exc))
        problem = _write_problem(exc)
        if problem is not None:
            raise RunFailed(problem) from exc
        raise
    finally:
        entry["trials"] = (len(watcher.seen) - watcher.already) if watcher is not None else 0
        shutil.rmtree(run_dir / rundir.PROGRESS, ignore_errors=True)
        say.clear()
        _end_invocation(run_dir, entry, time.perf_counter() - start)
        lock.release()
    counts = recs.trials["status"].value_counts().to_dict()
    say(f"done: {len(recs.trials)} trials ({', '.join(f'{v} {k}' for k, v in counts.items())}) in {run_dir}")
    failed = failure_line(run_dir)  # exit status: 1 when every trial failed, else 0 with the failures named
    if failed is not None and counts.get("failed", 0) == len(recs.trials):
        raise StudyFailed(failed)
    if failed is not None:
        say(failed)
    return run_dir


def _run_local_cluster(oracle: Any, spec: StudySpec, run_dir: Path, opts: RunOptions, watcher: Progress,
                       say: Callable[[str], None], *, token: str | None = None,
                       spare: cluster.Spare | None = None) -> None:
    """Serve the oracle on ``host:port`` (bound once) and run the local workers until the grid is done
    (``spare``: the first worker, started before the checks)."""
    host, port, workers = opts.host, opts.port, opts.workers
    chief = cluster.serve(oracle, host, port, token=token, grace=opts.heartbeat_grace, say=say)
    try:
        address = cluster.connect_address(host, chief.port)
        if not workers or host not in ("127.0.0.1", "localhost", "::1") or port:
            needs = (f"with the chief's token ({auth.TOKEN_ENV}, --token, or the run folder's run.json)"
                     if token is not None else "no token: reachable from this machine only")
            say(f"chief listening on {host}:{chief.port}: join with 'ablation worker {run_dir / rundir.STUDY} --out "
                f"{run_dir.parent} --chief {address if host in ('0.0.0.0', '::') else f'{host}:{chief.port}'}' "
                f"(same profile and options; {needs}); the channel is not encrypted (docs/scale-out.md)")
        with open(run_dir / rundir.WORKERS_LOG, "ab") as log:
            local = cluster.LocalCluster(chief, oracle, address, _worker_args(spec, run_dir, opts), workers, log, say,
                                         chief_timeout=opts.chief_timeout, recycle_mib=opts.recycle_mib,
                                         spare=spare, run_dir=run_dir)
            try:
                local.run(watcher.poll)
            finally:
                local.stop()
    finally:
        chief.stop()


def _worker_args(spec: StudySpec, run_dir: Path, opts: RunOptions) -> list[str]:
    """The ``ablation worker`` arguments that name this run: the study, --out, profile, overrides.

    A study with relative paths (``data.path``, a factory's file) is read where it lies, so that they
    resolve as they did for the chief; otherwise the run folder's copy.
    """
    study = spec.path.resolve() if spec.path is not None and (spec.data.file or spec.model.factory) else (
        run_dir / rundir.STUDY)
    args = [str(study), "--out", str(run_dir.parent)]
    if spec.profile:
        args += ["--profile", spec.profile]
    for key, value in opts.overrides.items():  # OVERRIDABLE: precision, jit_compile, backend
        if key == "jit_compile":
            args += ["--xla" if value else "--no-xla"]
        else:
            args += [f"--{key}", str(value)]
    if opts.pack_size is not None:
        args += ["--pack-size", str(opts.pack_size)]
    return args


def rule_cannot(opts: RunOptions) -> str | None:
    """Why the backend rule cannot choose for this run (it starts only local workers on its choice), or None."""
    if opts.in_process:
        return "the trials train in this process"
    if not opts.workers or not auth.is_loopback(opts.host) or opts.port:
        return "workers on other machines may join (each starts with its own backend)"
    return None


def _write_problem(exc: BaseException) -> str | None:
    """A one-line explanation when ``exc`` is a write the disk refused (full, read-only), else None."""
    if isinstance(exc, OSError) and exc.errno in cluster.FATAL_ERRNOS:
        where = f" writing {exc.filename}" if exc.filename else ""
        return (f"{exc.strerror or os.strerror(exc.errno)}{where}; finished trials are kept: free space (or make "
                f"the folder writable) and run the same command again to resume")
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ----------------------------------------------------------------------------- run.json

def _begin_invocation(spec: StudySpec, run_dir: Path, opts: RunOptions, lock: files.FolderLock,
                      choice: backend_choice.BackendChoice | None = None) -> dict[str, Any]:
    """Write the study copy, the resolved spec and run.json with a new invocation entry; return the entry
    (``backend_choice``: who chose the backend and why, in the entry and at the top of run.json)."""
    # Same hash, so the same trials; a study file whose claims or description were edited since
    # replaces the copy (and the resolved spec). The claims registered when the run started stay in
    # run.json (ablation.spec.preregistration): the report checks those and shows later edits apart.
    files.atomic_write_text(run_dir / rundir.STUDY, spec.source_text)
    files.atomic_write_json(run_dir / rundir.SPEC, spec.to_dict())
    try:
        meta = files.read_json(run_dir / rundir.RUN, default=None)
    except files.DamagedFile:
        from ablation.engine import resume

        resume.set_aside(run_dir / rundir.RUN)
        meta = None
    if not isinstance(meta, dict) or meta.get("hash") != spec.hash:
        meta = {"name": spec.name, "hash": spec.hash, "profile": spec.profile, "overrides": dict(opts.overrides),
                "created": _now(), "wall_time_s": 0.0}
    invocations = meta.get("invocations") if isinstance(meta.get("invocations"), list) else []
    for old in invocations:  # this process holds the lock: an invocation still "running" was killed
        if isinstance(old, dict) and old.get("exit") == "running":
            old["exit"] = "interrupted"
    entry = {"start": _now(), "end": None, "exit": "running", "error": None, "host": socket.gethostname(),
             "pid": os.getpid(), "command": opts.command, "backend": spec.backend, "workers": opts.workers,
             "in_process": opts.in_process, "pack_size": opts.pack_size, "hardware": hardware(), "versions": versions(),
             "trials": 0, "repairs": []}
    if choice is not None:
        entry["backend_choice"] = meta["backend_choice"] = choice.to_dict()
    if lock.took_over:
        entry["repairs"].append(f"took over a stale {rundir.LOCK} ({files.describe_holder(lock.took_over)})")
    invocations.append(entry)
    finished = sum((d / rundir.RESULT).exists() for d in rundir.trial_dirs(run_dir))
    if preregistration.register(meta, spec.claims, finished_trials=finished, again=opts.register_claims):
        entry["registered_claims"] = meta[preregistration.KEY]["hash"]
    meta.update(command=opts.command, hardware=entry["hardware"], versions=entry["versions"], workers=opts.workers,
                finished=None, invocations=invocations)
    meta.pop("sessions", None)
    files.atomic_write_json(run_dir / rundir.RUN, meta)
    return entry


def _end_invocation(run_dir: Path, entry: dict[str, Any], seconds: float) -> None:
    """Close this invocation's entry in run.json (best effort: a full disk must not hide the first error)."""
    entry.update(end=_now(), seconds=round(seconds, 3))
    try:
        meta = files.read_json(run_dir / rundir.RUN, default={}) or {}
        invocations = meta.get("invocations") or []
        for i, old in enumerate(invocations):
            if isinstance(old, dict) and old.get("start") == entry["start"] and old.get("pid") == entry["pid"]:
                invocations[i] = entry
        meta["invocations"] = invocations
        meta["wall_time_s"] = float(meta.get("wall_time_s") or 0.0) + seconds
        if entry["exit"] == "completed":
            meta["finished"] = entry["end"]
        files.atomic_write_json(run_dir / rundir.RUN, meta)
    except (OSError, ValueError):
        pass


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
