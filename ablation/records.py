"""Read a run folder into tidy (long-form) pandas DataFrames.

Disk is the single source of truth: every frame is rebuilt from the trial folders
(``trial_<id>/result.json``, ``history.json``, ``probes.json``) each time, never kept in memory
between runs. ``load`` also writes the frames as CSV files next to the trial folders so they can
be opened without Python. The column schema is documented in ``docs/internals.md`` (section 4).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ablation import spec as spec_module

# The columns every frame starts with (then one column per grid axis).
KEY_COLUMNS = ("trial_id", "status", "seed", "point")
# Trial statuses: the three a finished trial can have, and the two keras-tuner leaves behind
# for a trial that has not finished (an interrupted run, or one in progress).
STATUSES = ("completed", "diverged", "failed", "running", "pending")
CURVE_METRICS = ("loss", "accuracy", "error")


@dataclass
class Records:
    """Everything one run recorded: four long-form frames, the spec and the run metadata."""

    trials: pd.DataFrame                      # one row per trial
    curves: pd.DataFrame                      # trial x epoch x split x metric
    probes: pd.DataFrame                      # trial x step x layer x probe x stat
    evaluations: pd.DataFrame                 # trial x mode x k x metric
    spec: spec_module.StudySpec               # the study, profile applied
    meta: dict[str, Any] = field(default_factory=dict)  # run.json
    axes: tuple[str, ...] = ()                # grid axis names, in grid order
    run_dir: Path | None = None

    def completed(self) -> pd.DataFrame:
        """The trials that finished normally."""
        return self.trials[self.trials["status"] == "completed"]


def load(run_dir: str | os.PathLike, write_csv: bool = True) -> Records:
    """Rebuild every frame of a run from its trial folders.

    Args:
        run_dir: a run folder written by ``runner.run`` (``<out>/<study>-<hash8>``).
        write_csv: also (re)write ``trials.csv``, ``curves.csv``, ``probes.csv`` and
            ``evaluations.csv`` in the run folder.

    Returns:
        A ``Records`` with the frames, the ``StudySpec`` and the run metadata.
    """
    run_dir = Path(run_dir)
    study_file = run_dir / "study.toml"
    if not study_file.exists():
        raise FileNotFoundError(f"Invalid value for argument 'run_dir': expected a run folder written by "
                                f"'ablation run' (with study.toml inside). Received: run_dir={str(run_dir)!r}")
    meta = read_json(run_dir / "run.json", default={})
    spec = spec_module.loads(study_file.read_text(), profile=meta.get("profile"), source=str(study_file))
    if meta.get("overrides"):  # command-line settings (e.g. --precision) are part of the run
        from ablation.runner import apply_overrides

        spec = apply_overrides(spec, meta["overrides"])
    rows, curve_rows, probe_rows, eval_rows = [], [], [], []
    for trial_dir in sorted(run_dir.glob("trial_*")):
        trial = _read_trial(trial_dir, spec)
        if trial is None:
            continue
        keys = trial["keys"]
        rows.append({**keys, **trial["row"]})
        curve_rows.extend({**keys, **r} for r in _curve_rows(trial_dir))
        probe_rows.extend({**keys, **r} for r in read_json(trial_dir / "probes.json", default=[]))
        eval_rows.extend({**keys, **r} for r in trial["evaluations"])
    axes = spec.axis_names
    key_cols = list(KEY_COLUMNS) + list(axes)
    records = Records(
        trials=_frame(rows, key_cols + ["train_size"]),
        curves=_frame(curve_rows, key_cols + ["epoch", "step", "split", "metric", "value"]),
        probes=_frame(probe_rows, key_cols + ["probe", "layer", "depth", "step", "epoch", "stat", "value"]),
        evaluations=_frame(eval_rows, key_cols + ["mode", "k", "metric", "value"]),
        spec=spec, meta=meta, axes=axes, run_dir=run_dir)
    if write_csv:
        for name in ("trials", "curves", "probes", "evaluations"):
            atomic_write_text(run_dir / f"{name}.csv", getattr(records, name).to_csv(index=False))
    return records


def axis_column_value(axis: spec_module.Axis, label: str) -> Any:
    """What a frame's axis column holds for ``label``.

    Numeric axes hold their numbers (so ``train_size`` can go on a log axis), string and boolean
    axes hold their values, and anything else (lists, None mixed with numbers, config recipes)
    holds the label.
    """
    values = axis.values
    if axis.section != "config":
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return axis.value_of(label)
        if all(isinstance(v, str) for v in values) or all(isinstance(v, bool) for v in values):
            return axis.value_of(label)
    return label


def point_label(point: dict[str, str]) -> str:
    """A readable label of a grid point: ``activation=relu, dropout=0.5``."""
    return ", ".join(f"{k}={v}" for k, v in point.items())


def _read_trial(trial_dir: Path, spec: spec_module.StudySpec) -> dict | None:
    result = read_json(trial_dir / "result.json", default=None)
    kt_trial = read_json(trial_dir / "trial.json", default=None)
    if result is None and kt_trial is None:
        return None
    if result is not None:
        point, seed = result["point"], result["seed"]
        status = result["status"]
    else:  # keras-tuner knows the trial but it never finished (interrupted or in progress)
        values = kt_trial.get("hyperparameters", {}).get("values", {})
        point = {a: str(values.get(a)) for a in spec.axis_names}
        seed = values.get("seed")
        status = "running" if kt_trial.get("status") == "RUNNING" else "pending"
    trial_id = (result or {}).get("trial_id") or trial_dir.name.removeprefix("trial_")
    keys = {"trial_id": trial_id, "status": status, "seed": seed, "point": point_label(point)}
    for axis in spec.grid:
        label = point.get(axis.name)
        keys[axis.name] = axis_column_value(axis, label) if label in axis.labels else label
    row: dict[str, Any] = {}
    if result is not None:
        row = {"train_size": result.get("train_size"), "reason": result.get("reason"),
               "failed_epoch": result.get("failed_epoch"), "wall_time_s": result.get("wall_time_s"),
               "epochs_run": result.get("epochs_run"), "steps_run": result.get("steps_run"),
               "xla": result.get("xla")}
        row.update(result.get("metrics") or {})
    return {"keys": keys, "row": row, "evaluations": (result or {}).get("evaluations") or []}


def _curve_rows(trial_dir: Path) -> Iterable[dict]:
    history = read_json(trial_dir / "history.json", default=None)
    if not history:
        return []
    epochs = history.get("epoch", [])
    steps = history.get("step", [None] * len(epochs))
    out = []
    for split, prefix in (("train", ""), ("val", "val_")):
        for metric in ("loss", "accuracy"):
            series = history.get(prefix + metric)
            if series is None:
                continue
            for epoch, step, value in zip(epochs, steps, series):
                out.append({"epoch": epoch, "step": step, "split": split, "metric": metric, "value": value})
                if metric == "accuracy" and value is not None:
                    out.append({"epoch": epoch, "step": step, "split": split, "metric": "error",
                                "value": 1.0 - value})
    return out


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    columns = list(dict.fromkeys(columns))  # an axis may also be a fixed column (train_size)
    frame = pd.DataFrame(rows)
    for col in columns:
        if col not in frame.columns:
            frame[col] = pd.Series(dtype="object")
    rest = [c for c in frame.columns if c not in columns]
    return frame[columns + rest]


# ----------------------------------------------------------------------------- file helpers

def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file; ``default`` when it does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as JSON atomically; NaN and infinities become null (strict JSON)."""
    atomic_write_text(path, json.dumps(_finite(data), indent=1, sort_keys=False))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _finite(value.item())
    return value
