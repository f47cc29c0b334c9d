"""TensorBoard logs of a run: each trial's per-epoch scalars and the grid as HParams.

``tensorboard --logdir runs/<run>/tensorboard`` then shows every trial's learning curves in the
Scalars dashboard and the grid in the HParams dashboard (one session per trial: its axis labels,
its seed, and its final metrics), the way keras-tuner's own TensorBoard integration lays them out.
The logs are written with TensorFlow's summary writer, which works whatever Keras backend trained
the models; where TensorFlow is not installed (a JAX-only machine) nothing is written and
:func:`available` says so. Disk stays the source of truth: the logs are a view, rebuilt from a
trial's records whenever it ends.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

FOLDER = "tensorboard"
FINAL_METRICS = ("test_error", "test_loss", "val_error", "best_val_error", "train_error",
                 "test_rmse", "val_rmse", "best_val_rmse", "train_rmse")  # those a trial has (rmse: regression)


def available() -> bool:
    """Whether TensorBoard logs can be written here (TensorFlow and TensorBoard installed)."""
    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tensorboard"))


def _hparams(spec: Any) -> list[Any]:
    from tensorboard.plugins.hparams import api as hp

    params = [hp.HParam(axis.name, hp.Discrete(list(axis.labels))) for axis in spec.grid]
    return params + [hp.HParam("seed", hp.Discrete([int(s) for s in spec.seeds]))]


def write_config(run_dir: str | os.PathLike, spec: Any) -> bool:
    """The run's HParams configuration: the axes and the seed, and the final metrics. False if unavailable."""
    if not available():
        return False
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    with tf.summary.create_file_writer(str(Path(run_dir) / FOLDER)).as_default():
        hp.hparams_config(hparams=_hparams(spec), metrics=[hp.Metric(m, display_name=m) for m in FINAL_METRICS])
    return True


def write_trial(run_dir: str | os.PathLike, spec: Any, result: dict[str, Any], history: dict[str, list]) -> bool:
    """One trial's session: its HParams values, per-epoch train/val loss and error, and final metrics."""
    if not available():
        return False
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    trial_id = str(result.get("trial_id", ""))
    values = {p.name: (result.get("point", {}).get(p.name) if p.name != "seed" else int(result.get("seed", 0)))
              for p in _hparams(spec)}
    folder = Path(run_dir) / FOLDER / f"trial_{trial_id}"
    with tf.summary.create_file_writer(str(folder)).as_default():
        hp.hparams({name: value for name, value in values.items() if value is not None}, trial_id=trial_id)
        epochs = history.get("epoch", [])
        for split, prefix in (("train", ""), ("val", "val_")):
            for key, name in ((f"{prefix}loss", "loss"), (f"{prefix}accuracy", "error"), (f"{prefix}rmse", "rmse")):
                for epoch, value in zip(epochs, history.get(key, [])):
                    if value is not None:
                        tf.summary.scalar(f"{split}/{name}", 1.0 - value if name == "error" else value, step=epoch)
        last = epochs[-1] if epochs else 0
        for name in FINAL_METRICS:
            value = (result.get("metrics") or {}).get(name)
            if isinstance(value, (int, float)):
                tf.summary.scalar(name, value, step=last)
    return True
