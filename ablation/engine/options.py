"""How a run runs, as one value: workers, packs, the chief's address, timeouts, recycling, overrides,
progress (what it runs is the :class:`~ablation.spec.StudySpec`).

:class:`RunOptions` is made once (by the command line, ``ablation.run`` or ``runner.run``'s keyword
arguments), checked where it is made, and passed whole through the runner, the local cluster and the
workers' command lines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from ablation.base import checks
from ablation.engine import cluster, heartbeat


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How a study runs; every field is checked when the object is made.

    Attributes:
        workers: local worker processes that train (0: serve the oracle to remote workers only; N > 1:
            each pinned to its share of the CPU cores, or one GPU each).
        overrides: settings from the command line (``precision``, ``jit_compile``, ``backend``).
        progress: True prints a progress line per finished trial; a callable receives the lines.
        command: the command line to record for the report's "Reproduce" section.
        pack_size: the most trials trained as one pack (1: each alone); None chooses from the model's
            size (``ablation.trials.pack.default_limit``).
        host, port: where the chief serves the oracle to the workers (127.0.0.1 and any free port by
            default). Another address than loopback needs a ``token`` (docs/scale-out.md).
        in_process: train in this process (one worker, no chief; memory is not bounded).
        chief_timeout: seconds a worker waits for a chief that stopped answering.
        recycle_mib: a local worker whose memory grew by this much is replaced (None: never).
        register_claims: register the study's current claims again (:mod:`ablation.spec.preregistration`).
        token: what every worker's call must carry (default ``ABLATION_TOKEN``; ``"generate"`` keeps a
            new one in run.json); required when ``host`` is not a loopback address (:mod:`ablation.engine.auth`).
        heartbeat_grace: seconds a worker holding trials may stay silent before they run again
            elsewhere (:mod:`ablation.engine.heartbeat`).
        backend_rule: the user named no backend (no ``--backend``, no ``KERAS_BACKEND``, none in the study
            file): the runner picks its workers' backend by :func:`ablation.engine.backend_choice.rule`.
            The command line sets it; ``ablation.run`` keeps the backend of the calling process.
    """

    workers: int = 1
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    progress: bool | Callable[[str], None] = False
    command: str | None = None
    pack_size: int | None = None
    host: str = "127.0.0.1"
    port: int = 0
    in_process: bool = False
    chief_timeout: float = cluster.CHIEF_TIMEOUT
    recycle_mib: float | None = cluster.RECYCLE_MIB
    register_claims: bool = False
    token: str | None = None
    heartbeat_grace: float = heartbeat.HEARTBEAT_GRACE
    backend_rule: bool = False

    def __post_init__(self) -> None:
        checks.integer("workers", self.workers, 0)
        if not isinstance(self.overrides, Mapping):
            raise checks.invalid("overrides", "a dict of settings (precision, jit_compile, backend)", self.overrides)
        if not (isinstance(self.progress, bool) or callable(self.progress)):
            raise checks.invalid("progress", "True, False or a callable that receives each line", self.progress)
        if self.command is not None:
            checks.text("command", self.command)
        if self.pack_size is not None:
            checks.integer("pack_size", self.pack_size, 1)
        checks.text("host", self.host)
        checks.integer("port", self.port, 0, 65535)
        checks.boolean("in_process", self.in_process)
        checks.real("chief_timeout", self.chief_timeout, "a positive number of seconds", lambda x: x > 0)
        if self.recycle_mib is not None:
            checks.positive("recycle_mib", self.recycle_mib)
        checks.boolean("register_claims", self.register_claims)
        if self.token is not None:
            checks.text("token", self.token)
        checks.real("heartbeat_grace", self.heartbeat_grace, "a positive number of seconds", lambda x: x > 0)
        checks.boolean("backend_rule", self.backend_rule)
        if self.in_process and self.workers != 1:
            raise checks.invalid("workers", "1 when in_process=True", self.workers)
        object.__setattr__(self, "overrides", dict(self.overrides))

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` (checked again); an unknown name is a one-line error."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise checks.invalid("options", f"fields of RunOptions ({', '.join(f.name for f in dataclasses.fields(self))})",
                                 unknown[0])
        return dataclasses.replace(self, **changes)
