"""Where a run's time goes, phase by phase: each pack's phases in its trials' ``result.json`` (``phases``),
their sums per invocation in ``run.json``, and the report's "Where the time went" table.

A pack's phases (seconds, summed over the pack, shared by its members):

- ``data``: loading the data set (once per worker process) and drawing the trials' training subsets;
- ``build``: building the members' models and the pack's model (Keras functional builds, compile settings,
  the scanned train function, the probes);
- ``compile``: tracing and compiling the training program, estimated as the first epoch's time beyond the
  median of the later epochs (a pack that ran one epoch counts none: its first epoch is ``train``);
- ``train``: the training steps (every epoch's time, less ``compile``, the validation pass and the probes);
- ``evaluate``: the validation pass after every epoch and the final test-set metrics;
- ``probes``: the probes' measurements (gradients, activations, weights, ...);
- ``writes``: writing the trials' records (result, history, probes; TensorBoard's event files).

``run.json`` adds the chief's own phases per invocation (``start_s``: the process's start-up and imports,
``checks_s``, ``trials_s``: until the last trial ended, ``records_s``) and ``worker_start_s``: from a worker
process's start to its first pack (imports, the connection to the chief).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

PACK_PHASES = ("data", "build", "compile", "train", "evaluate", "probes", "writes")


class Phases:
    """Seconds per phase, added up as they pass (:meth:`timed`, :meth:`add`)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(PACK_PHASES, 0.0)

    def add(self, name: str, seconds: float) -> None:
        if name not in self.seconds:
            raise ValueError(f"Invalid value for argument 'name': expected one of {', '.join(PACK_PHASES)}. "
                             f"Received: name={name!r}")
        self.seconds[name] += max(0.0, float(seconds))

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the time the ``with`` block takes to phase ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def as_result(self) -> dict[str, float]:
        """The phases as ``result.json`` keeps them: ``{"data_s": ..., ...}``, rounded to 1 ms."""
        return {f"{name}_s": round(value, 3) for name, value in self.seconds.items()}


_started: list[float] = []  # restart_clock's time, if called


def restart_clock() -> None:
    """From now on :func:`since_process_start` counts from here (a spare worker, whose imports ran while the
    chief checked the study, starts as a worker when it is handed its arguments)."""
    _started[:] = [time.time()]


def since_process_start() -> float:
    """Seconds since this process started (the interpreter's start-up and the imports before now), or since
    :func:`restart_clock`."""
    if _started:
        return max(0.0, time.time() - _started[0])
    import psutil

    return max(0.0, time.time() - psutil.Process().create_time())


def split_fit(fit_s: float, epoch_times: Sequence[float], evaluate_s: float, probes_s: float) -> dict[str, float]:
    """``compile`` and ``train`` out of a whole ``fit``: the first epoch's time beyond the median of the later
    ones is compilation; the rest of ``fit_s``, less the validation passes and probes timed inside it,
    trains."""
    later = [t for t in epoch_times[1:] if t == t]
    compile_s = max(0.0, epoch_times[0] - statistics.median(later)) if epoch_times and later else 0.0
    return {"compile": compile_s, "train": max(0.0, fit_s - compile_s - evaluate_s - probes_s)}


def total(results: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """The phases summed over packs, from their trials' ``result.json`` dicts (a pack counted once: its
    members share one ``pack_id``); ``{}`` when no result holds phases."""
    seen: set[Any] = set()
    out: dict[str, float] = {}
    for r in results:
        phases, pack = r.get("phases"), r.get("pack_id", r.get("trial_id"))
        if not isinstance(phases, Mapping) or pack in seen:
            continue
        seen.add(pack)
        for key, value in phases.items():
            if isinstance(value, (int, float)):
                out[key] = out.get(key, 0.0) + float(value)
    return {key: round(value, 3) for key, value in out.items()}
