"""Statistics of an ablation run: the run folder read as long-form frames (``records``), then
confidence intervals, paired effects, claim verdicts, curve measures.

Pure functions over the long-form frames of :mod:`ablation.stats.records` (NumPy, pandas, SciPy; no
plotting; only ``records`` reads the disk). May import: base, zoo, data, train, spec. ``stats``
owns every interval and every test; the report only shows them.

Modules: ``intervals`` (confidence intervals), ``frames`` (selecting, matching and pairing rows),
``tables`` (per-point summaries, per-axis effects, evaluation columns), ``claims`` (verdicts),
``curves`` (epochs to reach a value), ``components`` (what each part of a model is worth), ``power``
(power, seeds needed, the test set's noise floor, the probability of improvement, the levels of
repeated looks), ``importance`` (the variance of a metric split between the grid axes and their pairs:
ANOVA main effects and interactions, for the report's "Which factors matter").
"""

from __future__ import annotations

from ablation.stats.claims import (CHANCE_MARGIN, DERIVED_METRICS, MIN_SEEDS, REGRESSION_FRACTION, TRAIN_FRACTION,
                                   VERDICTS, chance_error, claim_verdict, claim_verdicts, decide, looks_of)
from ablation.stats.components import component_effects
from ablation.stats.curves import epochs_to_reach, first_epoch_below
from ablation.stats.power import MAX_SEEDS as MAX_POWER_SEEDS
from ablation.stats.power import POWER, detectable_effect, look_level, noise_floor, probability_of_improvement, seeds_needed
from ablation.stats.frames import axes_from_points, axis_label, matches, select
from ablation.stats.importance import Importance, factor_importance
from ablation.stats.intervals import (BOOTSTRAP_MIN_N, LEVEL, N_BOOT, Interval, bootstrap_ci, holm, mean_interval,
                                      one_sided_p, tost_p)
from ablation.stats.tables import effect_interval, evaluation_metrics, paired_deltas, summarize

__all__ = [
    "LEVEL", "N_BOOT", "MIN_SEEDS", "BOOTSTRAP_MIN_N", "CHANCE_MARGIN", "TRAIN_FRACTION", "REGRESSION_FRACTION",
    "VERDICTS", "DERIVED_METRICS", "Interval", "mean_interval", "bootstrap_ci", "one_sided_p", "tost_p", "holm",
    "summarize", "paired_deltas", "effect_interval", "evaluation_metrics", "claim_verdict", "claim_verdicts", "decide", "looks_of",
    "chance_error", "POWER", "MAX_POWER_SEEDS", "detectable_effect", "seeds_needed", "noise_floor",
    "probability_of_improvement", "component_effects", "look_level", "first_epoch_below", "epochs_to_reach", "matches", "select", "axis_label", "axes_from_points",
    "Importance", "factor_importance",
]
