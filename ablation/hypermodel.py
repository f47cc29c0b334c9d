"""The keras-tuner HyperModel of a study: the search space, ``build(hp)`` and ``fit(hp, model)``.

keras-tuner's roles stay apart (DESIGN.md, convention 6): the search space lives here (one
``hp.Choice`` per grid axis, plus the seed — seeds are replicates, each its own trial), ``build``
makes and compiles the trial's model, and ``fit`` trains it (:func:`ablation.trial.execute`) and
returns its metrics; a trial that diverged or failed raises ``FailedTrialError``. Writing the
trial's files is the tuner's job (:class:`ablation.tuner.AblationTuner`), so this HyperModel also
works with keras-tuner's own tuners.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner as kt

from ablation import data as data_module
from ablation import trial as trial_module
from ablation import training, zoo
from ablation.spec import StudySpec, TrialConfig

SEED_HP = "seed"


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
                                           trial_module.every_steps(self.spec))
        training.compile_model(model, cfg.train, spe)
        return model

    # ------------------------------------------------------------------ fit
    def run(self, hp: kt.HyperParameters, model: keras.Model, trial_id: str = "") -> trial_module.TrialRecord:
        """Train one trial and return its whole record (metrics, history, probe rows)."""
        cfg = self.config(hp)
        try:
            ds = self.dataset(cfg)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed trial
            return trial_module.failed(cfg, trial_id, exc)
        record = trial_module.execute(self.spec, cfg, model, ds, trial_id)
        del model
        keras.backend.clear_session()
        return record

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Train one trial and return its metrics (keras-tuner's contract).

        Raises:
            keras_tuner.errors.FailedTrialError: the loss became NaN or infinite (``diverged``) or the
                trial raised (``failed``).
        """
        record = self.run(hp, model)
        if record.status != "completed":
            raise kt.errors.FailedTrialError(f"{record.status}: {record.result['reason']}")
        return record.metrics()


def _steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, -(-n // max(1, min(batch_size, n))))
