"""Trials in worker processes: a chief that serves the study's oracle over gRPC, and workers that train.

``ablation run`` never trains in its own process. It is the *chief*: it holds the run folder's lock,
rebuilds keras-tuner's oracle from the trial folders (:mod:`ablation.engine.oracle`), serves it over gRPC
on a port it binds once (127.0.0.1 unless ``--host`` says otherwise; the port goes to the workers
on their command line), and starts N local worker processes (``ablation worker``) that pull
trials from it, each pinned to its share of the CPU cores (or one GPU each) when N > 1. Workers on
other machines join the same way, given the chief's address and the run folder on shared storage.

What happens when something dies:

- **A local worker dies** (killed, crashed, out of memory): the chief notices its process is gone,
  hands the trials it held back to the queue (:meth:`ablation.engine.oracle._StudyOracle.release`; a trial
  whose record it had already written is kept) and starts a replacement under a new id. Workers
  that keep dying end the run with an error after a few replacements.
- **A worker grows**: a local worker whose memory grew by more than ``RECYCLE_MIB`` since its first
  pack ends itself after a pack (exit status ``EXIT_RECYCLE``) and the chief starts a fresh one, so
  a long study keeps a flat memory footprint whatever Keras or the backend leaks per model.
- **The chief dies**: a local worker sees its parent is gone within a second or two; any worker
  whose chief has not answered for ``--chief-timeout`` seconds (default 60) stops with a one-line
  error. keras-tuner's own calls to the chief wait at most that long too. The trials they held are
  re-run when the study resumes.
- **A worker falls silent** (a remote machine dies or loses the network, a process is paused):
  every worker sends heartbeats (:mod:`ablation.engine.heartbeat`); one that holds trials and has not
  been heard from for ``--heartbeat-grace`` seconds is presumed dead, its trials go back to the
  queue (partial folders set aside as a resume does) and, if it is a local worker, its process is
  killed and replaced. If it comes back, it writes nothing for the trials it lost, and the chief
  ignores and logs their late reports.

A chief that listens on an address other than loopback requires a token, which every worker sends
with every call (:mod:`ablation.engine.auth`). The channel is not encrypted: use a trusted network or an
SSH tunnel (TLS is the next step; docs/scale-out.md).
"""

from __future__ import annotations

import errno
import gc
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ablation.engine import auth, heartbeat
from ablation.base import checks, rundir

EXIT_RECYCLE = 75          # a worker ended itself to bound its memory: the chief starts a fresh one
EXIT_FATAL = 74            # a worker cannot go on (no space left, read-only run folder): no replacement
CHIEF_TIMEOUT = 60.0       # seconds a worker waits for a chief that does not answer
RECYCLE_MIB = 32.0         # memory growth (MiB) after which a local worker is replaced by a fresh one
CHIEF_PID_ENV = "ABLATION_CHIEF_PID"  # set for local workers: the chief is their parent process
TUNER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
SPARE_FLAG = "--spare"      # `python -m ablation.cli --spare`: a worker that waits for its arguments (Spare)
FATAL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
_GRACE_S = 30.0            # how long a chief keeps serving after the last trial, for remote workers to hear STOPPED


class RunFailed(RuntimeError):
    """The run cannot go on (workers keep dying, the disk is full); the message is one line."""


class ChiefLost(RuntimeError):
    """A worker's chief stopped answering; the message is one line."""


# ----------------------------------------------------------------------------- the chief

def check_address(host: str, port: int) -> None:
    """Raise a one-line ``ValueError`` unless this machine can listen on ``host:port`` (checked before any work)."""
    checks.integer("port", port, 0, 65535)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise checks.invalid("host", "an address or host name of this machine", host) from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            what = "port" if exc.errno == errno.EADDRINUSE else "host"
            expected = f"a free port on {host}" if what == "port" else "an address of this machine to listen on"
            raise ValueError(f"{checks.PREFIX} '{what}': expected {expected}. Received: "
                             f"{what}={port if what == 'port' else repr(host)} ({exc.strerror})") from None


class Chief:
    """The oracle served over gRPC: ``server``, the bound ``port`` and the first ``error`` a call raised."""

    RPCS = ("GetSpace", "UpdateSpace", "CreateTrial", "UpdateTrial", "EndTrial", "GetTrial", "GetBestTrials")

    def __init__(self, oracle: Any, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
                 grace: float = heartbeat.HEARTBEAT_GRACE, say: Callable[[str], None] | None = None) -> None:
        from concurrent import futures

        import grpc
        from keras_tuner.src import protos
        from keras_tuner.src.distribute import oracle_chief

        self.error: BaseException | None = None
        self.oracle, self.token = oracle, token
        self.say: Callable[[str], None] = say or (lambda line: None)  # refused calls, silent workers, late results
        self.heartbeats = heartbeat.Heartbeats(oracle, grace, say=self._log)
        self._reporting = threading.Lock()  # a late report is judged and applied while no worker is released
        servicer = oracle_chief.OracleServicer(oracle)
        for name in self.RPCS:  # remember what went wrong in the chief (a full disk), not only tell the worker
            setattr(servicer, name, self._recording(name, getattr(servicer, name)))
        guard = auth.Guard(token, self._log, on_call=self.heartbeats.touch)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), interceptors=(guard,))
        protos.get_service_grpc().add_OracleServicer_to_server(servicer, self.server)
        self.server.add_generic_rpc_handlers((self.heartbeats.handler(),))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = self.server.add_insecure_port(address)
        except RuntimeError:
            self.port = 0
        if not self.port:
            raise RunFailed(f"the chief cannot listen on {address}")
        self.server.start()

    def _log(self, line: str) -> None:
        self.say(line)

    def _recording(self, name: str, method: Callable) -> Callable:
        def call(request: Any, context: Any) -> Any:
            try:
                if name not in ("UpdateTrial", "EndTrial"):
                    return method(request, context)
                trial_id = request.trial_id if name == "UpdateTrial" else request.trial.trial_id
                worker = auth.metadata(context).get(auth.WORKER_KEY)
                with self._reporting:
                    if self.heartbeats.late(worker, trial_id, "result" if name == "UpdateTrial" else "end"):
                        return self._ignored(name, trial_id)
                    return method(request, context)
            except BaseException as exc:
                if self.error is None:
                    self.error = exc
                raise
        return call

    def _ignored(self, name: str, trial_id: str) -> Any:
        """The answer to a late report: what the worker expects, with nothing changed."""
        from keras_tuner.src import protos

        service = protos.get_service()
        if name == "EndTrial":
            return service.EndTrialResponse()
        trial = self.oracle.trials.get(trial_id)
        return service.UpdateTrialResponse(trial=trial.to_proto()) if trial is not None else (
            service.UpdateTrialResponse())

    def check_heartbeats(self) -> list[str]:
        """Presume the silent workers dead (:meth:`ablation.engine.heartbeat.Heartbeats.check`); returns their ids."""
        with self._reporting:
            return self.heartbeats.check()

    def stop(self) -> None:
        self.server.stop(grace=None)


def serve(oracle: Any, host: str = "127.0.0.1", port: int = 0, *, token: str | None = None,
          grace: float = heartbeat.HEARTBEAT_GRACE, say: Callable[[str], None] | None = None) -> Chief:
    """Serve ``oracle`` to workers over gRPC; the port is bound here, once (0: any free port).

    ``token``: what every call must carry (:mod:`ablation.engine.auth`); ``grace``: seconds of silence after
    which a worker's trials run again elsewhere (:mod:`ablation.engine.heartbeat`); ``say``: the chief's lines.
    """
    return Chief(oracle, host, port, token=token, grace=grace, say=say)


def connect_address(host: str, port: int) -> str:
    """The address local workers use to reach a chief listening on ``host``."""
    if host in ("0.0.0.0", "", "localhost"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class _Worker:
    tuner_id: str
    proc: subprocess.Popen
    share: tuple[list[int] | None, str | None]     # (CPU cores, GPU) it runs on
    last_error: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None


def _worker_env() -> dict[str, str]:
    """A local worker's environment before its own settings: this process's, without keras-tuner's worker
    variables, TensorFlow's C++ logging quiet unless set."""
    env = {k: v for k, v in os.environ.items() if k not in TUNER_ENV}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class Spare:
    """A local worker process started before its arguments exist: it imports the backend, Keras, keras-tuner
    and the runner while the chief checks the study (``cli.spare``), then takes its ``ablation worker``
    arguments and environment as one JSON line on stdin (:meth:`hand`). Its imports are most of a worker's
    start-up (4-11 s of the 10-trial tiny study's 26-44 s on this project's 2-core machine), so the first
    worker trains that much sooner. A spare that is not needed (the checks failed, the backend rule chose
    another backend) ends when its stdin closes (:meth:`discard`).
    """

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.proc: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-m", "ablation.cli", SPARE_FLAG], env={**_worker_env(), "KERAS_BACKEND": backend},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def hand(self, args: list[str], env: dict[str, str]) -> subprocess.Popen | None:
        """Give the spare its worker arguments (after ``-m ablation.cli``) and environment; its process, or
        None when it has already ended (the caller starts a fresh worker)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return None
        assert proc.stdin is not None
        try:
            proc.stdin.write((json.dumps({"argv": args, "env": env}) + "\n").encode())
            proc.stdin.close()
        except OSError:  # it ended meanwhile
            proc.wait()
            return None
        return proc

    def discard(self) -> None:
        """End an unused spare: its stdin closes, so a spare done importing exits (status 0); one still
        importing is terminated (SIGTERM; SIGKILL after 5 s)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=0.5)
        except (OSError, subprocess.TimeoutExpired):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class LocalCluster:
    """The local worker processes of one run, watched by the chief (see the module docstring).

    Args:
        chief: the served oracle (:class:`Chief`).
        address: ``HOST:PORT`` the workers reach the chief at.
        worker_args: the ``ablation worker`` arguments every worker shares (study, --out, overrides).
        workers: how many run at once (0: none; remote workers do the work).
        log: where the workers' output goes (each line prefixed with the worker's id).
        say: progress lines.
        chief_timeout, recycle_mib: passed to every worker.
        spare: a :class:`Spare` of this run's backend, the first worker when there is one worker (all cores,
            every GPU): its imports are done by the time the chief has checked the study.
        run_dir: the run folder, whose progress note of a worker that ends is removed (the progress line
            would show its last epoch beside its successor's).
    """

    def __init__(self, chief: Chief, oracle: Any, address: str, worker_args: list[str], workers: int,
                 log: IO[bytes], say: Callable[[str], None], *, chief_timeout: float = CHIEF_TIMEOUT,
                 recycle_mib: float | None = RECYCLE_MIB, spare: Spare | None = None,
                 run_dir: Path | None = None) -> None:
        self.chief, self.oracle, self.address, self.worker_args = chief, oracle, address, worker_args
        self.run_dir = run_dir  # where a worker that ends leaves a progress note to clear
        self.spare = spare  # started before the checks: the first worker, when it runs on all cores
        self.workers = workers
        self.log, self.say = log, say
        self.chief_timeout, self.recycle_mib = chief_timeout, recycle_mib
        self.live: list[_Worker] = []
        self.ended = threading.Event()  # set when a worker has exited: the watch loop wakes
        self.started = 0
        self.failures = 0
        self.max_failures = max(3, 2 * workers)
        self._log_lock = threading.Lock()
        self.env = _worker_env()
        self.env[CHIEF_PID_ENV] = str(os.getpid())
        self.env.pop(auth.TOKEN_ENV, None)
        if chief.token is not None:
            self.env[auth.TOKEN_ENV] = chief.token  # in the environment, not on a command line others can read
        chief.say = self._note

    def shares(self) -> list[tuple[list[int] | None, str | None]]:
        """(CPU cores, GPU) of each local worker: one GPU each, else an equal share of the cores."""
        if self.workers == 1:
            return [(None, None)]  # one worker: every core and every GPU, as in one process
        gpus = _gpus()
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        out = []
        for i in range(self.workers):
            if gpus:
                out.append((None, gpus[i % len(gpus)]))
            else:
                out.append((cores[i::self.workers] if len(cores) >= self.workers else cores or None, ""))
        return out

    def start(self, share: tuple[list[int] | None, str | None]) -> _Worker:
        """Start one worker under a new id."""
        tuner_id = f"worker{self.started}"
        self.started += 1
        cpus, gpu = share
        env = dict(self.env)
        args = [sys.executable, "-m", "ablation.cli", "worker", *self.worker_args, "--chief", self.address,
                "--tuner-id", tuner_id, "--chief-timeout", f"{self.chief_timeout:g}"]
        if self.recycle_mib:
            args += ["--recycle-mib", f"{self.recycle_mib:g}"]
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        if cpus:
            args += ["--threads", str(len(cpus)), "--cpus", ",".join(map(str, cpus))]
        spare, self.spare = self.spare, None
        proc = spare.hand(args[3:], env) if spare is not None and share == (None, None) else None
        if spare is not None and proc is None:
            spare.discard()
        if proc is None:
            proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT)
        worker = _Worker(tuner_id, proc, share)
        with self._log_lock:
            where = f"cpus {','.join(map(str, cpus))}" if cpus else f"GPU {gpu}" if gpu is not None else "all cores"
            self.log.write(f"[chief] {tuner_id} started (pid {proc.pid}, {where})\n".encode())
            self.log.flush()
        worker.reader = threading.Thread(target=self._pump, args=(worker,), daemon=True)
        worker.reader.start()
        self.live.append(worker)
        return worker

    def _note(self, line: str) -> None:
        """A line of the chief's about the workers: in the workers' log, and said."""
        with self._log_lock:
            self.log.write(f"[chief] {line}\n".encode())
            self.log.flush()
        self.say(line)

    def _pump(self, worker: _Worker) -> None:
        """Copy a worker's output into the log, each line prefixed with its id; keep its last error line."""
        assert worker.proc.stdout is not None
        for raw in worker.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith("error: "):
                worker.last_error[:] = [line.removeprefix("error: ")]
            with self._log_lock:
                self.log.write(f"[{worker.tuner_id}] {line}\n".encode())
                self.log.flush()
        worker.proc.wait()  # its output closes as it exits
        self.ended.set()

    def run(self, poll: Callable[[], None]) -> None:
        """Start the workers and watch them until every trial of the grid has ended.

        Raises:
            RunFailed: a worker cannot go on (disk full), or workers keep dying.
        """
        shares = self.shares()
        for share in shares:
            self.start(share)
        while True:
            if self.chief.error is not None:
                raise self.chief.error
            for tuner_id in self.chief.check_heartbeats():  # a silent local worker is killed and replaced
                for worker in self.live:
                    if worker.tuner_id == tuner_id and worker.proc.poll() is None:
                        worker.proc.kill()
            for worker in [w for w in self.live if w.proc.poll() is not None]:
                self._ended(worker)
            if not self.live and self.oracle.done():
                break
            if not self.live and self.workers:  # work is left but nobody runs it (a trial came back late)
                self._failed(None, "every worker has exited with trials left")
                self.start(shares[0])
            poll()
            if self.ended.wait(0.5):  # a worker that ended is seen at once, not at the next half-second
                self.ended.clear()
        if not self.workers:  # remote workers only: let them hear that the study is over
            deadline = time.monotonic() + _GRACE_S
            while self.oracle.tuner_ids and time.monotonic() < deadline:
                time.sleep(0.5)
        poll()

    def _ended(self, worker: _Worker) -> None:
        self.live.remove(worker)
        if worker.reader is not None:
            worker.reader.join(timeout=5)
        if self.run_dir is not None:
            rundir.clear_progress(self.run_dir, worker.tuner_id)
        rc = worker.proc.returncode
        back = self.oracle.release(worker.tuner_id)
        if rc == 0 and not back:
            return
        if rc == EXIT_RECYCLE:
            if back or not self.oracle.done():
                self.start(worker.share)
            return
        if rc == EXIT_FATAL:
            raise RunFailed(f"{worker.tuner_id} stopped: {_last_error(worker)}; finished trials are kept: free space "
                            f"(or make the folder writable) and run the same command again to resume")
        how = _describe_exit(rc)
        self._failed(worker, f"{worker.tuner_id} {how}" + (f" holding trial(s) {', '.join(back)}; they run again"
                                                            if back else ""))
        self.start(worker.share)

    def _failed(self, worker: _Worker | None, line: str) -> None:
        self.failures += 1
        self.say(line)
        if self.failures > self.max_failures:
            last = f": {_last_error(worker)}" if worker is not None else ""
            raise RunFailed(f"worker processes failed {self.failures} times{last}; see {rundir.WORKERS_LOG} "
                            f"in the run folder")

    def stop(self) -> None:
        """End every live worker (SIGTERM, then SIGKILL after 10 s), and an unused spare."""
        if self.spare is not None:
            self.spare.discard()
            self.spare = None
        for worker in self.live:
            if worker.proc.poll() is None:
                worker.proc.terminate()
        deadline = time.monotonic() + 10
        for worker in self.live:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        for worker in self.live:
            if worker.reader is not None:
                worker.reader.join(timeout=5)
        self.live.clear()


def _last_error(worker: _Worker | None) -> str:
    if worker is None or not worker.last_error:
        return "no error message (see the workers' log)"
    return worker.last_error[-1]


def _describe_exit(rc: int | None) -> str:
    if rc is None:
        return "is still running"
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"was killed by signal {-rc}"
    return f"exited with status {rc}"


def _gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g for g in visible.split(",") if g.strip()]
    import shutil

    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU")]


# ----------------------------------------------------------------------------- a worker

def parse_chief(chief: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as (host, port); a one-line ValueError otherwise."""
    host, _, port = chief.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise checks.invalid("chief", "HOST:PORT", chief)
    return host, int(port)


def check_tuner_id(tuner_id: str) -> str:
    """A worker name: letters, digits, ``_.-``, and not ``chief`` (keras-tuner takes any id containing
    "chief" for the chief); a one-line ValueError otherwise."""
    if not isinstance(tuner_id, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", tuner_id) or "chief" in tuner_id:
        raise checks.invalid("tuner_id", "a name of letters, digits, '_', '.' and '-' without 'chief'", tuner_id)
    return tuner_id


class _Watchdog(threading.Thread):
    """Sends a worker's heartbeats, and ends a worker whose chief is gone: its parent exited (local
    workers), it has not answered for ``timeout`` s, or it refuses this worker's token."""

    def __init__(self, address: str, timeout: float, parent_pid: int | None, beat: heartbeat.Beat) -> None:
        super().__init__(name="chief-watchdog", daemon=True)
        self.address, self.timeout, self.parent_pid, self.beat = address, timeout, parent_pid, beat

    def run(self) -> None:
        try:
            self._watch()
        except BaseException as exc:  # noqa: BLE001 - a watchdog that fails must not leave an orphan behind
            _die(f"the chief watchdog failed ({type(exc).__name__}: {exc})")

    def _watch(self) -> None:
        import grpc

        last_ok = time.monotonic()
        pending, next_at = None, 0.0
        while True:
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                _die(f"the chief (pid {self.parent_pid}) has exited")
            if pending is not None and pending.done():
                error = pending.exception()
                if error is None:
                    self.beat.heard(pending.result())
                    last_ok = time.monotonic()
                elif callable(getattr(error, "code", None)) and error.code() == grpc.StatusCode.UNAUTHENTICATED:
                    _die(refused(self.address, error))
                pending = None
            now = time.monotonic()
            if pending is None and now >= next_at:  # one heartbeat at a time, every beat.every seconds
                pending = self.beat.send(timeout=max(1.0, min(self.timeout, 2 * self.beat.every)))
                next_at = now + self.beat.every
            if time.monotonic() - last_ok > self.timeout:
                _die(f"the chief at {self.address} has not answered for {self.timeout:g} s")
            time.sleep(0.2)


def refused(address: str, exc: Any) -> str:
    """One line: the chief at ``address`` refused this worker's calls (no token, or another one)."""
    detail = (exc.details() or "").splitlines()[0] if callable(getattr(exc, "details", None)) else str(exc)
    return (f"the chief at {address} refused this worker ({detail}): give it the chief's token (--token, "
            f"{auth.TOKEN_ENV}, or the shared run folder's run.json)")


def _say(line: str) -> None:
    """A worker's own line (its chief's log holds it for local workers)."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _die(reason: str) -> None:
    try:  # the chief may have been reading this worker's output: the pipe can be gone
        sys.stderr.write(f"error: {reason}; this worker stops (its trials run again when the study resumes)\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    finally:
        os._exit(1)


class _MemoryGuard:
    """True once this process's memory grew by more than ``limit_mib`` since the first pack ended."""

    def __init__(self, limit_mib: float) -> None:
        self.limit, self.base = limit_mib, None

    def __call__(self) -> bool:
        import psutil

        rss = psutil.Process().memory_info().rss / 2**20
        if self.base is None:
            self.base = rss
            return False
        return rss - self.base > self.limit


def work(spec: Any, out_dir: str | os.PathLike, chief: str, *, tuner_id: str | None = None,
         threads: int | None = None, cpus: list[int] | None = None, pack_size: int | None = None,
         chief_timeout: float = CHIEF_TIMEOUT, recycle_mib: float | None = None, token: str | None = None) -> int:
    """Join a running study as a worker: pull trials from the chief until none are left.

    Args:
        spec: the same study (profile and overrides applied) the chief runs.
        out_dir: the folder that holds the run folder (shared with the chief).
        chief: ``HOST:PORT`` of the chief.
        tuner_id: a unique worker name (default ``worker-<host>-<pid>``); a worker restarted under
            the id of one that died takes its trials over.
        threads, cpus: intra-op threads, and CPU cores to pin this process to.
        pack_size: as for :func:`ablation.engine.runner.run`.
        chief_timeout: seconds without an answer from the chief after which this worker stops.
        recycle_mib: end after a pack once memory grew by this much (the chief starts a fresh worker).
        token: the chief's token (default: ``ABLATION_TOKEN``, else the one the shared run.json keeps);
            sent with every call, with this worker's id and its heartbeats (:mod:`ablation.engine.auth`).

    Returns:
        0 when every trial has ended, ``EXIT_RECYCLE`` when this worker ended itself to be replaced.

    Raises:
        ChiefLost: the chief stopped answering.
    """
    host, port = parse_chief(chief)
    checks.real("chief_timeout", chief_timeout, "a positive number of seconds", lambda x: x > 0)
    if tuner_id is not None:
        check_tuner_id(tuner_id)
    run_dir = Path(out_dir) / spec.run_name
    if not (run_dir / rundir.SPEC).is_file():
        raise checks.invalid("out", f"the folder that holds the chief's run folder {spec.run_name} "
                             f"(start the chief first, and share the folder)", str(out_dir))
    token = auth.worker_token(token, run_dir)
    if cpus:
        os.sched_setaffinity(0, cpus)
    worker_id = tuner_id or f"worker-{socket.gethostname()}-{os.getpid()}"
    os.environ.update({"KERASTUNER_ORACLE_IP": host, "KERASTUNER_ORACLE_PORT": str(port),
                       "KERASTUNER_TUNER_ID": worker_id})
    import grpc

    from ablation.base import backend

    if threads:
        backend.current().set_threads(threads)
    backend.keras_tuner()  # without scikit-learn
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_client

    oracle_client.TIMEOUT = chief_timeout  # keras-tuner's calls wait an hour for a chief by default
    channel = auth.channel(f"{host}:{port}", token, worker_id)  # every call: the token and this worker's id
    built: list[Any] = []  # the tuner, once built: its pack in training is what the heartbeats report
    beat = heartbeat.Beat(channel, worker_id, lambda: built[0].training if built else [], _say)
    parent = os.environ.get(CHIEF_PID_ENV)
    _Watchdog(f"{host}:{port}", chief_timeout, int(parent) if parent and parent.isdigit() else None, beat).start()
    from ablation.engine.tuner import AblationTuner

    tuner = AblationTuner(spec, out_dir, pack_size=pack_size)
    if not hasattr(tuner.oracle, "stub"):
        raise RuntimeError("keras-tuner's OracleClient has no 'stub': install keras-tuner>=1.4.7,<1.5")
    tuner.oracle.stub = protos.get_service_grpc().OracleStub(channel)
    tuner.keep_records = lambda trial_ids: beat.keep(trial_ids, timeout=chief_timeout)
    built.append(tuner)
    if recycle_mib:
        tuner.stop_after_pack = _MemoryGuard(recycle_mib)
    from ablation.base import phases

    tuner.worker_start_s = phases.since_process_start()  # imports, the chief's answer: with the first pack
    # Everything imported so far lives as long as this process: out of the garbage collector's sight, a full
    # collection (one per pack, and Python's own) walks only what the trials made: ~0 ms instead of ~120 ms
    # over the ~200,000 objects of the backend, Keras, keras-tuner and the runner (measured on this project's
    # 2-core machine). This process is the command line's own, so no caller's objects are frozen with them.
    gc.freeze()
    try:
        recycled = tuner.search(verbose=0)
        if recycled:
            print(f"memory grew by more than {recycle_mib:g} MiB: this worker ends, a fresh one takes over",
                  file=sys.stderr, flush=True)
    except grpc.RpcError as exc:
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        if code == grpc.StatusCode.UNAUTHENTICATED:
            raise ChiefLost(refused(f"{host}:{port}", exc)) from None
        if code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE, None):
            raise ChiefLost(f"the chief at {host}:{port} did not answer within {chief_timeout:g} s "
                            f"({getattr(code, 'name', type(exc).__name__)}); this worker stops (its trials run "
                            f"again when the study resumes)") from None
        detail = (exc.details() or "").splitlines()[0] if callable(getattr(exc, "details", None)) else str(exc)
        raise ChiefLost(f"the chief at {host}:{port} failed ({code.name}: {detail}); this worker stops") from None
    return EXIT_RECYCLE if recycled else 0
