"""TensorBoard logs of a run: each trial's per-epoch scalars and the grid as HParams.

``tensorboard --logdir runs/<run>/tensorboard`` then shows every trial's learning curves in the
Scalars dashboard and the grid in the HParams dashboard (one session per trial: its axis values,
typed as the study file has them, its seed, its final metrics and its end status), the way keras-tuner's own TensorBoard integration lays them out.
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
                 "test_rmse", "val_rmse", "best_val_rmse", "train_rmse",  # those a trial has (rmse: regression)
                 "early_stopped", "stopped_epoch")                        # with early stopping: 1 if it stopped
# How a trial's status shows in the HParams dashboard's session status (TensorBoard has success and
# failure only: a trial that stopped early completed; whether it did is the early_stopped metric).
END_STATUS = {"completed": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE", "failed": "STATUS_FAILURE"}


def available() -> bool:
    """Whether TensorBoard logs can be written here (the ``tensorboard`` package is installed)."""
    return importlib.util.find_spec("tensorboard") is not None


def typed_values(axis: Any) -> list[Any]:
    """An axis's values as the HParams dashboard shows them: booleans as booleans, numbers as numbers
    (floats when the axis mixes ints and floats), anything else (strings, lists, recipes) by its label."""
    values = list(axis.values)
    if values and all(isinstance(v, bool) for v in values):
        return values
    if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return values if all(isinstance(v, int) for v in values) else [float(v) for v in values]
    return list(axis.labels)


def _hparams(spec: Any) -> list[Any]:
    from tensorboard.plugins.hparams import summary_v2 as hp

    params = [hp.HParam(axis.name, hp.Discrete(typed_values(axis))) for axis in spec.grid]
    return params + [hp.HParam("seed", hp.Discrete([int(s) for s in spec.seeds]))]


def _session_values(spec: Any, result: dict[str, Any]) -> dict[str, Any]:
    """A trial's HParams values, typed like the configuration's domains."""
    point, out = result.get("point") or {}, {"seed": int(result.get("seed", 0))}
    for axis in spec.grid:
        label = point.get(axis.name)
        if label is not None and str(label) in axis.labels:
            out[axis.name] = typed_values(axis)[axis.labels.index(str(label))]
    return out


def _session_end(status: str) -> Any:
    """The Summary proto that ends an HParams session with ``status`` (written with TensorBoard's own
    protos: its v1 ``session_end_pb`` would import TensorFlow)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionEndInfo(status=api_pb2.Status.Value(END_STATUS.get(status, "STATUS_UNKNOWN")),
                                          end_time_secs=time.time())
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.SESSION_END_INFO_TAG, tensor=metadata.NULL_TENSOR,
                      metadata=metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(
                          session_end_info=info)))
    return summary


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
    """One trial's session: its HParams values, per-epoch train/val loss and error, final metrics, end status."""
    if not available():
        return False
    from tensorboard.plugins.hparams import summary_v2
    from tensorboard.plugins.scalar.summary_v2 import scalar_pb

    trial_id = str(result.get("trial_id", ""))
    out = [(0, summary_v2.hparams_pb(_session_values(spec, result), trial_id=trial_id))]
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
    out.append((last, _session_end(str(result.get("status")))))
    _write(Path(run_dir) / FOLDER / f"trial_{trial_id}", out)
    return True
