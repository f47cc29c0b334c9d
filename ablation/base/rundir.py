"""The layout of a run folder: which file holds what, and reading one trial's files.

A run folder ``<out>/<study>-<hash8>/`` (docs/internals.md section 3) holds the study file as given,
the resolved spec (``spec.json``, the one the records are read against), the run's metadata, and
one folder per trial with keras-tuner's ``trial.json`` and this package's ``result.json``,
``history.json`` and ``probes.json``. The runner and the tuner write these files (atomically,
through :mod:`ablation.base.files`); :mod:`ablation.stats.records` reads them. Nothing else knows the names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablation.base import files

STUDY = "study.toml"          # the study file, verbatim
SPEC = "spec.json"            # the resolved spec (profile and command-line overrides applied)
RUN = "run.json"              # metadata: name, hash, profile, overrides, invocations
LOCK = "run.lock"             # held by the process that runs the study (pid, host)
RESULT = "result.json"        # a finished trial: status, metrics, evaluations
HISTORY = "history.json"      # per-epoch metrics
PROBES = "probes.json"        # probe rows
KT_TRIAL = "trial.json"       # keras-tuner's record of the trial
ORACLE = "oracle.json"        # keras-tuner's oracle (rebuilt from the trial folders on resume)
WORKERS_LOG = "workers.log"   # what the worker processes of a run printed
REPORT = "report.html"        # the report, when rendered into the run folder
PROGRESS = "progress"         # <tuner id>.json per worker: the epoch its pack has reached (while a run runs)
FRAMES = ("trials", "curves", "probes", "evaluations")  # the CSV files the runner writes when a run ends
# run folders of the seeds --until-decided added (ablation.engine.sequential), one per point
MORE = "more"
UNTIL_LOCK = "until.lock"     # held by the process that adds seeds to a run


def trial_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """The trial folders of a run, in trial-id order."""
    return sorted(p for p in Path(run_dir).glob("trial_*") if p.is_dir())


def extension_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """The run folders of the seeds added to a run (``<run_dir>/more/<study>-<hash8>``), in name order."""
    return sorted(p for p in (Path(run_dir) / MORE).glob("*") if (p / RUN).is_file() or (p / SPEC).is_file())


def write_trial(trial_dir: str | os.PathLike, result: dict[str, Any] | None, history: dict[str, Any] | None = None,
                probes: list[dict[str, Any]] | None = None) -> None:
    """Write one trial's files; ``result.json`` last, so its presence means the others are whole (``result``
    None: the others only, its result follows in a later call)."""
    trial_dir = Path(trial_dir)
    if history is not None:
        files.atomic_write_json(trial_dir / HISTORY, history)
    if probes:
        files.atomic_write_json(trial_dir / PROBES, probes)
    if result is not None:
        files.atomic_write_json(trial_dir / RESULT, result)


@dataclass
class TrialFiles:
    """What one trial folder holds; ``damaged`` lists the files that exist but could not be read."""

    folder: Path
    result: dict[str, Any] | None = None
    history: dict[str, Any] | None = None
    probes: list[dict[str, Any]] = field(default_factory=list)
    kt_trial: dict[str, Any] | None = None
    damaged: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """The trial ended (completed, diverged or failed) and its record is readable."""
        return self.result is not None


def _progress_path(run_dir: str | os.PathLike, tuner_id: str) -> Path:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in tuner_id) or "tuner"
    return Path(run_dir) / PROGRESS / f"{name}.json"


def write_progress(run_dir: str | os.PathLike, tuner_id: str, info: dict[str, Any]) -> None:
    """Say how far the pack that ``tuner_id`` trains has got (cheap to lose: not fsynced)."""
    files.atomic_write_json(_progress_path(run_dir, tuner_id), info, durable=False)


def clear_progress(run_dir: str | os.PathLike, tuner_id: str) -> None:
    """Forget ``tuner_id``'s note (its worker has ended: its pack is no longer in training)."""
    _progress_path(run_dir, tuner_id).unlink(missing_ok=True)


def read_progress(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every worker's last progress note (a note being replaced or damaged is skipped: it is only a hint)."""
    out = []
    for path in sorted((Path(run_dir) / PROGRESS).glob("*.json")):
        try:
            info = files.read_json(path)
        except (OSError, files.DamagedFile):
            continue
        if isinstance(info, dict):
            out.append(info)
    return out


def read_trial(trial_dir: str | os.PathLike) -> TrialFiles:
    """Read a trial folder; a damaged file is listed in ``damaged`` instead of raising."""
    trial_dir = Path(trial_dir)
    out = TrialFiles(folder=trial_dir)
    for attr, name, default in (("result", RESULT, None), ("history", HISTORY, None), ("probes", PROBES, []),
                                ("kt_trial", KT_TRIAL, None)):
        try:
            setattr(out, attr, files.read_json(trial_dir / name, default=default))
        except files.DamagedFile as exc:
            out.damaged.append(f"{trial_dir.name}/{name} ({exc.problem})")
    if out.result is not None and not isinstance(out.result, dict):
        out.damaged.append(f"{trial_dir.name}/{RESULT} (not a JSON object)")
        out.result = None
    return out
