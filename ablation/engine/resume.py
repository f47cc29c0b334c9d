"""Resuming a run: what each trial folder holds, checked file by file, before the grid goes on.

Disk is the single source of truth (DESIGN.md, convention 8), so a resumed run believes the trial
folders, not the oracle's bookkeeping: a run killed at any point (inside a write, between two
files, between keras-tuner's ``trial.json`` and its ``oracle.json``) leaves folders that say
exactly which trials finished. :func:`scan_trial` reads one folder and decides:

- **finished**: ``result.json`` is whole, belongs to the trial's grid point and seed, and the
  trial's ``history.json`` / ``probes.json`` are whole too. Its record is kept as it is.
- **to run again**: anything else (no result yet, or a damaged file). A damaged file is set aside
  as ``<name>.damaged`` (kept for inspection, never read again) and the trial's other leftovers
  are removed, so the next attempt writes a clean folder.

A trial's grid point comes from keras-tuner's ``trial.json``; when that file is damaged, from its
``result.json``; the oracle (:mod:`ablation.engine.oracle`) fills in the rest from the grid itself.
Temporary files that an atomic write left behind when it was killed are removed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablation.base import files, rundir
from ablation.spec import StudySpec

SEED = "seed"                       # the hyperparameter that holds the seed (hypermodel.SEED_HP)
FINISHED = ("completed", "diverged", "failed")
DAMAGED_SUFFIX = ".damaged"         # a damaged file set aside
STALE_SUFFIX = ".stale"             # a record that belongs to another grid point, set aside


@dataclass
class TrialScan:
    """What one trial folder holds, judged against the grid."""

    trial_id: str
    folder: Path
    kt_values: dict[str, Any] | None = None      # values in keras-tuner's trial.json (whole and of this grid)
    kt_state: dict[str, Any] | None = None       # that trial.json
    result: dict[str, Any] | None = None         # result.json (whole and of this grid)
    result_values: dict[str, Any] | None = None  # the values result.json names
    damaged: list[str] = field(default_factory=list)  # file names that exist but cannot be read

    @property
    def values(self) -> dict[str, Any] | None:
        """The trial's grid point and seed: from trial.json, else from result.json, else unknown."""
        return self.kt_values if self.kt_values is not None else self.result_values

    @property
    def finished(self) -> bool:
        """The trial ended and every one of its files is whole: its record stands."""
        return (self.result is not None and self.values is not None and self.result_values == self.values
                and not any(name in self.damaged for name in (rundir.HISTORY, rundir.PROBES, rundir.RESULT)))


def grid_values(spec: StudySpec) -> list[dict[str, Any]]:
    """The hyperparameter values of every trial of the grid (axis labels and the seed)."""
    return [{**point, SEED: int(seed)} for point, seed in spec.trials()]


def check_values(spec: StudySpec, values: Any) -> dict[str, Any] | None:
    """``values`` when they name one trial of this grid (every axis a label of it, a seed of the study), else None."""
    if not isinstance(values, dict) or set(values) != set(spec.axis_names) | {SEED}:
        return None
    seed = values[SEED]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed not in spec.seeds:
        return None
    if any(values[a.name] not in a.labels for a in spec.grid):
        return None
    return dict(values)


def scan_trial(folder: str | os.PathLike, spec: StudySpec) -> TrialScan:
    """Read one trial folder (nothing is changed on disk)."""
    folder = Path(folder)
    found = rundir.read_trial(folder)
    scan = TrialScan(trial_id=folder.name.removeprefix("trial_"), folder=folder,
                     damaged=[d.split("/", 1)[1].split(" (", 1)[0] for d in found.damaged])
    kt = found.kt_trial
    if isinstance(kt, dict):
        values = check_values(spec, (kt.get("hyperparameters") or {}).get("values"))
        if values is not None and kt.get("trial_id") == scan.trial_id:
            scan.kt_values, scan.kt_state = values, kt
        elif rundir.KT_TRIAL not in scan.damaged:
            scan.damaged.append(rundir.KT_TRIAL)  # whole JSON, but not a trial of this grid
    result = found.result
    if isinstance(result, dict) and result.get("status") in FINISHED and isinstance(result.get("point"), dict):
        values = check_values(spec, {**result["point"], SEED: result.get("seed")})
        if values is not None:
            scan.result, scan.result_values = result, values
    if found.result is not None and scan.result is None and rundir.RESULT not in scan.damaged:
        scan.damaged.append(rundir.RESULT)
    return scan


def describe(spec: StudySpec, values: dict[str, Any] | None) -> str:
    """``activation=relu, dropout=0.5, seed=1`` (or ``an unknown grid point``)."""
    if values is None:
        return "an unknown grid point"
    return ", ".join([f"{a}={values[a]}" for a in spec.axis_names] + [f"seed={values[SEED]}"])


def set_aside(path: str | os.PathLike, suffix: str = DAMAGED_SUFFIX, *, hide: bool = False) -> Path:
    """Rename ``path`` to ``<name><suffix>`` (``<name><suffix>.1`` ... when taken); returns the new path.

    ``hide`` puts a dot in front, so a set-aside trial folder is no longer a ``trial_*`` folder.
    """
    path = Path(path)
    name = ("." if hide else "") + path.name
    target = path.with_name(name + suffix)
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{name}{suffix}.{n}")
    os.replace(path, target)
    return target


def prepare_rerun(scan: TrialScan) -> list[str]:
    """Make a trial folder ready to run its trial again; returns notes on damaged files set aside.

    Damaged files are renamed ``<name>.damaged``; a whole record of another grid point is renamed
    ``<name>.stale``; the unfinished trial's own leftovers (a history written before the kill) are
    removed. keras-tuner's ``trial.json`` is left to the oracle, which rewrites it.
    """
    notes = []
    for name in (rundir.RESULT, rundir.HISTORY, rundir.PROBES):
        path = scan.folder / name
        if not path.exists():
            continue
        if name in scan.damaged:
            aside = set_aside(path)
            notes.append(f"{scan.folder.name}/{name}: damaged file, set aside as {aside.name}")
        elif name == rundir.RESULT and scan.result is not None:
            set_aside(path, STALE_SUFFIX)
        else:
            path.unlink()
    if rundir.KT_TRIAL in scan.damaged and (scan.folder / rundir.KT_TRIAL).exists():
        aside = set_aside(scan.folder / rundir.KT_TRIAL)
        notes.append(f"{scan.folder.name}/{rundir.KT_TRIAL}: damaged file, set aside as {aside.name}")
    remove_temporaries(scan.folder)
    return notes


def remove_temporaries(folder: str | os.PathLike) -> int:
    """Delete what killed atomic writes left in ``folder``; returns how many files."""
    stale = files.stale_temporaries(folder)
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def trial_folders(run_dir: str | os.PathLike) -> dict[str, Path]:
    """Trial id -> folder, for the folders keras-tuner names ``trial_<digits>``."""
    return {p.name.removeprefix("trial_"): p for p in rundir.trial_dirs(run_dir)
            if p.name.removeprefix("trial_").isdigit()}
