"""The keras-tuner HyperModel of a study: the search space, ``build(hp)`` and ``fit(hp, model)``.

keras-tuner's roles stay apart (DESIGN.md, convention 6): the search space lives here (one
``hp.Choice`` per grid axis, plus the seed — seeds are replicates, each its own trial), ``build``
makes the trial's model and ``fit`` trains it (a pack of one, ``ablation.trials.pack``) and returns its
metrics; a trial that diverged or failed raises ``FailedTrialError``. Writing the trial's files
is the tuner's job (:class:`ablation.engine.tuner.AblationTuner`, which also trains several trials as
one pack), so this HyperModel works with keras-tuner's own tuners too.

The axes are declared with the ones that change the training recipe (train keys, training-set
size) first and the seed last, so that keras-tuner's grid hands out, one after the other, the
trials that can train together in a pack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import keras

from ablation.base import backend as _backend
from ablation.base.phases import Phases

kt = _backend.keras_tuner()  # without scikit-learn

from ablation import data as data_module
from ablation.trials import pack as pack_module
from ablation.trials import trial as trial_module
from ablation.spec import TRAIN_KEYS, Axis, StudySpec, TrialConfig

SEED_HP = "seed"


def _changes_recipe(axis: Axis) -> bool:
    if axis.section in ("train", "data"):
        return True
    return axis.section == "config" and any(k in TRAIN_KEYS or k == "train_size" for v in axis.values for k in v)


def declaration_order(spec: StudySpec) -> list[Axis]:
    """The grid axes in the order they are declared to keras-tuner: recipe axes first, model axes after."""
    return sorted(spec.grid, key=lambda a: not _changes_recipe(a))


class AblationHyperModel(kt.HyperModel):
    """Builds and trains the model of one grid point x seed of a study.

    Args:
        spec: the validated study.
    """

    def __init__(self, spec: StudySpec) -> None:
        super().__init__(name=spec.name, tunable=True)
        self.spec = spec
        self._data_cache: dict[tuple, data_module.Dataset] = {}
        self._subsets: dict[tuple, data_module.Dataset] = {}
        self.data_seconds = 0.0  # time in dataset(), all trials together (ablation.base.phases: data)

    # ------------------------------------------------------------------ search space
    def declare_hyperparameters(self, hp: kt.HyperParameters) -> None:
        """One ``hp.Choice`` of labels per grid axis (recipe axes first), then the seed."""
        for axis in declaration_order(self.spec):
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
        held-out examples (a source with its own validation set keeps it); the training subset uses the
        trial's seed, and is nested across sizes. Its time adds to ``data_seconds`` (the packs' data phase).
        """
        start = time.perf_counter()
        try:
            return self._dataset(cfg)
        finally:
            self.data_seconds += time.perf_counter() - start

    def _dataset(self, cfg: TrialConfig) -> data_module.Dataset:
        from ablation.spec import canonical_json

        d = cfg.data
        key = (d.name, d.file, d.digest, d.task, canonical_json(d.options), cfg.validation_size)
        if key not in self._data_cache:
            ds = data_module.load_spec(d)
            if cfg.validation_size and ds.x_val is None:
                ds = ds.validation_split(cfg.validation_size, seed=0)
            self._data_cache[key] = ds
        ds = self._data_cache[key]
        if cfg.train_size is None:
            return ds
        wanted = (key, int(cfg.train_size), cfg.seed)
        if wanted not in self._subsets:
            if len(self._subsets) > 64:  # subsets of finished packs
                self._subsets.clear()
            self._subsets[wanted] = ds.subset(int(cfg.train_size), seed=cfg.seed)
        return self._subsets[wanted]

    # ------------------------------------------------------------------ build and train
    def member(self, hp: kt.HyperParameters, trial_id: str = "") -> trial_module.Member:
        """The trial of ``hp`` ready to train: its data and its model (built under its seed)."""
        cfg = self.config(hp)
        return trial_module.prepare(cfg, trial_id, self.dataset(cfg))

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """The trial's model (uncompiled: ``fit`` trains it in a pack of one), built under its seed."""
        keras.backend.clear_session()
        return self.member(hp).model

    def train(self, members: Sequence[trial_module.Member],
              on_epoch: Callable[[dict[str, Any]], None] | None = None,
              phases: Phases | None = None) -> list[trial_module.TrialRecord]:
        """Train members that share a recipe as one pack; one record each (``on_epoch``, ``phases``: see
        ``pack.train``)."""
        return pack_module.train(self.spec, members, on_epoch=on_epoch, phases=phases)

    def fit(self, hp: kt.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Train one trial and return its metrics (keras-tuner's contract).

        Raises:
            keras_tuner.errors.FailedTrialError: the loss became NaN or infinite (``diverged``) or the
                trial raised (``failed``).
        """
        cfg = self.config(hp)
        (record,) = self.train([trial_module.Member("", cfg, self.dataset(cfg), model)])
        if record.status != "completed":
            raise kt.errors.FailedTrialError(f"{record.status}: {record.result['reason']}")
        return record.metrics()
