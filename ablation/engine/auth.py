"""Who may talk to a chief: a shared token, sent by every worker with every gRPC call, checked by the chief.

keras-tuner's oracle service has no authentication: whoever reaches the chief's port can take trials
and report results. So a chief that listens anywhere but a loopback address (127.0.0.0/8, ``::1``,
``localhost``) requires a token, and refuses to start without one (a one-line error, before any
work). The token comes from ``--token TOKEN``, else the ``ABLATION_TOKEN`` environment variable;
``--token generate`` makes a fresh one and keeps it in the run folder's ``run.json`` (a resumed run
keeps it), where workers that share the run folder find it. A chief on a loopback address needs
none, and checks one when it is given.

Workers send the token as gRPC metadata (``ablation-token``) with every call, with their id
(``ablation-worker``, which :mod:`ablation.engine.heartbeat` reads); the chief's server interceptor
(:class:`Guard`) refuses a call without it, or with another one, with ``UNAUTHENTICATED`` and
logs it. The token is compared in constant time and never printed; the command line recorded in
``run.json`` (and shown in the report) has it replaced by ``***``.

The channel is not encrypted: the token and the trials travel in clear. The next step is TLS with
gRPC's own credentials (``grpc.ssl_server_credentials`` on the chief, ``grpc.ssl_channel_credentials``
on the workers); until then use a trusted network, or an SSH tunnel (docs/scale-out.md).
"""

from __future__ import annotations

import collections
import hmac
import ipaddress
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from ablation.base import checks, files, rundir

TOKEN_ENV = "ABLATION_TOKEN"      # the environment variable a chief and its workers read the token from
TOKEN_KEY = "ablation-token"      # gRPC metadata: the token
WORKER_KEY = "ablation-worker"    # gRPC metadata: the calling worker's id
GENERATE = "generate"             # --token generate: a fresh token, kept in run.json
RUN_KEY = "token"                 # where run.json keeps a generated token
MIN_LENGTH = 16
LOG_EVERY_S = 60.0                # refused calls from one address are logged at most this often (with a count)
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (a name counts when all its addresses are)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def check_token(token: Any) -> str:
    """A token: at least 16 characters of letters, digits and ``._~+/=-``; a one-line ValueError otherwise
    (that does not repeat the token)."""
    if not isinstance(token, str) or len(token) < MIN_LENGTH or not _TOKEN.fullmatch(token):
        shown = f"<{len(token)} characters>" if isinstance(token, str) else repr(token)
        raise ValueError(f"{checks.PREFIX} 'token': expected at least {MIN_LENGTH} characters of letters, digits "
                         f"and '._~+/=-' (or '{GENERATE}'). Received: token={shown}")
    return token


def chief_token(host: str, given: str | None, run_dir: str | os.PathLike) -> tuple[str | None, bool]:
    """The token a chief listening on ``host`` checks, and whether it was generated here (to keep in run.json).

    ``given`` (``--token``) wins, else ``ABLATION_TOKEN``; ``generate`` reuses the token that run.json
    already keeps, or makes a new one.

    Raises:
        ValueError: one line, when ``host`` is not a loopback address and no token is given.
    """
    token = given if given is not None else (os.environ.get(TOKEN_ENV) or None)
    if token == GENERATE:
        kept = _kept(run_dir)
        return (kept, False) if kept is not None else (secrets.token_urlsafe(32), True)
    if token is not None:
        return check_token(token), False
    if not is_loopback(host):
        raise ValueError(f"{checks.PREFIX} 'token': expected a token for a chief listening on {host}, which is not "
                         f"a loopback address (--token TOKEN, {TOKEN_ENV}=TOKEN, or --token {GENERATE} to keep a new "
                         f"one in the run folder's run.json). Received: token=None")
    return None, False


def worker_token(given: str | None, run_dir: str | os.PathLike) -> str | None:
    """The token a worker sends: ``--token``, else ``ABLATION_TOKEN``, else the one the shared run.json keeps."""
    token = given if given is not None else (os.environ.get(TOKEN_ENV) or None)
    if token is not None:
        return check_token(token)
    return _kept(run_dir)


def keep(run_dir: str | os.PathLike, token: str) -> None:
    """Keep a generated token in the run folder's run.json (for workers that share the folder)."""
    path = Path(run_dir) / rundir.RUN
    meta = files.read_json(path, default={}) or {}
    meta[RUN_KEY] = token
    files.atomic_write_json(path, meta)


def _kept(run_dir: str | os.PathLike) -> str | None:
    try:
        meta = files.read_json(Path(run_dir) / rundir.RUN, default=None)
    except (OSError, files.DamagedFile):
        return None
    token = meta.get(RUN_KEY) if isinstance(meta, dict) else None
    return token if isinstance(token, str) and token else None


def redact(argv: list[str]) -> list[str]:
    """A command line with the value of ``--token`` replaced by ``***`` (it is recorded and shown)."""
    out, hide = [], False
    for arg in argv:
        if hide:
            out.append("***" if arg != GENERATE else arg)
            hide = False
        elif arg == "--token":
            out.append(arg)
            hide = True
        elif arg.startswith("--token="):
            out.append("--token=" + ("***" if arg != f"--token={GENERATE}" else GENERATE))
        else:
            out.append(arg)
    return out


def metadata(details: Any) -> dict[str, str]:
    """The invocation metadata of a gRPC call (``handler_call_details`` or a servicer's ``context``) as a dict."""
    pairs = details.invocation_metadata() if callable(getattr(details, "invocation_metadata", None)) else (
        getattr(details, "invocation_metadata", None) or ())
    return {key: value for key, value in pairs if isinstance(value, str)}


class Guard(grpc.ServerInterceptor):
    """The chief's server interceptor: refuses (``UNAUTHENTICATED``) and logs calls without the token.

    Args:
        token: what every call must carry (None: every call passes).
        say: where a refusal is logged (one line; from one address at most every ``LOG_EVERY_S``).
        on_call: called with the caller's worker id for every call that passes (liveness).
    """

    def __init__(self, token: str | None, say: Callable[[str], None],
                 on_call: Callable[[str], None] | None = None) -> None:
        self.token, self.say, self.on_call = token, say, on_call
        self._logged: dict[str, tuple[float, int]] = {}   # address -> (last logged, refused since)
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable, details: Any) -> Any:
        md = metadata(details)
        if self.token is not None:
            sent = md.get(TOKEN_KEY)
            if sent is None or not hmac.compare_digest(sent.encode(), self.token.encode()):
                why = "no token" if sent is None else "a wrong token"
                method = details.method.rsplit("/", 1)[-1]

                def refuse(request: Any, context: Any) -> Any:
                    self._log(context.peer(), method, why, md.get(WORKER_KEY))
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, f"this chief requires its token; the call had {why}")

                return grpc.unary_unary_rpc_method_handler(refuse)
        worker = md.get(WORKER_KEY)
        if worker and self.on_call is not None:
            self.on_call(worker)
        return continuation(details)

    def _log(self, peer: str, method: str, why: str, worker: str | None) -> None:
        address = peer.rsplit(":", 1)[0] if peer else "an unknown address"
        now = time.monotonic()
        with self._lock:
            last, count = self._logged.get(address, (None, 0))
            if last is not None and now - last < LOG_EVERY_S:
                self._logged[address] = (last, count + 1)
                return
            self._logged[address] = (now, 0)
        more = f" ({count} more refused since the last line)" if count else ""
        who = f" (worker {worker!r})" if worker else ""
        self.say(f"refused a call to {method} from {address}{who}: {why}{more}")


class _Details(collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials",
                                                      "wait_for_ready", "compression")), grpc.ClientCallDetails):
    """The details of a call, with the worker's metadata added."""


class _Metadata(grpc.UnaryUnaryClientInterceptor):
    """A worker's client interceptor: every call carries the token and the worker's id."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def intercept_unary_unary(self, continuation: Callable, details: Any, request: Any) -> Any:
        details = _Details(details.method, details.timeout, list(details.metadata or ()) + self.pairs,
                           getattr(details, "credentials", None), getattr(details, "wait_for_ready", None),
                           getattr(details, "compression", None))
        return continuation(details, request)


def channel(address: str, token: str | None, worker: str) -> Any:
    """A gRPC channel to a chief whose every call carries ``token`` (when given) and the worker's id."""
    pairs = [(WORKER_KEY, worker)] + ([(TOKEN_KEY, token)] if token is not None else [])
    return grpc.intercept_channel(grpc.insecure_channel(address), _Metadata(pairs))
