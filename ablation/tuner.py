"""The keras-tuner adapter: the tuner that runs a study's grid, and every use of keras-tuner internals.

``AblationTuner`` is a ``BaseTuner`` (no model checkpoints per epoch: a trial's record is its
files) driven by keras-tuner's ``GridSearchOracle``: one trial per grid point x seed, never
``executions_per_trial``. Its ``run_trial`` owns the trial's side effects: it builds and trains
through the HyperModel and writes the trial's files (:func:`ablation.rundir.write_trial`).
Diverged and failed trials raise ``FailedTrialError`` and stay FAILED (no retries); the
consecutive-failure limit is lifted so one broken configuration cannot stop a study. An
interrupted trial is re-queued by keras-tuner when the oracle reloads.

keras-tuner 1.4's private attributes that this package relies on are listed in
``PRIVATE_API``; :func:`check_keras_tuner` fails loudly (and a test calls it) when an installed
keras-tuner lacks one.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import io
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import keras
import keras_tuner as kt
from keras_tuner.src import config as kt_config
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import base_tuner, tuner_utils
from keras_tuner.src.tuners import gridsearch

from ablation import pack as pack_module
from ablation import rundir, tensorboard
from ablation import trial as trial_module
from ablation.hypermodel import AblationHyperModel
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
)
_ORACLE_STATE = ("_ordered_ids", "_populate_next")   # instance attributes of GridSearchOracle


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
    """The grid oracle, resumable, with a hook called after each trial ends (progress display).

    keras-tuner 1.4's ``GridSearchOracle`` keeps its place in the grid (the ordered trial list and
    the trials whose successor is still to be generated) only in memory, so a reloaded oracle
    cannot go on. ``set_state`` rebuilds both from the trials on disk: the order is the grid
    order, and every ended trial is offered again as a predecessor (the oracle skips those whose
    successor already exists).
    """

    def __init__(self, *args: Any, on_trial_end: Callable | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_trial_end = on_trial_end

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        values = {tid: t.hyperparameters.values for tid, t in self.trials.items()}
        order = sorted(values, key=functools.cmp_to_key(lambda a, b: self._compare(values[a], values[b])))
        self._ordered_ids = gridsearch.LinkedList()
        for trial_id in order:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(self.end_order)

    def populate_space(self, trial_id: str) -> dict:
        """keras-tuner offers a trial's grid successor only when the trial ends (or for the very first
        one); offering every new trial at once hands out consecutive grid points together, as packs need."""
        response = super().populate_space(trial_id)
        if response["status"] == kt.engine.trial.TrialStatus.RUNNING and trial_id not in self._populate_next:
            self._populate_next.append(trial_id)
        return response

    def end_trial(self, trial: Any) -> None:
        super().end_trial(trial)
        if self._on_trial_end is not None:
            self._on_trial_end(trial)


class AblationTuner(base_tuner.BaseTuner):
    """Grid search over a study's axes and seeds; one run folder per study hash.

    Args:
        spec: the validated study.
        out_dir: the folder that holds run folders.
        on_trial_end: optional callback, called with each ended keras-tuner trial.
        pack_size: the most trials trained as one pack (1: each alone); None lets
            :func:`ablation.pack.default_limit` choose from the model's size.
    """

    def __init__(self, spec: StudySpec, out_dir: str | os.PathLike,
                 on_trial_end: Callable | None = None, pack_size: int | None = None) -> None:
        oracle = _StudyOracle(objective=kt.Objective(spec.objective, "min"), max_trials=spec.n_trials,
                              max_consecutive_failed_trials=spec.n_trials + 1, max_retries_per_trial=0,
                              on_trial_end=on_trial_end)
        self.spec = spec
        self.pack_size = pack_size  # None: pack.default_limit decides
        self._param_counts: dict[tuple, int] = {}
        self._slots: set[str] = set()
        self._slot_of: dict[str, str] = {}
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner prints "Reloading Tuner from ..."
            super().__init__(oracle, hypermodel=AblationHyperModel(spec), directory=str(out_dir),
                             project_name=spec.run_name, overwrite=False)

    def _populate_initial_space(self) -> None:
        # The space has no conditional scopes: declare it without building any model.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def search(self, *args: Any, **kwargs: Any) -> None:
        """Run every trial of the grid, in packs of trials that share a training recipe.

        Trials come from the oracle one at a time (on a worker, over gRPC); consecutive ones that
        share a recipe (:func:`ablation.pack.recipe_key`) are collected up to the pack limit and
        trained together. A trial of another recipe ends the pack and starts the next one.
        """
        if "verbose" in kwargs and (not dist_utils.has_chief_oracle() or dist_utils.is_chief_oracle()):
            self.oracle.verbose = kwargs["verbose"]
        with _quiet_failures():
            if dist_utils.is_chief_oracle():  # the chief only serves the oracle (blocks until done)
                from keras_tuner.src.distribute import oracle_chief

                self.save()
                oracle_chief.start_server(self.oracle)
                return
            self.on_search_begin()
            carry: Any = None
            while True:
                pack, stopped = ([carry] if carry is not None else []), False
                carry = None
                while not stopped:
                    if pack and len(pack) >= self._limit(pack[0]):
                        break
                    self.pre_create_trial()
                    slot = self._slot_id(pack)
                    trial = self.oracle.create_trial(slot)
                    self._slot_of[trial.trial_id] = slot
                    if trial.status == kt.engine.trial.TrialStatus.STOPPED:
                        stopped = True
                    elif trial.status == kt.engine.trial.TrialStatus.IDLE:
                        if pack:
                            break  # the grid is handed out; other workers still run theirs
                        time.sleep(0.5)
                    elif pack and self._key(trial) != self._key(pack[0]):
                        carry = trial
                        break
                    else:
                        pack.append(trial)
                if pack:
                    self._run_pack(pack)
                elif stopped:
                    break
            for slot in sorted(self._slots):  # every slot id must hear STOPPED, or a chief waits for it
                self.oracle.create_trial(slot)
            self.on_search_end()

    def _slot_id(self, pack: list) -> str:
        """The oracle gives one trial at a time per tuner id: each trial of a pack asks under its own slot id."""
        busy = {self._slot_of.get(t.trial_id) for t in pack}
        slot = next(f"{self.tuner_id}/{k}" for k in range(len(pack) + 1) if f"{self.tuner_id}/{k}" not in busy)
        self._slots.add(slot)
        return slot

    def on_search_begin(self) -> None:
        tensorboard.write_config(self.project_dir, self.spec)

    def _key(self, trial: Any) -> tuple:
        return pack_module.recipe_key(self.hypermodel.config(trial.hyperparameters))

    def _limit(self, first: Any) -> int:
        """How many trials may train together with ``first`` (1 when packing is off or cannot apply)."""
        if self.pack_size is not None:
            wanted = self.pack_size
        else:
            cfg = self.hypermodel.config(first.hyperparameters)
            wanted = pack_module.default_limit(self.spec, cfg, self._params(first))
        return max(1, min(wanted, pack_module.allowed_limit(self.spec, self.hypermodel.config(first.hyperparameters))))

    def _params(self, trial: Any) -> int:
        key = self._key(trial)
        if key not in self._param_counts:
            try:
                member = self.hypermodel.member(trial.hyperparameters)
                self._param_counts[key] = member.model.count_params()
            except Exception:  # noqa: BLE001 - a user's model function that raises: its trial records it
                self._param_counts[key] = 0
            keras.backend.clear_session()
        return self._param_counts[key]

    def _train_and_record(self, trials: list) -> list[trial_module.TrialRecord]:
        """Build and train the trials as one pack and write each trial's files; one record each."""
        keras.backend.clear_session()
        members, records = [], {}
        for trial in trials:
            hp = trial.hyperparameters
            try:
                members.append(self.hypermodel.member(hp, trial.trial_id))
            except Exception as exc:  # noqa: BLE001 - recorded as a failed trial; the study goes on
                records[trial.trial_id] = trial_module.failed(self.hypermodel.config(hp), trial.trial_id, exc)
        if members:
            for member, record in zip(members, self.hypermodel.train(members)):
                records[member.trial_id] = record
        del members
        for trial in trials:
            record = records[trial.trial_id]
            record.result["pack_id"] = trials[0].trial_id
            rundir.write_trial(self.get_trial_dir(trial.trial_id), record.result, record.history, record.probes)
            tensorboard.write_trial(self.project_dir, self.spec, record.result, record.history)
        keras.backend.clear_session()
        gc.collect()
        return [records[t.trial_id] for t in trials]

    def _run_pack(self, trials: list) -> None:
        """Train and record the trials of one pack, and report each to the oracle."""
        for trial in trials:
            self.on_trial_begin(trial)
        for trial, record in zip(trials, self._train_and_record(trials)):
            if record.status == "completed":
                metrics = record.metrics()
                self.oracle.update_trial(trial.trial_id, tuner_utils.convert_to_metrics_dict(
                    metrics, self.oracle.objective), step=tuner_utils.get_best_step(metrics, self.oracle.objective))
                trial.status = kt.engine.trial.TrialStatus.COMPLETED
            else:
                trial.status = kt.engine.trial.TrialStatus.FAILED
                trial.message = f"{record.status}: {record.result['reason']}"
            self.on_trial_end(trial)

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Train and record one trial alone; its metrics (keras-tuner's contract; ``search`` runs packs)."""
        (record,) = self._train_and_record([trial])
        if record.status != "completed":
            raise kt.errors.FailedTrialError(f"{record.status}: {record.result['reason']}")
        return record.metrics()

    def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
        """Trials keep their records, not their weights."""

    def load_model(self, trial: Any) -> Any:
        raise NotImplementedError("keras-ablation does not keep trained weights; rebuild the model with "
                                  "zoo.create and the trial's arguments")
