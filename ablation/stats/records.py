"""Read a run folder into tidy (long-form) pandas DataFrames. Reads only: it never writes.

Disk is the single source of truth: every frame is rebuilt from the trial folders
(``trial_<id>/result.json``, ``history.json``, ``probes.json``; layout in :mod:`ablation.base.rundir`)
each time, against the resolved spec the runner wrote (``spec.json``), whose hash must match the
run's. A damaged trial file (half-written, truncated) is reported in the trial's row, never a
crash. The column schema is documented in ``docs/internals.md`` (section 4).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ablation.base import files, rundir
from ablation import spec as spec_module

# The columns every frame starts with (then one column per grid axis).
KEY_COLUMNS = ("trial_id", "status", "seed", "point")
# Trial statuses: the three a finished trial can have, and the two keras-tuner leaves behind
# for a trial that has not finished (an interrupted run, or one in progress).
STATUSES = ("completed", "diverged", "failed", "running", "pending")
CURVE_METRICS = ("loss", "accuracy", "error", "rmse", "mae")  # error = 1 - accuracy; rmse, mae: regression
FRAME_COLUMNS = {
    "trials": ("train_size",),
    "curves": ("epoch", "step", "split", "metric", "value"),
    "probes": ("probe", "layer", "depth", "step", "epoch", "stat", "value"),
    "evaluations": ("mode", "k", "metric", "value"),
}


class RunFolderError(ValueError):
    """A folder that is not a readable run folder (the message is one line)."""


@dataclass
class Records:
    """Everything one run recorded: four long-form frames, the spec and the run metadata."""

    trials: pd.DataFrame                      # one row per trial
    curves: pd.DataFrame                      # trial x epoch x split x metric
    probes: pd.DataFrame                      # trial x step x layer x probe x stat
    evaluations: pd.DataFrame                 # trial x mode x k x metric
    spec: spec_module.StudySpec               # the study, profile and overrides applied
    meta: dict[str, Any] = field(default_factory=dict)  # run.json
    axes: tuple[str, ...] = ()                # grid axis names, in grid order
    run_dir: Path | None = None

    def completed(self) -> pd.DataFrame:
        """The trials that finished normally."""
        return self.trials[self.trials["status"] == "completed"]

    def level_orders(self, axes: Sequence[str] | None = None) -> dict[str, list]:
        """Level order of each axis column (the study file's order) and of the ``point`` labels."""
        return level_orders(self.trials, self.spec, self.axes if axes is None else axes)


def load(run_dir: str | os.PathLike) -> Records:
    """Rebuild every frame of a run from its trial folders.

    The trials of the seeds ``--until-decided`` added (``<run_dir>/more/*``, :mod:`ablation.engine.sequential`)
    are read with the run's own; their ``trial_id`` starts with the added run's hash.

    Args:
        run_dir: a run folder written by ``runner.run`` (``<out>/<study>-<hash8>``).

    Returns:
        A ``Records`` with the frames, the ``StudySpec`` and the run metadata.

    Raises:
        RunFolderError: not a run folder, or its spec is damaged or does not match the run's hash.
    """
    run_dir = Path(run_dir)
    spec, meta = read_spec(run_dir)
    rows, curve_rows, probe_rows, eval_rows = [], [], [], []
    folders = [(trial_dir, spec, "") for trial_dir in rundir.trial_dirs(run_dir)]
    for more in rundir.extension_dirs(run_dir):  # seeds added by --until-decided: same axes, one point each
        more_spec, _ = read_spec(more)
        folders += [(trial_dir, more_spec, more.name.rsplit("-", 1)[-1] + "/") for trial_dir in rundir.trial_dirs(more)]
    for trial_dir, trial_spec, prefix in folders:
        trial = _read_trial(rundir.read_trial(trial_dir), trial_spec)
        if trial is None:
            continue
        keys = trial["keys"]
        keys["trial_id"] = prefix + str(keys["trial_id"])
        rows.append({**keys, **trial["row"]})
        curve_rows.extend({**keys, **r} for r in trial["curves"])
        probe_rows.extend({**keys, **r} for r in trial["probes"])
        eval_rows.extend({**keys, **r} for r in trial["evaluations"])
    axes = spec.axis_names
    key_cols = list(KEY_COLUMNS) + list(axes)
    frames = {name: _frame(rs, key_cols + list(FRAME_COLUMNS[name]))
              for name, rs in (("trials", rows), ("curves", curve_rows), ("probes", probe_rows),
                               ("evaluations", eval_rows))}
    return Records(**frames, spec=spec, meta=meta, axes=axes, run_dir=run_dir)


def read_spec(run_dir: str | os.PathLike) -> tuple[spec_module.StudySpec, dict[str, Any]]:
    """The resolved spec and the metadata of a run folder, checked against each other."""
    run_dir = Path(run_dir)
    where = f"Received: run_dir={str(run_dir)!r}"
    if not run_dir.is_dir() or not (run_dir / rundir.SPEC).is_file():
        raise RunFolderError(f"Invalid value for argument 'run_dir': expected a run folder written by "
                             f"'ablation run' (with {rundir.SPEC} inside). {where}")
    try:
        meta = files.read_json(run_dir / rundir.RUN, default={}) or {}
        doc = files.read_json(run_dir / rundir.SPEC)
        study_file = run_dir / rundir.STUDY
        text = study_file.read_text(encoding="utf-8") if study_file.is_file() else ""
        spec = spec_module.StudySpec.from_dict(doc, source_text=text)
    except files.DamagedFile as exc:
        raise RunFolderError(f"{exc}; the run folder cannot be read") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFolderError(f"{run_dir / rundir.SPEC}: not a spec this version can read ({type(exc).__name__}: "
                             f"{exc}); run 'ablation run' on the study again to refresh it") from None
    if meta.get("hash") and meta["hash"] != spec.hash:
        raise RunFolderError(f"{run_dir}: {rundir.SPEC} does not match the run's hash ({spec.hash[:8]} vs "
                             f"{meta['hash'][:8]}); the folder was edited or mixes two runs")
    return spec, meta


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


def level_orders(trials: pd.DataFrame, spec: spec_module.StudySpec | None, axes: Sequence[str]) -> dict[str, list]:
    """Level order of each axis column (the study file's order) and of the ``point`` labels."""
    orders: dict[str, list] = {}
    axes = [a for a in axes if a in trials.columns]
    for name in axes:
        present = list(pd.unique(trials[name]))
        labels = list(spec.axis(name).labels) if spec is not None and name in spec.axis_names else []
        rank = {lab: i for i, lab in enumerate(labels)}
        orders[name] = sorted(present, key=lambda v: rank.get(spec_module.label(_plain(v)), len(rank)))
    if "point" in trials.columns:
        points = list(pd.unique(trials["point"]))
        keys = {p: tuple(orders[a].index(v) if v in orders[a] else -1 for a, v in
                         zip(axes, trials.loc[trials["point"] == p, list(axes)].iloc[0])) for p in points}
        orders["point"] = sorted(points, key=lambda p: keys[p])
    return orders


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0 else value


def _read_trial(t: rundir.TrialFiles, spec: spec_module.StudySpec) -> dict | None:
    result, kt_trial = t.result, t.kt_trial
    if result is None and kt_trial is None and not t.damaged:
        return None
    damaged = "; ".join(t.damaged) or None
    if result is not None:
        point, seed, status = result.get("point", {}), result.get("seed"), result.get("status", "failed")
    else:  # unfinished (interrupted or in progress), or its result file is damaged
        values = (kt_trial or {}).get("hyperparameters", {}).get("values", {})
        point = {a: str(values.get(a)) for a in spec.axis_names}
        seed = values.get("seed")
        status = "running" if (kt_trial or {}).get("status") == "RUNNING" else "pending"
        if any(d.startswith(f"{t.folder.name}/{rundir.RESULT}") for d in t.damaged):
            status = "failed"
    trial_id = (result or {}).get("trial_id") or t.folder.name.removeprefix("trial_")
    keys = {"trial_id": trial_id, "status": status, "seed": seed, "point": point_label(point)}
    for axis in spec.grid:
        label = point.get(axis.name)
        keys[axis.name] = axis_column_value(axis, label) if label in axis.labels else label
    row: dict[str, Any] = {"damaged": damaged}
    if result is not None:
        row.update({"train_size": result.get("train_size"), "reason": result.get("reason"),
                    "failed_epoch": result.get("failed_epoch"), "wall_time_s": result.get("wall_time_s"),
                    "epochs_run": result.get("epochs_run"), "steps_run": result.get("steps_run"),
                    "xla": result.get("xla"), "backend": result.get("backend"),
                    "train_path": train_path_label(result.get("train_path"), result.get("xla")),
                    "pack_id": result.get("pack_id"), "pack_size": result.get("pack_size"),
                    "num_classes": result.get("num_classes"), "test_size": result.get("test_size"), "task": result.get("task", "classification")})
        row.update(result.get("metrics") or {})
    if damaged and not row.get("reason"):
        row["reason"] = f"damaged file: {damaged}"
    return {"keys": keys, "row": row, "evaluations": (result or {}).get("evaluations") or [],
            "curves": _curve_rows(t.history), "probes": t.probes if isinstance(t.probes, list) else []}


def train_path_label(path: Any, xla: Any) -> str | None:
    """A trial's training path as the trials table shows it: ``scan+xla``, ``keras+xla`` or ``keras`` (the
    path ``training.choose_path`` recorded in its result.json, ``+xla`` when XLA compiled it); None for a
    trial that recorded none (it failed before training, or ran before paths were recorded)."""
    if not isinstance(path, str) or not path:
        return None
    return f"{path}+xla" if xla else path


def _curve_rows(history: dict | None) -> Iterable[dict]:
    if not history:
        return []
    epochs = history.get("epoch", [])
    steps = history.get("step", [None] * len(epochs))
    out = []
    for split, prefix in (("train", ""), ("val", "val_")):
        for metric in ("loss", "accuracy", "rmse", "mae"):
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

