"""The keras-tuner tuner subclass that runs a study's grid.

``AblationTuner`` is a ``BaseTuner`` (no model checkpoints per epoch: a trial's record is its
files) driven by keras-tuner's ``GridSearchOracle``: one trial per grid point x seed, never
``executions_per_trial``. Diverged and failed trials raise ``FailedTrialError`` and stay FAILED
(no retries); the consecutive-failure limit is lifted so one broken configuration cannot stop a
study. An interrupted trial is re-queued by keras-tuner when the oracle reloads.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import keras_tuner as kt
from keras_tuner.src import config as kt_config
from keras_tuner.src.engine import base_tuner
from keras_tuner.src.tuners.gridsearch import LinkedList

from ablation.hypermodel import AblationHyperModel
from ablation.spec import StudySpec


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
        self._ordered_ids = LinkedList()
        for trial_id in order:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(self.end_order)

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
    """

    def __init__(self, spec: StudySpec, out_dir: str | os.PathLike,
                 on_trial_end: Callable | None = None) -> None:
        objective = "val_error" if spec.data.validation_size else "test_error"
        oracle = _StudyOracle(objective=kt.Objective(objective, "min"), max_trials=spec.n_trials,
                              max_consecutive_failed_trials=spec.n_trials + 1, max_retries_per_trial=0,
                              on_trial_end=on_trial_end)
        self.spec = spec
        kt_config.DEBUG = False  # failed trials keep their traceback in result.json, not on stderr
        super().__init__(oracle, hypermodel=AblationHyperModel(spec), directory=str(out_dir),
                         project_name=spec.run_name, overwrite=False)

    def _populate_initial_space(self) -> None:
        # The space has no conditional scopes: declare it without building any model.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Build, train and record one trial; returns its metrics for the oracle."""
        hp = trial.hyperparameters
        trial_dir = self.get_trial_dir(trial.trial_id)
        try:
            model = self.hypermodel.build(hp)
        except Exception as exc:  # recorded as a failed trial; the study goes on
            self.hypermodel.record_failure(hp, trial_dir, trial.trial_id, exc)
        return self.hypermodel.fit(hp, model, trial_dir=trial_dir, trial_id=trial.trial_id)

    def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
        """Trials keep their records, not their weights."""

    def load_model(self, trial: Any) -> Any:
        raise NotImplementedError("keras-ablation does not keep trained weights; rebuild the model with "
                                  "zoo.create and the trial's arguments")
