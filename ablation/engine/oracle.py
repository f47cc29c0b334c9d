"""keras-tuner's grid oracle for a study, and the one list of keras-tuner internals this package uses.

``_StudyOracle`` is a ``GridSearchOracle`` over the study's axes and seeds: one trial per grid point
x seed, never ``executions_per_trial``. Resuming does not trust keras-tuner's bookkeeping: the
oracle is rebuilt from the trial folders (:mod:`ablation.engine.resume`), so a run killed at any point,
resumed with any worker layout, runs every unfinished trial once more and no finished one again.
keras-tuner's own files (``trial.json``, ``oracle.json``) are written atomically through
:mod:`ablation.base.files`. A chief hands the trials of a worker that died back to the grid
(:meth:`_StudyOracle.release`).

keras-tuner 1.4's private attributes that this package relies on (here, in :mod:`ablation.engine.tuner`
and in :mod:`ablation.engine.cluster`) are listed in ``PRIVATE_API``; :func:`check_keras_tuner` fails
loudly (and a test calls it) when an installed keras-tuner lacks one.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import math
import os
from collections.abc import Callable, Iterator
from typing import Any

from ablation.base import backend as _backend

kt = _backend.keras_tuner()  # without scikit-learn; before the keras_tuner.src imports below
from keras_tuner.src import config as kt_config
from keras_tuner.src import protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import base_tuner, tuner_utils
from keras_tuner.src.engine import metrics_tracking
from keras_tuner.src.tuners import gridsearch

from ablation.base import files, rundir
from ablation.engine import resume
from ablation.spec import StudySpec

# keras-tuner internals used here: (object, attribute) pairs checked by check_keras_tuner().
PRIVATE_API = (
    (kt.oracles.GridSearchOracle, "_compare"),       # orders grid points (resume rebuilds the order with it)
    (gridsearch, "LinkedList"),                      # the oracle's ordered list of trial ids
    (kt_config, "DEBUG"),                            # prints tracebacks of failed trials to stderr when True
    (base_tuner.BaseTuner, "_populate_initial_space"),
    (dist_utils, "is_chief_oracle"),                 # search(): the chief serves the oracle
    (dist_utils, "has_chief_oracle"),
    (tuner_utils, "convert_to_metrics_dict"),        # reporting a pack's trials to the oracle
    (tuner_utils, "get_best_step"),
    (kt.oracles.GridSearchOracle, "_save_trial"),    # keras-tuner's trial.json writer (made atomic here)
    (kt.oracles.GridSearchOracle, "_get_oracle_fname"),
    (kt.oracles.GridSearchOracle, "_compute_values_hash"),
    (metrics_tracking, "MetricsTracker"),            # a trial's metrics, reset when it runs again
    (oracle_client, "TIMEOUT"),                      # ablation.engine.cluster: how long a worker waits for its chief
    (oracle_chief, "OracleServicer"),                # ablation.engine.cluster: the chief's gRPC service
    (protos, "get_service_grpc"),
)
# instance attributes of GridSearchOracle that the rebuild on resume sets
_ORACLE_STATE = ("_ordered_ids", "_populate_next", "_retry_queue", "_run_times", "_tried_so_far", "_id_to_hash",
                 "ongoing_trials", "tuner_ids", "start_order", "end_order")
TrialStatus = kt.engine.trial.TrialStatus


def check_keras_tuner() -> None:
    """Raise ``RuntimeError`` naming what is missing when keras-tuner's internals changed."""
    missing = [f"{getattr(owner, '__name__', owner)}.{name}" for owner, name in PRIVATE_API
               if not hasattr(owner, name)]
    oracle = kt.oracles.GridSearchOracle(objective=kt.Objective("x", "min"), max_trials=1)
    missing += [f"GridSearchOracle().{name}" for name in _ORACLE_STATE if not hasattr(oracle, name)]
    if missing:
        raise RuntimeError(f"keras-tuner {kt.__version__} lacks internals keras-ablation relies on: "
                           f"{', '.join(missing)}; install keras-tuner>=1.4.7,<1.5")


@contextlib.contextmanager
def _quiet_failures() -> Iterator[None]:
    """Failed trials keep their traceback in result.json, not on stderr (keras-tuner's DEBUG flag)."""
    previous = kt_config.DEBUG
    kt_config.DEBUG = False
    try:
        yield
    finally:
        kt_config.DEBUG = previous


class _StudyOracle(kt.oracles.GridSearchOracle):
    """The grid oracle, rebuilt from disk on resume, with a hook called after each trial ends.

    ``reload`` rebuilds the whole oracle from the trial folders rather than from ``oracle.json``
    (which keras-tuner writes separately and a kill may leave behind the trials): every trial
    whose record is whole is ended, every other one goes back into the queue (whatever worker
    had it: worker ids do not survive a resume), damaged files are set aside
    (:mod:`ablation.engine.resume`), and the oracle's place in the grid (the ordered trial list and the
    trials whose successor is still to be generated, kept only in memory by keras-tuner 1.4) is
    rebuilt in grid order. A trial folder whose grid point cannot be read, or a trial id that
    has no folder, takes a grid point that no trial has yet, so ids never collide and the grid
    ends with exactly its trials. ``repairs`` lists, in words, what the rebuild found and did.
    """

    def __init__(self, *args: Any, spec: StudySpec, declare: Callable[[kt.HyperParameters], None],
                 on_trial_end: Callable | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self._declare = declare
        self.on_trial_end = on_trial_end
        self.repairs: list[str] = []

    # ------------------------------------------------------------------ keras-tuner's files, atomically
    def save(self) -> None:
        files.atomic_write_text(self._get_oracle_fname(), json.dumps(self.get_state()))

    def _save_trial(self, trial: Any) -> None:
        path = os.path.join(self._get_trial_dir(trial.trial_id), rundir.KT_TRIAL)
        files.atomic_write_text(path, json.dumps(trial.get_state()))

    # ------------------------------------------------------------------ resume
    def reload(self) -> None:
        """Rebuild the oracle from the run folder (see the class docstring)."""
        self.repairs = []
        state = None
        try:
            state = files.read_json(self._get_oracle_fname(), default=None)
        except files.DamagedFile as exc:
            aside = resume.set_aside(self._get_oracle_fname())
            self.repairs.append(f"{rundir.ORACLE}: damaged file ({exc.problem}), set aside as {aside.name}; "
                                f"the oracle is rebuilt from the trial folders")
        removed = resume.remove_temporaries(self._project_dir)
        space = kt.HyperParameters()
        self._declare(space)
        self.hyperparameters = space
        scans = {tid: resume.scan_trial(folder, self.spec) for tid, folder in
                 resume.trial_folders(self._project_dir).items()}
        values = self._assign_values(scans, state)
        self.trials, ended, unfinished = {}, [], []
        for tid in sorted(values, key=int):
            scan = scans.get(tid) or resume.TrialScan(tid, self._trial_folder(tid))
            trial, finished, notes = self._rebuilt_trial(tid, values[tid], scan)
            self.trials[tid] = trial
            (ended if finished else unfinished).append(tid)
            self.repairs.extend(notes)
            removed += resume.remove_temporaries(scan.folder)
        if removed:
            self.repairs.append(f"removed {removed} temporary file(s) left by writes that were cut short")
        order = self._grid_sorted(list(self.trials))
        self.start_order, self.end_order = sorted(self.trials, key=int), ended
        self.ongoing_trials, self.tuner_ids = {}, set()
        waiting = set(unfinished)
        self._retry_queue = [tid for tid in reversed(order) if tid in waiting]  # popped from the end: grid order
        self._run_times = collections.defaultdict(lambda: 0)
        hashes = {tid: self._compute_values_hash(t.hyperparameters.values) for tid, t in self.trials.items()}
        self._tried_so_far = set(hashes.values())
        self._id_to_hash = collections.defaultdict(lambda: None, hashes)
        if isinstance(state, dict) and isinstance(state.get("seed"), int):
            self.seed, self._seed_state = state["seed"], state.get("seed_state", state["seed"])
        self._ordered_ids = gridsearch.LinkedList()
        for tid in order:
            self._ordered_ids.insert(tid)
        self._populate_next = list(self.end_order)
        self.save()

    def set_state(self, state: dict) -> None:
        """keras-tuner's state, with the place in the grid rebuilt (``reload`` does not go through it)."""
        super().set_state(state)
        order = self._grid_sorted(list(self.trials))
        self._ordered_ids = gridsearch.LinkedList()
        for trial_id in order:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(self.end_order)

    def _grid_sorted(self, trial_ids: list[str]) -> list[str]:
        values = {tid: self.trials[tid].hyperparameters.values for tid in trial_ids}
        return sorted(trial_ids, key=functools.cmp_to_key(lambda a, b: self._compare(values[a], values[b])))

    def _trial_folder(self, trial_id: str) -> Any:
        from pathlib import Path

        return Path(self._project_dir) / f"trial_{trial_id}"

    def _assign_values(self, scans: dict[str, resume.TrialScan], state: Any) -> dict[str, dict]:
        """Trial id -> grid values for every id up to the largest on disk; every grid point at most once."""
        width = len(str(self.max_trials))
        ids = [f"{i:0{width}d}" for i in range(max((int(t) for t in scans), default=-1) + 1)]
        ids += [t for t in scans if t not in ids]  # ids written with another width (never by this package)
        id_to_hash = (state or {}).get("id_to_hash") if isinstance(state, dict) else None
        by_hash = {self._compute_values_hash(v): v for v in resume.grid_values(self.spec)}
        owner: dict[str, str] = {}   # grid point key -> trial id
        values: dict[str, dict] = {}
        key = functools.partial(json.dumps, sort_keys=True)
        # finished trials first, so a duplicate that did not finish is the one that gives way
        for tid in sorted(ids, key=lambda t: (not (t in scans and scans[t].finished), int(t))):
            scan = scans.get(tid)
            v = scan.values if scan is not None else None
            if v is None and isinstance(id_to_hash, dict) and id_to_hash.get(tid) in by_hash:
                v = by_hash[id_to_hash[tid]]
            if v is not None and key(v) not in owner:
                owner[key(v)] = tid
                values[tid] = v
            elif v is not None:
                self.repairs.append(f"trial_{tid} repeats the grid point of trial_{owner[key(v)]} "
                                    f"({resume.describe(self.spec, v)}); it takes another grid point")
        missing = [v for v in resume.grid_values(self.spec) if key(v) not in owner]
        missing.sort(key=functools.cmp_to_key(self._compare))
        for tid in sorted((t for t in ids if t not in values), key=int):
            if not missing:
                folder = self._trial_folder(tid)
                if folder.exists():
                    aside = resume.set_aside(folder, ".surplus", hide=True)
                    self.repairs.append(f"trial_{tid}: no grid point is left for it; set aside as {aside.name}")
                continue
            values[tid] = missing.pop(0)
            where = "has no folder" if tid not in scans else "names no readable grid point"
            self.repairs.append(f"trial_{tid} {where}; it runs {resume.describe(self.spec, values[tid])}")
        return values

    def _rebuilt_trial(self, trial_id: str, values: dict, scan: resume.TrialScan) -> tuple[Any, bool, list[str]]:
        """The keras-tuner Trial of one trial folder, its trial.json rewritten when it changed."""
        notes: list[str] = []
        finished = scan.finished and scan.values == values
        if scan.kt_state is not None and scan.kt_values == values:
            trial = kt.engine.trial.Trial.from_state(scan.kt_state)
            changed = False
        else:
            hp = self.hyperparameters.copy()
            hp.values = dict(values)
            trial = kt.engine.trial.Trial(hyperparameters=hp, trial_id=trial_id, status=TrialStatus.RUNNING)
            changed = True
            if rundir.KT_TRIAL in scan.damaged and (scan.folder / rundir.KT_TRIAL).exists():
                aside = resume.set_aside(scan.folder / rundir.KT_TRIAL)
                notes.append(f"trial_{trial_id}/{rundir.KT_TRIAL}: damaged file, set aside as {aside.name}; "
                             f"rebuilt from the trial's records")
        if finished:
            changed |= self._mark_ended(trial, scan.result)
        else:
            if trial.status != TrialStatus.RUNNING or trial.metrics.metrics:
                trial.status, trial.message, trial.score, trial.best_step = TrialStatus.RUNNING, None, None, 0
                trial.metrics = metrics_tracking.MetricsTracker()
                changed = True
            notes += resume.prepare_rerun(scan)
            if scan.folder.exists() and (scan.result is not None or scan.damaged):
                notes.append(f"trial_{trial_id} ({resume.describe(self.spec, values)}) runs again")
        if changed:
            self._save_trial(trial)
        return trial, finished, notes

    def _mark_ended(self, trial: Any, result: dict) -> bool:
        """Give ``trial`` the status and objective of its ``result.json``; whether anything changed."""
        completed = result.get("status") == "completed"
        status = TrialStatus.COMPLETED if completed else TrialStatus.FAILED
        if trial.status == status:
            return False
        trial.status = status
        trial.message = None if completed else f"{result.get('status')}: {result.get('reason')}"
        name = self.objective.name
        value = (result.get("metrics") or {}).get(name)
        if completed and isinstance(value, (int, float)) and math.isfinite(value):
            if not trial.metrics.exists(name):
                trial.metrics.register(name, direction=self.objective.direction)
            trial.metrics.update(name, float(value), step=0)
            trial.score, trial.best_step = float(value), 0
        return True

    # ------------------------------------------------------------------ workers that are gone
    @kt.synchronized
    def release(self, tuner_id: str) -> list[str]:
        """Hand back the trials of a worker that is gone (its slot ids ``<tuner_id>/<k>``).

        A trial whose record the worker wrote before it died is ended with that record; every other
        one goes back to the front of the queue and runs again on another worker.

        Returns:
            The ids of the trials that go back to the queue.
        """
        mine = [slot for slot in self.ongoing_trials if slot == tuner_id or slot.startswith(tuner_id + "/")]
        requeued = []
        for slot in mine:
            trial = self.ongoing_trials.pop(slot)
            scan = resume.scan_trial(self._trial_folder(trial.trial_id), self.spec)
            if scan.finished and scan.values == trial.hyperparameters.values:
                self._mark_ended(trial, scan.result)
                self.end_order.append(trial.trial_id)
                self._populate_next.append(trial.trial_id)
                self._save_trial(trial)
                if self.on_trial_end is not None:
                    self.on_trial_end(trial)
            else:
                resume.prepare_rerun(scan)
                self._retry_queue.append(trial.trial_id)
                requeued.append(trial.trial_id)
        self.tuner_ids = {t for t in self.tuner_ids if not (t == tuner_id or t.startswith(tuner_id + "/"))}
        if mine:
            self.save()
        return requeued

    @kt.synchronized
    def done(self) -> bool:
        """Every trial of the grid has ended."""
        ended = (TrialStatus.COMPLETED, TrialStatus.FAILED, TrialStatus.INVALID)
        return (not self.ongoing_trials and not self._retry_queue and len(self.trials) >= self.max_trials
                and all(t.status in ended for t in self.trials.values()))

    # ------------------------------------------------------------------ the grid
    def populate_space(self, trial_id: str) -> dict:
        """keras-tuner offers a trial's grid successor only when the trial ends (or for the very first
        one); offering every new trial at once hands out consecutive grid points together, as packs need."""
        response = super().populate_space(trial_id)
        if response["status"] == TrialStatus.RUNNING and trial_id not in self._populate_next:
            self._populate_next.append(trial_id)
        return response

    def end_trial(self, trial: Any) -> None:
        super().end_trial(trial)
        if self.on_trial_end is not None:
            self.on_trial_end(trial)
