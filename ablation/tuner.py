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
from collections.abc import Callable, Iterator
from typing import Any

import keras_tuner as kt
from keras_tuner.src import config as kt_config
from keras_tuner.src.engine import base_tuner
from keras_tuner.src.tuners import gridsearch

from ablation import rundir
from ablation import trial as trial_module
from ablation.hypermodel import AblationHyperModel
from ablation.spec import StudySpec

# keras-tuner internals used here: (object, attribute) pairs checked by check_keras_tuner().
PRIVATE_API = (
    (kt.oracles.GridSearchOracle, "_compare"),       # orders grid points (resume rebuilds the order with it)
    (gridsearch, "LinkedList"),                      # the oracle's ordered list of trial ids
    (kt_config, "DEBUG"),                            # prints tracebacks of failed trials to stderr when True
    (base_tuner.BaseTuner, "_populate_initial_space"),
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
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner prints "Reloading Tuner from ..."
            super().__init__(oracle, hypermodel=AblationHyperModel(spec), directory=str(out_dir),
                             project_name=spec.run_name, overwrite=False)

    def _populate_initial_space(self) -> None:
        # The space has no conditional scopes: declare it without building any model.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def search(self, *args: Any, **kwargs: Any) -> None:
        with _quiet_failures():
            super().search(*args, **kwargs)

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Build, train and record one trial; returns its metrics for the oracle."""
        hp = trial.hyperparameters
        try:
            model = self.hypermodel.build(hp)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed trial; the study goes on
            record = trial_module.failed(self.hypermodel.config(hp), trial.trial_id, exc)
        else:
            record = self.hypermodel.run(hp, model, trial.trial_id)
            del model
        rundir.write_trial(self.get_trial_dir(trial.trial_id), record.result, record.history, record.probes)
        gc.collect()
        if record.status != "completed":
            raise kt.errors.FailedTrialError(f"{record.status}: {record.result['reason']}")
        return record.metrics()

    def save_model(self, trial_id: str, model: Any, step: int = 0) -> None:
        """Trials keep their records, not their weights."""

    def load_model(self, trial: Any) -> Any:
        raise NotImplementedError("keras-ablation does not keep trained weights; rebuild the model with "
                                  "zoo.create and the trial's arguments")
