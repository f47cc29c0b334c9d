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

The package's names are imported when first used (PEP 562): ``from ablation.stats import records``
(the runner, its workers, a dry run) does not import SciPy's ``stats`` with the intervals.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> (module of ablation.stats, its name there)
_NAMES = {
    **{n: ("claims", n) for n in ("CHANCE_MARGIN", "DERIVED_METRICS", "MIN_SEEDS", "REGRESSION_FRACTION",
                                  "TRAIN_FRACTION", "VERDICTS", "chance_error", "claim_verdict", "claim_verdicts",
                                  "decide", "looks_of")},
    "component_effects": ("components", "component_effects"),
    **{n: ("curves", n) for n in ("epochs_to_reach", "first_epoch_below", "steps_to_reach")},
    "MAX_POWER_SEEDS": ("power", "MAX_SEEDS"),
    **{n: ("power", n) for n in ("POWER", "detectable_effect", "look_level", "noise_floor",
                                 "probability_of_improvement", "seeds_needed")},
    **{n: ("frames", n) for n in ("axes_from_points", "axis_label", "matches", "select")},
    **{n: ("importance", n) for n in ("Importance", "factor_importance")},
    **{n: ("intervals", n) for n in ("BOOTSTRAP_MIN_N", "LEVEL", "N_BOOT", "Interval", "bootstrap_ci", "holm",
                                     "mean_interval", "one_sided_p", "tost_p")},
    **{n: ("tables", n) for n in ("effect_interval", "evaluation_metrics", "paired_deltas", "summarize")},
}

if TYPE_CHECKING:
    from ablation.stats.claims import (CHANCE_MARGIN, DERIVED_METRICS, MIN_SEEDS, REGRESSION_FRACTION, TRAIN_FRACTION,
                                       VERDICTS, chance_error, claim_verdict, claim_verdicts, decide, looks_of)
    from ablation.stats.components import component_effects
    from ablation.stats.curves import epochs_to_reach, first_epoch_below, steps_to_reach
    from ablation.stats.power import MAX_SEEDS as MAX_POWER_SEEDS
    from ablation.stats.power import (POWER, detectable_effect, look_level, noise_floor, probability_of_improvement,
                                      seeds_needed)
    from ablation.stats.frames import axes_from_points, axis_label, matches, select
    from ablation.stats.importance import Importance, factor_importance
    from ablation.stats.intervals import (BOOTSTRAP_MIN_N, LEVEL, N_BOOT, Interval, bootstrap_ci, holm, mean_interval,
                                          one_sided_p, tost_p)
    from ablation.stats.tables import effect_interval, evaluation_metrics, paired_deltas, summarize


_MODULES = ("claims", "components", "curves", "frames", "importance", "intervals", "power", "records", "tables")


def __getattr__(name: str) -> Any:
    """A package name (or one of its modules: ``stats.claims``), imported on first use."""
    if name in _MODULES:
        return importlib.import_module(f"ablation.stats.{name}")
    if name not in _NAMES:
        raise AttributeError(f"module 'ablation.stats' has no attribute {name!r}")
    module, attr = _NAMES[name]
    value = getattr(importlib.import_module(f"ablation.stats.{module}"), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_NAMES, *_MODULES})


__all__ = [
    "LEVEL", "N_BOOT", "MIN_SEEDS", "BOOTSTRAP_MIN_N", "CHANCE_MARGIN", "TRAIN_FRACTION", "REGRESSION_FRACTION",
    "VERDICTS", "DERIVED_METRICS", "Interval", "mean_interval", "bootstrap_ci", "one_sided_p", "tost_p", "holm",
    "summarize", "paired_deltas", "effect_interval", "evaluation_metrics", "claim_verdict", "claim_verdicts", "decide", "looks_of",
    "chance_error", "POWER", "MAX_POWER_SEEDS", "detectable_effect", "seeds_needed", "noise_floor",
    "probability_of_improvement", "component_effects", "look_level", "first_epoch_below", "epochs_to_reach", "steps_to_reach", "matches", "select", "axis_label", "axes_from_points",
    "Importance", "factor_importance",
]
