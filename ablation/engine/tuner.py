"""The tuner that runs a study's grid.

``AblationTuner`` is a keras-tuner ``BaseTuner`` (no model checkpoints per epoch: a trial's record
is its files) driven by the study's grid oracle (:mod:`ablation.engine.oracle`). It trains the trials
that share a recipe together (:mod:`ablation.trials.pack`), and its ``run_trial`` owns the trials' side
effects: it builds and trains through the HyperModel and writes each trial's files
(:func:`ablation.base.rundir.write_trial`) and TensorBoard events. Diverged and failed trials raise
``FailedTrialError`` and stay FAILED (no retries); the consecutive-failure limit is lifted so one
broken configuration cannot stop a study. The tuner's own file is written atomically.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import time
from collections.abc import Callable
from typing import Any

import keras

from ablation.base import backend as _backend

kt = _backend.keras_tuner()  # without scikit-learn; before the keras_tuner.src imports below
from keras_tuner.src.distribute import oracle_chief
from keras_tuner.src.distribute import utils as dist_utils
from keras_tuner.src.engine import base_tuner, tuner_utils

from ablation.base import files, rundir
from ablation.base.phases import Phases
from ablation.engine import resume
from ablation.trials import pack as pack_module
from ablation.engine import tensorboard
from ablation.trials import trial as trial_module
from ablation.engine.hypermodel import AblationHyperModel
from ablation.engine.oracle import TrialStatus, _quiet_failures, _StudyOracle
from ablation.spec import StudySpec

NOTE_EVERY_S = 2.0  # a worker's progress note is rewritten at most this often (and at a pack's last epoch)


def _has_run_state(project_dir: str | os.PathLike) -> bool:
    """The run folder holds an oracle or trial folders from an earlier invocation."""
    return os.path.exists(os.path.join(project_dir, rundir.ORACLE)) or bool(resume.trial_folders(project_dir))


class AblationTuner(base_tuner.BaseTuner):
    """Grid search over a study's axes and seeds; one run folder per study hash.

    Args:
        spec: the validated study.
        out_dir: the folder that holds run folders.
        on_trial_end: optional callback, called with each ended keras-tuner trial.
        pack_size: the most trials trained as one pack (1: each alone); None lets
            :func:`ablation.trials.pack.default_limit` choose from the model's size.
    """

    def __init__(self, spec: StudySpec, out_dir: str | os.PathLike,
                 on_trial_end: Callable | None = None, pack_size: int | None = None) -> None:
        hypermodel = AblationHyperModel(spec)
        oracle = _StudyOracle(objective=kt.Objective(spec.objective, "min"), max_trials=spec.n_trials,
                              max_consecutive_failed_trials=spec.n_trials + 1, max_retries_per_trial=0,
                              spec=spec, declare=hypermodel.declare_hyperparameters, on_trial_end=on_trial_end)
        self.spec = spec
        self.pack_size = pack_size  # None: pack.default_limit decides
        self.stop_after_pack: Callable[[], bool] | None = None  # asked after each pack: stop early (recycling)
        self.on_epoch: Callable[[], None] | None = None  # called after each pack epoch's note (in-process progress)
        # asked with a pack's trial ids before their files are written: the ones to write (a worker keeps only
        # the trials its chief still gives it, ablation.engine.heartbeat); None writes every one
        self.keep_records: Callable[[list[str]], set[str]] | None = None
        self.training: list[str] = []  # ids of the trials of the pack in training (a worker's heartbeats say them)
        self._noted = 0.0
        self._param_counts: dict[tuple, int] = {}
        self._ready: dict[str, trial_module.Member] = {}  # members built to count parameters, trained next
        self._pending = Phases()  # the phases of the member _params built, for its pack
        self.worker_start_s: float | None = None  # a worker process's start-up, recorded with its first pack
        self._slots: set[str] = set()
        self._slot_of: dict[str, str] = {}
        self._reloaded = False
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner prints "Reloading Tuner from ..."
            super().__init__(oracle, hypermodel=hypermodel, directory=str(out_dir),
                             project_name=spec.run_name, overwrite=False)
        if not self._reloaded and not self._is_worker() and _has_run_state(self.project_dir):
            self.oracle.reload()  # trial folders without a tuner file: a run killed before its first save

    def _populate_initial_space(self) -> None:
        # The space has no conditional scopes: declare it without building any model.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def save(self) -> None:
        """The oracle (on a chief or alone) and the tuner file, atomically."""
        if not self._is_worker():
            self.oracle.save()
        files.atomic_write_json(self._get_tuner_fname(), self.get_state(), durable=False)

    def reload(self) -> None:
        """Rebuild the oracle from the run folder (a worker has none: its chief has it). The tuner keeps no state."""
        self._reloaded = True
        if not self._is_worker():
            self.oracle.reload()

    def search(self, *args: Any, **kwargs: Any) -> bool:
        """Run every trial of the grid, in packs of trials that share a training recipe.

        Trials come from the oracle one at a time (on a worker, over gRPC); consecutive ones that
        share a recipe (:func:`ablation.trials.pack.recipe_key`) are collected up to the pack limit and
        trained together. A trial of another recipe ends the pack and starts the next one.

        Returns:
            True when ``stop_after_pack`` ended the search early (a worker recycled to bound its
            memory; a trial it was already given is handed back by its chief), else False.
        """
        if "verbose" in kwargs and (not dist_utils.has_chief_oracle() or dist_utils.is_chief_oracle()):
            self.oracle.verbose = kwargs["verbose"]
        with _quiet_failures():
            if dist_utils.is_chief_oracle():  # keras-tuner's own chief: serve the oracle (blocks until done)
                self.save()
                oracle_chief.start_server(self.oracle)
                return False
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
                    if trial.status == TrialStatus.STOPPED:
                        stopped = True
                    elif trial.status == TrialStatus.IDLE:
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
                    if self.stop_after_pack is not None and self.stop_after_pack():
                        return True
                elif stopped:
                    # Every slot id must hear STOPPED, or a chief waits for it. A slot may instead be
                    # handed a trial that went back to the queue meanwhile (a worker died): run it.
                    leftover = []
                    for slot in sorted(self._slots):
                        trial = self.oracle.create_trial(slot)
                        if trial.status == TrialStatus.RUNNING:
                            self._slot_of[trial.trial_id] = slot
                            leftover.append(trial)
                    if not leftover:
                        break
                    for trial in leftover:
                        self._run_pack([trial])
            self.on_search_end()
            return False

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
        """Parameters of the model of ``trial``'s recipe (for the pack limit), from the member it trains as.

        The first trial of a pack is built here, exactly as :meth:`_train_and_record` would build it first
        (a fresh Keras session, then the member under its seed), and kept for it: counting costs no
        throwaway model.
        """
        key = self._key(trial)
        if key not in self._param_counts:
            self._ready.clear()
            keras.backend.clear_session()
            try:
                self._pending = Phases()  # this build is the pack's: its phases start here
                member = self._member(trial, self._pending)
                self._param_counts[key] = member.model.count_params()
                self._ready[trial.trial_id] = member
            except Exception:  # noqa: BLE001 - a user's model function that raises: its trial records it
                self._param_counts[key] = 0
                keras.backend.clear_session()
        return self._param_counts[key]

    def _member(self, trial: Any, phases: Phases) -> trial_module.Member:
        """Build ``trial``'s member; its data and build time go to ``phases``."""
        data_before, start = self.hypermodel.data_seconds, time.perf_counter()
        try:
            return self.hypermodel.member(trial.hyperparameters, trial.trial_id)
        finally:
            data = self.hypermodel.data_seconds - data_before
            phases.add("data", data)
            phases.add("build", time.perf_counter() - start - data)

    def _train_and_record(self, trials: list) -> list[trial_module.TrialRecord]:
        """Build and train the trials as one pack and write each trial's files; one record each, whose result
        holds the pack's phases (:mod:`ablation.base.phases`)."""
        ready = self._ready.pop(trials[0].trial_id, None) if trials else None  # built by _params, session fresh
        self._ready.clear()
        phases, self._pending = (self._pending if ready is not None else Phases()), Phases()
        if ready is None:
            keras.backend.clear_session()
        members, records = [], {}
        for trial in trials:
            try:
                members.append(ready if ready is not None and trial is trials[0] else self._member(trial, phases))
            except Exception as exc:  # noqa: BLE001 - recorded as a failed trial; the study goes on
                hp = trial.hyperparameters
                records[trial.trial_id] = trial_module.failed(self.hypermodel.config(hp), trial.trial_id, exc)
        if members:
            self._noted = 0.0
            for member, record in zip(members, self.hypermodel.train(members, on_epoch=self._note_epoch,
                                                                     phases=phases)):
                records[member.trial_id] = record
        del members
        keep = self.keep_records([t.trial_id for t in trials]) if self.keep_records is not None else None
        kept = [t for t in trials if keep is None or t.trial_id in keep]  # else handed to another worker meanwhile
        with phases.timed("writes"):  # result.json last (its presence says the others are whole), after these
            for trial in kept:
                record = records[trial.trial_id]
                record.result["pack_id"] = trials[0].trial_id
                rundir.write_trial(self.get_trial_dir(trial.trial_id), None, record.history, record.probes)
                tensorboard.write_trial(self.project_dir, self.spec, record.result, record.history)
        timed = phases.as_result()
        if self.worker_start_s is not None:  # a worker's start-up counts with its first pack
            timed["worker_start_s"] = round(self.worker_start_s, 3)
            self.worker_start_s = None
        for trial in kept:
            record = records[trial.trial_id]
            record.result["phases"] = timed
            rundir.write_trial(self.get_trial_dir(trial.trial_id), record.result)
        keras.backend.clear_session(free_memory=False)
        gc.collect()  # once: clear_session(free_memory=True) would collect again
        return [records[t.trial_id] for t in trials]

    def _note_epoch(self, note: dict[str, Any]) -> None:
        """Leave the pack's progress where the chief's progress line reads it (at most every NOTE_EVERY_S)."""
        now = time.monotonic()
        if now - self._noted < NOTE_EVERY_S and note["epoch"] < note["epochs"]:
            return
        self._noted = now
        rundir.write_progress(self.project_dir, str(self.tuner_id), note)
        if self.on_epoch is not None:
            self.on_epoch()

    def _run_pack(self, trials: list) -> None:
        """Train and record the trials of one pack, and report each to the oracle."""
        for trial in trials:
            self.on_trial_begin(trial)
        self.training = [t.trial_id for t in trials]
        try:
            done = self._train_and_record(trials)
        finally:
            self.training = []
        for trial, record in zip(trials, done):
            if record.status == "completed":
                metrics = record.metrics()
                self.oracle.update_trial(trial.trial_id, tuner_utils.convert_to_metrics_dict(
                    metrics, self.oracle.objective), step=tuner_utils.get_best_step(metrics, self.oracle.objective))
                trial.status = TrialStatus.COMPLETED
            else:
                trial.status = TrialStatus.FAILED
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
