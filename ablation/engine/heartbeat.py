"""Heartbeats: whether a worker lives is decided by what it says, not by a process handle.

Every worker, on this machine or another, calls the chief's ``Heartbeat`` RPC every few seconds
(a fifth of the grace period, at most 5 s) with its id and the trials it trains; every other call
it makes counts as a sign of life too (its id travels as gRPC metadata, :mod:`ablation.engine.auth`).
On the chief, :class:`Heartbeats` keeps the time each worker was last heard from. A worker that
holds trials and has been silent for longer than the grace period (``--heartbeat-grace``, default
``HEARTBEAT_GRACE``) is presumed dead: the chief hands its trials back to the queue, its partial
trial folders set aside as a resume does (:meth:`ablation.engine.oracle._StudyOracle.release`), and a
live worker runs them again.

A worker presumed dead may come back (a paused process, a network that heals). It is told so in
the reply to its next heartbeat, and before it writes a trial's files it asks the chief whether it
still holds the trial (:meth:`Beat.keep`): a trial it no longer holds is not written, and the late
report of its result (``UpdateTrial``, ``EndTrial``) is ignored and logged by the chief
(:meth:`Heartbeats.late`), so no trial is counted twice. (A worker paused for longer than the grace
period exactly between that question and its write is the one window left: milliseconds against
the grace period.)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc

SERVICE = "ablation.Cluster"
METHOD = f"/{SERVICE}/Heartbeat"
HEARTBEAT_GRACE = 120.0   # seconds of silence after which a worker's trials run again elsewhere
MAX_INTERVAL = 5.0        # a worker beats at least this often


def interval(grace: float) -> float:
    """How often a worker beats for a chief with this grace period (five beats per grace period, 0.2-5 s)."""
    return min(MAX_INTERVAL, max(0.2, grace / 5))


def worker_of(slot: str) -> str:
    """The worker id of one of its slot ids (``<worker>/<k>``: a pack's trials ask under their own slots)."""
    return slot.split("/", 1)[0]


def _encode(data: dict) -> bytes:
    return json.dumps(data).encode()


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode())
    except (UnicodeDecodeError, ValueError):
        return None


# ----------------------------------------------------------------------------- the chief's side

class Heartbeats:
    """When each worker was last heard from; presumes the silent ones dead and hands their trials back.

    Args:
        oracle: the study's oracle (its ``ongoing_trials`` say who holds what; ``release`` hands back).
        grace: seconds of silence after which a worker that holds trials is presumed dead.
        say: where lines go (a worker presumed dead, a late result ignored, a worker back).
    """

    def __init__(self, oracle: Any, grace: float = HEARTBEAT_GRACE,
                 say: Callable[[str], None] | None = None) -> None:
        self.oracle, self.grace = oracle, float(grace)
        self.say: Callable[[str], None] = say or (lambda line: None)
        self.seen: dict[str, float] = {}
        self.presumed_dead: dict[str, list[str]] = {}   # worker -> the trials it held then
        self.ignored: list[tuple[str, str, str]] = []    # (worker, trial id, what) of each late report ignored
        self._lock = threading.Lock()
        self._checked: float | None = None                # when check() last ran

    def touch(self, worker: str) -> None:
        """``worker`` was heard from now."""
        with self._lock:
            self.seen[worker] = time.monotonic()

    def held(self, worker: str) -> set[str]:
        """The ids of the trials the oracle has handed to ``worker`` (under any of its slots)."""
        return {t.trial_id for slot, t in list(self.oracle.ongoing_trials.items()) if worker_of(slot) == worker}

    def beat(self, worker: str, trials: Iterable[str]) -> dict[str, Any]:
        """A heartbeat: which of ``trials`` the worker still holds, which it lost, and the grace period."""
        self.touch(worker)
        trials, held = set(trials), self.held(worker)
        return {"grace": self.grace, "held": sorted(trials & held), "lost": sorted(trials - held),
                "presumed_dead": worker in self.presumed_dead}

    def check(self) -> list[str]:
        """Presume dead every worker that holds trials and has been silent past the grace period; returns them."""
        now = time.monotonic()
        holders = {worker_of(slot) for slot in list(self.oracle.ongoing_trials)}
        silent = []
        paused = self._checked is not None and now - self._checked > self.grace / 2
        self._checked = now
        with self._lock:
            if paused:  # the chief itself was stopped (SIGSTOP to take a timing) or starved: its workers could not
                # be heard meanwhile, so their silence counts from now, not from before the pause
                self.seen.update({worker: now for worker in self.seen})
            for worker in sorted(holders):
                last = self.seen.setdefault(worker, now)  # a holder never heard from: its silence starts now
                if now - last > self.grace:
                    silent.append((worker, now - last))
        for worker, quiet in silent:
            back = self.oracle.release(worker)
            self.presumed_dead[worker] = sorted(set(self.presumed_dead.get(worker, [])) | set(back))
            self.say(f"{worker} has been silent for {quiet:.0f} s (grace {self.grace:g} s): presumed dead"
                     + (f"; trial(s) {', '.join(back)} run again" if back else ""))
        return [worker for worker, _ in silent]

    def late(self, worker: str | None, trial_id: str, what: str) -> bool:
        """Whether a report (``what``) of ``trial_id`` from ``worker`` is late and ignored (then logged).

        A report is late when ``worker`` does not hold the trial (it was handed back when the
        worker was presumed dead). A caller that names no worker (not one of this package's
        workers) is trusted as before.
        """
        if not worker or trial_id in self.held(worker):
            return False
        why = ("it was handed back when the worker was presumed dead" if worker in self.presumed_dead
               else "the worker does not hold it")
        with self._lock:
            first = (worker, trial_id, what) not in self.ignored
            self.ignored.append((worker, trial_id, what))
        if first:
            self.say(f"late {what} of trial {trial_id} from {worker} ignored: {why}")
        return True

    def handler(self) -> grpc.GenericRpcHandler:
        """The ``Heartbeat`` RPC (JSON in and out), to add to the chief's gRPC server."""
        method = grpc.unary_unary_rpc_method_handler(self._rpc, request_deserializer=_decode,
                                                     response_serializer=_encode)
        return grpc.method_handlers_generic_handler(SERVICE, {"Heartbeat": method})

    def _rpc(self, request: Any, context: Any) -> dict[str, Any]:
        worker = request.get("worker") if isinstance(request, dict) else None
        trials = request.get("trials") if isinstance(request, dict) else None
        if not isinstance(worker, str) or not worker or not isinstance(trials, list) or not all(
                isinstance(t, str) for t in trials):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, 'expected {"worker": ID, "trials": [IDS]}')
        return self.beat(worker, trials)


# ----------------------------------------------------------------------------- a worker's side

class Beat:
    """A worker's heartbeats over ``channel`` (one that carries its token, :func:`ablation.engine.auth.channel`).

    Args:
        channel: the gRPC channel to the chief.
        worker: this worker's id.
        trials: returns the ids of the trials this worker trains now.
        say: where a worker's own lines go (stderr of the worker).
    """

    def __init__(self, channel: Any, worker: str, trials: Callable[[], Iterable[str]],
                 say: Callable[[str], None]) -> None:
        self.call = channel.unary_unary(METHOD, request_serializer=_encode, response_deserializer=_decode)
        self.worker, self.trials, self.say = worker, trials, say
        self.every = 1.0            # until the chief says its grace period
        self._told: set[str] = set()

    def request(self, trials: Iterable[str] | None = None) -> dict[str, Any]:
        return {"worker": self.worker, "trials": sorted(self.trials() if trials is None else trials)}

    def send(self, timeout: float) -> Any:
        """One heartbeat, in the background: a ``grpc.Future`` whose result :meth:`heard` reads."""
        return self.call.future(self.request(), timeout=timeout)

    def heard(self, reply: Any) -> None:
        """Read a reply: the chief's grace period sets the pace; trials lost to a presumed death are told once."""
        if not isinstance(reply, dict):
            return
        if isinstance(reply.get("grace"), (int, float)) and reply["grace"] > 0:
            self.every = interval(float(reply["grace"]))
        lost = [t for t in reply.get("lost") or () if t not in self._told]
        if lost:
            self._told.update(lost)
            why = (f"the chief presumed this worker dead (silent for more than {reply.get('grace'):g} s)"
                   if reply.get("presumed_dead") else "the chief does not give them to this worker")
            self.say(f"{why}: trial(s) {', '.join(lost)} run elsewhere, and their results here are not written")

    def keep(self, trial_ids: list[str], timeout: float) -> set[str]:
        """Of ``trial_ids``, the ones this worker still holds (asked right before their files are written).

        A chief that does not answer confirms nothing: a trial's files are written only by a worker
        that holds it (the trial runs again elsewhere, or when the study resumes).
        """
        try:
            reply = self.call(self.request(trial_ids), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if callable(getattr(exc, "code", None)) else None
            self.say(f"the chief did not confirm trial(s) {', '.join(trial_ids)} "
                     f"({getattr(code, 'name', type(exc).__name__)}): their results are not written")
            return set()
        self.heard(reply)
        held = set(reply.get("held") or ()) if isinstance(reply, dict) else set()
        return held & set(trial_ids)
