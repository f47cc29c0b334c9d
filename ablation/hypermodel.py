"""The keras-tuner HyperModel of a study: the search space, ``build(hp)`` and ``fit(hp, model)``.

keras-tuner's roles stay apart (DESIGN.md, convention 6): the search space lives here (one
``hp.Choice`` per grid axis, plus the seed — seeds are replicates, each its own trial), ``fit``
trains one trial and returns its metrics, and a run that diverges raises ``FailedTrialError``
after its record has been written, so it is kept as a diverged row.

One trial writes three files into its folder, each atomically: ``history.json`` (per-epoch
metrics), ``probes.json`` (when probes are on) and ``result.json`` (status, metrics, evaluations).
"""

from __future__ import annotations

import gc
import time
import traceback
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from ablation import data as data_module
from ablation import probes as probes_module
from ablation import training, zoo
from ablation.records import atomic_write_json
from ablation.spec import StudySpec, TrialConfig

SEED_HP = "seed"

# Each trial builds a new model, so TensorFlow's "retracing" warnings are expected noise here.
tf.get_logger().setLevel("ERROR")


class AblationHyperModel(kt.HyperModel):
    """Builds and trains the model of one grid point x seed of a study.

    Args:
        spec: the validated study.
    """

    def __init__(self, spec: StudySpec) -> None:
        super().__init__(name=spec.name, tunable=True)
        self.spec = spec
        self._data_cache: dict[tuple, data_module.Dataset] = {}
        self._last_subset: tuple[tuple, data_module.Dataset] | None = None

    # ------------------------------------------------------------------ search space
    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """One ``hp.Choice`` of labels per grid axis, then the seed."""
        for axis in self.spec.grid:
            hp.Choice(axis.name, list(axis.labels))
        hp.Choice(SEED_HP, [int(s) for s in self.spec.seeds])

    def config(self, hp: kt.HyperParameters) -> TrialConfig:
        """The full trial configuration of the values in ``hp``."""
        self.declare_hyperparameters(hp)
        point = {axis.name: hp.get(axis.name) for axis in self.spec.grid}
        return self.spec.resolve(point, int(hp.get(SEED_HP)))

    # ------------------------------------------------------------------ data
    def dataset(self, cfg: TrialConfig) -> data_module.Dataset:
        """The trial's data: loaded once per process, validation held out, training subset drawn.

        The validation split uses a fixed seed (0), so every trial of a study is judged on the same
        held-out examples; the training subset uses the trial's seed, and is nested across sizes.
        """
        key = (cfg.data_name, tuple(sorted(cfg.data_options.items())), cfg.validation_size)
        if key not in self._data_cache:
            ds = data_module.load(cfg.data_name, **cfg.data_options)
            if cfg.validation_size:
                ds = ds.validation_split(cfg.validation_size, seed=0)
            self._data_cache[key] = ds
        ds = self._data_cache[key]
        if cfg.train_size is None:
            return ds
        # build() and fit() of one trial both ask: draw the subset once (only the last is kept).
        wanted = (key, int(cfg.train_size), cfg.seed)
        if self._last_subset is None or self._last_subset[0] != wanted:
            self._last_subset = (wanted, ds.subset(int(cfg.train_size), seed=cfg.seed))
        return self._last_subset[1]

    # ------------------------------------------------------------------ build
    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """Seed everything, then build and compile the trial's model under its precision policy."""
        cfg = self.config(hp)
        ds = self.dataset(cfg)
        keras.backend.clear_session()
        keras.utils.set_random_seed(cfg.seed)
        with training.precision_policy(cfg.train.precision):
            model = zoo.create(cfg.model_name, **{**cfg.model_args, "input_shape": ds.input_shape,
                                                  "num_classes": ds.num_classes})
        spe = training.steps_per_execution(cfg.train, _steps_per_epoch(len(ds.x_train), cfg.train.batch_size),
                                           self._every_steps())
        training.compile_model(model, cfg.train, spe)
        return model

    def _every_steps(self) -> int | None:
        stepped = {"covariate_shift", "speed"} & set(self.spec.probes)
        return self.spec.probe_every_steps if stepped else None

    # ------------------------------------------------------------------ fit
    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args: Any, trial_dir: str | Path = ".",
            trial_id: str = "", **kwargs: Any) -> dict[str, float]:
        """Train one trial, evaluate it, write its files, and return metrics for the oracle.

        Args:
            hp: the trial's hyperparameters (grid labels and seed).
            model: the compiled model from ``build``.
            trial_dir: the trial's folder.
            trial_id: keras-tuner's trial id.

        Returns:
            Scalar metrics; the oracle's objective (``val_error``, or ``test_error`` without a
            validation set) among them.

        Raises:
            keras_tuner.errors.FailedTrialError: the loss became NaN or infinite (status
                ``diverged``) or the trial raised (status ``failed``); the record is written first.
        """
        cfg = self.config(hp)
        trial_dir = Path(trial_dir)
        start = time.perf_counter()
        result: dict[str, Any] = {"trial_id": trial_id, "status": "completed", "reason": None,
                                  "failed_epoch": None, "point": cfg.point, "seed": cfg.seed,
                                  "train_size": None, "metrics": {}, "evaluations": [],
                                  "wall_time_s": None, "epochs_run": 0, "steps_run": 0}
        log, guard, probes, stopper = training.EpochLog(), training.Divergence(), [], None
        try:
            ds = self.dataset(cfg)
            result["train_size"] = int(len(ds.x_train))
            probes = self._probes(model, ds, cfg)
            stopper = self._early_stopping(cfg)
            callbacks = [guard, log, *probes] + ([stopper] if stopper is not None else [])
            validation = (ds.x_val, ds.y_val) if ds.x_val is not None else None
            training.fit(model, ds.x_train, ds.y_train, train=cfg.train, seed=cfg.seed,
                         validation=validation, callbacks=callbacks)
            result["xla"] = bool(model.jit_compile)  # may differ from the recipe (training.use_xla)
            result["epochs_run"] = len(log.history["epoch"])
            result["steps_run"] = int(model.optimizer.iterations.numpy())
            if guard.reason is not None:
                result.update(status="diverged", reason=guard.reason, failed_epoch=guard.epoch)
            else:
                result["metrics"] = self._metrics(model, ds, log.history, stopper)
                result["metrics"].update(probes_module.collect_summary(probes))
                result["evaluations"] = self._evaluations(model, ds, cfg)
        except Exception as exc:  # a broken trial is recorded (with its traceback), and the study goes on
            result.update(status="failed", reason=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc())
        result["wall_time_s"] = time.perf_counter() - start
        atomic_write_json(trial_dir / "history.json", log.history)
        if probes:
            atomic_write_json(trial_dir / "probes.json", probes_module.collect_rows(probes))
        atomic_write_json(trial_dir / "result.json", result)
        del model
        keras.backend.clear_session()
        gc.collect()
        if result["status"] != "completed":
            raise kt.errors.FailedTrialError(f"{result['status']}: {result['reason']}")
        return {k: v for k, v in result["metrics"].items()
                if isinstance(v, (int, float)) and np.isfinite(v)}

    def record_failure(self, hp: kt.HyperParameters, trial_dir: str | Path, trial_id: str,
                       exc: Exception) -> None:
        """Write the record of a trial whose model could not be built, then raise FailedTrialError."""
        cfg = self.config(hp)
        result = {"trial_id": trial_id, "status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                  "failed_epoch": None, "point": cfg.point, "seed": cfg.seed, "train_size": cfg.train_size,
                  "metrics": {}, "evaluations": [], "wall_time_s": 0.0, "epochs_run": 0, "steps_run": 0}
        atomic_write_json(Path(trial_dir) / "result.json", result)
        raise kt.errors.FailedTrialError(f"failed: {result['reason']}") from exc

    def _probes(self, model: keras.Model, ds: data_module.Dataset, cfg: TrialConfig) -> list:
        if not self.spec.probes:
            return []
        rng = np.random.default_rng(cfg.seed)
        idx = rng.permutation(len(ds.x_train))[: self.spec.probe_size]
        return probes_module.make(self.spec.probes, model=model, probe_x=ds.x_train[idx],
                                  probe_y=ds.y_train[idx], every_steps=self._every_steps(),
                                  target_train_error=self.spec.evaluate.target_train_error)

    @staticmethod
    def _early_stopping(cfg: TrialConfig) -> keras.callbacks.Callback | None:
        if not cfg.train.early_stopping:
            return None
        from ablation import stopping

        params = dict(cfg.train.early_stopping)
        return stopping.EarlyStopping(criterion=params.pop("criterion"), **params)

    @staticmethod
    def _metrics(model: keras.Model, ds: data_module.Dataset, history: dict,
                 stopper: Any) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if stopper is not None and getattr(stopper, "best_weights", None) is not None:
            at_stop = training.evaluate(model, ds.x_test, ds.y_test)
            metrics.update({f"test_{k}_at_stop": v for k, v in at_stop.items()})
            metrics["early_stopped"] = float(stopper.stopped_epoch is not None)
            metrics["stopped_epoch"] = float(stopper.stopped_epoch or len(history["epoch"]))
            metrics["best_epoch"] = float(stopper.best_epoch)
            model.set_weights(stopper.best_weights)
        test = training.evaluate(model, ds.x_test, ds.y_test)
        metrics.update({f"test_{k}": v for k, v in test.items()})
        if history.get("accuracy"):
            metrics["train_loss"] = history["loss"][-1]
            metrics["train_error"] = 1.0 - history["accuracy"][-1]
        if history.get("val_accuracy"):
            val_err = [1.0 - a for a in history["val_accuracy"]]
            metrics["val_loss"] = history["val_loss"][-1]
            metrics["val_error"] = val_err[-1]
            metrics["best_val_error"] = min(val_err)
            metrics["best_val_epoch"] = float(int(np.argmin(val_err)) + 1)
        times = history["epoch_time_s"]
        if times:
            metrics["first_epoch_time_s"] = times[0]
            metrics["time_per_epoch_s"] = float(np.median(times[1:] if len(times) > 1 else times))
        return metrics

    def _evaluations(self, model: keras.Model, ds: data_module.Dataset, cfg: TrialConfig) -> list[dict]:
        ev = self.spec.evaluate
        if not (ev.mc_dropout_k or ev.dropconnect_inference):
            return []
        from ablation import evaluation

        rows: list[dict] = []
        if ev.mc_dropout_k:
            rows += evaluation.weight_scaling(model, ds.x_test, ds.y_test)
            rows += evaluation.mc_dropout(model, ds.x_test, ds.y_test, ks=ev.mc_dropout_k, seed=cfg.seed)
        if ev.dropconnect_inference:
            rows += evaluation.dropconnect(model, ds.x_test, ds.y_test, modes=ev.dropconnect_inference,
                                           seed=cfg.seed)
        return rows


def _steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, -(-n // max(1, min(batch_size, n))))
