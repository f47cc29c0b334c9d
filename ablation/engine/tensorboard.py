"""TensorBoard logs of a run: each trial's per-epoch scalars and the grid as HParams.

``tensorboard --logdir runs/<run>/tensorboard`` then shows every trial's learning curves in the
Scalars dashboard and the grid in the HParams dashboard (one session per trial: its axis labels,
its seed, and its final metrics), the way keras-tuner's own TensorBoard integration lays them out.
The event files are written with TensorBoard's own protocol buffers and event writer, not
TensorFlow's: the same logs come from either Keras backend, also on a machine without TensorFlow
(where the ``tensorboard`` package is missing, nothing is written and :func:`available` says so).
Disk stays the source of truth: the logs are a view, rebuilt from a trial's records whenever it ends.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any

FOLDER = "tensorboard"
FINAL_METRICS = ("test_error", "test_loss", "val_error", "best_val_error", "train_error",
                 "test_rmse", "val_rmse", "best_val_rmse", "train_rmse")  # those a trial has (rmse: regression)


def available() -> bool:
    """Whether TensorBoard logs can be written here (the ``tensorboard`` package is installed)."""
    return importlib.util.find_spec("tensorboard") is not None


def _hparams(spec: Any) -> list[Any]:
    from tensorboard.plugins.hparams import summary_v2 as hp

    params = [hp.HParam(axis.name, hp.Discrete(list(axis.labels))) for axis in spec.grid]
    return params + [hp.HParam("seed", hp.Discrete([int(s) for s in spec.seeds]))]


def _write(folder: Path, summaries: list[tuple[int, Any]]) -> None:
    """A new event file in ``folder`` with (step, Summary proto) pairs, in TensorFlow's record format.

    TensorBoard's own ``EventFileWriter`` would import TensorFlow when it is installed (for its
    file system layer), whichever backend trains: the records are written here with its
    ``RecordWriter`` onto a plain file instead, renamed into place when whole.
    """
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    folder.mkdir(parents=True, exist_ok=True)
    name = f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
    partial = folder / f".{secrets.token_hex(6)}.partial"
    try:
        with open(partial, "wb") as f:
            writer = RecordWriter(f)
            writer.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
            for step, summary in summaries:
                writer.write(event_pb2.Event(wall_time=time.time(), step=step, summary=summary).SerializeToString())
        os.replace(partial, folder / name)
    finally:
        partial.unlink(missing_ok=True)


def write_config(run_dir: str | os.PathLike, spec: Any) -> bool:
    """The run's HParams configuration: the axes and the seed, and the final metrics. False if unavailable."""
    if not available():
        return False
    from tensorboard.plugins.hparams import summary_v2 as hp

    config = hp.hparams_config_pb(hparams=_hparams(spec),
                                          metrics=[hp.Metric(m, display_name=m) for m in FINAL_METRICS])
    _write(Path(run_dir) / FOLDER, [(0, config)])
    return True


def write_trial(run_dir: str | os.PathLike, spec: Any, result: dict[str, Any], history: dict[str, list]) -> bool:
    """One trial's session: its HParams values, per-epoch train/val loss and error, and final metrics."""
    if not available():
        return False
    from tensorboard.plugins.hparams import summary_v2
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

    trial_id = str(result.get("trial_id", ""))
    values = {p.name: (result.get("point", {}).get(p.name) if p.name != "seed" else int(result.get("seed", 0)))
              for p in _hparams(spec)}
    out = [(0, summary_v2.hparams_pb({name: value for name, value in values.items() if value is not None},
                                     trial_id=trial_id))]
    epochs = history.get("epoch", [])
    for split, prefix in (("train", ""), ("val", "val_")):
        for key, name in ((f"{prefix}loss", "loss"), (f"{prefix}accuracy", "error"), (f"{prefix}rmse", "rmse")):
            for epoch, value in zip(epochs, history.get(key, [])):
                if value is not None:
                    out.append((int(epoch), scalar_pb(f"{split}/{name}", 1.0 - value if name == "error" else value)))
    last = int(epochs[-1]) if epochs else 0
    for name in FINAL_METRICS:
        value = (result.get("metrics") or {}).get(name)
        if isinstance(value, (int, float)):
            out.append((last, scalar_pb(name, float(value))))
    _write(Path(run_dir) / FOLDER / f"trial_{trial_id}", out)
    return True
